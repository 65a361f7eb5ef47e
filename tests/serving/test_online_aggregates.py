"""The online aggregates kept event by event (issue 15) in the real SQLite and the real
PostgreSQL: a snapshot as of ``A`` materialised, then every declaration and inspection report
between ``A`` and ``B`` applied through the store's deltas in time order, gives exactly the
tables of a fresh snapshot as of ``B``; re-applying an event changes nothing; a correction and
an amendment move what they move. Plus the row arithmetic on tiny hand-computed inputs."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features import engine, manifest, snapshot
from features.contracts import SHIPMENT_COLUMNS, frame_columns
from features.online import rows
from serving.store import Store, materialize, read_aggregates
from serving.store import online as store_online
from tests.features.helpers import random_world

SETTINGS = engine.EngineSettings(threads=1)
DAY = manifest.NS_PER_DAY


def ns(stamp) -> int:
    return int(pd.Timestamp(stamp).value)


def snap_of(shipments, outcomes, folder, as_of) -> snapshot.Snapshot:
    folder.mkdir(parents=True, exist_ok=True)
    shipments.to_parquet(folder / "s.parquet", index=False)
    outcomes.to_parquet(folder / "o.parquet", index=False)
    snapshot.write_snapshot(
        folder / "s.parquet", folder / "o.parquet", folder / "snap", as_of=as_of, settings=SETTINGS
    )
    return snapshot.read_snapshot(folder / "snap")


def canonical(snap: snapshot.Snapshot, as_of: int) -> dict[str, pd.DataFrame]:
    """Tables comparable across a fresh snapshot and a store kept up to date: day buckets a
    window as of ``as_of`` reaches (the store keeps older ones) and not empty, components by
    their members (ids differ: a snapshot numbers nodes, the store hashes new ones)."""
    spans = {d.name: max(snapshot.spans(d)) for d in engine.dimensions()}
    out = {}
    for table in ("key_totals", "key_pairs"):
        frame = snap.tables[table].sort_values(list(snapshot.TABLE_KEYS[table]))
        out[table] = frame.reset_index(drop=True)
    days = snap.tables["key_days"]
    since = days["dim"].map(lambda d: snapshot.history.window_start(as_of, spans[d]))
    days = days[days["day_start"].astype("int64") >= since]
    # a bucket whose events were all taken back (a corrected seizure) holds zeros: as absent
    counts = days[["shipments", "seizures"]].apply(pd.to_numeric).fillna(0)
    days = days[(counts != 0).any(axis=1)]
    out["key_days"] = days.sort_values(["dim", "key", "day_start"]).reset_index(drop=True)
    comps = snap.tables["key_components"].copy()
    members = comps.groupby("component")["key"].transform(
        lambda s: "|".join(sorted(comps.loc[s.index, "dim"] + ":" + s))
    )
    comps["component"] = members
    out["key_components"] = comps.sort_values(["dim", "key"]).reset_index(drop=True)
    return out


def assert_same(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    for table, a in expected.items():
        b = got[table]
        assert len(a) == len(b), f"{table}: {len(a)} rows expected, {len(b)} held"
        for column in a.columns:
            x, y = a[column], b[column]
            if column in ("dim", "key", "partner", "value", "component"):
                assert (x.to_numpy() == y.to_numpy()).all(), f"{table}.{column} differs"
                continue
            x, y = pd.to_numeric(x), pd.to_numeric(y)
            assert (x.isna().to_numpy() == y.isna().to_numpy()).all(), f"{table}.{column} NULLs"
            xs, ys = x.dropna().to_numpy(float), y.dropna().to_numpy(float)
            tol = 1e-9 if column == "value_sum" else 0.0
            bad = ~np.isclose(xs, ys, rtol=tol, atol=tol)
            assert not bad.any(), f"{table}.{column} differs at {np.flatnonzero(bad)[:5]}"


def replay(store: Store, shipments: pd.DataFrame, outcomes: pd.DataFrame, a: int, b: int):
    """Apply every declaration declared in ``[a, b)`` and every report known in ``[a, b)`` in
    time order (a manifest per declaration instant; reports before declarations at a tie, as
    "known strictly before")."""
    t = shipments["declared_at"].to_numpy("datetime64[ns]").astype("int64")
    declared = dict(zip(shipments["shipment_id"], shipments["declared_at"], strict=True))
    events = []
    for i in np.flatnonzero((t >= a) & (t < b)):
        events.append((int(t[i]), 1, "ship", i))
    known = np.maximum(
        outcomes["result_at"].to_numpy("datetime64[ns]").astype("int64"),
        outcomes["shipment_id"].map(lambda s: ns(declared[s])).to_numpy("int64"),
    )
    for j in np.flatnonzero((known >= a) & (known < b)):
        events.append((int(known[j]), 0, "report", j))
    events.sort(key=lambda e: (e[0], e[1], e[3]))
    by_id = shipments.set_index("shipment_id", drop=False)
    for when, _, kind, i in events:
        with store.engine.begin() as conn:
            if kind == "ship":
                ship = frame_columns(shipments.iloc[[i]], SHIPMENT_COLUMNS)
                store_online.add_declarations(conn, ship, [0], [1], {}, {}, {})
            else:
                report = outcomes.iloc[j := i].to_dict()
                sid = report["shipment_id"]
                decl = frame_columns(by_id.loc[[sid]], SHIPMENT_COLUMNS)
                store_online.add_reports(
                    conn,
                    [{**report, "revision": 1}],
                    [None],
                    {sid: {n: decl[n][0] for n in SHIPMENT_COLUMNS}},
                    {sid: declared[sid]},
                )
                del j
        assert when >= a


def test_kept_up_to_date_equals_a_fresh_snapshot(tmp_path, store_url):
    shipments, outcomes = random_world(500, days=30, seed=8, messy=True)
    outcomes = outcomes.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
    a, b = ns("2026-01-18 07:00"), ns("2026-02-01 00:00")
    start = snap_of(shipments, outcomes, tmp_path / "a", a)
    store = Store(store_url)
    try:
        materialize(store, tmp_path / "a" / "snap")
        replay(store, shipments, outcomes, a, b)
        fresh = snap_of(shipments, outcomes, tmp_path / "b", b)
        held = read_aggregates(store)
        assert_same(canonical(fresh, b), canonical(held, b))
        assert len(start.tables["key_totals"]) < len(fresh.tables["key_totals"])

        # the same events again: the ledger counts each once
        before = canonical(read_aggregates(store), b)
        replay(store, shipments, outcomes, a, b)
        assert_same(before, canonical(read_aggregates(store), b))
    finally:
        store.close()


# -- hand-computed -------------------------------------------------------------------------------
def prepared(*records: dict) -> dict:
    base = {"mode": "sea", "declared_at": pd.Timestamp("2026-03-02 10:00")}
    frame = pd.DataFrame([{**base, **r} for r in records])
    return manifest.prepare(frame, tuple_keys=True)


def test_deltas_of_a_tiny_manifest():
    p = prepared(
        {"shipment_id": "A", "consignee_id": "C1", "shipper_id": "S1", "origin_country": "EC",
         "transshipment_ports": "PAPTY|MXZLO", "declared_value_usd": 1000.0,
         "gross_weight_kg": 10.0, "hs_code": "080390", "goods_description": "fresh bananas"},
        {"shipment_id": "B", "consignee_id": "c1 ", "shipper_id": "S2", "origin_country": "EC",
         "declared_at": pd.Timestamp("2026-03-03 01:00")},
    )  # fmt: skip
    d = rows.shipment_deltas(p)
    c1 = d.totals[("consignee", "c1")]
    assert c1["shipments"] == 2 and c1["first_seen"] == ns("2026-03-02 10:00")
    assert c1["inspections"] == 0 and c1["value_sum"] is None  # defined / not defined
    assert d.days[("consignee", "c1", ns("2026-03-02"))]["shipments"] == 1
    assert d.days[("consignee", "c1", ns("2026-03-03"))]["shipments"] == 1
    assert d.totals[("port", "papty")]["shipments"] == 1
    assert ("shipper", "consignee", "s1", "c1") in d.pairs
    assert ("description", "word", "08", "bananas") in d.pairs
    # both pairs (c1, EC) are one pair: one distinct origin for c1
    new = [k for k in d.pairs if k[:3] == ("consignee", "origin", "c1")]
    assert rows.distinct_deltas(new).totals[("consignee", "c1")]["distinct_origin"] == 1

    # a seizure known on 2026-03-05 counted, then taken back: nothing left
    seized = rows.outcome_deltas(p, [ns("2026-03-05 12:00")] * 2, [True, False])
    assert seized.totals[("consignee", "c1")]["inspections"] == 2
    assert seized.totals[("consignee", "c1")]["seizures"] == 1
    assert seized.totals[("port", "mxzlo")]["seizures"] == 1
    assert seized.own == {"c1": 1}
    back = rows.outcome_deltas(p, [ns("2026-03-05 12:00")] * 2, [True, False], sign=-1)
    seized.add(back)
    assert all(v in (0, None) for row in seized.totals.values() for k, v in row.items()
               if k != "first_seen")  # fmt: skip
    assert seized.own == {"c1": 0}


def test_link_changes_merge_the_smaller_component():
    # held: c1 with phone p1 (component 7: 1 party, 2 seizures); c2 in component 9 with
    # another consignee (2 parties). X links c2 to p1: 7 (fewer parties) is relabelled 9
    nodes = {
        ("consignee", "c1"): (7, 1, 2),
        ("phone", "p1"): (7, 1, 2),
        ("consignee", "c2"): (9, 2, 0),
    }
    p = prepared(
        {"shipment_id": "X", "consignee_id": "C2", "consignee_phone": "p1"},
        {"shipment_id": "Y", "consignee_id": "C4", "consignee_phone": "p2"},
    )
    p1 = p["phone"][0]  # the phone as the features key it
    nodes = {(("phone", p1) if k == ("phone", "p1") else k): v for k, v in nodes.items()}
    changes = rows.link_changes(nodes, p)
    assert changes.relabel == {7: 9}  # the component with fewer parties goes
    assert changes.components[9] == (3, 2)
    p2 = p["phone"][1]
    new_comp = rows.component_id("consignee", "c4")
    assert changes.new_nodes[("consignee", "c4")] == changes.new_nodes[("phone", p2)]
    assert changes.components[changes.new_nodes[("consignee", "c4")]] == (1, 0)
    assert new_comp >= rows.NEW_COMPONENT_BASE


def test_a_result_known_later_than_now_counts_when_due(tmp_path, store_url):
    from features.contracts import validate_outcomes, validate_shipments
    from serving.store import Caller
    from serving.store.tables import pending_reports
    from tests.serving.conftest import make_outcome, make_shipment

    caller = Caller("gate", "system", 1)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    iso = lambda t: t.isoformat()  # noqa: E731
    ships = pd.DataFrame(
        [
            make_shipment(
                i,
                shipment_id=f"S{i}",
                consignee_id="C1",
                declared_at=iso(now - pd.Timedelta(hours=2)),
                booked_at=None,
                departed_at=None,
                arrival_at=None,
            )
            for i in (1, 2)
        ]
    )
    ships["declared_at"] = pd.to_datetime(ships["declared_at"])
    ships = validate_shipments(ships)

    def report(sid, result_at, result="seized"):
        out = make_outcome(sid, result, inspected_at=now - pd.Timedelta(hours=1),
                           result_at=result_at)  # fmt: skip
        return validate_outcomes(pd.DataFrame([out]))

    def c1():
        keys = rows.ManifestKeys(frozenset({("consignee", "c1")}), *(frozenset(),) * 3)
        row = store.aggregate_rows(keys)["key_totals"][0]
        return int(row["shipments"]), int(row["inspections"]), int(row["seizures"])

    store = Store(store_url)
    try:
        store.record_scoring(ships, [], request_id="r", caller=caller, model_name="m",
                             model_version="1", online=True)  # fmt: skip
        # a result known 3 minutes from now (a clock ahead): held, not counted
        store.record_outcomes(report("S1", now + pd.Timedelta(minutes=3)), request_id="o1",
                              caller=caller, online=True)  # fmt: skip
        # (never materialised: the rows are kept from the first event on all the same)
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(pending_reports)).scalar() == 1
            )
        assert c1() == (2, 0, 0)
        assert store.fold_due_reports(ns(now + pd.Timedelta(minutes=1))) == 0
        assert c1() == (2, 0, 0)
        assert store.fold_due_reports(ns(now + pd.Timedelta(minutes=4))) == 1
        assert c1() == (2, 1, 1)
        assert store.fold_due_reports(ns(now + pd.Timedelta(minutes=5))) == 0  # once

        # S2's result also arrives early, then is corrected before due: the held report is
        # dropped (never counted, so nothing taken back) and the correction counts at once
        store.record_outcomes(report("S2", now + pd.Timedelta(minutes=3)), request_id="o2",
                              caller=caller, online=True)  # fmt: skip
        store.record_outcomes(report("S2", now - pd.Timedelta(minutes=1), "clean"),
                              request_id="o3", caller=caller, corrections=["lab"],
                              may_correct=True, online=True)  # fmt: skip
        assert c1() == (2, 2, 1)
        assert store.fold_due_reports(ns(now + pd.Timedelta(minutes=10))) == 0
        assert c1() == (2, 2, 1)

        # a result held until a moment now past: the features' read counts it first (in
        # the read's round trip), once
        soon = pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(seconds=2)
        late = make_outcome("S1", "seized", inspected_at=now - pd.Timedelta(minutes=30),
                            result_at=soon)  # fmt: skip
        store.record_outcomes(validate_outcomes(pd.DataFrame([late])), request_id="o4",
                              caller=caller, online=True)  # fmt: skip
        assert c1() == (2, 2, 1)
        keys = rows.ManifestKeys(frozenset({("consignee", "c1")}), *(frozenset(),) * 3)
        time.sleep(max(0.0, (soon - pd.Timestamp.now(tz="UTC").tz_localize(None)).total_seconds())
                   + 0.2)  # fmt: skip
        row = store.aggregate_rows(keys, due_first=True)["key_totals"][0]
        assert (int(row["shipments"]), int(row["inspections"]), int(row["seizures"])) == (2, 3, 2)
        assert c1() == (2, 3, 2)
        assert store.fold_due_reports() == 0
    finally:
        store.close()


# -- the store's reads and writes in fewer statements --------------------------------------------
def test_window_segments_give_the_features_of_the_day_buckets(tmp_path, store_url):
    """The day buckets read summed between the window starts of the manifest's declaration
    times give the raw aggregates that reading every bucket gives, and the snapshot's own."""
    shipments, outcomes = random_world(400, days=30, seed=3, messy=True)
    outcomes = outcomes.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
    b = ns("2026-02-01 00:00")
    snap = snap_of(shipments, outcomes, tmp_path / "b", b)
    hours = [0, 0, 5, 27, 72]  # several instants, some on the same day
    probes = pd.concat(
        [
            shipments.iloc[i * 40 : (i + 1) * 40].assign(declared_at=pd.Timestamp(b + h * 3600e9))
            for i, h in enumerate(hours)
        ],
        ignore_index=True,
    )
    p = manifest.prepare(probes, tuple_keys=True)
    keys = rows.manifest_keys(p)
    assert len(keys.times) == 4
    since = snapshot.history.window_start(min(keys.times), snapshot.MAX_WINDOW_DAYS)
    store = Store(store_url)
    try:
        materialize(store, tmp_path / "b" / "snap")
        with store.engine.connect() as conn:
            segmented = store_online.fetch_rows(conn, keys, since)
            every = store_online.fetch_rows(conn, dataclasses.replace(keys, times=frozenset()),
                                            since)  # fmt: skip
    finally:
        store.close()
    assert 0 < len(segmented["key_days"]) < len(every["key_days"])
    got = snapshot.tables_raw(segmented, p)
    for expected in (snapshot.tables_raw(every, p), snapshot.tables_raw(snap.tables, p)):
        assert set(got) == set(expected)
        for name, values in expected.items():
            np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_one_shipment_is_prepared_from_its_fields_as_from_a_frame():
    """The commit prepares one shipment from its fields (not a frame): the same keys."""
    shipments, _ = random_world(60, days=10, seed=5, messy=True)
    columns = frame_columns(shipments, SHIPMENT_COLUMNS)
    for i in range(len(shipments)):
        one = {n: [columns[n][i]] for n in SHIPMENT_COLUMNS}
        fast = store_online._prepared(one)
        slow = manifest.prepare(store_online._frame(one), tuple_keys=True)
        assert set(fast) == set(slow)
        for name, values in slow.items():
            a, b = np.asarray(fast[name]), np.asarray(values)
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b, err_msg=name)
            else:
                assert a.tolist() == b.tolist(), name
