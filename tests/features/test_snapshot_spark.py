"""Spark ``local[2]`` runs the snapshot's very SQL (transpiled by SQLGlot) and writes the same
tables as DuckDB."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from features import engine, snapshot
from tests.features.helpers import T0, random_world
from tests.features.test_engine import edge_world

pytestmark = [pytest.mark.slow, pytest.mark.spark]
pytest.importorskip("pyspark")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):  # the README asks for Java 17
    pytest.skip("no Java on this machine: Spark needs Java 17", allow_module_level=True)


def test_spark_writes_the_same_snapshot_as_duckdb(tmp_path):
    edge_shipments, edge_outcomes = edge_world()
    shipments, outcomes = random_world(400, days=20, seed=21, messy=True)
    shipments = pd.concat([edge_shipments, shipments], ignore_index=True)
    outcomes = pd.concat([edge_outcomes, outcomes], ignore_index=True)
    shipments.to_parquet(tmp_path / "s.parquet", index=False)
    outcomes.to_parquet(tmp_path / "o.parquet", index=False)
    as_of = int((T0 + pd.Timedelta(days=110, hours=5)).value)
    settings = engine.EngineSettings(threads=1, spark_master="local[2]")
    written = {}
    for name in ("duckdb", "spark"):
        written[name] = snapshot.write_snapshot(
            tmp_path / "s.parquet",
            tmp_path / "o.parquet",
            tmp_path / name,
            as_of=as_of,
            engine_name=name,
            settings=settings,
        )
    assert written["duckdb"].rows == written["spark"].rows
    assert all(rows > 0 for rows in written["spark"].rows.values())
    duck = snapshot.read_snapshot(tmp_path / "duckdb")
    spark = snapshot.read_snapshot(tmp_path / "spark")
    assert duck.as_of == spark.as_of == as_of
    for table in snapshot.TABLES:
        pd.testing.assert_frame_equal(
            duck.tables[table].reset_index(drop=True),
            spark.tables[table].reset_index(drop=True),
            check_dtype=False,
            rtol=1e-12,  # sums of log value per kg: the engines add in different orders
        )
