"""The aggregates as of now per key (features/snapshot.py): hand-computed values on a tiny
world, nothing known after ``as_of`` in them, and - the point of the snapshot - the raw
aggregates of a shipment declared at ``as_of`` computed from the snapshot alone equal those
of the offline pipeline and of the online rows kept up to date event by event
(:mod:`features.online.rows`' deltas). DuckDB against Spark is in
``test_snapshot_spark.py``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features import engine, history, manifest, network, snapshot
from features.errors import CargoriskError, ContractError
from features.online import rows as online_rows
from features.online.replay import replay
from features.pipeline import check_outcomes, check_shipments, outcome_events
from tests.features.helpers import (
    T0,
    make_outcomes,
    make_shipments,
    random_world,
)
from tests.features.test_engine import assert_same_raw, edge_world, write_by_month
from tests.features.test_history import boundary_world

SETTINGS = engine.EngineSettings(threads=1)
DAY = manifest.NS_PER_DAY


def ns(stamp) -> int:
    return int(pd.Timestamp(stamp).value)


def take(shipments: pd.DataFrame, outcomes: pd.DataFrame, tmp_path, as_of=None, name="snap"):
    """Write ``shipments`` / ``outcomes`` as Parquet, snapshot them with DuckDB, read it back."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shipments.to_parquet(tmp_path / f"{name}-s.parquet", index=False)
    outcomes.to_parquet(tmp_path / f"{name}-o.parquet", index=False)
    result = snapshot.write_snapshot(
        tmp_path / f"{name}-s.parquet",
        tmp_path / f"{name}-o.parquet",
        tmp_path / name,
        as_of=as_of,
        settings=SETTINGS,
    )
    return result, snapshot.read_snapshot(tmp_path / name)


def rows_of(snap: snapshot.Snapshot, table: str, dim: str, key: str | None = None) -> list[dict]:
    frame = snap.tables[table]
    frame = frame[frame["dim"] == dim]
    if key is not None:
        frame = frame[frame["key"] == key]
    return frame.drop(columns=["dim"]).to_dict("records")


# -- hand-computed --------------------------------------------------------------------------
def tiny_world():
    shipments = make_shipments(
        {"day": 0, "id": "A", "consignee_id": "C1", "shipper_id": "S1", "origin_country": "EC",
         "transshipment_ports": "PAPTY", "consignee_phone": "+1 555"},
        {"day": 2, "id": "B", "consignee_id": "c1 ", "shipper_id": "S2", "origin_country": "EC",
         "goods_description": "Plantains"},
        {"day": 9.5, "id": "C", "consignee_id": "C1", "shipper_id": "S1", "origin_country": "CO",
         "transshipment_ports": "PAPTY|MXZLO"},
        {"day": 9.9, "id": "D", "consignee_id": "C2", "shipper_id": "S1", "gross_weight_kg": 0,
         "consignee_phone": "1-555"},
        {"day": 11, "id": "G", "consignee_id": "C3", "consignee_phone": "1555"},  # future link
        {"day": 10, "id": "E", "consignee_id": "C1", "shipper_id": "S3"},  # at as_of: not in it
        {"day": 12, "id": "F", "consignee_id": "C9", "shipper_id": "S9"},  # after: not in it
    )  # fmt: skip
    outcomes = make_outcomes(
        ("A", 1, 3, "seized"),  # known at day 3
        ("B", 2, 9.75, "clean"),  # known at day 9.75
        ("C", 9.5, 10, "seized"),  # known exactly at as_of: not yet known
        ("D", 9.9, 11, "seized"),  # known after as_of: not in it
        ("F", 12, 13, "seized"),  # a future shipment's result
    )
    return shipments, outcomes


def test_hand_computed_snapshot_of_a_tiny_world(tmp_path):
    shipments, outcomes = tiny_world()
    as_of = ns(T0 + pd.Timedelta(days=10))
    result, snap = take(shipments, outcomes, tmp_path, as_of=as_of)
    assert result.as_of == snap.as_of == as_of

    # consignee c1: A (day 0), B (day 2), C (day 9.5); E at as_of is the future
    (c1,) = rows_of(snap, "key_totals", "consignee", "c1")
    assert c1["shipments"] == 3 and c1["first_seen"] == ns(T0)
    assert c1["inspections"] == 2 and c1["seizures"] == 1  # A seized, B clean; C not yet known
    assert c1["distinct_origin"] == 2 and c1["distinct_shipper"] == 2  # EC, CO; S1, S2
    assert pd.isna(c1["value_sum"]) and pd.isna(c1["distinct_consignee"])  # not defined
    assert {r["key"] for r in rows_of(snap, "key_totals", "consignee")} == {"c1", "c2"}

    # day buckets are UTC days (as_of is 2026-01-11 08:00): A on 01-01 08:00, B on 01-03
    # 08:00, C on 01-10 20:00; seizure windows are not kept for consignees
    days = {r["day_start"]: r for r in rows_of(snap, "key_days", "consignee", "c1")}
    assert sorted(days) == [ns("2026-01-01"), ns("2026-01-03"), ns("2026-01-10")]
    assert [days[d]["shipments"] for d in sorted(days)] == [1, 1, 1]
    assert all(pd.isna(r["seizures"]) for r in days.values())

    # loading port NLRTM (every shipment): A's seizure known on 01-04 08:00 is in its 90-day
    # bucket of that day
    (port,) = rows_of(snap, "key_totals", "loading_port", "nlrtm")
    assert port["inspections"] == 2 and port["seizures"] == 1 and port["shipments"] == 4
    (bucket,) = rows_of(snap, "key_days", "loading_port", "nlrtm")
    assert bucket["day_start"] == ns("2026-01-04") and bucket["seizures"] == 1
    assert pd.isna(bucket["shipments"])

    # the global key counts every known inspection once
    (everything,) = rows_of(snap, "key_totals", "global", snapshot.GLOBAL_KEY)
    assert everything["inspections"] == 2 and everything["seizures"] == 1

    # pairs: first time each (consignee, shipper) was declared
    pairs = {
        (r["partner"], r["value"]): r["first_seen"]
        for r in rows_of(snap, "key_pairs", "consignee", "c1")
    }
    assert pairs[("shipper", "s1")] == ns(T0) and pairs[("shipper", "s2")] == ns(T0) + 2 * DAY
    assert pairs[("origin", "co")] == ns(T0) + int(9.5 * DAY)
    assert ("shipper", "s3") not in pairs  # E is declared at as_of

    # value per kg of HS heading 0803: D has no weight, so 3 values counted
    (heading,) = rows_of(snap, "key_totals", "hs4", "0803")
    assert heading["value_count"] == 3
    assert heading["value_sum"] == pytest.approx(3 * np.log1p(2.0))

    # combination keys are their parts joined by the separator
    (pair,) = rows_of(snap, "key_totals", "shipper_consignee", f"s1{snapshot.SEPARATOR}c1")
    assert pair["shipments"] == 2
    # transshipment ports: A and C went through PAPTY, only A's seizure is known
    (panama,) = rows_of(snap, "key_totals", snapshot.PORT_DIM, "papty")
    assert panama["shipments"] == 2 and panama["inspections"] == 1 and panama["seizures"] == 1
    # description words per HS chapter: first declarations of "bananas" and "fresh" in 08
    words = {r["value"]: r["first_seen"] for r in rows_of(snap, "key_pairs", snapshot.WORDS_DIM)}
    assert words == {"bananas": ns(T0), "fresh": ns(T0), "plantains": ns(T0) + 2 * DAY}
    # the link graph: c1 and c2 share phone 1555 (C3 joins it only after as_of); one seizure
    # known in the network, c1's own
    nodes = {(r["dim"], r["key"]): r for r in snap.tables["key_components"].to_dict("records")}
    assert set(nodes) == {("consignee", "c1"), ("consignee", "c2"), ("phone", "1555")}
    assert len({r["component"] for r in nodes.values()}) == 1
    assert all(r["parties"] == 2 and r["seizures"] == 1 for r in nodes.values())
    assert nodes["consignee", "c1"]["own_seizures"] == 1
    assert nodes["consignee", "c2"]["own_seizures"] == 0
    meta = json.loads((tmp_path / "snap" / snapshot.SNAPSHOT_FILE).read_text())
    assert meta["as_of_ns"] == as_of and meta["rows"] == result.rows
    assert result.rows["key_totals"] == len(snap.tables["key_totals"])


def test_nothing_known_after_as_of_is_in_it(tmp_path):
    """Leakage: shipments declared and results known at or after as_of change nothing;
    scrambling the future changes nothing either."""
    shipments, outcomes = random_world(400, days=20, seed=5)
    as_of = ns(pd.Timestamp("2026-01-11 13:00"))
    _, full = take(shipments, outcomes, tmp_path, as_of=as_of, name="full")
    past = shipments[shipments["declared_at"] < pd.Timestamp(as_of)]
    known = np.maximum(
        outcomes["result_at"].to_numpy(dtype="datetime64[ns]").astype("int64"),
        outcomes["shipment_id"]
        .map(shipments.set_index("shipment_id")["declared_at"])
        .to_numpy(dtype="datetime64[ns]")
        .astype("int64"),
    )
    assert (known >= as_of).any() and (known < as_of).any()
    _, cut = take(past, outcomes[known < as_of], tmp_path, as_of=as_of, name="cut")
    future = shipments["declared_at"] >= pd.Timestamp(as_of)
    scrambled = shipments.copy()
    scrambled.loc[future, "consignee_id"] = (
        scrambled.loc[future, "consignee_id"].sample(frac=1.0, random_state=1).to_numpy()
    )
    flipped = outcomes.copy()
    flipped.loc[known >= as_of, "result"] = "seized"
    _, moved = take(scrambled, flipped, tmp_path, as_of=as_of, name="moved")
    for table in snapshot.TABLES:
        pd.testing.assert_frame_equal(full.tables[table], cut.tables[table])
        pd.testing.assert_frame_equal(full.tables[table], moved.tables[table])


# -- the snapshot gives what the offline pipeline and the online rows give -------------------
def probes_at(
    shipments: pd.DataFrame, as_of: int, n: int, seed: int, include: tuple[str, ...] = ()
) -> pd.DataFrame:
    """``n`` shipments declared at ``as_of`` with the keys of existing ones (known keys,
    keys seen only later, blank ones), a few wholly new parties, new description words and a
    new transshipment port; and after them copies of the shipments ``include`` (ids)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(shipments), n, replace=False).tolist()
    chosen += np.flatnonzero(shipments["shipment_id"].isin(include)).tolist()
    probes = shipments.iloc[chosen].copy()
    probes["shipment_id"] = [f"PROBE{i}" for i in range(len(probes))]
    probes["declared_at"] = pd.Timestamp(as_of)
    probes.iloc[:3, probes.columns.get_loc("consignee_id")] = ["NEW1", "NEW2", None]
    probes.iloc[3:5, probes.columns.get_loc("goods_description")] = "zebra quartz bananas"
    probes.iloc[5, probes.columns.get_loc("transshipment_ports")] = "ZZNEW"
    return probes.reset_index(drop=True)


def assert_snapshot_gives_the_pipelines_raw(
    shipments, outcomes, as_of, tmp_path, seed=0, include: tuple[str, ...] = ()
):
    probes = probes_at(shipments, as_of, 120, seed, include)
    world = pd.concat([shipments, probes], ignore_index=True)
    # the snapshot of the world with the probes in it (declared at as_of, so not counted)
    _, snap = take(world, outcomes, tmp_path, as_of=as_of)
    from_snapshot = snapshot.snapshot_raw(snap, manifest.prepare(probes, tuple_keys=True))

    # offline: the numpy executor over the whole world, read at the probes' rows
    s, o = check_shipments(world), check_outcomes(outcomes)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(o, s["shipment_id"], p["t"])
    offline, axis = history.offline_aggregates(p, rows, known, seized)
    offline |= history.multi_offline(p, axis, rows, known, seized, history.prior_rate(offline))
    offline |= network.offline_components(p, rows, known, seized)
    at = pd.Index(s["shipment_id"].astype(str)).get_indexer(probes["shipment_id"])
    assert (at >= 0).all()
    assert_same_raw({name: offline[name][at] for name in from_snapshot}, from_snapshot)

    # online: the rows kept up to date event by event from nothing (each declaration before
    # as_of counted in time order, each report once known before as_of), asked about the
    # probes: what the snapshot holds, the whole-network aggregates included
    before = shipments[shipments["declared_at"] < pd.Timestamp(as_of)]
    _, state = replay(before, outcomes, score=False)
    state.advance(as_of)
    p = manifest.prepare(probes, tuple_keys=True)
    online = online_rows.rows_raw(state.rows.rows(online_rows.manifest_keys(p)), p)
    assert_same_raw({name: online[name] for name in from_snapshot}, from_snapshot)
    return from_snapshot


def test_snapshot_raw_equals_offline_and_online_on_a_messy_world(tmp_path):
    shipments, outcomes = random_world(900, days=40, seed=21, messy=True)
    as_of = ns(pd.Timestamp("2026-01-27 05:30"))  # not midnight: today's bucket is partial
    raw = assert_snapshot_gives_the_pipelines_raw(shipments, outcomes, as_of, tmp_path)
    assert np.nanmax(raw["seiz:consignee"]) > 0 and np.nanmax(raw["n7:consignee"]) > 0
    assert np.isnan(raw["n:consignee"]).any()  # the blank consignee probe
    assert np.isfinite(raw["ports:max_rate"]).any() and np.isnan(raw["ports:max_rate"]).any()
    assert 0 < raw["desc:seen"].sum() < raw["desc:tokens"].sum()


def test_snapshot_raw_equals_offline_and_online_on_the_edge_world(tmp_path):
    shipments, outcomes = edge_world()
    # one report per inspection: a repeated (shipment, inspected_at) is a correction online
    # (the last report counts) but the first row offline - not the snapshot's question
    outcomes = outcomes.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
    # exactly 90 and 365 days after declarations and results of the edge world
    for day in (110, 270, 365):
        as_of = ns(T0 + pd.Timedelta(days=day))
        assert_snapshot_gives_the_pipelines_raw(
            shipments, outcomes, as_of, tmp_path / f"d{day}", seed=day
        )


def test_snapshot_raw_equals_offline_and_online_at_the_day_boundaries(tmp_path):
    """Day buckets against the windows of shipments at 00:00:00 and 23:59:59 of the days where
    7-day and 90-day windows start (events at those very instants: ``boundary_world``)."""
    edges, edge_outcomes = boundary_world()
    shipments, outcomes = random_world(400, days=100, seed=8)
    shipments = pd.concat([edges, shipments], ignore_index=True)
    outcomes = pd.concat([edge_outcomes, outcomes], ignore_index=True)
    for i, stamp in enumerate(("2026-01-21 00:00:00", "2026-01-20 23:59:59",
                               "2026-04-06 00:00:00", "2026-04-06 23:59:59")):  # fmt: skip
        raw = assert_snapshot_gives_the_pipelines_raw(
            shipments, outcomes, ns(stamp), tmp_path / f"b{i}", seed=i, include=("Q1", "P0")
        )
        # the last two probes: consignee W (7-day windows) and loading port BRSSZ (90 days)
        assert raw["n7:consignee"][-2] == (2 if i == 0 else 4 if i == 1 else 0)
        assert raw["seiz90:loading_port"][-1] == (2 if i < 2 else 1)


def test_snapshot_raw_equals_offline_and_online_on_a_simulated_world(tmp_path):
    from simulator.config import SimConfig
    from simulator.core import simulate

    sim = simulate(
        SimConfig(
            days=40,
            shipments_per_day=50,
            seed=3,
            end=pd.Timestamp("2026-06-01"),
            prevalence=0.05,
            inspection_capacity=0.25,
        )
    )
    as_of = ns(pd.Timestamp("2026-05-20"))
    raw = assert_snapshot_gives_the_pipelines_raw(sim.shipments, sim.outcomes, as_of, tmp_path)
    assert np.nanmax(raw["seiz:global"]) > 0


# -- reading month partitions, the default as_of, errors ----------------------------------------
def test_month_partitions_and_the_default_as_of(tmp_path):
    shipments, outcomes = tiny_world()
    result = snapshot.write_snapshot(
        write_by_month(shipments, tmp_path / "shipments", "declared_at"),
        write_by_month(outcomes, tmp_path / "outcomes", "result_at"),
        tmp_path / "snap",
        settings=SETTINGS,
    )
    # the midnight after the latest event (F's result, known on day 13 at 08:00)
    assert result.as_of == ns((T0 + pd.Timedelta(days=14)).normalize())
    snap = snapshot.read_snapshot(tmp_path / "snap")
    (c9,) = rows_of(snap, "key_totals", "consignee", "c9")
    assert c9["shipments"] == 1 and c9["seizures"] == 1
    assert (tmp_path / "snap" / "key_totals" / "dim=consignee").is_dir()


def test_errors_name_what_is_wrong(tmp_path):
    shipments, outcomes = tiny_world()
    result, snap = take(shipments, outcomes, tmp_path, as_of=ns(T0 + pd.Timedelta(days=10)))
    with pytest.raises(CargoriskError, match="--out"):
        snapshot.write_snapshot(tmp_path / "snap-s.parquet", None, result.out)
    with pytest.raises(CargoriskError, match="not a snapshot"):
        snapshot.read_snapshot(tmp_path)
    late = manifest.prepare(shipments.iloc[:1], tuple_keys=True)
    with pytest.raises(ContractError, match="declared_at"):
        snapshot.snapshot_raw(snap, late)
    with pytest.raises(ContractError, match="as_of"):
        snapshot.parse_as_of("yesterday-ish")
    assert snapshot.parse_as_of("2026-01-02T09:00+09:00") == ns("2026-01-02 00:00")


def test_the_definitions_transpile_to_spark():
    import sqlglot

    queries = snapshot.snapshot_queries(ns("2026-01-01"), dialect="spark")
    duck = snapshot.snapshot_queries(ns("2026-01-01"))
    assert [(t, d) for t, d, _ in queries] == [(t, d) for t, d, _ in duck]
    # the link graph's components are computed in Python after the queries
    assert {t for t, _, _ in queries} == set(snapshot.TABLES) - {"key_components"}
    for table, _, sql in queries:
        assert sqlglot.parse_one(sql, read="spark") is not None
        if table == "key_days":
            assert " DIV " in sql  # integer division of ns ages, not a float one


def linkgraph_components(con, as_of: int) -> dict:
    """The reference: the snapshot's components as the online state's union-find
    (:class:`features.network.LinkGraph`) joins them, link by link (what
    ``snapshot.components`` did before it used ``scipy.sparse.csgraph``)."""
    from features.network import IDENTIFIERS, LinkGraph

    declared = f"t < {as_of} AND k_consignee IS NOT NULL"
    query = f"SELECT DISTINCT k_consignee FROM keys WHERE {declared} ORDER BY 1"
    parties = [r[0] for r in con.execute(query).fetchall()]
    node = {("consignee", k): i for i, k in enumerate(parties)}
    links = []
    for ident in IDENTIFIERS:
        for consignee, value in con.execute(
            f"SELECT DISTINCT k_consignee, k_{ident} FROM keys WHERE {declared} "
            f"AND k_{ident} IS NOT NULL ORDER BY 1, 2"
        ).fetchall():
            links.append(
                (node[("consignee", consignee)], node.setdefault((ident, value), len(node)))
            )
    own = dict(con.execute(
        "SELECT k.k_consignee, COUNT(*) FROM outcomes AS o JOIN keys AS k ON o.row = k.row "
        f"WHERE o.known < {as_of} AND o.seized = 1 AND k.k_consignee IS NOT NULL GROUP BY 1"
    ).fetchall())  # fmt: skip
    graph = LinkGraph()
    graph.grow(len(node))
    for i, key in enumerate(parties):
        graph.add_shipment(i, (), True)
        for _ in range(int(own.get(key, 0))):
            graph.add_seizure(i)
    for consignee, target in links:
        graph.add_shipment(consignee, (target,), False)
    roots = [graph.find(i) for i in range(len(node))]
    smallest: dict[int, int] = {}
    for i, r in enumerate(roots):
        smallest.setdefault(r, i)
    return {
        (d, k): (smallest[roots[i]], graph.parties[roots[i]], graph.seizures[roots[i]],
                 graph.own[i] if d == "consignee" else None)
        for (d, k), i in node.items()
    }  # fmt: skip


@pytest.mark.parametrize("seed", [2, 5])
def test_components_equal_the_online_union_find(tmp_path, seed):
    """``key_components`` (connected components of the distinct links, scipy) equal the
    union-find of the online state fed the same links, node by node: component number,
    parties, seizures, own seizures - on a world whose phones, addresses and recipient codes
    join consignees into networks of hundreds, as of the end and as of a day in the middle."""
    from tests.features.test_network import network_world

    shipments, outcomes = network_world(2500, seed)
    shipments.to_parquet(tmp_path / "s.parquet", index=False)
    outcomes.to_parquet(tmp_path / "o.parquet", index=False)
    with engine.duckdb_connection(SETTINGS) as con:
        snapshot.load_keys(con, tmp_path / "s.parquet", tmp_path / "o.parquet")
        end = snapshot.default_as_of(con)
        for as_of in (end, end - 15 * DAY):
            expected = linkgraph_components(con, as_of)
            got = {}
            for dim, table in snapshot.components(con, as_of).items():
                for row in table.to_pylist():
                    got[(dim, row["key"])] = (row["component"], row["parties"], row["seizures"],
                                              row["own_seizures"])  # fmt: skip
            assert got == expected
            assert max(v[1] for v in got.values()) > 50  # real networks
            assert max(v[2] for v in got.values()) > 0
