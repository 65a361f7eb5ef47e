"""The shadow challenger: scored beside the champion on every request, stored, never served,
off the request's path; compared with the champion on the outcomes that arrive; its alias
set and cleared in the real MLflow registry; the promotion gate can use the comparison."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from common.settings import load_settings
from features.errors import CargoriskError
from features.scoring import ScoringModel
from serving.engine import ScoringEngine
from serving.model import LoadedModel
from serving.schemas import OutcomeIn, ShipmentIn, shipments_frame
from serving.shadow import NoChallenger, RegistryShadowLoader, compare
from serving.store import Caller, Store
from tests.serving.conftest import make_outcome, make_shipment
from tests.serving.helpers import register_model, tiny_history, train_tiny_model
from training.jobs.promote import shadow_decision

SYSTEM = Caller("gate-7", "system", 1)
OFFICER = Caller("officer-1", "officer", 2)
NOW = dt.datetime(2026, 2, 5, 9, 0)


def _loaded(model: ScoringModel, version: str) -> LoadedModel:
    return LoadedModel(model, "cargorisk-risk", version, f"models:/cargorisk-risk/{version}", NOW)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history()
    return ships, outs, train_tiny_model(ships, outs, seed=0), train_tiny_model(ships, outs, seed=7)


def _engine(tmp_path, world, shadow, **settings):
    ships, outs, champion, _ = world
    seed = tmp_path / "seed"
    seed.mkdir(parents=True, exist_ok=True)
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(
        serve_seed_data=seed,
        max_batch=50,
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        **settings,
    )
    eng = ScoringEngine(settings, model_loader=lambda: _loaded(champion, "1"), shadow_loader=shadow)
    eng.start()
    return eng


def _ship(i, **kw):
    kw.setdefault("declared_at", (NOW + dt.timedelta(minutes=i)).isoformat())
    kw.setdefault("booked_at", None)
    kw.setdefault("departed_at", None)
    kw.setdefault("arrival_at", None)
    return ShipmentIn(**make_shipment(20_000 + i, **kw))


def _no_challenger():
    def load():  # pragma: no cover - check() refuses first
        raise AssertionError("not called")

    def check():
        raise NoChallenger("no version of cargorisk-risk has the alias @challenger")

    load.check = check  # type: ignore[attr-defined]
    return load


def test_challenger_scores_every_request_beside_the_champion(home, tmp_path, world):
    _, _, _champion, challenger = world
    plain = _engine(tmp_path / "a", world, _no_challenger())
    shadowed = _engine(tmp_path / "b", world, lambda: _loaded(challenger, "2"))
    try:
        assert plain.shadow.current is None and shadowed.shadow.current.version == "2"
        batch = [_ship(i, origin_country="EC" if i % 3 else "DE") for i in range(12)]
        # the features the request will see (before it adds its shipments to the history)
        feats = shadowed.features(shipments_frame(batch))
        _, _, served_plain = plain.score(batch, caller=SYSTEM)
        _rid, used, served = shadowed.score(batch, caller=SYSTEM)
        # the answer is the champion's, whatever the shadow does
        assert used.version == "1"
        assert [r["score"] for r in served] == [r["score"] for r in served_plain]
        assert shadowed.shadow.wait_idle(30)
        pairs = shadowed.store.shadow_pairs()
        assert len(pairs) == 12
        assert set(pairs["challenger_version"]) == {"2"}
        assert set(pairs["champion_version"]) == {"1"}
        # the stored challenger scores are the challenger's own scores of the same features
        expected = dict(zip(feats["shipment_id"], challenger.score(feats), strict=True))
        got = dict(zip(pairs["shipment_id"], pairs["challenger_score"], strict=True))
        for sid, value in expected.items():
            assert got[sid] == pytest.approx(value, rel=1e-9)
        champ = dict(zip(pairs["shipment_id"], pairs["champion_score"], strict=True))
        assert champ == pytest.approx({r["shipment_id"]: r["score"] for r in served})
        assert shadowed.shadow_status()["scored"] == 12
        assert plain.shadow_status() == {
            "alias": "challenger",
            "version": None,
            "scored": 0,
            "dropped": 0,
            "errors": 0,
            "last_error": None,
        }
        assert plain.store.shadow_pairs().empty
    finally:
        plain.store.close()
        shadowed.store.close()


def test_a_challenger_that_cannot_score_is_counted_never_seen(home, tmp_path, world):
    _, _, _champion, challenger = world
    # a challenger that needs an attribute the champion's rows do not carry
    broken = ScoringModel(
        booster=challenger.booster,
        feature_names=[*challenger.feature_names[:-1], "attr.tax_rate"],
        categories=challenger.categories,
        metadata=challenger.metadata,
    )
    eng = _engine(tmp_path, world, lambda: _loaded(broken, "3"))
    try:
        # the probe at load time refuses it: no challenger, the reason kept
        assert eng.shadow.current is None
        assert "cannot score" in eng.shadow_status()["last_error"]
        # one that fails only later (slipped past the probe): counted, never seen
        eng.shadow.holder.current = _loaded(broken, "3")
        _, used, served = eng.score([_ship(1)], caller=SYSTEM)
        assert used.version == "1" and len(served) == 1
        assert eng.shadow.wait_idle(30)
        status = eng.shadow_status()
        assert status["scored"] == 0 and status["errors"] == 1
        assert "attr.tax_rate" in status["last_error"]
        assert eng.store.shadow_pairs().empty
    finally:
        eng.store.close()


def test_the_champion_is_not_its_own_challenger_and_a_full_queue_drops(home, tmp_path, world):
    _, _, champion, _ = world
    same = _engine(tmp_path / "a", world, lambda: _loaded(champion, "1"))
    try:
        same.score([_ship(1)], caller=SYSTEM)
        assert same.shadow.wait_idle(30)
        assert same.shadow_status()["scored"] == 0 and same.store.shadow_pairs().empty
    finally:
        same.store.close()
    _, _, _, challenger = world
    eng = _engine(tmp_path / "b", world, lambda: _loaded(challenger, "2"), shadow_max_pending=1)
    try:
        # hold the worker so the queue fills: the request is answered, the batch dropped
        gate = __import__("threading").Event()
        record = eng.shadow._record
        eng.shadow._record = lambda rows: (gate.wait(30), record(rows))
        for i in range(4):
            eng.score([_ship(100 + i)], caller=SYSTEM)
        gate.set()
        assert eng.shadow.wait_idle(30)
        status = eng.shadow_status()
        assert status["dropped"] >= 1
        assert status["scored"] + status["dropped"] == 4
        assert len(eng.store.shadow_pairs()) == status["scored"]
    finally:
        eng.store.close()


def test_outcomes_join_the_pairs(home, tmp_path, world):
    _, _, _, challenger = world
    eng = _engine(tmp_path, world, lambda: _loaded(challenger, "2"))
    try:
        batch = [_ship(i) for i in range(3)]
        eng.score(batch, caller=SYSTEM)
        assert eng.shadow.wait_idle(30)
        ids = [s.shipment_id for s in batch]
        at = NOW + dt.timedelta(days=1)
        eng.record_outcomes(
            [
                OutcomeIn(
                    **make_outcome(
                        ids[0],
                        "seized",
                        inspected_at=at.isoformat(),
                        result_at=at.isoformat(),
                        selected_by="random",
                    )
                ),
                OutcomeIn(
                    **make_outcome(
                        ids[1],
                        "clean",
                        inspected_at=at.isoformat(),
                        result_at=at.isoformat(),
                        selected_by="model",
                    )
                ),
            ],
            caller=OFFICER,
        )
        pairs = eng.store.shadow_pairs().set_index("shipment_id")
        assert pairs.loc[ids[0], ["inspected", "seized", "random"]].tolist() == [True] * 3
        assert pairs.loc[ids[1], ["inspected", "seized", "random"]].tolist() == [
            True,
            False,
            False,
        ]
        assert pairs.loc[ids[2], ["inspected", "seized", "random"]].tolist() == [False] * 3
        result = eng.shadow_comparison()
        assert result["shipments"] == 3 and result["inspected"] == 2 and result["seizures"] == 1
        assert result["random_inspected"] == 1
    finally:
        eng.store.close()


def _pairs(champion, challenger, inspected, seized, random=None):
    n = len(champion)
    return pd.DataFrame(
        {
            "shipment_id": [f"S{i}" for i in range(n)],
            "champion_version": ["4"] * n,
            "challenger_version": ["5"] * n,
            "champion_score": champion,
            "challenger_score": challenger,
            "inspected": inspected,
            "seized": seized,
            "random": random or [False] * n,
        }
    )


def test_comparison_by_hand():
    # 10 shipments, capacity 20 %: each model's top 2
    champion = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    challenger = [0.1, 0.95, 0.2, 0.3, 0.4, 0.5, 0.9, 0.6, 0.7, 0.8]
    inspected = [True, True, True, False, False, False, True, False, False, False]
    seized = [False, True, False, False, False, False, True, False, False, False]
    result = compare(_pairs(champion, challenger, inspected, seized), capacity=0.2)
    # champion's top 2: S0 (clean), S1 (seized); challenger's: S1 (seized), S6 (seized)
    assert result.champion.seizures_within_capacity == 1
    assert result.challenger.seizures_within_capacity == 2
    assert result.champion.inspected_within_capacity == 2
    assert result.challenger.inspected_within_capacity == 2
    # overlap: S1 of the challenger's two
    assert result.overlap_within_capacity == 0.5
    # AUC among inspected (S0 clean .9, S1 seized .8, S2 clean .7, S6 seized .3):
    # champion: pairs (seized > clean): S1>S2, S1<S0, S6<S0, S6<S2 -> 1/4
    assert result.champion.auc_inspected == pytest.approx(0.25)
    # challenger: S1 .95, S6 .9 over S0 .1, S2 .2 -> 1
    assert result.challenger.auc_inspected == pytest.approx(1.0)
    assert result.verdict.startswith("challenger ahead: 2 known seizures")
    assert math.isnan(result.champion.random_auc)
    assert result.seizures == 2 and result.inspected == 4 and result.shipments == 10
    assert any("random inspections" in n for n in result.notes)
    as_dict = result.as_dict()
    assert as_dict["champion"]["random_auc"] is None  # JSON-safe


def test_comparison_without_pairs_or_seizures():
    empty = compare(pd.DataFrame(columns=list(_pairs([], [], [], []).columns)), 0.05)
    assert empty.champion is None and "no shipment" in empty.verdict
    none = compare(_pairs([0.2, 0.1], [0.1, 0.2], [True, True], [False, False]), 0.5)
    assert "no evidence" in none.verdict


def test_promotion_uses_the_shadow_evidence():
    ahead = compare(
        _pairs([0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [True, True, False], [False, True, False]),
        capacity=0.34,
    ).as_dict()
    assert ahead["challenger"]["seizures_within_capacity"] == 1
    passed, why = shadow_decision(ahead, 5, 4, "gate ok")
    assert passed and "shadow: 1 known seizures within capacity vs champion 0" in why
    behind = compare(
        _pairs([0.1, 0.9, 0.5], [0.9, 0.1, 0.5], [True, True, False], [False, True, False]),
        capacity=0.34,
    ).as_dict()
    passed, why = shadow_decision(behind, 5, 4, "gate ok")
    assert not passed and "the champion stays" in why
    with pytest.raises(CargoriskError, match="about version 5, not the candidate 6"):
        shadow_decision(ahead, 6, 4, "gate ok")
    with pytest.raises(CargoriskError, match="against version 4, not the champion 3"):
        shadow_decision(ahead, 5, 3, "gate ok")
    quiet = compare(_pairs([0.9], [0.1], [True], [False]), 0.5).as_dict()
    passed, why = shadow_decision(quiet, 5, 4, "gate ok")
    assert passed and "no seizure among the shipments both scored" in why


@pytest.mark.slow
def test_alias_set_and_cleared_in_the_registry_and_reload_follows(home, tmp_path, world):
    """The real registry (MLflow, SQLite-backed): `cargorisk shadow set` points the alias at a
    version, the service's loader finds it on reload, `clear` turns shadow scoring off."""
    from training import registry

    _ships, _outs, champion, challenger = world
    settings = load_settings()
    v1 = register_model(champion, settings.tracking_uri, settings.model_name, home / "a1")
    v2 = register_model(
        challenger, settings.tracking_uri, settings.model_name, home / "a2", champion=False
    )
    registry.configure(settings)
    loader = RegistryShadowLoader(settings)
    with pytest.raises(NoChallenger, match="@challenger"):
        loader.check()
    with pytest.raises(CargoriskError, match="is the champion"):
        registry.set_shadow(settings, int(v1))
    registry.set_shadow(settings, int(v2))
    assert registry.shadow_version(settings) == int(v2)
    loader.check()
    assert loader().version == v2

    eng = _engine(tmp_path, world, None)  # the registry loader of the settings
    try:
        assert eng.shadow.current is not None and eng.shadow.current.version == v2
        eng.score([_ship(1)], caller=SYSTEM)
        assert eng.shadow.wait_idle(30)
        assert eng.store.shadow_pairs()["challenger_version"].tolist() == [v2]
        assert registry.clear_shadow(settings) == int(v2)
        result = eng.reload(SYSTEM)
        assert result["shadow_version"] is None and "shadow scoring off" in result["shadow_message"]
        eng.score([_ship(2)], caller=SYSTEM)
        assert eng.shadow.wait_idle(30)
        assert len(eng.store.shadow_pairs()) == 1
        assert registry.clear_shadow(settings) is None
    finally:
        eng.store.close()
    np.testing.assert_allclose(
        registry.load_scoring_model(f"models:/{settings.model_name}/{v2}").booster.predict(
            np.zeros((1, len(challenger.feature_names)))
        ),
        challenger.booster.predict(np.zeros((1, len(challenger.feature_names)))),
    )


def test_store_keeps_shadow_scores_append_only(home, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        row = {
            "shipment_id": "X1",
            "shipment_version": 1,
            "request_id": "r1",
            "model_name": "m",
            "model_version": "2",
            "champion_version": "1",
            "score": 0.5,
            "raw_score": 0.0,
        }
        store.record_shadow_scores([row])
        store.record_shadow_scores([{**row, "request_id": "r2", "score": 0.6}])
        store.record_shadow_scores([])
        assert store.count("shadow_scores") == 2
    finally:
        store.close()


def test_model_page_shows_the_challenger_beside_the_champion(home, tmp_path, world):
    """The officer's model page: with a challenger, its counts, the verdict and the table;
    without one, how to set one."""
    import re

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from serving.ui.app import create_app

    _, _, _, challenger = world
    eng = _engine(tmp_path, world, lambda: _loaded(challenger, "2"))
    try:
        batch = [_ship(i, origin_country="EC" if i % 2 else "DE") for i in range(20)]
        eng.score(batch, caller=SYSTEM)
        assert eng.shadow.wait_idle(30)
        at = (NOW + dt.timedelta(days=1)).isoformat()
        eng.record_outcomes(
            [
                OutcomeIn(
                    **make_outcome(
                        b.shipment_id,
                        "seized" if i % 4 == 1 else "clean",
                        inspected_at=at,
                        result_at=at,
                    )
                )
                for i, b in enumerate(batch[:8])
            ],
            caller=OFFICER,
        )
        host = Starlette(routes=[Mount("/ui", app=create_app(lambda: eng))])
        with TestClient(host, base_url="http://testserver") as client:
            page = client.get("/ui/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            key = eng.store.create_key("Officer Kim", "officer")
            r = client.post(
                "/ui/login",
                data={"csrf": csrf, "method": "key", "api_key": key},
                follow_redirects=False,
            )
            assert r.status_code == 303
            page = client.get("/ui/model").text
            assert 'id="shadow-title"' in page
            assert "Version <strong>2</strong> scores every request" in page
            assert "20 shipments scored" in page
            assert 'id="shadow-table"' in page and "Challenger v2" in page
            verdict = re.search(r'id="shadow-verdict"><strong>(.*?)</strong>', page).group(1)
            assert verdict == html_escape(eng.shadow_comparison()["verdict"])
            eng.shadow.holder.current = None  # the alias removed and reloaded
            page = client.get("/ui/model").text
            assert "No challenger" in page and "cargorisk shadow set VERSION" in page
    finally:
        eng.store.close()


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
