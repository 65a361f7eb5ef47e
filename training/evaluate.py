"""Measure a scoring model, the rules baseline and random selection on the same shipments.

Two views of one period:

* **labelled** - shipments with a label under the unlabelled policy (by default: inspected
  ones). Metrics named ``<who>_precision_at_1pct``, ``<who>_recall_at_5pct``,
  ``<who>_lift_at_1pct``, ``<who>_pr_auc``, ``<who>_roc_auc`` and ``<who>_brier`` (model only),
  where ``who`` is ``test`` (the model), ``rules`` or ``random``.
* **all traffic, true labels** - when the data is simulated, every shipment of the period
  (inspected or not) ranked by score and compared with the hidden truth:
  ``<who>_true_recall_at_5pct`` (share of all smuggling in the period that the top 5 % of all
  traffic would catch) and ``<who>_true_precision_at_…``. Real customs can never measure this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.registry_contract import capacity_metric
from features.scoring import ScoringModel
from training.baselines import random_score
from training.dataset import Dataset
from training.metrics import (
    CAPACITIES,
    capacity_curve,
    capacity_metrics,
    reliability_curve,
)

WHO = ("test", "rules", "random")
GAINS_SHARES = [round(0.01 * i, 2) for i in range(1, 101)]


@dataclass
class PeriodScores:
    """Scores of the model and the baselines over one period's shipments."""

    mask: np.ndarray
    """Rows of the dataset in the period."""
    labelled: np.ndarray
    """Rows of the period that carry a label (subset of the period, as a mask over the period)."""
    y: np.ndarray
    model_all: np.ndarray
    rules_all: np.ndarray
    illicit_all: np.ndarray | None

    @property
    def model(self) -> np.ndarray:
        return self.model_all[self.labelled]

    @property
    def rules(self) -> np.ndarray:
        return self.rules_all[self.labelled]

    def score_of(self, who: str, *, labelled: bool = True) -> np.ndarray:
        full = {
            "test": self.model_all,
            "rules": self.rules_all,
            "random": random_score(len(self.model_all)),
        }[who]
        return full[self.labelled] if labelled else full


def score_period(
    model: ScoringModel,
    dataset: Dataset,
    mask: np.ndarray,
    rules: np.ndarray,
    *,
    num_threads: int = 0,
) -> PeriodScores:
    """Score every shipment of the period with the model; ``rules`` is the rule score of every
    dataset row (computed once over the whole data, so consignee history is point in time)."""
    mask = np.asarray(mask, dtype=bool)
    label = dataset.label[mask]
    return PeriodScores(
        mask=mask,
        labelled=~np.isnan(label),
        y=label[~np.isnan(label)],
        model_all=model.score(dataset.features.loc[mask], num_threads=num_threads),
        rules_all=np.asarray(rules)[mask],
        illicit_all=None if dataset.illicit is None else dataset.illicit[mask].astype(float),
    )


def model_metrics(
    scores: PeriodScores, prefix: str, capacities: Sequence[float] = CAPACITIES
) -> dict[str, float]:
    """The model's metrics in ``scores``, named ``<prefix>_…``: capacity metrics on the
    labelled rows (with ``brier``, ``n_rows``, ``n_positive``, ``base_rate``) and, when the
    truth is known, ``<prefix>_true_recall_at_…`` / ``_true_precision_at_…`` over all rows."""
    out = {
        f"{prefix}_{key}": value
        for key, value in capacity_metrics(
            scores.y, scores.model, capacities, probability=scores.model
        ).items()
    }
    if scores.illicit_all is not None and scores.illicit_all.sum() > 0:
        true = capacity_metrics(scores.illicit_all, scores.model_all, capacities)
        for share in capacities:
            for kind in ("recall", "precision"):
                out[capacity_metric(f"true_{kind}", share, prefix)] = true[
                    capacity_metric(kind, share)
                ]
        out[f"{prefix}_true_n_illicit"] = true["n_positive"]
        out[f"{prefix}_true_n_rows"] = true["n_rows"]
    return out


def period_metrics(
    scores: PeriodScores, capacities: Sequence[float] = CAPACITIES
) -> dict[str, float]:
    """Flat metric dict for the model (``test_…``) and both baselines on the same rows."""
    out = model_metrics(scores, "test", capacities)
    for who in ("rules", "random"):
        metrics = capacity_metrics(scores.y, scores.score_of(who), capacities)
        for key, value in metrics.items():
            if key not in ("n_rows", "n_positive", "base_rate"):
                out[f"{who}_{key}"] = value
        if scores.illicit_all is not None and scores.illicit_all.sum() > 0:
            true = capacity_metrics(
                scores.illicit_all, scores.score_of(who, labelled=False), capacities
            )
            for share in capacities:
                for kind in ("recall", "precision"):
                    out[capacity_metric(f"true_{kind}", share, who)] = true[
                        capacity_metric(kind, share)
                    ]
    return out


def period_curves(scores: PeriodScores) -> dict:
    """Data behind the capacity and gains plots (and ``capacity_curve.json``)."""
    out: dict = {
        "labelled": {who: capacity_curve(scores.y, scores.score_of(who)) for who in WHO},
        "reliability": reliability_curve(scores.y, scores.model),
        "gains": {who: capacity_curve(scores.y, scores.score_of(who), GAINS_SHARES) for who in WHO},
    }
    if scores.illicit_all is not None and scores.illicit_all.sum() > 0:
        out["true"] = {
            who: capacity_curve(scores.illicit_all, scores.score_of(who, labelled=False))
            for who in WHO
        }
    return out


def beats_baselines(metrics: dict[str, float], capacities: Sequence[float] = CAPACITIES) -> bool:
    """Whether the model's precision is above both baselines' at every capacity."""
    for share in capacities:
        model = metrics[capacity_metric("precision", share, "test")]
        if not (
            model > metrics[capacity_metric("precision", share, "rules")]
            and model > metrics[capacity_metric("precision", share, "random")]
        ):
            return False
    return True
