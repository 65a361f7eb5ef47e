"""Edge cases of the online aggregates kept in the store (issue 15, ``online_state: store``),
each checked against hand-computed features and a fresh materialisation of the store's own
history (:func:`serving.store.aggregates.materialize_history`), in the real SQLite and the
real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from common.settings import load_settings
from features.contracts import validate_shipments
from serving.engine import ScoringEngine
from serving.schemas import OutcomeIn, ShipmentIn
from serving.store import Caller, read_aggregates
from serving.store.aggregates import materialize_history
from tests.serving.conftest import make_shipment
from tests.serving.helpers import started_engine, tiny_history, train_tiny_model
from tests.serving.test_online_aggregates import assert_same, canonical

pytestmark = pytest.mark.slow

SYSTEM = Caller("gate-7", "system", 1)
T0 = dt.datetime(2026, 2, 5, 9, 0)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history(n=120, days=10, seed=5)
    return ships, outs, train_tiny_model(ships, outs)


def _engine(settings, model) -> ScoringEngine:
    return started_engine(settings, model, T0)


def _ship(i: int, when: pd.Timestamp, **fields) -> dict:
    return make_shipment(
        9_000 + i,
        declared_at=when.isoformat(),
        booked_at=None,
        departed_at=None,
        arrival_at=None,
        consignee_address=f"Unique street {i}",
        **fields,
    )


def _features(engine: ScoringEngine, record: dict) -> pd.Series:
    frame = validate_shipments(pd.DataFrame([record]).assign(
        declared_at=lambda f: pd.to_datetime(f["declared_at"])))  # fmt: skip
    return engine.features(frame).iloc[0]


def _same_as_fresh(engine: ScoringEngine, as_of: int) -> None:
    kept = canonical(read_aggregates(engine.store), as_of)
    materialize_history(engine.store)
    assert_same(canonical(read_aggregates(engine.store), as_of), kept)


def test_a_seizure_amended_onto_a_consignee_never_declared(home, world, tmp_path, store_url):
    """A seizure on a shipment whose consignee is amended to one never declared before is
    that consignee's: its own (``consignee_seizures``) and its network's once it links to
    others - the store used to lose it from the link graph (an UPDATE of a row that did not
    exist), which the memory state counted."""
    ships, outs, model = world
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    ships.to_parquet(seed_dir / "shipments.parquet")
    outs.to_parquet(seed_dir / "outcomes.parquet")
    settings = load_settings(store_url=store_url, online_state="store", serve_seed_data=seed_dir,
                             drift_refresh_minutes=0)  # fmt: skip
    engine = _engine(settings, model)
    try:
        later = (ships["declared_at"].max() + pd.Timedelta(days=2)).floor("h")
        first = _ship(1, later, shipment_id="AM-1", consignee_id="CNS-FIRST",
                      consignee_phone="+1 555 0001")  # fmt: skip
        engine.score([ShipmentIn(**first)], caller=SYSTEM)
        report = {
            "shipment_id": "AM-1",
            "inspected_at": (later + pd.Timedelta(hours=5)).isoformat(),
            "result_at": (later + pd.Timedelta(hours=9)).isoformat(),
            "result": "seized",
            "drug": "cocaine",
            "quantity_kg": 3.0,
            "method": "physical",
            "selected_by": "model",
        }
        engine.record_outcomes([OutcomeIn(**report)], caller=SYSTEM)
        # the amendment names a consignee the store has never seen declared
        engine.score([ShipmentIn(**{**first, "consignee_id": "CNS-NEVER"})], caller=SYSTEM)

        day = pd.Timedelta(days=1)
        as_of = int(max(later + 2 * day, outs["result_at"].max()).value) + 1
        _same_as_fresh(engine, as_of)  # the seizure on a node that is not a party yet

        never = _features(
            engine,
            _ship(
                2,
                later + day,
                shipment_id="P-1",
                consignee_id="CNS-NEVER",
                consignee_phone="+1 555 0009",
            ),
        )
        assert never["consignee_seizures"] == 1.0
        assert (never["network_size"], never["network_seizures"]) == (1.0, 0.0)  # own excluded
        was = _features(
            engine,
            _ship(
                3,
                later + day,
                shipment_id="P-2",
                consignee_id="CNS-FIRST",
                consignee_phone="+1 555 0001",
            ),
        )
        assert was["consignee_seizures"] == 0.0 and was["network_seizures"] == 0.0

        # the consignee declares for the first time, with a phone; then another consignee
        # declares that phone: the seizure is in its network
        second = _ship(4, later + day, shipment_id="AM-2", consignee_id="CNS-NEVER",
                       consignee_phone="+1 555 0009")  # fmt: skip
        engine.score([ShipmentIn(**second)], caller=SYSTEM)
        other = _features(
            engine,
            _ship(
                5,
                later + 2 * day,
                shipment_id="P-3",
                consignee_id="CNS-OTHER",
                consignee_phone="+1 555 0009",
            ),
        )
        assert other["network_size"] == 2.0  # CNS-NEVER (a party now) and CNS-OTHER
        assert other["network_seizures"] == 1.0
        assert other["phone_other_consignees"] == 1.0
        again = _features(
            engine,
            _ship(
                6,
                later + 2 * day,
                shipment_id="P-4",
                consignee_id="CNS-NEVER",
                consignee_phone="+1 555 0009",
            ),
        )
        assert (again["network_size"], again["network_seizures"]) == (1.0, 0.0)
        _same_as_fresh(engine, as_of)
    finally:
        engine.store.close()
