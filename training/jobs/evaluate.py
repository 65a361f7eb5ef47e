"""``cargorisk evaluate``: a registered model scored on any data directory, beside the
baselines on the same shipments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.errors import CargoriskError
from training import registry
from training.baselines import rules_score
from training.dataset import read_dataset
from training.evaluate import (
    period_metrics,
    score_period,
)
from training.jobs.shared import Progress, period_mask, quiet, timed_step


def evaluate_job(
    settings,
    model_uri: str,
    data_dir: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Score a registered model on any data directory; the same metrics as training, beside
    the baselines on the same shipments (``test_…`` = the model)."""
    registry.configure(settings)
    with timed_step(progress, f"loading {model_uri}"):
        model = registry.load_scoring_model(model_uri)
    with timed_step(progress, "features"):
        dataset = read_dataset(data_dir, settings, since=start, progress=progress)
    mask = period_mask(dataset, start, end)
    labelled = mask & dataset.labelled
    if not labelled.any():
        raise CargoriskError("the chosen period has no labelled (inspected) shipment")
    with timed_step(progress, "scoring"):
        rules = rules_score(dataset.shipments, dataset.consignee_prior)
        scores = score_period(model, dataset, mask, rules)
        metrics = period_metrics(scores)
    train_to = model.metadata.get("training_window", {}).get("to")
    times = dataset.declared_at[mask]
    overlap = bool(train_to and times.min() < pd.Timestamp(train_to))
    return {
        "model": model_uri,
        "period": {"from": times.min().isoformat(), "to": times.max().isoformat()},
        "overlaps_training": overlap,
        "metrics": metrics,
    }
