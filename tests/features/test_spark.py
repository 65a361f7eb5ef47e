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
    shipments, outcomes = random_world(400, days=20, seed=21, messy=True)
    assert not set(edge_shipments["shipment_id"]) & set(shipments["shipment_id"])
    shipments = pd.concat([edge_shipments, shipments], ignore_index=True)
    outcomes = pd.concat([edge_outcomes, outcomes], ignore_index=True)
    settings = engine.EngineSettings(threads=1, spark_master="local[2]")
    on_spark = build_training_frame(shipments, outcomes, engine="spark", engine_settings=settings)
    on_duckdb = build_training_frame(shipments, outcomes, engine="duckdb", engine_settings=settings)
    assert_same_features(on_duckdb, on_spark)
    assert_same_features(build_training_frame(shipments, outcomes), on_spark)
    assert on_spark["consignee_seizures"].max() > 0  # the world has known seizures
