"""The service's drift monitor in-process: a real engine (tiny model, real store, real feature
state), its refresh, its gauges, when it is due, and the health page's states."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from features.drift import build_reference, split_points
from features.pipeline import build_training_frame
from serving.engine import ScoringEngine
from serving.model import LoadedModel
from serving.schemas import ShipmentIn
from serving.store import Caller
from serving.ui.app import create_app
from tests.serving.conftest import make_shipment
from tests.serving.helpers import tiny_history, train_tiny_model

SYSTEM = Caller("gate-7", "system", 1)
NOW = dt.datetime(2026, 2, 5, 9, 0)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history()
    model = train_tiny_model(ships, outs)
    features = build_training_frame(ships, outs)
    reference = build_reference(
        features,
        features["mode"],
        model.feature_names,
        model.categories,
        scores=model.score(features, num_threads=1),
        splits=split_points(model.booster.dump_model(), model.feature_names),
        window={"from": "2026-01-01", "to": "2026-01-31"},
    )
    return ships, outs, model, reference


def _engine(home, tmp_path, world, *, reference) -> ScoringEngine:
    ships, outs, model, ref = world
    seed = tmp_path / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(serve_seed_data=seed, drift_refresh_minutes=60)
    loaded = LoadedModel(
        model, "cargorisk-risk", "1", "models:/cargorisk-risk/1", NOW, ref if reference else None
    )
    eng = ScoringEngine(settings, model_loader=lambda: loaded)
    eng.drift.stop()  # no background thread: the test refreshes by hand
    eng.start()
    return eng


def _score(eng, n: int, **kw) -> None:
    batch = [
        ShipmentIn(
            **make_shipment(
                50_000 + i,
                shipment_id=f"T{i:05d}",
                declared_at=(NOW + dt.timedelta(minutes=i)).isoformat(),
                booked_at=None,
                departed_at=None,
                arrival_at=None,
                **kw,
            )
        )
        for i in range(n)
    ]
    eng.score(batch, caller=SYSTEM, explain_share=0.0)


def _page(eng) -> str:
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: eng))])
    with TestClient(host, base_url="http://testserver") as client:
        page = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        key = eng.store.create_key("Officer Kim", "officer")
        r = client.post("/ui/login", data={"csrf": csrf, "method": "key", "api_key": key})
        assert r.status_code == 200
        r = client.get("/ui/health")
        assert r.status_code == 200
        assert 'aria-current="page">Health</a>' in r.text
        return r.text


def test_a_model_without_a_reference_says_so(home, tmp_path, world):
    eng = _engine(home, tmp_path, world, reference=False)
    try:
        assert eng.drift.due()  # once: to record why there is nothing to show
        assert eng.drift.refresh() is None
        assert "without a drift reference" in eng.drift.error
        assert not eng.drift.due()
        text = _page(eng)
        assert "Drift could not be measured" in text
        # the outcome figures of the same weeks below (none recorded yet in this store)
        assert 'id="recall-estimate"' in text and "No inspection plan has been drawn" in text
    finally:
        eng.store.close()


def test_refresh_measures_served_traffic_and_sets_the_gauges(home, tmp_path, world):
    from prometheus_client import REGISTRY, generate_latest

    eng = _engine(home, tmp_path, world, reference=True)
    try:
        assert not eng.drift.due()  # nothing scored yet: nothing to measure
        _score(eng, 80, origin_country="NG", departure_country="NG")
        assert eng.drift.due()
        report = eng.drift.refresh()
        assert report is not None, eng.drift.error
        assert report.served == 80 and report.model_version == "1"
        sea = report.window[report.window["stream"] == "sea"].set_index("feature")
        # every served shipment from a country the training window never had
        assert sea.loc["origin_country", "psi"] > 1
        assert sea.loc["origin_country", "level"] == "alert"
        assert any(a["feature"] == "origin_country" for a in report.alerts)
        text = generate_latest(REGISTRY).decode()
        assert re.search(
            r'cargorisk_drift_psi\{feature="origin_country",stream="sea"\} [0-9.]+', text
        )
        assert re.search(r'cargorisk_drift_level\{feature="score",stream="sea"\}', text)
        assert not eng.drift.due()  # fresh
        eng.drift.report = dataclasses.replace(
            report, computed_at=report.computed_at - dt.timedelta(hours=2)
        )
        assert eng.drift.due()  # older than drift_refresh_minutes (60)
        page = _page(eng)
        assert 'id="heat-sea"' in page and 'id="drift-alerts"' in page
        assert "origin_country" in page
        body = report.as_dict()
        assert body["served"] == 80 and body["window"]["rows"]
    finally:
        eng.store.close()
