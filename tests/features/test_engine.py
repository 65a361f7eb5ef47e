"""The SQL engine (features/engine.py): its raw aggregates and feature frames equal the numpy
executor's on random, messy, simulated and hand-built edge-case worlds; its settings bound
DuckDB; its definitions transpile to Spark SQL."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from features import engine, history, manifest
from features.errors import ContractError
from features.pipeline import (
    build_training_frame,
    check_outcomes,
    check_shipments,
    outcome_events,
)
from tests.features.helpers import (
    ATTRIBUTES,
    assert_same_features,
    make_outcomes,
    make_shipments,
    random_world,
)


def both_raw(shipments: pd.DataFrame, outcomes: pd.DataFrame):
    """(numpy raw aggregates, DuckDB raw aggregates) of the same tables, the multi-valued
    keys' included (``ports:max_rate``, ``desc:seen``, ``desc:tokens``)."""
    s, o = check_shipments(shipments), check_outcomes(outcomes)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(o, s["shipment_id"], p["t"])
    numpy_raw, axis = history.offline_aggregates(p, rows, known, seized)
    prior = history.prior_rate(numpy_raw)
    numpy_raw |= history.multi_offline(p, axis, rows, known, seized, prior)
    sql_raw = engine.duckdb_aggregates(p, rows, known, seized, engine.EngineSettings(threads=1))
    return numpy_raw, sql_raw


MULTI_RAW = ("ports:max_rate", "desc:seen", "desc:tokens")


def assert_same_raw(numpy_raw: dict, sql_raw: dict) -> None:
    """Counts and times exactly equal; sums of log values per kg to float tolerance (numpy
    takes differences of running sums, DuckDB sums each frame: the last bits differ)."""
    assert set(numpy_raw) == set(sql_raw)
    problems = []
    for name, expected in numpy_raw.items():
        got = sql_raw[name]
        tol = 1e-9 if name.startswith("sum:") else 0.0
        ok = np.isclose(expected, got, rtol=tol, atol=tol, equal_nan=True)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            problems.append(f"{name} ({(~ok).sum()} rows, e.g. {expected[i]!r} vs {got[i]!r})")
    assert not problems, "raw aggregates differ: " + "; ".join(problems)


def assert_same_frames(shipments, outcomes, attributes=None) -> pd.DataFrame:
    pandas_frame = build_training_frame(shipments, outcomes, attributes=attributes)
    duck_frame = build_training_frame(shipments, outcomes, attributes=attributes, engine="duckdb")
    assert_same_features(pandas_frame, duck_frame)
    pd.testing.assert_index_equal(pandas_frame.index, duck_frame.index)
    return duck_frame


# -- parity with the numpy executor -------------------------------------------------------------
def test_raw_aggregates_and_features_equal_on_a_random_world():
    shipments, outcomes = random_world(600, days=20, seed=11)
    assert_same_raw(*both_raw(shipments, outcomes))
    assert_same_frames(shipments, outcomes)


def test_raw_aggregates_and_features_equal_on_a_messy_world_with_attributes():
    shipments, outcomes = random_world(900, days=20, seed=21, messy=True, attributes=True)
    assert shipments["consignee_id"].isna().any()
    assert_same_raw(*both_raw(shipments, outcomes))
    assert_same_frames(shipments, outcomes, attributes=ATTRIBUTES)


def test_features_equal_on_a_simulated_world():
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
    assert (sim.outcomes["result"] == "seized").sum() > 0
    assert_same_raw(*both_raw(sim.shipments, sim.outcomes))
    assert_same_frames(sim.shipments, sim.outcomes)


def edge_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-built edge cases: ties at one instant, results known exactly at a later
    declaration, results known before their own shipment, duplicate and orphan outcomes,
    blank parties, window starts exactly 7 / 30 / 365 / 90 days before, and one huge key
    ("TO ORDER") holding most shipments."""
    rows = [
        {"day": 0, "id": "A1", "consignee_id": "C1", "shipper_id": "S1"},
        {"day": 0, "id": "A2", "consignee_id": "C1", "shipper_id": "S2"},  # tie with A1
        {"day": 0, "id": "A3", "consignee_id": "c1 ", "shipper_id": "S1"},  # same key, tie
        {"day": 7, "id": "B1", "consignee_id": "C1", "shipper_id": "S1"},  # 7 days exactly
        {"day": 30, "id": "B2", "consignee_id": "C1", "shipper_id": "S3"},  # 30 days after A*
        {"day": 37, "id": "B3", "consignee_id": "C1", "origin_country": "EC"},
        {"day": 90, "id": "B4", "consignee_id": "C2", "loading_port": "ECGYE"},
        {"day": 365, "id": "B5", "consignee_id": "C1", "shipper_id": "S2"},  # 365 after A*
        {"day": 365, "id": "B6", "consignee_id": None, "shipper_id": "S1"},  # blank party
        {"day": 366, "id": "B7", "consignee_id": "   ", "shipper_id": None},  # blank both
        {"day": 400, "id": "B8", "consignee_id": "C1", "consignee_phone": "+1 555"},
        {"day": 400.5, "id": "B9", "consignee_id": "C3", "consignee_phone": "1-555"},
    ]
    # one huge key: a "TO ORDER" consignee on many shipments, several at the same instants
    rows += [
        {"day": 100 + (i // 3), "id": f"T{i}", "consignee_id": "TO ORDER",
         "shipper_id": f"X{i % 17}", "origin_country": ["CO", "EC", "PE"][i % 3]}
        for i in range(240)
    ]  # fmt: skip
    shipments = make_shipments(*rows)
    outcomes = make_outcomes(
        ("A1", 1, 7, "seized"),  # known exactly when B1 is declared: B1 must not see it
        ("A2", 1, 6.5, "clean"),  # known before B1
        ("A2", 1, 6.0, "seized"),  # same (shipment, inspected_at) again: ignored
        ("B3", 35, 36, "seized"),  # result before its own declaration: known at declaration
        ("B4", 90, 180, "seized"),  # 90-day seizure window of the loading port ends at 270
        ("B6", 366, 367, "seized"),  # a seizure on a shipment without consignee
        ("T5", 102, 110, "seized"),
        ("T7", 103, 110, "clean"),  # two results at one instant
        ("NOPE", 1, 2, "seized"),  # a shipment not in the table: ignored
        *((f"T{i}", 100 + i // 3, 130 + i // 3, "seized") for i in range(20, 200, 9)),
    )
    return shipments, outcomes


def test_raw_aggregates_and_features_equal_on_edge_cases():
    shipments, outcomes = edge_world()
    numpy_raw, sql_raw = both_raw(shipments, outcomes)
    assert_same_raw(numpy_raw, sql_raw)
    frame = assert_same_frames(shipments, outcomes).set_index("shipment_id")
    # the cases themselves, by hand
    assert frame.loc["A1", "consignee_shipments_total"] == 0  # ties do not see each other
    assert frame.loc["B1", "consignee_shipments_7d"] == 3  # day 0 is inside [t - 7d, t)
    assert frame.loc["B1", "consignee_seizures"] == 0  # known at B1's instant: not yet
    assert frame.loc["B2", "consignee_seizures"] == 1
    assert frame.loc["B2", "consignee_shipments_30d"] == 4  # A1-A3 at exactly 30 days, B1
    assert frame.loc["B3", "consignee_seizures"] == 1  # its own early result never counts
    assert frame.loc["B5", "consignee_seizures"] == 2
    assert np.isnan(frame.loc["B6", "consignee_shipments_total"])  # blank party: nobody
    assert np.isnan(frame.loc["B7", "shipper_shipments_total"])
    assert np.isnan(frame.loc["B7", "shipper_consignee_new_pair"])  # no pair to judge
    assert frame.loc["B9", "phone_other_consignees"] == 1  # C1 used the phone before
    assert frame.loc["T239", "consignee_shipments_total"] == 237  # huge key, last tie group
    assert frame.loc["T239", "consignee_distinct_origins"] == 3


def test_an_empty_table_and_no_outcomes_give_the_same_frame():
    shipments, outcomes = random_world(50, seed=3)
    assert_same_frames(shipments.iloc[:0], outcomes.iloc[:0])
    assert_same_frames(shipments, outcomes.iloc[:0])


def test_unknown_engine_is_named():
    shipments, outcomes = random_world(10, seed=1)
    with pytest.raises(ValueError, match="engine"):
        build_training_frame(shipments, outcomes, engine="polars")


# -- settings ---------------------------------------------------------------------------------
def test_settings_bound_duckdb_and_its_spill_directory_is_removed(tmp_path):
    settings = engine.EngineSettings(memory_limit="300MB", threads=1, temp_directory=tmp_path)
    with engine.duckdb_connection(settings) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    assert limit.replace(" ", "") in {"286.1MiB", "300.0MB"}
    assert int(threads) == 1
    assert os.path.dirname(spill) == str(tmp_path)
    assert order is False
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("threads", {"threads": 0}),
        ("memory_limit", {"memory_limit": " "}),
        ("spark_split_days", {"spark_split_days": -1}),
    ],
)
def test_bad_settings_are_named(field, kwargs):
    with pytest.raises(ValueError, match=field):
        engine.EngineSettings(**kwargs)


# -- one definition for every engine ----------------------------------------------------------
def test_every_raw_aggregate_is_defined_once_and_transpiles_to_spark_sql():
    import sqlglot

    names = []
    for dim in engine.dimensions():
        sql, outputs = engine.dimension_sql(dim)
        names += outputs
        spark, same_outputs = engine.dimension_sql(dim, dialect="spark")
        assert same_outputs == outputs
        # the frames survive transpilation: running sums over one window order (the key,
        # then the doubled event time); no offset frame (windows start at a midnight UTC)
        for frame in ("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
                      "PARTITION BY k ORDER BY t2"):  # fmt: skip
            assert spark.count(frame) == sql.count(frame), frame
        assert sql.count("PARTITION BY k ORDER BY t2") > 0
        assert "PRECEDING AND CURRENT ROW" not in sql.replace("UNBOUNDED PRECEDING", "")
        if dim.windows or dim.seizure_windows:  # the UTC day of an event: integer division
            assert " DIV " in spark and "//" in sql
        assert sqlglot.parse_one(spark, read="spark") is not None
    assert len(names) == len(set(names))


@pytest.mark.parametrize("split_days", [1, 7, 30])
def test_two_stage_running_sums_equal_the_one_stage_ones(split_days):
    """The running sums of a dimension cut into buckets of days (what Spark runs for the few
    huge keys of global, HS chapter and origin) equal the one-stage windows, dimension by
    dimension - every dimension the cut applies to, on the edge world (ties at one instant,
    results known exactly at a later declaration, a "TO ORDER" key) and a messy world."""
    edge_s, edge_o = edge_world()
    messy_s, messy_o = random_world(700, days=40, seed=9, messy=True)
    shipments = pd.concat([edge_s, messy_s], ignore_index=True)
    outcomes = pd.concat([edge_o, messy_o], ignore_index=True)
    s, o = check_shipments(shipments), check_outcomes(outcomes)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(o, s["shipment_id"], p["t"])
    split = [d for d in engine.dimensions() if not d.windows and not d.first]
    assert set(engine.SPLIT_DIMENSIONS) <= {d.name for d in split}
    with engine.duckdb_connection(engine.EngineSettings(threads=1)) as con:
        con.register("keys", engine.keys_table(p))
        con.register("outcomes", engine.outcomes_table(rows, known, seized))
        for dim in split:
            one, names = engine.dimension_sql(dim)
            two, same_names = engine.dimension_sql(dim, split_days=split_days)
            assert same_names == names and "GROUP BY k, b" in two
            expected = con.sql(one).df().sort_values("row").reset_index(drop=True)
            got = con.sql(two).df().sort_values("row").reset_index(drop=True)
            assert len(expected) > 0
            pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12,
                                          obj=dim.name)  # fmt: skip
    windowed = next(d for d in engine.dimensions() if d.windows)
    assert engine.dimension_sql(windowed, split_days=7) == engine.dimension_sql(windowed)
    assert "//" not in engine.dimension_sql(split[0], "spark", split_days=7)[0]


# -- Parquet read by DuckDB, never by pandas ----------------------------------------------------
def write_by_month(frame: pd.DataFrame, folder, time_column: str) -> str:
    """``frame`` as ``folder/month=YYYY-MM/part.parquet`` files; returns their glob."""
    months = frame[time_column].dt.strftime("%Y-%m")
    for month, part in frame.groupby(months, sort=True):
        out = folder / f"month={month}"
        out.mkdir(parents=True)
        part.to_parquet(out / "part.parquet", index=False)
    return str(folder / "month=*" / "*.parquet")


def assert_parquet_equals_numpy(shipments, outcomes, shipment_files, outcome_files):
    ids, t, sql_raw = engine.parquet_aggregates(
        shipment_files, outcome_files, engine.EngineSettings(threads=1)
    )
    numpy_raw = both_raw(shipments, outcomes)[0]
    order = pd.Index(shipments["shipment_id"].astype(str)).get_indexer(ids)
    assert (order >= 0).all() and len(order) == len(shipments)
    expected_t = shipments["declared_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
    assert (t == expected_t[order]).all() and (np.diff(t) >= 0).all()
    assert_same_raw({k: v[order] for k, v in numpy_raw.items()}, sql_raw)


def test_raw_aggregates_from_flat_parquet_files(tmp_path):
    shipments, outcomes = random_world(900, days=20, seed=21, messy=True, attributes=True)
    shipments.to_parquet(tmp_path / "shipments.parquet", index=False)
    outcomes.to_parquet(tmp_path / "outcomes.parquet", index=False)
    assert_parquet_equals_numpy(
        shipments, outcomes, tmp_path / "shipments.parquet", tmp_path / "outcomes.parquet"
    )


def test_raw_aggregates_from_month_partitioned_parquet_with_edge_cases(tmp_path):
    shipments, outcomes = edge_world()
    assert_parquet_equals_numpy(
        shipments,
        outcomes,
        write_by_month(shipments, tmp_path / "shipments", "declared_at"),
        write_by_month(outcomes, tmp_path / "outcomes", "result_at"),
    )


def test_aggregates_written_to_parquet_equal_the_returned_ones(tmp_path):
    shipments, outcomes = edge_world()
    ship_files = write_by_month(shipments, tmp_path / "shipments", "declared_at")
    outcome_files = write_by_month(outcomes, tmp_path / "outcomes", "result_at")
    settings = engine.EngineSettings(threads=1, memory_limit="256MB")
    ids, t, raw = engine.parquet_aggregates(ship_files, outcome_files, settings)
    files = engine.write_aggregates(ship_files, outcome_files, tmp_path / "out", settings)
    assert set(files) == {"shipments", *(d.name for d in engine.dimensions())}
    written = pd.read_parquet(files["shipments"]).sort_values("row")
    assert (written["row"].to_numpy() == np.arange(len(ids))).all()
    assert (written["shipment_id"].to_numpy() == ids).all() and (written["t"] == t).all()
    seen = set()
    for dim in engine.dimensions():
        part = pd.read_parquet(files[dim.name])
        rows = part["row"].to_numpy()
        for name in part.columns.drop("row"):
            seen.add(name)
            expected = raw[name]
            np.testing.assert_array_equal(part[name].to_numpy(), expected[rows], err_msg=name)
            rest = np.ones(len(ids), dtype=bool)
            rest[rows] = False
            assert np.isnan(expected[rest]).all(), f"{name}: a row without the key has a value"
    assert seen == set(raw) - set(MULTI_RAW)  # the multi-valued keys are finished in Python


def keys_of(files, text: bool) -> pd.DataFrame:
    """The ``keys`` relation :func:`engine.load_parquet` derives, in row order."""
    with engine.duckdb_connection(engine.EngineSettings(threads=1)) as con:
        engine.load_parquet(con, files, text=text)
        return con.sql("SELECT * FROM keys ORDER BY row").df()


def test_one_key_derivation_gives_codes_and_text_that_group_rows_alike(tmp_path):
    """The engine's integer codes and the snapshot's key text come from one derivation
    (engine.derive_keys): dimension by dimension they put the same shipments together, the
    same ones have no key, and the text of a row is its prepared key as the online state
    holds it (snapshot.key_text of ``prepare(..., tuple_keys=True)``)."""
    from features import snapshot

    shipments = pd.concat([random_world(400, days=20, seed=5, messy=True)[0],
                           edge_world()[0]], ignore_index=True)  # fmt: skip
    shipments.to_parquet(tmp_path / "s.parquet", index=False)
    codes = keys_of(tmp_path / "s.parquet", text=False)
    text = keys_of(tmp_path / "s.parquet", text=True)
    assert len(codes) == len(text) == len(shipments)
    np.testing.assert_array_equal(codes["t"], text["t"])
    np.testing.assert_array_equal(codes["lvk"].to_numpy(), text["lvk"].to_numpy())
    with engine.duckdb_connection(engine.EngineSettings(threads=1)) as con:
        engine.load_parquet(con, tmp_path / "s.parquet")
        ids = con.sql("SELECT shipment_id FROM ship ORDER BY row").df()["shipment_id"]
    keys_ids = pd.Index(shipments["shipment_id"].astype(str)).get_indexer(ids)
    prepared = manifest.prepare(check_shipments(shipments), tuple_keys=True)
    for dim in engine.key_columns():
        c, x = codes[f"k_{dim}"], text[f"k_{dim}"]
        assert (c.isna() == x.isna()).all(), dim
        declared = c.notna().to_numpy()
        pairs = pd.DataFrame({"c": c[declared].astype(str), "x": x[declared]}).drop_duplicates()
        assert pairs["c"].is_unique and pairs["x"].is_unique, f"{dim}: codes and text differ"
        online = [snapshot.key_text(v) for v in prepared[dim][keys_ids]]
        assert [None if pd.isna(v) else v for v in x] == online, dim
    assert set(text["k_global"]) == {snapshot.GLOBAL_KEY}


def test_parquet_contract_errors_are_named(tmp_path):
    shipments, outcomes = random_world(30, seed=2)
    shipments.drop(columns=["mode"]).to_parquet(tmp_path / "no_mode.parquet", index=False)
    with pytest.raises(ContractError, match="mode"):
        engine.parquet_aggregates(tmp_path / "no_mode.parquet")
    twice = pd.concat([shipments, shipments.iloc[:1]])
    twice.to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(ContractError, match="shipment_id repeated"):
        engine.parquet_aggregates(tmp_path / "twice.parquet")
    shipments.to_parquet(tmp_path / "s.parquet", index=False)
    outcomes.drop(columns=["result_at"]).to_parquet(tmp_path / "o.parquet", index=False)
    with pytest.raises(ContractError, match="result_at"):
        engine.parquet_aggregates(tmp_path / "s.parquet", tmp_path / "o.parquet")


def test_a_cluster_driver_does_not_inherit_panderas_loopback_address(monkeypatch):
    """pandera sets SPARK_LOCAL_IP=127.0.0.1 on import and keeps it; before a driver starts
    for a cluster the variables go back to what they were before pandera was imported."""
    import os

    from features.engine import driver_environment

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")  # what pandera leaves behind
    monkeypatch.setenv("PYARROW_IGNORE_TIMEZONE", "1")
    driver_environment({"SPARK_LOCAL_IP": None, "PYARROW_IGNORE_TIMEZONE": None})
    assert "SPARK_LOCAL_IP" not in os.environ and "PYARROW_IGNORE_TIMEZONE" not in os.environ
    driver_environment({"SPARK_LOCAL_IP": "10.1.2.3"})  # the user's own value is kept
    assert os.environ["SPARK_LOCAL_IP"] == "10.1.2.3"
