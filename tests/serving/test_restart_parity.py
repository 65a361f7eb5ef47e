"""Finding 5 - the live feature state ignored a repeated shipment or outcome while the store kept
the last one, and a restart rebuilds the state from the store: a shipment re-declared with
another consignee and then seized counted the seizure on consignee A before a restart and on B
after it; a "seized" re-sent as "clean" counted before the restart and not after. Now both
apply the same rules (the history counts each shipment as first declared; the report in force
of each inspection counts), so a history built through the engine - amendments, corrections,
duplicates, late results - gives every shipment the same features before and after a
restart."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from common.settings import load_settings
from serving.engine import Conflict, ScoringEngine
from serving.schemas import OutcomeIn, ShipmentIn
from serving.store import Caller
from tests.serving.conftest import make_outcome, make_shipment
from tests.serving.helpers import started_engine, tiny_history, train_tiny_model

SYSTEM = Caller("gate-7", "system", 1)
OFFICER = Caller("kim", "officer", user_id=1)
T0 = dt.datetime(2026, 2, 5, 9, 0)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history(n=300)
    return ships, outs, train_tiny_model(ships, outs)


def _engine(settings, model) -> ScoringEngine:
    return started_engine(settings, model, T0)


def _ship(i: int, minutes: int, **kw) -> ShipmentIn:
    kw.setdefault("shipment_id", f"R{i:05d}")
    kw.setdefault("declared_at", (T0 + dt.timedelta(minutes=minutes)).isoformat())
    for name in ("booked_at", "departed_at", "arrival_at"):
        kw.setdefault(name, None)
    return ShipmentIn(**make_shipment(20_000 + i, **kw))


def _report(shipment_id: str, result: str, inspected: int, known: int, **kw) -> OutcomeIn:
    record = make_outcome(
        shipment_id,
        result,
        inspected_at=(T0 + dt.timedelta(hours=inspected)).isoformat(),
        result_at=(T0 + dt.timedelta(hours=known)).isoformat(),
        **kw,
    )
    return OutcomeIn(**record)


def _parties(engine: ScoringEngine) -> pd.DataFrame:
    """Features of a shipment of each consignee of the test, declared after everything."""
    frame = engine.store.shipments_frame().tail(5)
    names = ["CNS-A", "CNS-B", "CNS-C", "CNS-D", "CNS-E"]
    probe = frame.assign(
        shipment_id=[f"PARTY-{n}" for n in names],
        consignee_id=names,
        declared_at=frame["declared_at"].max() + pd.Timedelta(days=400),
    )
    return engine.features(probe).set_index("shipment_id")


def _every_feature(engine: ScoringEngine) -> pd.DataFrame:
    """Every stored shipment's features as of its own declaration, and as of a moment after
    everything (the same shipments declared again a year later under new ids): every count
    the history holds shows in one or the other."""
    current = engine.store.shipments_frame()
    later = current.assign(
        shipment_id=[f"LATER-{i}" for i in range(len(current))],
        declared_at=current["declared_at"].max() + pd.Timedelta(days=365),
        amendments_after_score=pd.array([pd.NA] * len(current), dtype="Int64"),
    )
    return pd.concat([engine.features(current), engine.features(later)], ignore_index=True)


def test_features_are_the_same_before_and_after_a_restart(home, world, tmp_path):
    ships, outs, model = world
    seed = tmp_path / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(serve_seed_data=seed, max_batch=100)
    engine = _engine(settings, model)
    try:
        # a manifest, single shipments, and parties shared with the seeded history
        engine.score([_ship(i, i, consignee_id=f"CNS{i % 3}") for i in range(12)], caller=SYSTEM)
        engine.score([_ship(20, 30, consignee_id="CNS-A")], caller=SYSTEM)
        engine.score([_ship(21, 31, consignee_id="CNS-A")], caller=SYSTEM)
        # the finding: re-declared with another consignee (and goods, and day), then seized
        amended = _ship(20, 24 * 60, consignee_id="CNS-B", goods_description="FRESH FRUIT")
        engine.score([amended], caller=SYSTEM)
        engine.score([amended], caller=SYSTEM)  # duplicate: an identical re-send
        # a manifest mixing an amendment, a re-send and new shipments
        engine.score(
            [
                _ship(21, 31, consignee_id="CNS-A", packages=999),
                _ship(3, 3, consignee_id="CNS0"),
                _ship(30, 40, consignee_id="CNS-B"),
                _ship(31, 41, consignee_id="CNS-C"),
            ],
            caller=SYSTEM,
        )
        engine.record_outcomes([_report("R00020", "seized", 26, 30)], caller=OFFICER)
        # the finding: a seizure re-sent as clean - refused, then corrected by an officer
        flipped = _report("R00021", "seized", 2, 4)
        engine.record_outcomes([flipped], caller=SYSTEM)
        with pytest.raises(Conflict):
            engine.record_outcomes([_report("R00021", "clean", 2, 4)], caller=SYSTEM)
        engine.record_outcomes(
            [_report("R00021", "clean", 2, 5, correction={"reason": "lab: flour"})],
            caller=OFFICER,
        )
        engine.record_outcomes([_report("R00021", "clean", 2, 5)], caller=SYSTEM)  # re-sent
        # late results (known weeks after the inspection), a correction of a seized one
        # into another seizure, and reports on seeded shipments
        engine.record_outcomes(
            [
                _report("R00001", "seized", 3, 24 * 40),
                _report("R00002", "clean", 3, 24 * 30),
                _report("R00030", "seized", 45, 50),
                _report(ships["shipment_id"].iloc[-1], "seized", 10, 20),
            ],
            caller=SYSTEM,
        )
        engine.record_outcomes(
            [_report("R00030", "seized", 45, 52, drug="heroin", correction={"reason": "lab"})],
            caller=OFFICER,
        )
        # seized first, amended to another consignee afterwards (twice)
        engine.record_outcomes([_report("R00031", "seized", 42, 43)], caller=SYSTEM)
        engine.score([_ship(31, 41, consignee_id="CNS-D")], caller=SYSTEM)
        engine.score([_ship(31, 41, consignee_id="CNS-E", packages=3)], caller=SYSTEM)
        before = _every_feature(engine)
        parties_before = _parties(engine)
        reports = engine.store.outcome_reports("R00021")
        assert [r["result"] for r in reports] == ["seized", "clean"]
        assert engine.store.shipment("R00020")["consignee_id"] == "CNS-B"
    finally:
        engine.store.close()

    restarted = _engine(settings, model)
    try:
        after = _every_feature(restarted)
        parties_after = _parties(restarted)
    finally:
        restarted.store.close()
    assert len(before) == 2 * (len(ships) + 16)
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(parties_before, parties_after)
    # the finding's case: declared for CNS-A, amended to CNS-B, seized: the seizure is on
    # CNS-B (in force), the declaration still counts for CNS-A; R00031 (seized, then amended
    # via CNS-D to CNS-E) puts its seizure on CNS-E
    seizures = parties_before["consignee_seizures"].to_dict()
    assert seizures == {
        "PARTY-CNS-A": 0.0,
        "PARTY-CNS-B": 2.0,  # R00020, and R00030 (declared for CNS-B)
        "PARTY-CNS-C": 0.0,
        "PARTY-CNS-D": 0.0,
        "PARTY-CNS-E": 1.0,
    }
    assert parties_before.loc["PARTY-CNS-A", "consignee_shipments_total"] == 2.0
    own = before.set_index("shipment_id")
    assert own.loc["R00020", "declaration_amendments"] == 1  # its own score: version in force
    assert own.loc["R00021", "declaration_amendments"] == 1
    assert own.loc["R00001", "declaration_amendments"] == 0
    assert before["consignee_seizures"].sum() > 0
