"""``cargorisk ingest`` reads the simulated export with its own mapping, and gets back the messy
world exactly: nothing quarantined, nothing blanked, every row scorable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cargorisk.cli import main
from features.contracts import DatasetInfo
from features.ingest.mapping import read_mapping
from simulator.messy import CRITICAL_KG, DATASET_INFO

ARGS = ["--days", "14", "--shipments-per-day", "800", "--end", "2026-11-25", "--seed", "8"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """One messy world written both ways: the export and its answer key (``--out``)."""
    root = tmp_path_factory.mktemp("messy")
    args = ["simulate", "--export", str(root / "export"), "--out", str(root / "tables"), *ARGS]
    assert main(args) == 0
    return root


def _ingest(simulated, source, mapping: str, out) -> dict:
    args = ["ingest", str(source), "--mapping", str(simulated / "export" / mapping)]
    assert main([*args, "--out", str(out), "--max-reject-share", "0"]) == 0
    return json.loads((out / "summary.json").read_text("utf-8"))


def test_ingest_of_the_export_is_the_messy_world(simulated, tmp_path, home):
    source = simulated / "export" / "declarations.csv"
    summary = _ingest(simulated, source, "mapping.yaml", tmp_path)
    tables = simulated / "tables"
    expected = pd.read_parquet(tables / "shipments.parquet")
    assert summary["quarantined"] == 0 and summary["blanked"] == {}
    assert summary["accepted"] == summary["rows_read"] == len(expected)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "shipments.parquet"), expected)
    info = DatasetInfo.model_validate_json((tmp_path / "dataset.json").read_text("utf-8"))
    assert info == DATASET_INFO
    # outcomes: the label of every inspected row, at the mapping's stated delays
    got = pd.read_parquet(tmp_path / "outcomes.parquet").set_index("shipment_id")
    truth = pd.read_parquet(tables / "outcomes.parquet").set_index("shipment_id")
    assert sorted(got.index) == sorted(truth.index)
    assert got["result"].sort_index().equals(truth["result"].sort_index())


def test_critical_mapping_trains_on_the_second_label(simulated, tmp_path, home):
    export = simulated / "export"
    summary = _ingest(simulated, export / "declarations.csv", "mapping_critical.yaml", tmp_path)
    assert summary["label"]["name"] == "critical narcotics seizure"
    got = pd.read_parquet(tmp_path / "outcomes.parquet")
    truth = pd.read_parquet(simulated / "tables" / "outcomes.parquet")
    big = (truth["result"] == "seized") & (truth["quantity_kg"] >= CRITICAL_KG)
    assert len(got) == len(truth) and (got["result"] == "seized").sum() == big.sum()


def test_both_mappings_validate_and_carry_the_worlds_schema(simulated):
    for name in ("mapping.yaml", "mapping_critical.yaml"):
        mapping = read_mapping(simulated / "export" / name)
        assert mapping.dataset_info.attributes == DATASET_INFO.attributes


def test_the_same_mapping_reads_the_export_without_labels(simulated, tmp_path, home):
    """An unlabelled file (today's arrivals) goes through the same mapping."""
    csv = pd.read_csv(simulated / "export" / "declarations.csv", dtype=str, keep_default_na=False)
    unlabelled = tmp_path / "unlabelled.csv"
    csv.drop(columns=["Fraud", "Critical Fraud"]).to_csv(unlabelled, index=False)
    summary = _ingest(simulated, unlabelled, "mapping.yaml", tmp_path / "out")
    assert summary["quarantined"] == 0 and summary["accepted"] == len(csv)
    assert len(pd.read_parquet(tmp_path / "out" / "outcomes.parquet")) == 0
