"""``cargorisk score``: every shipment of a file scored, banded and ranked, the top ones
with their reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import (
    OUTCOME_COLUMNS,
    attribute_column,
    attribute_columns,
)
from features.errors import CargoriskError
from features.scoring import ScoringModel
from features.tables import read_frame, validate_table
from training import registry
from training.dataset import engine_options, load_tables
from training.jobs.shared import Progress, quiet, timed_step


def reasons_for(model: ScoringModel, features: pd.DataFrame) -> list[str]:
    """Each row's reasons as one line of the output file: the reasons every other view shows
    (:meth:`ScoringModel.explain` - same features, order and words), each with its
    contribution in log-odds, separated by "; "."""
    return [
        "; ".join(f"{r['text']} ({r['contribution']:+.2f})" for r in item["reasons"])
        for item in model.explain(features)
    ]


def score_job(
    settings,
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    explain_top: float = 10.0,
    history_dir: str | Path | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Score every shipment of a file; write shipment_id, score, band, rank and - for the top
    ``explain_top`` % - the reasons. The file holds contract columns (a file in a customs
    service's own column names is ingested first: ``cargorisk score --mapping`` does that).
    ``history_dir`` (contract tables) supplies the entities' past so
    history and network features are as of each shipment's time; without it they are computed
    from the file alone."""
    from features.pipeline import build_training_frame

    if not 0 <= explain_top <= 100:
        raise CargoriskError(f"--explain-top must be a percentage 0..100, got {explain_top}")
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() not in (".csv", ".parquet"):
        raise CargoriskError(f"--output {output_path}: expected a .csv or .parquet file")
    registry.configure(settings)
    model = registry.load_scoring_model(model_uri)
    raw = read_frame(input_path, what="--input")
    shipments = validate_table("shipments", raw)
    if len(shipments) == 0:
        raise CargoriskError(f"--input {input_path}: no shipment to score")
    if history_dir:
        tables = load_tables(history_dir)
        past = tables.shipments[~tables.shipments["shipment_id"].isin(shipments["shipment_id"])]
        all_shipments = pd.concat([past, shipments], ignore_index=True)
        outcomes = tables.outcomes
    else:
        all_shipments = shipments
        outcomes = validate_table(
            "outcomes", pd.DataFrame({c: pd.Series(dtype=object) for c in OUTCOME_COLUMNS})
        )
    all_shipments = all_shipments.sort_values(["declared_at", "shipment_id"], kind="stable")
    schema = model.attributes
    known = {attribute_column(name) for name in schema}
    unknown = [c for c in attribute_columns(all_shipments) if c not in known]
    if unknown:  # the model was trained without them: they cannot move its scores
        progress(f"not used by this model (not in its attribute schema): {', '.join(unknown)}")
        all_shipments = all_shipments.drop(columns=unknown)
    with timed_step(progress, f"features for {len(shipments):,} shipments"):
        frame = build_training_frame(
            all_shipments.reset_index(drop=True),
            outcomes,
            attributes=schema,
            **engine_options(settings),
        )
    frame = frame.set_index("shipment_id", drop=False).loc[shipments["shipment_id"]]
    frame = frame.reset_index(drop=True)
    score = model.score(frame)
    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(score), dtype=int)
    rank[order] = np.arange(1, len(score) + 1)
    out = pd.DataFrame(
        {
            "shipment_id": frame["shipment_id"].to_numpy(),
            "score": score,
            "band": model.band(score),
            "rank": rank,
            "reasons": "",
        }
    )
    n_explain = int(np.ceil(len(out) * explain_top / 100))
    if n_explain:
        chosen = order[:n_explain]
        out.loc[chosen, "reasons"] = reasons_for(model, frame.iloc[chosen])
    out = out.sort_values("rank").reset_index(drop=True)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".parquet":
        out.to_parquet(output_path, index=False)
    else:
        out.to_csv(output_path, index=False)
    return {
        "scored": len(out),
        "explained": n_explain,
        "high": int((out["band"] == "high").sum()),
        "medium": int((out["band"] == "medium").sum()),
        "output": str(output_path),
        "history": bool(history_dir),
    }
