"""What training writes into the MLflow registry and serving reads back, named once.

Training and serving never import each other; they meet only in the registry. So the names
they meet by - artifact paths, metric names (and how to read a capacity back out of one), tags
- live here, in ``features/`` (the package both may import), as plain strings and pure
functions. Nothing here imports MLflow: writing and reading stay with each side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# -- artifacts of a training run -----------------------------------------------------------
MODEL_ARTIFACT: Final = "model"
"""The logged scoring model (``runs:/<run>/model``)."""
CAPACITY_CURVE_PLOT: Final = "plots/capacity_curve.png"
"""Precision and recall against inspection capacity, model vs baselines (the UI's model page
shows it)."""
GAINS_PLOT: Final = "plots/cumulative_gains.png"
CALIBRATION_PLOT: Final = "plots/calibration.png"
IMPORTANCE_PLOT: Final = "plots/feature_importance.png"
SHAP_SUMMARY_PLOT: Final = "plots/shap_summary.png"
CAPACITY_CURVE_DATA: Final = "capacity_curve.json"
METRICS_DATA: Final = "metrics.json"
FAMILY_SELECTION_DATA: Final = "family_selection.json"
FAMILY_SELECTION_TEXT: Final = "family_selection.md"
DRIFT_REFERENCE: Final = "drift_reference"
"""The drift reference (:func:`features.drift.build_reference`: per stream, each feature's and
the score's histogram over the training window) - a file *of the logged model*, beside its
booster: the name of its pyfunc artifact, stored as ``model/artifacts/drift_reference.json``,
so every registered version carries the reference of the data it learned from."""
DRIFT_REFERENCE_FILE: Final = "drift_reference.json"
MONITOR_PLOTS: Final = "monitor"
"""Folder of the champion's run where ``cargorisk monitor`` logs its drift plots
(``monitor/<date>/drift_heat_<stream>.png``, ``monitor/<date>/drift.json``)."""


def shap_waterfall_plot(shipment_id: str) -> str:
    """The artifact path of one test shipment's SHAP waterfall."""
    return f"plots/shap_waterfall_{shipment_id}.png"


# -- tags ------------------------------------------------------------------------------------
TAG_PREFIX: Final = "cargorisk."
TAG_KIND: Final = "cargorisk.kind"
"""``train`` for a training run, ``tuning_trial`` for one trial of a tuning search."""
TAG_TRIAL: Final = "cargorisk.trial"
TAG_TEST_PERIOD: Final = "cargorisk.test_period"
TAG_BEATS_BASELINES: Final = "cargorisk.beats_baselines"
TAG_REGISTERED_KIND: Final = "cargorisk.registered_kind"
TAG_REGISTERED_WHY: Final = "cargorisk.registered_why"
TAG_FAMILIES: Final = "cargorisk.families"
TAG_LABEL: Final = "cargorisk.label"
TAG_LABEL_POSITIVE: Final = "cargorisk.label_positive"
TAG_BEST_ROUND_AT_CAP: Final = "cargorisk.best_round_at_cap"
TAG_FITS: Final = "cargorisk.fits"
TAG_RETRAIN: Final = "cargorisk.retrain"
"""Run tag of a training run made by ``cargorisk retrain`` ("true")."""
TAG_DATA_STORE: Final = "cargorisk.data_store"
"""Run tag: the serving store the training data was exported from (its URL, password
hidden)."""
TAG_DATA_WINDOW: Final = "cargorisk.data_window"
"""Run tag: the declaration window of the exported training data as JSON (``since`` asked,
``from`` and ``to`` the first and last declaration exported)."""
VERSION_TAG_GATE: Final = "gate"
"""Model-version tag: the promotion gate's decision as JSON."""

# -- metric names ----------------------------------------------------------------------------
_CAPACITY: Final = re.compile(r"^(?P<whole>[0-9]+)(?:p(?P<frac>[0-9]+))?pct$")


def capacity_label(share: float) -> str:
    """``0.01`` -> ``"1pct"``, ``0.005`` -> ``"0p5pct"`` (the capacity part of metric names:
    ``precision_at_1pct``)."""
    pct = share * 100
    text = f"{pct:.0f}" if abs(pct - round(pct)) < 1e-9 else f"{pct:g}".replace(".", "p")
    return f"{text}pct"


def capacity_share(label: str) -> float:
    """The inverse of :func:`capacity_label`: ``"0p5pct"`` -> ``0.005``; ``ValueError`` for
    anything else."""
    m = _CAPACITY.match(label)
    if m is None:
        raise ValueError(f"not a capacity label: {label!r}")
    return float(f"{m['whole']}.{m['frac'] or 0}") / 100


def capacity_metric(kind: str, share: float, who: str | None = None) -> str:
    """A metric at a capacity: ``capacity_metric("precision", 0.01, "test")`` ->
    ``"test_precision_at_1pct"`` (``who``: the scorer the metric is of - ``test`` for the
    registered model on its test period, ``rules``, ``random``, ``valid``, ``full``...)."""
    name = f"{kind}_at_{capacity_label(share)}"
    return f"{who}_{name}" if who else name


@dataclass(frozen=True)
class CapacityMetric:
    """A parsed capacity metric name."""

    who: str
    kind: str
    capacity: str
    """The capacity label (``1pct``); :attr:`share` as a number."""

    @property
    def share(self) -> float:
        return capacity_share(self.capacity)


def parse_capacity_metric(name: str, whos: tuple[str, ...]) -> CapacityMetric | None:
    """``"test_true_recall_at_0p5pct"`` -> (``test``, ``true_recall``, ``0p5pct``) when its
    prefix is one of ``whos``; None for any other name."""
    for who in whos:
        if not name.startswith(who + "_"):
            continue
        rest = name[len(who) + 1 :]
        kind, sep, cap = rest.rpartition("_at_")
        if sep and kind and _CAPACITY.match(cap):
            return CapacityMetric(who, kind, cap)
    return None
