"""Spark ``local[2]`` runs the very SQL definitions DuckDB runs (transpiled by SQLGlot) and
gives the same features, feature by feature, as DuckDB and the numpy executor."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from features import engine
from features.pipeline import build_training_frame
from tests.features.helpers import assert_same_features, random_world
from tests.features.test_engine import edge_world
from tests.features.test_history import boundary_world

pytestmark = [pytest.mark.slow, pytest.mark.spark]
pytest.importorskip("pyspark")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):  # the README asks for Java 17
    pytest.skip("no Java on this machine: Spark needs Java 17", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
    with engine.spark_session("local[2]") as session:
        yield session


def test_spark_gives_the_same_features_as_duckdb_and_numpy(spark):
    edge_shipments, edge_outcomes = edge_world()
    day_shipments, day_outcomes = boundary_world()  # events at 00:00:00 and 23:59:59
    shipments, outcomes = random_world(400, days=20, seed=21, messy=True)
    ids = [set(f["shipment_id"]) for f in (edge_shipments, day_shipments, shipments)]
    assert sum(map(len, ids)) == len(set().union(*ids))
    shipments = pd.concat([edge_shipments, day_shipments, shipments], ignore_index=True)
    outcomes = pd.concat([edge_outcomes, day_outcomes, outcomes], ignore_index=True)
    settings = engine.EngineSettings(threads=1, spark_master="local[2]")
    on_spark = build_training_frame(shipments, outcomes, engine="spark", engine_settings=settings)
    on_duckdb = build_training_frame(shipments, outcomes, engine="duckdb", engine_settings=settings)
    assert_same_features(on_duckdb, on_spark)
    assert_same_features(build_training_frame(shipments, outcomes), on_spark)
    assert on_spark["consignee_seizures"].max() > 0  # the world has known seizures


def test_spark_gives_the_multi_valued_keys_of_duckdb_and_numpy(spark):
    """Transshipment ports (``ports:max_rate``) and description words (``desc:seen``,
    ``desc:tokens``) exploded into one row per item and counted by the same SQL on both
    engines, equal to the numpy executor's."""
    import numpy as np

    from features import manifest
    from features.pipeline import check_outcomes, check_shipments, outcome_events
    from tests.features.test_engine import MULTI_RAW, both_raw

    shipments, outcomes = random_world(500, days=20, seed=7, messy=True)
    numpy_raw, duck_raw = both_raw(shipments, outcomes)
    s = check_shipments(shipments)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(check_outcomes(outcomes), s["shipment_id"], p["t"])
    spark_raw = engine.spark_aggregates(
        p, rows, known, seized, engine.EngineSettings(spark_master="local[2]")
    )
    assert np.isfinite(numpy_raw["ports:max_rate"]).sum() > 100
    assert (numpy_raw["desc:seen"] > 0).sum() > 100
    for name in MULTI_RAW:
        np.testing.assert_array_equal(duck_raw[name], numpy_raw[name], err_msg=name)
        np.testing.assert_array_equal(spark_raw[name], numpy_raw[name], err_msg=name)
