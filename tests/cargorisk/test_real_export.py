"""Issue 11's first afternoon, end to end through the CLI: a messy customs export in its own
column names (blank sellers, 0 kg and bulk rows, rail/road/post, date-only dates, the service's
own attributes, a fraud label) is ingested with its mapping, a model is trained and registered,
and every declaration of the test period is scored from an unlabelled file with the same
mapping."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from cargorisk.cli import main
from common.settings import load_settings
from training import registry

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

WORLD = [
    "--days", "50", "--shipments-per-day", "1000", "--end", "2026-11-25", "--seed", "11",
    "--prevalence", "0.02",
]  # fmt: skip


def test_messy_export_ingests_trains_and_scores_every_row(home, tmp_path, capsys):
    export = tmp_path / "export"
    assert main(["simulate", "--export", str(export), *WORLD]) == 0
    declarations = export / "declarations.csv"
    mapping = export / "mapping.yaml"
    raw = pd.read_csv(declarations, dtype=str, keep_default_na=False)
    # what makes it messy is really there
    assert (raw["Seller ID"] == "").mean() > 0.05

    data = tmp_path / "data"
    ingest = ["ingest", str(declarations), "--mapping", str(mapping), "--out", str(data)]
    assert main([*ingest, "--max-reject-share", "0"]) == 0
    summary = json.loads((data / "summary.json").read_text("utf-8"))
    assert summary["quarantined"] == 0 and summary["accepted"] == len(raw)
    ships = pd.read_parquet(data / "shipments.parquet")
    assert {"rail", "road", "post"} <= set(ships["mode"])
    assert ships["shipper_id"].isna().any() and (ships["gross_weight_kg"] == 0).any()
    assert [c for c in ships.columns if c.startswith("attr.")]

    capsys.readouterr()
    assert main(["train", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "feature families" in out and "registered" in out

    settings = load_settings()
    registry.configure(settings)
    model = registry.load_scoring_model(f"models:/{settings.model_name}/1")
    meta = model.metadata
    # never worse than plain LightGBM on the raw columns, on validation
    valid = meta["validation"]
    chosen, challenger = valid[meta["kind"]], valid["raw_challenger"]
    assert (chosen["precision_at_capacity"], chosen["pr_auc"]) >= (
        challenger["precision_at_capacity"],
        challenger["pr_auc"],
    )
    # what a positive means travelled from the mapping to the model
    assert meta["dataset"]["label"] == json.loads((data / "dataset.json").read_text())["label"]
    # the families that do not help are dropped and reported
    run = mlflow.get_run(registry.version_info(settings, 1).run_id)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"family_selection.json", "family_selection.md"} <= artifacts
    table = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/family_selection.json")
    assert table  # one row per family tried, kept or dropped

    assert main(["promote"]) == 0  # the gate, on the test period

    # every row of the test period scored, from an unlabelled file, with the same mapping
    test_from = pd.Timestamp(meta["test_period"]["from"]).normalize()
    dates = pd.to_datetime(raw["Date"])
    unlabelled = raw.loc[dates >= test_from].drop(columns=["Fraud", "Critical Fraud"])
    source = tmp_path / "arrivals.csv"
    unlabelled.to_csv(source, index=False)
    scores = tmp_path / "scores.csv"
    score = ["score", "--input", str(source), "--output", str(scores), "--mapping", str(mapping)]
    assert main([*score, "--history", str(data)]) == 0
    scored = pd.read_csv(scores, dtype={"shipment_id": str})
    assert len(scored) == len(unlabelled) > 0
    assert set(scored["shipment_id"]) == set(unlabelled["Declaration ID"])
    assert scored["score"].between(0, 1).all()

    # the same arrivals as a Korean export really comes: cp949, ';'-delimited, one row cut
    # short by the exporting system - read exactly as ingest reads it, the broken row set aside
    korean = tmp_path / "arrivals-cp949.csv"
    text = unlabelled.to_csv(index=False, sep=";").splitlines()
    broken_id = unlabelled["Declaration ID"].iloc[1]
    text[2] = ";".join(text[2].split(";")[:4])  # data row 2: four fields instead of all
    korean.write_bytes(("\n".join(text) + "\n").encode("cp949"))
    scores_kr = tmp_path / "scores-cp949.csv"
    code = main(
        [
            "score", "--input", str(korean), "--output", str(scores_kr), "--mapping",
            str(mapping), "--history", str(data), "--encoding", "cp949", "--delimiter", ";",
        ]
    )  # fmt: skip
    assert code == 0
    scored_kr = pd.read_csv(scores_kr, dtype={"shipment_id": str})
    assert set(scored_kr["shipment_id"]) == set(unlabelled["Declaration ID"]) - {broken_id}
    rejected = pd.read_csv(tmp_path / "scores-cp949.rejected.csv")
    assert rejected["source_row"].tolist() == [2]
    assert "fields where the header has" in rejected["reason"].iloc[0]
    merged = scored.merge(scored_kr, on="shipment_id", suffixes=("", "_kr"))
    assert (merged["score"] - merged["score_kr"]).abs().max() < 1e-9  # same rows, same scores
