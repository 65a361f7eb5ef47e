"""The scoring engine in-process: scores, reasons, batches, outcomes, reloads, bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from common.settings import load_settings
from features.scoring import ScoringModel
from serving.engine import RecentScores, RequestError, ScoringEngine
from serving.model import LoadedModel, ModelLoadError
from serving.schemas import OutcomeIn, ShipmentIn, shipments_frame
from serving.store import Caller, Store
from tests.serving.conftest import make_outcome, make_shipment
from tests.serving.helpers import tiny_history, train_tiny_model

SYSTEM = Caller("gate-7", "system", 1)
NOW = dt.datetime(2026, 2, 5, 9, 0)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history()
    return ships, outs, train_tiny_model(ships, outs)


def _loaded(model: ScoringModel, version: str = "1") -> LoadedModel:
    return LoadedModel(model, "cargorisk-risk", version, f"models:/cargorisk-risk/{version}", NOW)


@pytest.fixture
def engine(home, world, tmp_path):
    ships, outs, model = world
    seed = tmp_path / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(serve_seed_data=seed, max_batch=50, explain_top_share=0.2)
    holder = {"model": _loaded(model)}
    eng = ScoringEngine(settings, model_loader=lambda: holder["model"])
    eng.start()
    eng.test_models = holder
    yield eng
    eng.store.close()


def _ship(i, **kw):
    kw.setdefault("declared_at", (NOW + dt.timedelta(minutes=i)).isoformat())
    kw.setdefault("booked_at", None)
    kw.setdefault("departed_at", None)
    kw.setdefault("arrival_at", None)
    return ShipmentIn(**make_shipment(10_000 + i, **kw))


def test_starts_ready_with_seeded_history(engine, world):
    assert engine.ready
    assert engine.store.count("shipments") == len(world[0])
    assert engine.store.count("outcomes") == len(world[1])


def test_score_one_shipment_with_reasons_that_add_up(engine, world):
    model = world[2]
    rid, used, [r] = engine.score(
        [_ship(1, origin_country="EC")], caller=SYSTEM, all_contributions=True
    )
    assert used.version == "1" and r["model_version"] == "1"
    assert 0 <= r["score"] <= 1 and r["band"] in ("high", "medium", "low")
    assert 0 < r["percentile"] <= 100
    assert r["reasons"] and len(r["reasons"]) <= 5
    total = r["base_value"] + sum(r["contributions"].values())
    assert total == pytest.approx(r["raw_score"], abs=1e-9)
    assert model.calibrate(np.array([r["raw_score"]]))[0] == pytest.approx(r["score"])
    sizes = [abs(x["contribution"]) for x in r["reasons"]]
    assert sizes == sorted(sizes, reverse=True)
    assert max(sizes) == pytest.approx(max(abs(v) for v in r["contributions"].values()))
    for reason in r["reasons"]:
        assert reason["direction"] == ("raises" if reason["contribution"] > 0 else "lowers")
        assert reason["text"]
    stored = engine.store.latest_score(r["shipment_id"])
    assert stored["request_id"] == rid and stored["caller"] == "system:gate-7"
    assert stored["reasons"] == r["reasons"]


def test_batch_is_sorted_and_explains_the_top_share(engine):
    ships = [_ship(i, declared_value_usd=float(100 + 997 * i)) for i in range(20)]
    _, _, results = engine.score(ships, caller=SYSTEM, explain_share=0.2)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert [r["rank"] for r in results] == list(range(1, 21))
    assert [r["reasons"] is not None for r in results] == [True] * 4 + [False] * 16
    assert engine.store.count("scores") == 20


def test_bad_batches_change_nothing(engine):
    before = (engine.store.count("shipments"), engine.store.count("scores"))
    probe = shipments_frame([_ship(99)])
    feats_before = engine.features(probe)
    with pytest.raises(RequestError, match="repeated"):
        engine.score([_ship(1), _ship(1)], caller=SYSTEM)
    with pytest.raises(RequestError, match="maximum batch") as info:
        engine.score([_ship(i) for i in range(51)], caller=SYSTEM)
    assert info.value.status == 413
    bad = _ship(3, departed_at="2026-02-06T00:00:00", arrival_at="2026-02-05T00:00:00")
    with pytest.raises(RequestError, match="departed_at must not be after arrival_at"):
        engine.score([_ship(2), bad], caller=SYSTEM)
    assert (engine.store.count("shipments"), engine.store.count("scores")) == before
    pd.testing.assert_frame_equal(engine.features(probe), feats_before)


def test_outcomes_update_history_features_at_once(engine):
    first = _ship(1, consignee_id="CNS-WATCH")
    engine.score([first], caller=SYSTEM)
    later = shipments_frame([_ship(500, consignee_id="CNS-WATCH")])
    before = engine.features(later)["consignee_seizures"].iloc[0]
    outcome = make_outcome(
        first.shipment_id,
        "seized",
        inspected_at=(NOW + dt.timedelta(hours=1)).isoformat(),
        result_at=(NOW + dt.timedelta(hours=2)).isoformat(),
    )
    _, n = engine.record_outcomes([OutcomeIn(**outcome)], caller=SYSTEM)
    assert n == 1
    after = engine.features(later)["consignee_seizures"].iloc[0]
    assert (before if before == before else 0) + 1 == after
    view = engine.shipment_view(first.shipment_id)
    assert view["outcomes"][0]["result"] == "seized"
    assert view["latest_score"]["band"] in ("high", "medium", "low")


def test_rescoring_a_shipment_does_not_count_it_twice(engine):
    s = _ship(7, consignee_id="CNS-TWICE")
    probe = shipments_frame([_ship(900, consignee_id="CNS-TWICE")])
    engine.score([s], caller=SYSTEM)
    once = engine.features(probe)["consignee_shipments_total"].iloc[0]
    engine.score([s], caller=SYSTEM)
    assert engine.features(probe)["consignee_shipments_total"].iloc[0] == once
    assert engine.store.count("scores") == 2


def test_reload_swaps_good_models_and_keeps_serving_on_broken_ones(engine, world):
    ships, outs, model = world
    better = train_tiny_model(ships, outs, seed=1)
    engine.test_models["model"] = _loaded(better, "2")
    result = engine.reload(SYSTEM)
    assert result["reloaded"] and result["model_version"] == "2"
    assert result["previous_version"] == "1"

    text, meta = model.to_parts()
    broken = ScoringModel.from_parts(
        text, {**meta, "feature_names": [*meta["feature_names"][:-1], "no_such_feature"]}
    )
    engine.test_models["model"] = _loaded(broken, "3")
    result = engine.reload(SYSTEM)
    assert not result["reloaded"] and result["model_version"] == "2"
    assert "no_such_feature" in result["message"] and "still serving version 2" in result["message"]
    _, used, _ = engine.score([_ship(40)], caller=SYSTEM)
    assert used.version == "2"

    def unreadable():
        raise ModelLoadError("cannot load models:/cargorisk-risk/4: corrupt booster")

    engine.model_holder._loader = unreadable
    result = engine.reload(SYSTEM)
    assert not result["reloaded"] and "corrupt booster" in result["message"]
    actions = [e["action"] for e in engine.store.audit_events()]
    assert actions.count("model_reload") == 3


def test_not_ready_without_a_model(home, tmp_path):
    settings = load_settings()

    def none():
        raise ModelLoadError("no model cargorisk-risk@champion in the registry")

    eng = ScoringEngine(settings, model_loader=none, store=Store(settings.store))
    eng.start()
    assert not eng.ready
    assert "no model" in eng.status()["model_error"]


def test_recent_scores_percentiles():
    recent = RecentScores(4, np.array([0.1, 0.2, 0.3, 0.4]))
    assert recent.percentiles(np.array([0.25])).tolist() == [60.0]
    recent.extend([0.9])  # 0.1 drops out
    assert len(recent) == 4
    assert recent.percentiles(np.array([0.9])).tolist() == [100.0]


def test_recent_scores_bulk_and_one_by_one_keep_the_same_window():
    rng = np.random.default_rng(5)
    one, bulk = RecentScores(500), RecentScores(500)
    for chunk in (rng.uniform(size=n) for n in (300, 70, 1, 400, 3, 65)):
        for v in chunk:
            one.extend([v])
        bulk.extend(chunk)
        assert list(bulk._fifo) == list(one._fifo)
        assert bulk._sorted == one._sorted == sorted(one._fifo)
    probe = rng.uniform(size=50)
    assert bulk.percentiles(probe).tolist() == one.percentiles(probe).tolist()


def test_an_amendment_is_a_version_and_its_count_a_feature_of_the_score(engine, monkeypatch):
    """Finding 6 in the engine: a shipment declared again with another consignee and goods is
    version 2 (the history still counts it once, as first declared) and the score of version 2
    sees its amendment count."""
    first = _ship(8, consignee_id="CNS-AMEND-A", goods_description="COCAINE IN BANANAS")
    probe_a = shipments_frame([_ship(901, consignee_id="CNS-AMEND-A")])
    probe_b = shipments_frame([_ship(902, consignee_id="CNS-AMEND-B")])
    _, _, [r1] = engine.score([first], caller=SYSTEM)
    assert r1["shipment_version"] == 1
    count_a = engine.features(probe_a)["consignee_shipments_total"].iloc[0]

    seen = []  # the features each score is computed from
    features = engine._store_features
    monkeypatch.setattr(
        engine, "_store_features", lambda *a, **k: seen.append(features(*a, **k)) or seen[-1]
    )
    amended = _ship(8, consignee_id="CNS-AMEND-B", goods_description="FRESH BANANAS")
    _, _, [r2] = engine.score([amended], caller=SYSTEM)
    _, _, [r3] = engine.score([amended], caller=SYSTEM)  # re-sent: still version 2
    assert (r2["shipment_version"], r3["shipment_version"]) == (2, 2)
    assert seen[0]["declaration_amendments"].tolist() == [1.0]
    assert engine.features(probe_a)["consignee_shipments_total"].iloc[0] == count_a
    assert engine.features(probe_b)["consignee_shipments_total"].iloc[0] == 0
    stored = engine.store.shipments_frame()
    row = stored[stored["shipment_id"] == first.shipment_id]
    assert row["consignee_id"].tolist() == ["CNS-AMEND-B"] and row[
        "amendments_after_score"
    ].tolist() == [1]
