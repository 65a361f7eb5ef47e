"""Parity of the service's features with the offline engine (issue 15): a world replayed
through a real engine - features from the online aggregates in the store, no history in the
process - in declaration order, a manifest per request, inspection reports posted once known,
with re-sends, an amendment and a correction on the way. Every shipment scored gets the
features and raw aggregates the offline engine (DuckDB, :mod:`features.engine`) computes for it
as of its own declaration from the same history (windows on the UTC-day grid in both); the
store's aggregates, and what an officer sees of a party, equal those of a fresh
materialisation of the store's own history; a re-sent request or report counts once. Real
SQLite and real PostgreSQL (a database of its own)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from common.settings import load_settings
from features import manifest, network
from features.engine import EngineSettings, duckdb_aggregates
from features.online import rows as online_rows
from features.pipeline import build_training_frame, check_outcomes, check_shipments, outcome_events
from features.snapshot import TABLE_COLUMNS
from serving.engine import Conflict, ScoringEngine
from serving.model import LoadedModel
from serving.schemas import OutcomeIn, ShipmentIn
from serving.store import Caller, read_aggregates
from serving.store.aggregates import materialize_history
from tests.processes import postgres_database
from tests.serving.helpers import started_engine, tiny_history, train_tiny_model
from tests.serving.test_online_aggregates import assert_same, canonical

SYSTEM = Caller("gate-7", "system", 1)
OFFICER = Caller("kim", "officer", user_id=1)
T0 = dt.datetime(2026, 2, 5, 9, 0)


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history(n=360, days=40, seed=4)
    return ships, outs, train_tiny_model(ships, outs)


def _engine(settings, model) -> ScoringEngine:
    return started_engine(settings, model, T0)


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict("records"):
        rec = {}
        for k, v in row.items():
            if k == "amendments_after_score":
                continue
            if isinstance(v, pd.Timestamp):
                v = v.isoformat()
            elif v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                v = None
            rec[k] = v
        out.append(rec)
    return out


def _ships(frame: pd.DataFrame) -> list[ShipmentIn]:
    return [ShipmentIn(**r) for r in _records(frame)]


def _reports(frame: pd.DataFrame, **extra) -> list[OutcomeIn]:
    return [OutcomeIn(**{**r, **extra}) for r in _records(frame)]


class RawLog:
    """The raw aggregates the engine computed from the store's rows (``tables_raw``), by
    shipment id, as each was first scored."""

    def __init__(self, monkeypatch):
        self.store: dict[str, dict[str, float]] = {}
        original_rows = online_rows.tables_raw

        def rows_raw(tables, p):
            raw = original_rows(tables, p)
            for i, sid in enumerate(p["shipment_id"].tolist()):
                self.store.setdefault(
                    str(sid), {name: float(values[i]) for name, values in raw.items()}
                )
            return raw

        monkeypatch.setattr(online_rows, "tables_raw", rows_raw)


def offline(ships: pd.DataFrame, outs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The offline engine's features of every shipment as of its own declaration (DuckDB, one
    thread) and its raw aggregates by shipment id: only declarations strictly before and
    results known strictly before count, as for a shipment scored when declared."""
    settings = EngineSettings(threads=1)
    frame = build_training_frame(ships, outs, engine="duckdb", engine_settings=settings)
    s, o = check_shipments(ships), check_outcomes(outs)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(o, s["shipment_id"], p["t"])
    raw = duckdb_aggregates(p, rows, known, seized, settings)
    raw.update(network.offline_components(p, rows, known, seized))
    ids = s["shipment_id"].astype(str).tolist()
    by_id = {sid: {n: float(v[i]) for n, v in raw.items()} for i, sid in enumerate(ids)}
    return frame, by_id


def expected_profile(ships: pd.DataFrame, reports: pd.DataFrame, role: str, key: str) -> dict:
    """A party's counts straight from the records (keys normalised as the features key them):
    its first declaration, shipments, inspections and seizures, and distinct counterparties,
    origins and HS chapters."""
    from features.history import COUNTERPARTY

    p = manifest.prepare(ships)
    mine = p[role] == key
    theirs = reports[reports["shipment_id"].isin(ships.loc[mine, "shipment_id"])]

    def distinct(values: np.ndarray) -> int:
        return len({v for v in values[mine] if v is not None})

    return {
        "first_seen": ships.loc[mine, "declared_at"].min(),
        "shipments": int(mine.sum()),
        "inspections": len(theirs),
        "seizures": int((theirs["result"] == "seized").sum()),
        "distinct_counterparties": distinct(p[COUNTERPARTY[role]]),
        "distinct_origins": distinct(p["origin"]),
        "distinct_hs_chapters": distinct(p["hs2"]),
    }


def _split(ships, outs, a):
    """Seed: declared before ``a`` and the reports known before it; the rest is replayed,
    in manifests of up to 6 shipments sharing their first one's declaration time."""
    ships = ships.sort_values("declared_at").reset_index(drop=True)
    seed = ships[ships["declared_at"] < a]
    rest = ships[ships["declared_at"] >= a].copy()
    group = np.arange(len(rest)) // 6
    rest["declared_at"] = rest.groupby(group)["declared_at"].transform("min").to_numpy()
    rest["manifest"] = group
    declared = pd.concat([seed, rest])[["shipment_id", "declared_at"]]
    outs = outs.merge(declared, on="shipment_id")
    outs["known"] = outs[["result_at", "declared_at"]].max(axis=1)
    outs = outs.drop(columns=["declared_at"])
    return seed, rest, outs


def test_store_features_equal_the_offline_engine(home, world, tmp_path, store_url, monkeypatch):
    ships, outs, model = world
    a = ships["declared_at"].min() + pd.Timedelta(days=25)
    seed, rest, outs = _split(ships, outs, a)
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    seed.to_parquet(seed_dir / "shipments.parquet")
    known_first = outs[outs["known"] < a].drop(columns=["known"])
    known_first.to_parquet(seed_dir / "outcomes.parquet")
    log = RawLog(monkeypatch)

    settings = load_settings(store_url=store_url, serve_seed_data=seed_dir, max_batch=100,
                             drift_refresh_minutes=0)  # fmt: skip
    store = _engine(settings, model)
    assert store.store.aggregates_loaded() and not hasattr(store, "state")
    try:
        pending = outs[outs["known"] >= a].sort_values("known")
        posted = [known_first]
        features = []
        for _, manifest_rows in rest.groupby("manifest"):
            t = manifest_rows["declared_at"].iloc[0]
            due = pending[pending["known"] < t]
            pending = pending[pending["known"] >= t]
            if len(due):
                store.record_outcomes(_reports(due.drop(columns=["known"])), caller=SYSTEM)
                posted.append(due.drop(columns=["known"]))
            frame = manifest_rows.drop(columns=["manifest"])
            features.append(store.features(frame))
            store.score(_ships(frame), caller=SYSTEM)

        # the same request and report again: nothing counts twice
        last = rest[rest["manifest"] == rest["manifest"].max()].drop(columns=["manifest"])
        before = canonical(read_aggregates(store.store), 0)
        store.score(_ships(last), caller=SYSTEM)
        if len(due):
            store.record_outcomes(_reports(due.drop(columns=["known"])), caller=SYSTEM)
        assert_same(before, canonical(read_aggregates(store.store), 0))

        # the offline engine over the same history: every shipment as of its declaration
        history = pd.concat([seed, rest.drop(columns=["manifest"])], ignore_index=True)
        want_all, want_raw = offline(history, outs.drop(columns=["known"]))
        want = want_all.iloc[len(seed) :].reset_index(drop=True)
        got = pd.concat(features, ignore_index=True)
        assert list(got.columns) == list(want.columns)
        assert got["shipment_id"].tolist() == want["shipment_id"].tolist()
        assert len(got) == len(rest) > 50
        differ = []
        for column in got.columns:
            if column in ("shipment_id", "declared_at"):
                continue
            x, y = got[column], want[column]
            if x.dtype == object or y.dtype == object:
                same = (x.fillna("<NA>").astype(str) == y.fillna("<NA>").astype(str)).all()
            else:
                same = np.allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=1e-9,
                                   equal_nan=True)  # fmt: skip
            if not same:
                differ.append(column)
        assert not differ, f"features differ between the store and the offline engine: {differ}"
        assert got["network_size"].max() > 1 and got["consignee_seizures"].max() > 0

        # the raw aggregates, window columns (UTC-day grid in both) included
        ids = rest["shipment_id"].tolist()
        for sid in ids:
            for n, x in log.store[sid].items():
                y = want_raw[sid][n]
                assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9), (
                    sid,
                    n,
                    x,
                    y,
                )
        assert max(log.store[sid]["n30:consignee"] for sid in ids) > 0
        assert max(log.store[sid]["seiz90:loading_port"] for sid in ids) > 0

        # what an officer sees of a party: the counts the records give ...
        reports = pd.concat(posted, ignore_index=True)
        records = [store.store.shipment(sid) for sid in ids[-12:]]
        seized = outs.loc[outs["result"] == "seized", "shipment_id"]
        consignees = ships.loc[ships["shipment_id"].isin(seized), "consignee_id"].unique()[:5]
        phone = manifest.prepare(seed.head(1), tuple_keys=True)["phone"][0]
        checked = 0
        for record in records:
            parties, _ = store.parties(record)
            for profile in parties:
                key = manifest.norm_text(profile["party_id"])
                expected = expected_profile(history, reports, profile["role"], key)
                assert {k: profile[k] for k in expected} == expected, profile
                checked += 1
        assert checked >= 24
        users = store.party_view("phone", phone, None)
        by_phone = manifest.prepare(history)["phone"] == phone
        assert {u["key"] for u in users["users"]} == {
            manifest.norm_text(c) for c in history.loc[by_phone, "consignee_id"].dropna()
        }
        assert len(users["users"]) > 5

        # ... and what a fresh materialisation of the store's history gives
        views = [store.parties(record) for record in records]
        around = [
            (store.network("consignee", manifest.norm_text(c)),
             store.party_view("consignee", manifest.norm_text(c), None))
            for c in consignees
        ]  # fmt: skip
        around_phone = store.network("phone", phone)
        as_of = int(max(history["declared_at"].max(), reports["result_at"].max()).value) + 1
        kept = canonical(read_aggregates(store.store), as_of)
        materialize_history(store.store)
        assert_same(canonical(read_aggregates(store.store), as_of), kept)
        assert [store.parties(record) for record in records] == views
        assert [
            (store.network("consignee", manifest.norm_text(c)),
             store.party_view("consignee", manifest.norm_text(c), None))
            for c in consignees
        ] == around  # fmt: skip
        assert store.network("phone", phone) == around_phone
        assert store.party_view("phone", phone, None) == users
    finally:
        store.store.close()


def test_amendments_corrections_and_a_fresh_materialisation(home, world, tmp_path, store_url):
    ships, outs, model = world
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    ships.to_parquet(seed_dir / "shipments.parquet")
    outs.to_parquet(seed_dir / "outcomes.parquet")
    settings = load_settings(store_url=store_url, serve_seed_data=seed_dir,
                             max_batch=100, drift_refresh_minutes=0)  # fmt: skip
    engine = _engine(settings, model)
    try:
        later = ships["declared_at"].max() + pd.Timedelta(days=2)
        fresh = ships.tail(4).assign(
            shipment_id=[f"N{i}" for i in range(4)],
            declared_at=later,
            booked_at=None,
            departed_at=None,
            arrival_at=None,
            consignee_id=["CNS-A", "CNS-A", "CNS-B", None],
        )
        engine.score(_ships(fresh), caller=SYSTEM)
        report = pd.DataFrame(
            [
                {
                    "shipment_id": "N0",
                    "inspected_at": later + pd.Timedelta(hours=5),
                    "result_at": later + pd.Timedelta(hours=9),
                    "result": "seized",
                    "drug": "cocaine",
                    "quantity_kg": 3.0,
                    "method": "physical",
                    "selected_by": "model",
                }
            ]
        )
        engine.record_outcomes(_reports(report), caller=SYSTEM)
        engine.record_outcomes(_reports(report), caller=SYSTEM)  # a re-send: counted once
        probe = fresh.head(1).assign(shipment_id="P", declared_at=later + pd.Timedelta(days=1))

        def seizures_of(consignee):
            frame = probe.assign(consignee_id=consignee)
            return float(engine.features(frame)["consignee_seizures"].iloc[0])

        assert (seizures_of("CNS-A"), seizures_of("CNS-B")) == (1.0, 0.0)
        # an amendment moves N0's seizure from CNS-A to CNS-B
        engine.score(_ships(fresh.head(1).assign(consignee_id="CNS-B")), caller=SYSTEM)
        assert (seizures_of("CNS-A"), seizures_of("CNS-B")) == (0.0, 1.0)
        # a correction: the seizure was a clean inspection after all
        corrected = report.assign(result="clean", drug=None, quantity_kg=None)
        engine.record_reports(
            _reports(corrected, correction={"reason": "lab: no narcotics"}), caller=OFFICER
        )
        assert (seizures_of("CNS-A"), seizures_of("CNS-B")) == (0.0, 0.0)
        insp = float(
            engine.features(probe.assign(consignee_id="CNS-B"))["consignee_inspected_share"].iloc[0]
        )
        assert insp > 0

        # what the store kept event by event = a fresh materialisation of its own history
        # (as of just after the latest event: the seed's last results come after ``later``)
        as_of = int(max(later, outs["result_at"].max()).value) + 1
        kept = canonical(read_aggregates(engine.store), as_of)
        materialize_history(engine.store)
        assert_same(canonical(read_aggregates(engine.store), as_of), kept)
    finally:
        engine.store.close()


def test_features_before_adding_a_manifest_do_not_see_it():
    # the same consignee twice in one manifest: neither sees the other
    p = manifest.prepare(
        pd.DataFrame(
            [
                {
                    "shipment_id": "A",
                    "mode": "sea",
                    "declared_at": pd.Timestamp("2026-03-01"),
                    "consignee_id": "C1",
                },
                {
                    "shipment_id": "B",
                    "mode": "sea",
                    "declared_at": pd.Timestamp("2026-03-01"),
                    "consignee_id": "C1",
                },
            ]
        ),
        tuple_keys=True,
    )
    empty = {t: pd.DataFrame(columns=["dim", *(c for c, _ in cols)])
             for t, cols in TABLE_COLUMNS.items()}  # fmt: skip
    raw = online_rows.rows_raw(empty, p)
    assert raw["n:consignee"].tolist() == [0.0, 0.0]
    # and with A's deltas applied by hand, B (declared after) would see one
    deltas = online_rows.shipment_deltas(p, rows=[0])
    assert deltas.totals[("consignee", "c1")]["shipments"] == 1


@pytest.mark.integration
def test_two_engines_on_one_postgresql_keep_exact_aggregates(home, world, tmp_path):
    """Two engines (as two workers or replicas would) on one PostgreSQL database score
    overlapping manifests and post reports at once, from threads: the aggregates end equal to
    a fresh materialisation of what the store holds (a sequential replay of it)."""
    import threading

    ships, outs, model = world
    ships = ships.sort_values("declared_at").reset_index(drop=True)
    seed = ships.head(150)
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    seed.to_parquet(seed_dir / "shipments.parquet")
    outs[outs["shipment_id"].isin(seed["shipment_id"])].to_parquet(seed_dir / "outcomes.parquet")
    rest = ships.iloc[150:]
    with postgres_database() as url:
        settings = load_settings(store_url=url, serve_seed_data=seed_dir,
                                 max_batch=100, drift_refresh_minutes=0)  # fmt: skip
        one = _engine(settings, model)
        two = _engine(settings, model)
        errors = []

        def work(engine, offset):
            try:
                for start in range(offset, len(rest), 10):  # overlapping windows of 15
                    chunk = rest.iloc[start : start + 15]
                    engine.score(_ships(chunk), caller=SYSTEM)
                    done = outs[outs["shipment_id"].isin(chunk["shipment_id"])]
                    if len(done):
                        try:
                            engine.record_outcomes(_reports(done), caller=SYSTEM)
                        except Conflict:  # the other stored the same reports at that moment:
                            engine.record_outcomes(_reports(done), caller=SYSTEM)  # as told
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(e, o)) for e, o in ((one, 0), (two, 5))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert not errors, errors
            assert one.store.count("shipments") == len(ships)
            as_of = int(max(ships["declared_at"].max(), outs["result_at"].max()).value) + 1
            kept = canonical(read_aggregates(one.store), as_of)
            materialize_history(one.store)
            assert_same(canonical(read_aggregates(one.store), as_of), kept)
        finally:
            one.store.close()
            two.store.close()


def test_workers_starting_together_seed_and_build_once(home, world, tmp_path, store_url):
    """Two engines (two workers of one service) start at the same moment on one EMPTY store
    with seed data: the start-up lock makes them take turns, so the history is copied in once,
    the aggregates are built once, and both become ready with the same features."""
    import threading

    ships, outs, model = world
    ships = ships.sort_values("declared_at").reset_index(drop=True)
    seed = ships.head(200)
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    seed.to_parquet(seed_dir / "shipments.parquet")
    outs[outs["shipment_id"].isin(seed["shipment_id"])].to_parquet(seed_dir / "outcomes.parquet")
    settings = load_settings(store_url=store_url, serve_seed_data=seed_dir,
                             drift_refresh_minutes=0)  # fmt: skip
    loaded = LoadedModel(model, "cargorisk-risk", "1", "models:/cargorisk-risk/1", T0)
    engines = [ScoringEngine(settings, model_loader=lambda: loaded) for _ in range(2)]
    barrier = threading.Barrier(2)

    def start(engine):
        barrier.wait()
        engine.start()

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for engine in engines:
            assert engine.ready, engine.status()
        assert engines[0].store.count("shipments") == len(seed)
        with engines[0].store.engine.connect() as conn:
            loads = conn.exec_driver_sql("SELECT COUNT(*) FROM aggregate_loads").scalar()
        assert loads == 1  # built by the first, found loaded by the second
        probe = ships.iloc[200:203]
        got = [e.features(probe.reset_index(drop=True)) for e in engines]
        pd.testing.assert_frame_equal(got[0], got[1])
    finally:
        for engine in engines:
            engine.store.close()
