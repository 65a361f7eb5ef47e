"""Drift end to end on a simulated world with route displacement: a champion trained before
the organisation moves its routes (with its drift reference logged in the registry), the
service's engine scoring the following weeks day by day, the drift monitor refreshed before
and after the drift day, its gauges in ``/metrics`` text, the health page, and ``cargorisk
monitor``."""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from serving.engine import ScoringEngine
from serving.schemas import ShipmentIn
from serving.store import Caller
from serving.ui.app import create_app
from tests.conftest import kept_mlflow_uris

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

END = pd.Timestamp("2026-11-16")
DAYS = 63
DRIFT_AT = 6 / 9  # day 42 of 63
TRAIN_DAYS = 35
GATE = Caller("gate-1", "system", 1)
AFFECTED = {"origin_country", "departure_country"}
"""Route displacement moves the organisation's cover loads from Ecuador and Colombia to Ghana,
Côte d'Ivoire, Uruguay and Chile: its countries of origin and departure change."""


def _records(frame: pd.DataFrame) -> list[ShipmentIn]:
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    out = []
    for record in records:
        for key, value in record.items():
            if key.endswith("_at") and isinstance(value, str):
                record[key] = value.removesuffix("Z")
        out.append(ShipmentIn(**{k: v for k, v in record.items() if not k.startswith("attr.")}))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from simulator import SimConfig, simulate

    config = SimConfig(
        days=DAYS,
        shipments_per_day=400,
        seed=5,
        end=END,
        prevalence=0.02,
        scheme_mix={"route_displacement": 1.0},
        drift_at=DRIFT_AT,
        inspection_capacity=0.1,  # enough labels in three weeks to train and test on
    )
    return config, simulate(config)


@pytest.fixture(scope="module")
def served(world, tmp_path_factory):
    """A champion trained on the first three weeks; the engine seeded with them."""
    from training.config import TrainConfig
    from training.jobs.train import train_job
    from training.registry import set_champion

    config, sim = world
    root = tmp_path_factory.mktemp("drift")
    home = root / "home"
    train_end = config.start + pd.Timedelta(days=TRAIN_DAYS)
    ships, outs = sim.shipments, sim.outcomes
    before = ships[ships["declared_at"] < train_end]
    # their inspections with every result, also those that came in later (seizure results
    # lag): the champion learns from all it can, and the seed history holds the same
    known = outs["shipment_id"].isin(before["shipment_id"])
    data = root / "train"
    data.mkdir()
    before.to_parquet(data / "shipments.parquet", index=False)
    outs[known].to_parquet(data / "outcomes.parquet", index=False)
    settings = load_settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        serve_seed_data=data,
        drift_refresh_minutes=0,
        drift_window_days=7,
    )
    with kept_mlflow_uris():  # train_job points MLflow at this home, process-wide
        result = train_job(
            settings,
            data,
            test_days=6,
            config=TrainConfig(
                select_families=False, challenger=False, shap_sample=50, waterfalls=0
            ),
        )
        set_champion(settings, result.model_version, {"passed": True, "reason": "drift test"})
    engine = ScoringEngine(settings)
    engine.start()
    assert engine.served_model is not None, engine.model_error
    yield settings, engine, ships, config
    engine.store.close()


def _score_days(engine, ships: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> None:
    for day in pd.date_range(start, end - pd.Timedelta(days=1), freq="D"):
        batch = ships[
            (ships["declared_at"] >= day) & (ships["declared_at"] < day + pd.Timedelta(days=1))
        ]
        if len(batch):
            engine.score(_records(batch), caller=GATE, explain_share=0.0)


def _window(report, stream: str = "sea") -> pd.DataFrame:
    part = report.window[report.window["stream"] == stream]
    return part.set_index("feature")


def _metric(text: str, name: str, feature: str, stream: str) -> float | None:
    pattern = rf'^{name}\{{(?=[^}}]*feature="{feature}")(?=[^}}]*stream="{stream}")[^}}]*\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else None


def test_route_displacement_alarms_after_the_drift_day_and_not_before(served):
    from prometheus_client import REGISTRY, generate_latest

    settings, engine, ships, config = served
    reference = engine.served_model.drift_reference
    assert reference and {"sea", "air", "express", "all"} <= set(reference["streams"])
    drift_day = config.start + pd.Timedelta(days=round(DRIFT_AT * DAYS))
    train_end = config.start + pd.Timedelta(days=TRAIN_DAYS)

    # the week before the drift day: served traffic like the training window
    _score_days(engine, ships, train_end, drift_day)
    before = engine.drift.refresh()
    assert before is not None, engine.drift.error
    sea = _window(before)
    limit = settings.drift_psi_alert
    top = sea.sort_values("psi", ascending=False).head(12)[["psi", "unseen_share", "level"]]
    for feature in AFFECTED:
        assert sea.loc[feature, "psi"] < limit, top
    assert not [a for a in before.alerts if a["feature"] in AFFECTED and a["level"] == "alert"]
    text = generate_latest(REGISTRY).decode()
    psi_before = _metric(text, "cargorisk_drift_psi", "origin_country", "sea")
    assert psi_before is not None and psi_before < limit

    # two weeks after it: the organisation's new origins and ports
    _score_days(engine, ships, drift_day, config.end)
    after = engine.drift.refresh()
    assert after is not None, engine.drift.error
    sea = _window(after)
    top = sea.sort_values("psi", ascending=False).head(12)[["psi", "unseen_share", "level"]]
    for feature in AFFECTED:
        assert sea.loc[feature, "psi"] >= limit, top
        assert sea.loc[feature, "level"] == "alert"
    alarmed = {a["feature"] for a in after.alerts if a["level"] == "alert" and a["stream"] == "sea"}
    assert alarmed >= AFFECTED
    # the streams the scheme does not use do not alarm on those features
    for stream in ("air", "express"):
        assert (_window(after, stream).loc[list(AFFECTED), "level"] != "alert").all(), stream
    text = generate_latest(REGISTRY).decode()
    assert _metric(text, "cargorisk_drift_psi", "origin_country", "sea") >= limit
    assert _metric(text, "cargorisk_drift_level", "origin_country", "sea") == 2
    # by ISO week: the weeks wholly before the drift day stay below, those after are above
    weekly = after.weeks[
        (after.weeks["stream"] == "sea") & (after.weeks["feature"] == "origin_country")
    ]
    week_start = {w: dt.datetime.strptime(w + "-1", "%G-W%V-%u") for w in weekly["week"].tolist()}
    for r in weekly.itertuples(index=False):
        start = pd.Timestamp(week_start[r.week])
        if start + pd.Timedelta(days=7) <= drift_day:
            assert r.psi < limit, r
        elif start >= drift_day:
            assert r.psi >= limit, r


def test_health_page_shows_the_drift_and_its_alerts(served):
    _settings, engine, _ships, _config = served
    if engine.drift.report is None:
        engine.drift.refresh()
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: engine))])
    with TestClient(host, base_url="http://testserver") as client:
        page = client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        key = engine.store.create_key("Officer Kim", "officer")
        r = client.post("/ui/login", data={"csrf": csrf, "method": "key", "api_key": key})
        assert r.status_code == 200
        r = client.get("/ui/health")
        assert r.status_code == 200
        assert 'id="heat-sea"' in r.text and 'id="drift-alerts"' in r.text
        assert 'id="recall-estimate"' in r.text and 'id="outcome-table"' in r.text
        png = client.get("/ui/health/drift-sea.png")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert client.get("/ui/health/drift-rail.png").status_code == 404


def test_monitor_command_reports_and_logs_its_plots_to_the_run(served, monkeypatch, capsys):
    import mlflow

    from cargorisk.cli import main

    settings, engine, _ships, _config = served
    monkeypatch.setenv("CARGORISK_HOME", str(settings.home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    monkeypatch.setenv("CARGORISK_DRIFT_WINDOW_DAYS", "7")
    assert main(["monitor", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["model_version"] == engine.served_model.version
    alarmed = {(a["stream"], a["feature"]) for a in body["alerts"] if a["level"] == "alert"}
    assert {("sea", f) for f in AFFECTED} <= alarmed
    run_id, folder = body["logged_to"]["run_id"], body["logged_to"]["folder"]
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}
    assert f"{folder}/drift_heat_sea.png" in names and f"{folder}/drift.json" in names

    assert main(["monitor", "--no-log", "--fail-on-alert"]) == 3
    text = capsys.readouterr().out
    assert "alerts (" in text and "origin_country" in text
