"""The serving store keeps contract records, the audit trail and hashed keys, durably."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from features.contracts import validate_outcomes, validate_shipments
from features.errors import CargoriskError
from serving.schemas import OutcomeIn, ShipmentIn, outcomes_frame, shipments_frame
from serving.store import Caller, ReportConflict, Store, hash_key
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
    counted = frame.assign(amendments_after_score=pd.array([0, 0, 0], dtype="Int64"))  # none yet
    pd.testing.assert_frame_equal(back, counted)
    pd.testing.assert_frame_equal(validate_shipments(back), counted)
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
    # the re-send stored no version; the amendment is version 2, in force, and counted: it
    # changed the goods after a score
    versions = store.shipment_versions("S0000001")
    assert [(v["version"], v["changed"], v["amendments_after_score"]) for v in versions] == [
        (1, [], 0),
        (2, ["packages"], 1),
    ]
    assert versions[0]["packages"] != 7 and versions[1]["caller"] == CALLER.label
    assert store.shipment("S0000001")["version"] == 2
    assert store.latest_score("S0000001")["shipment_version"] == 2
    assert store.history_frame()["packages"].tolist() == [versions[0]["packages"]]


def test_outcome_reports_are_appended_and_the_latest_is_in_force(store):
    first = outcomes_frame([OutcomeIn(**make_outcome("S1", "clean"))])
    store.record_outcomes(first, request_id="o1", caller=CALLER)
    again = store.record_outcomes(first, request_id="o1b", caller=CALLER)
    assert again.unchanged == [0] and again.stored == []
    corrected = outcomes_frame([OutcomeIn(**make_outcome("S1", "seized"))])
    with pytest.raises(ReportConflict, match="already has a report") as refused:
        store.record_outcomes(corrected, request_id="o2", caller=CALLER)
    assert refused.value.conflicts[0][1]["result"] == "clean"
    with pytest.raises(ReportConflict):  # a reason without the authority
        store.record_outcomes(corrected, request_id="o2", caller=CALLER, corrections=["seen again"])
    done = store.record_outcomes(
        corrected, request_id="o3", caller=CALLER, corrections=["lab"], may_correct=True
    )
    assert done.corrected == [0]
    back = store.outcomes_frame()
    pd.testing.assert_frame_equal(back, validate_outcomes(back))
    assert back["result"].tolist() == ["seized"] and store.count("outcomes") == 1
    reports = store.outcome_reports("S1")
    assert [(r["revision"], r["result"], r["in_force"]) for r in reports] == [
        (1, "clean", False),
        (2, "seized", True),
    ]
    assert reports[1]["correction_reason"] == "lab" and reports[1]["request_id"] == "o3"


def test_a_store_with_overwritten_outcomes_is_migrated_to_reports(tmp_path):
    """Stores made before reports were append-only hold one row per inspection in
    ``outcomes``: on open they become revision 1 of their inspections."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE outcomes (seq INTEGER PRIMARY KEY, shipment_id TEXT, "
                "inspected_at DATETIME, result_at DATETIME, result TEXT, drug TEXT, "
                "quantity_kg FLOAT, method TEXT, selected_by TEXT, received_at DATETIME, "
                "caller TEXT, UNIQUE (shipment_id, inspected_at))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO outcomes VALUES (1, 'S1', '2026-03-02 10:00:00.000000', "
                "'2026-03-04 10:00:00.000000', 'seized', 'cocaine', 12.5, 'physical', "
                "'model', '2026-03-04 11:00:00.000000', 'officer:kim')"
            )
        )
    old.dispose()
    store = Store(url)
    try:
        [report] = store.outcome_reports("S1")
        assert report["revision"] == 1 and report["result"] == "seized"
        assert report["caller"] == "officer:kim"
        assert not sa.inspect(store.engine).has_table("outcomes")
        assert Store(url).count("outcomes") == 1  # opening again migrates nothing twice
    finally:
        store.close()


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

    from serving.store.rows import DatetimeColumn

    proc = sa.DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
    values = [
        dt.datetime(2026, 3, 1, 8, 0),
        None,
        dt.datetime(5, 1, 2, 3, 4, 5, 6),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC),  # aware: SQLAlchemy's own path
        dt.date(2026, 3, 1),
    ]
    assert DatetimeColumn(proc).convert(values) == [None if v is None else proc(v) for v in values]
    same = dt.datetime(2026, 1, 1)
    assert DatetimeColumn(proc).convert([same] * 3) == [proc(same)] * 3


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


def test_a_store_without_versions_is_migrated_to_version_one(tmp_path):
    """Stores made before declarations had versions hold the latest declaration only: on open
    it becomes version 1 (new columns added, nothing lost)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    frame = shipments_frame([ShipmentIn(**make_shipment(i)) for i in range(2)])
    store.record_scoring(
        frame, _score_rows(frame), request_id="r", caller=CALLER, model_name="m", model_version="1"
    )
    with store.engine.begin() as conn:  # what an earlier version's store looked like
        conn.execute(sa.text("DELETE FROM shipment_versions"))
        conn.execute(sa.text("UPDATE shipments SET version = NULL, amendments_after_score = NULL"))
    store.close()
    again = Store(url)
    try:
        assert [v["version"] for v in again.shipment_versions("S0000001")] == [1]
        assert again.shipment("S0000001")["version"] == 1
        assert len(again.history_frame()) == 2
    finally:
        again.close()
