"""How well a ranking uses the inspection capacity.

A customs team inspects only the top *n %* of shipments by score. What matters is how many
seizures fall inside that cut:

* **precision@n %** - the hit rate among the inspected top n %;
* **recall@n %** - the share of all seizures (among the rows evaluated) the top n % holds;
* **lift@n %** - precision@n % divided by the base rate (what random selection would hit).

Ties are handled as random selection would among tied shipments: when the cut falls inside a
group of equal scores, that group contributes its positives in proportion to the places left.
This matters for rule scores (a few integer levels) and makes a constant score behave exactly
like random inspection: precision = base rate, recall = n %. Results are therefore exact and
deterministic, with no seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

from features.registry_contract import capacity_metric

CAPACITIES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10)
"""Inspection capacities reported everywhere (share of shipments inspected)."""


def n_selected(n: int, share: float) -> int:
    """How many of ``n`` shipments a capacity of ``share`` inspects (rounded up, at least 1)."""
    if n <= 0:
        return 0
    return max(1, min(n, math.ceil(share * n - 1e-9)))


def _as_arrays(y_true: ArrayLike, score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-d of equal length ({y.shape} vs {s.shape})")
    if np.isnan(y).any():
        raise ValueError("labels contain missing values; drop unlabelled rows first")
    if np.isnan(s).any():
        raise ValueError("scores contain missing values")
    return y, s


class _Ranking:
    """Labels sorted by descending score with cumulative positives: answers "how many hits in
    the top k" for many k after one sort."""

    def __init__(self, y: np.ndarray, s: np.ndarray) -> None:
        order = np.argsort(-s, kind="stable")
        self.neg_sorted = -s[order]  # ascending
        self.cum = np.concatenate([[0.0], np.cumsum(y[order])])
        self.n = len(y)

    def hits(self, k: int) -> float:
        if k <= 0 or self.n == 0:
            return 0.0
        k = min(k, self.n)
        cut = self.neg_sorted[k - 1]
        n_above = int(np.searchsorted(self.neg_sorted, cut, side="left"))
        n_upto = int(np.searchsorted(self.neg_sorted, cut, side="right"))
        tied_hits = self.cum[n_upto] - self.cum[n_above]
        return float(self.cum[n_above] + tied_hits * (k - n_above) / (n_upto - n_above))


def hits_at(y_true: ArrayLike, score: ArrayLike, k: int) -> float:
    """Expected number of positives among the ``k`` highest scores (ties shared pro rata)."""
    y, s = _as_arrays(y_true, score)
    return _Ranking(y, s).hits(k)


def precision_at(y_true: ArrayLike, score: ArrayLike, share: float) -> float:
    """Hit rate among the top ``share`` of rows by score."""
    k = n_selected(np.size(y_true), share)
    return hits_at(y_true, score, k) / k if k else float("nan")


def recall_at(y_true: ArrayLike, score: ArrayLike, share: float) -> float:
    """Share of all positives found in the top ``share`` of rows by score."""
    total = float(np.sum(np.asarray(y_true, dtype=float)))
    if total == 0:
        return float("nan")
    return hits_at(y_true, score, n_selected(np.size(y_true), share)) / total


def lift_at(y_true: ArrayLike, score: ArrayLike, share: float) -> float:
    """precision@share divided by the base rate (1.0 = no better than random selection)."""
    base = float(np.mean(np.asarray(y_true, dtype=float))) if np.size(y_true) else float("nan")
    if not base:
        return float("nan")
    return precision_at(y_true, score, share) / base


def brier(y_true: ArrayLike, probability: ArrayLike) -> float:
    """Mean squared error of probabilities (lower is better; only meaningful for calibrated
    scores)."""
    y, p = _as_arrays(y_true, probability)
    return float(np.mean((p - y) ** 2))


def reliability_curve(
    y_true: ArrayLike, probability: ArrayLike, bins: int = 10
) -> list[dict[str, float]]:
    """Predicted vs observed seizure rate per quantile bin of the predicted probability.

    Quantile bins (not equal-width) because almost all scores sit near zero.
    """
    y, p = _as_arrays(y_true, probability)
    if len(y) == 0:
        return []
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, min(bins, len(y))):
        if len(chunk) == 0:
            continue
        out.append(
            {
                "predicted": float(p[chunk].mean()),
                "observed": float(y[chunk].mean()),
                "count": len(chunk),
            }
        )
    return out


def capacity_metrics(
    y_true: ArrayLike,
    score: ArrayLike,
    capacities: Iterable[float] = CAPACITIES,
    *,
    probability: ArrayLike | None = None,
) -> dict[str, float]:
    """All ranking metrics of one score on one set of labelled rows.

    Keys: ``precision_at_1pct`` ... ``recall_at_10pct``, ``lift_at_…``, ``pr_auc``,
    ``roc_auc``, ``base_rate``, ``n_rows``, ``n_positive`` and, when calibrated
    ``probability`` is given, ``brier``.
    """
    y, s = _as_arrays(y_true, score)
    out: dict[str, float] = {
        "n_rows": float(len(y)),
        "n_positive": float(y.sum()),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
    }
    ranking = _Ranking(y, s)
    total = float(y.sum())
    for share in capacities:
        k = n_selected(len(y), share)
        hits = ranking.hits(k)
        precision = hits / k if k else float("nan")
        out[capacity_metric("precision", share)] = precision
        out[capacity_metric("recall", share)] = hits / total if total else float("nan")
        out[capacity_metric("lift", share)] = (
            precision / out["base_rate"] if out["base_rate"] else float("nan")
        )
    both_classes = 0 < y.sum() < len(y)
    if both_classes and np.ptp(s) > 0:
        out["pr_auc"] = float(average_precision_score(y, s))
        out["roc_auc"] = float(roc_auc_score(y, s))
    elif both_classes:  # a constant score: exactly random selection
        out["pr_auc"] = float(y.mean())
        out["roc_auc"] = 0.5
    else:
        out["pr_auc"] = out["roc_auc"] = float("nan")
    if probability is not None:
        out["brier"] = brier(y, probability)
    return out


def capacity_curve(
    y_true: ArrayLike, score: ArrayLike, shares: Sequence[float] | None = None
) -> list[dict[str, float]]:
    """Precision, recall and lift at each capacity share (the data behind the capacity plot and
    the cumulative-gains chart)."""
    y, s = _as_arrays(y_true, score)
    if shares is None:
        shares = [
            round(x, 4)
            for x in np.concatenate(
                [np.arange(0.0025, 0.05, 0.0025), np.arange(0.05, 0.3001, 0.01)]
            )
        ]
    base = float(y.mean()) if len(y) else float("nan")
    total = float(y.sum())
    ranking = _Ranking(y, s)
    out = []
    for share in shares:
        k = n_selected(len(y), share)
        hits = ranking.hits(k)
        precision = hits / k if k else float("nan")
        out.append(
            {
                "capacity": float(share),
                "precision": precision,
                "recall": hits / total if total else float("nan"),
                "lift": precision / base if base else float("nan"),
            }
        )
    return out


def wilson_interval(hits: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``hits / n`` (e.g. precision at capacity: hits
    among the ``n`` inspected). Honest for small ``n`` and for 0 or ``n`` hits, where the
    normal approximation collapses to a point. ``hits`` may be fractional (tie-shared hits)."""
    if n <= 0:
        return (0.0, 1.0)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = min(max(hits / n, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
