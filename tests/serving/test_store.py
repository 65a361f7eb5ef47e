"""The serving store keeps contract records, the audit trail and hashed keys, durably."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from features.contracts import validate_outcomes, validate_shipments
from features.errors import CargoriskError
from serving.schemas import OutcomeIn, ShipmentIn, outcomes_frame, shipments_frame
from serving.store import Caller, Store, hash_key
from tests.serving.conftest import make_outcome, make_shipment

CALLER = Caller("gate-7", "system", 1)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def _score_rows(frame, band="low"):
    return [
        {"shipment_id": sid, "score": 0.1, "percentile": 50.0, "band": band, "reasons": []}
        for sid in frame["shipment_id"]
    ]


def test_sqlite_is_durable_wal_and_full_sync(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_scored_shipments_round_trip_as_contract_records(store):
    frame = shipments_frame([ShipmentIn(**make_shipment(i)) for i in range(3)])
    store.record_scoring(
        frame,
        _score_rows(frame),
        request_id="r1",
        caller=CALLER,
        model_name="m",
        model_version="4",
    )
    back = store.shipments_frame()
    pd.testing.assert_frame_equal(back, frame)
    pd.testing.assert_frame_equal(validate_shipments(back), frame)
    latest = store.latest_score("S0000001")
    assert latest["request_id"] == "r1" and latest["caller"] == "system:gate-7"
    assert latest["model_version"] == "4" and latest["reasons"] == []


def test_rescoring_keeps_one_shipment_record_and_every_score(store):
    frame = shipments_frame([ShipmentIn(**make_shipment(1))])
    for rid in ("a", "b"):
        store.record_scoring(
            frame,
            _score_rows(frame),
            request_id=rid,
            caller=CALLER,
            model_name="m",
            model_version="1",
        )
    amended = shipments_frame([ShipmentIn(**make_shipment(1, packages=7))])
    store.record_scoring(
        amended,
        _score_rows(amended, "high"),
        request_id="c",
        caller=CALLER,
        model_name="m",
        model_version="1",
    )
    assert store.count("shipments") == 1 and store.count("scores") == 3
    assert store.shipment("S0000001")["packages"] == 7
    assert store.latest_score("S0000001")["band"] == "high"


def test_outcomes_round_trip_and_resent_inspection_replaces(store):
    first = outcomes_frame([OutcomeIn(**make_outcome("S1", "clean"))])
    store.record_outcomes(first, request_id="o1", caller=CALLER)
    corrected = outcomes_frame([OutcomeIn(**make_outcome("S1", "seized"))])
    store.record_outcomes(corrected, request_id="o2", caller=CALLER)
    back = store.outcomes_frame()
    pd.testing.assert_frame_equal(back, validate_outcomes(back))
    assert back["result"].tolist() == ["seized"]


def test_failed_transaction_leaves_nothing(store):
    frame = shipments_frame([ShipmentIn(**make_shipment(1))])
    bad_rows = [{"shipment_id": "S0000001", "score": 0.1, "band": None}]  # band NOT NULL
    with pytest.raises(sa.exc.IntegrityError):
        store.record_scoring(
            frame, bad_rows, request_id="x", caller=CALLER, model_name="m", model_version="1"
        )
    assert store.count("shipments") == 0 and store.count("scores") == 0


def test_keys_are_stored_hashed_and_revocable(store):
    key = store.create_key("gate-7", "system")
    assert store.lookup_key(key) == Caller("gate-7", "system", 1)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("select key_hash from api_keys")).scalar()
    assert stored == hash_key(key) and key not in stored
    assert store.lookup_key(key + "x") is None
    assert store.revoke_key("gate-7") == 1
    assert store.lookup_key(key) is None
    assert [r["name"] for r in store.list_keys()] == ["gate-7"]


def test_unknown_role_is_refused(store):
    with pytest.raises(CargoriskError, match="role"):
        store.create_key("x", "superuser")


def test_datetime_column_text_is_sqlalchemys_own():
    """The column-wise SQLite datetime conversion writes exactly what SQLAlchemy would."""
    import datetime as dt

    from sqlalchemy.dialects import sqlite

    from serving.store import _DatetimeColumn

    proc = sa.DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    values = [
        dt.datetime(2026, 3, 1, 8, 0),
        None,
        dt.datetime(5, 1, 2, 3, 4, 5, 6),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC),  # aware: SQLAlchemy's own path
        dt.date(2026, 3, 1),
    ]
    assert _DatetimeColumn(proc).convert(values) == [None if v is None else proc(v) for v in values]
    same = dt.datetime(2026, 1, 1)
    assert _DatetimeColumn(proc).convert([same] * 3) == [proc(same)] * 3


def test_scoring_recorded_from_columns_equals_from_records(tmp_path):
    from features.contracts import SHIPMENT_COLUMNS, record_columns

    records = [ShipmentIn(**make_shipment(i)).model_dump() for i in range(4)]
    scores = [{"shipment_id": r["shipment_id"], "score": 0.5, "band": "low"} for r in records]
    stores = [Store(f"sqlite:///{tmp_path / name}.db") for name in ("rows", "columns")]
    caller = Caller("t", "system")
    given = (records, record_columns(records, SHIPMENT_COLUMNS))
    for store, shipments in zip(stores, given, strict=True):
        store.record_scoring(
            shipments, scores, request_id="r", caller=caller, model_name="m", model_version="1"
        )
    rows, cols = (
        s.shipments_frame().drop(columns=["received_at"], errors="ignore") for s in stores
    )
    pd.testing.assert_frame_equal(rows, cols)
    assert len(rows) == 4
