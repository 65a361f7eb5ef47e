"""Drift: how far the traffic the service scores has moved from the traffic the model learned.

Pure functions over frames (no store, no MLflow, no settings), so training (which records the
reference) and the service and the CLI (which compare against it) share one definition.

* :func:`build_reference` - at training time, per stream (``sea``, ``air``, ``express``) and
  over all streams: for each feature a histogram of the training-window shipments (numbers:
  bins between quantile edges; categories: the shares of the most frequent categories and of
  all the others) with the share of missing values, and the same for the model's score.
* :func:`drift_table` - for served feature rows grouped by stream and ISO week: the
  population stability index (PSI) of each feature and of the score against the reference of
  the same stream, the share of missing values (and the reference's), and for categorical
  features the share of values the model never saw in training (it scores them as missing).
* :func:`levels` - ``ok`` / ``warn`` / ``alert`` for each row by the thresholds in force.

PSI = sum over bins of (actual - expected) * ln(actual / expected), bins including the
missing bin; a share of zero is taken as :data:`EPSILON` so an empty bin counts, boundedly.
Rule of thumb (and the default thresholds): below 0.1 stable, 0.1-0.25 a moderate shift,
above 0.25 a large one. We compute it with numpy rather than Evidently: the statistics are a
few lines, Evidently would bring its own dependency tree (and pin pandas/pydantic ranges) into
the serving image, and it does not bin by a *stored* reference, which the service needs since
it never sees the training rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

REFERENCE_VERSION: Final = 1
SCORE: Final = "score"
"""The name the model's score goes by in a reference and a drift table."""
ALL_STREAMS: Final = "all"
"""The stream key of the reference over every stream."""
BINS: Final = 10
"""Quantile bins per numeric feature (fewer when values repeat: edges are made unique)."""
TOP_CATEGORIES: Final = 20
"""Categories kept by name per categorical feature; the rest share one ``other`` bin."""
EPSILON: Final = 1e-4
"""The share an empty bin counts as in PSI (keeps ln finite; caps one bin's term)."""
MIN_ROWS: Final = 30
"""Fewer served rows than this in a group give no PSI (too noisy to alarm on)."""
LEVELS: Final = ("ok", "warn", "alert", "unwatched")


@dataclass(frozen=True)
class Thresholds:
    """When a drift row warns or alarms (the service's settings carry the values)."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    unseen_alert: float = 0.05
    """Rise of the share of a categorical feature's values outside the model's vocabulary
    above the training window's own share (absolute: 0.05 = five points)."""
    missing_alert: float = 0.1
    """Rise of the missing share above the reference's (absolute: 0.1 = ten points)."""


def _missing(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy()


def split_points(booster_dump: Mapping[str, Any], feature_names: Sequence[str]) -> dict:
    """The thresholds at which the model's trees split each numeric feature (``value <=
    threshold`` goes left), and ``used``: the features with at least one split. From
    LightGBM's ``Booster.dump_model()``; features by position in ``feature_names``."""
    thresholds: dict[str, set[float]] = {n: set() for n in feature_names}
    used: set[str] = set()
    stack = [tree["tree_structure"] for tree in booster_dump.get("tree_info", [])]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        name = feature_names[int(node["split_feature"])]
        used.add(name)
        if node.get("decision_type") == "<=":
            thresholds[name].add(float(node["threshold"]))
        stack.extend((node["left_child"], node["right_child"]))
    return {"thresholds": {n: sorted(v) for n, v in thresholds.items()}, "used": used}


def _edges(present: np.ndarray, bins: int, candidates: Sequence[float] | None) -> np.ndarray:
    """Bin edges: the reference's quantiles, or - given the model's split points - the split
    points nearest to them (so a bin boundary is a place where the model's answer changes)."""
    if not len(present):
        return np.array([], dtype="float64")
    qs = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    if candidates is None:
        return np.unique(qs)
    points = np.asarray(sorted(candidates), dtype="float64")
    if len(points) <= bins - 1:
        return points
    nearest = np.abs(points[None, :] - qs[:, None]).argmin(axis=1)
    return np.unique(points[nearest])


def _numeric_reference(
    values: pd.Series, bins: int, splits: Sequence[float] | None = None
) -> dict[str, Any]:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    missing = np.isnan(x)
    present = x[~missing]
    edges = _edges(present, bins, splits)
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    n = max(len(x), 1)
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "shares": [float(c) / n for c in counts],
        "missing": float(missing.sum()) / n,
    }


def _categorical_reference(
    values: pd.Series, top: int, vocabulary: Sequence[str] | None
) -> dict[str, Any]:
    missing = _missing(values)
    n = max(len(values), 1)
    text = values[~missing].astype(str)
    counts = text.value_counts(sort=True)
    kept = counts.iloc[:top]
    unseen = None if vocabulary is None else float((~text.isin(set(vocabulary))).sum()) / n
    return {
        "kind": "categorical",
        "categories": [str(c) for c in kept.index],
        "shares": [float(c) / n for c in kept.to_numpy()],
        "other": float(counts.iloc[top:].sum()) / n,
        "missing": float(missing.sum()) / n,
        "unseen": unseen,
    }


def build_reference(
    features: pd.DataFrame,
    streams: Sequence[Any] | np.ndarray | pd.Series,
    feature_names: Sequence[str],
    categorical: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    scores: np.ndarray | None = None,
    window: Mapping[str, Any] | None = None,
    splits: Mapping[str, Any] | None = None,
    bins: int = BINS,
    top: int = TOP_CATEGORIES,
) -> dict[str, Any]:
    """The drift reference of ``features`` (one row per training-window shipment): for each
    stream in ``streams`` and for :data:`ALL_STREAMS`, each of ``feature_names`` (those in
    ``categorical`` binned by category) and, when given, the model's ``scores``. JSON-able;
    :func:`drift_table` reads it. When ``categorical`` maps each name to the model's
    vocabulary, the share of training-window values outside it (``unseen``: the model learned
    its splits on the *inspected* rows only, so some traffic is always outside) is recorded,
    the baseline the served unseen share is compared with. The vocabularies themselves are not
    repeated here: the comparison takes them from the model.

    ``splits`` (:func:`split_points` of the model) bins each numeric feature at the model's
    own split points rather than at quantiles: a shift that crosses none of them changes
    nothing the model sees (an importer's "days since first seen" growing from 300 to 330
    does not matter to a model that splits it at 2 and 14 days). A numeric feature the model
    never splits on has no such points: it is recorded with ``watched`` false, shown but never
    alarming (its quantile bins would alarm at every harmless move, e.g. a growing age).
    Categorical features are always watched: each category is its own bin."""
    missing = [n for n in feature_names if n not in features.columns]
    if missing:
        raise KeyError(f"feature rows lack columns: {', '.join(missing)}")
    stream = np.asarray(pd.Series(streams, dtype=object).fillna("unknown").astype(str))
    if len(stream) != len(features):
        raise ValueError(f"streams: {len(stream)} values for {len(features)} feature rows")
    groups: dict[str, np.ndarray] = {ALL_STREAMS: np.ones(len(features), bool)}
    for s in sorted(set(stream.tolist())):
        groups[s] = stream == s
    thresholds = (splits or {}).get("thresholds") or {}
    used = (splits or {}).get("used")
    out: dict[str, Any] = {}
    for key, mask in groups.items():
        rows = features.loc[mask]
        per: dict[str, Any] = {}
        for name in feature_names:
            if name in categorical:
                vocabulary = categorical[name] if isinstance(categorical, Mapping) else None
                per[name] = _categorical_reference(rows[name], top, vocabulary)
            else:
                per[name] = _numeric_reference(
                    rows[name], bins, thresholds.get(name) if splits else None
                )
            # categories are bins of their own (robust to any model); a number is watched
            # where the model splits it
            per[name]["watched"] = used is None or name in categorical or name in used
        if scores is not None:
            per[SCORE] = _numeric_reference(pd.Series(np.asarray(scores)[mask]), bins)
            per[SCORE]["watched"] = True
        out[key] = {"rows": int(mask.sum()), "features": per}
    return {
        "version": REFERENCE_VERSION,
        "window": dict(window or {}),
        "bins": bins,
        "top_categories": top,
        "streams": out,
    }


@dataclass(frozen=True)
class FeatureDrift:
    """One feature (or the score) of one group of served rows against its reference."""

    rows: int
    psi: float
    """NaN when the group has fewer than :data:`MIN_ROWS` rows."""
    missing_share: float
    missing_reference: float
    unseen_share: float
    """Categorical features: share of values outside the model's vocabulary; numbers: NaN."""
    unseen_reference: float
    """The same share over the training window (NaN when not recorded)."""


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = EPSILON) -> float:
    """The population stability index of two distributions over the same bins (each sums
    to 1); shares below ``eps`` count as ``eps``."""
    e = np.clip(np.asarray(expected, dtype="float64"), eps, None)
    a = np.clip(np.asarray(actual, dtype="float64"), eps, None)
    if e.shape != a.shape:
        raise ValueError(f"psi: {e.shape[0]} reference bins against {a.shape[0]} served bins")
    return float(np.sum((a - e) * np.log(a / e)))


def compare(
    values: pd.Series,
    ref: Mapping[str, Any],
    vocabulary: Sequence[str] | Set[str] | None = None,
) -> FeatureDrift:
    """Served ``values`` of one feature against its reference entry; ``vocabulary``: the
    categories the model knows (a categorical feature's unseen share is the share outside
    it)."""
    n = len(values)
    if n == 0:
        nan = float("nan")
        return FeatureDrift(0, nan, nan, float(ref["missing"]), nan, nan)
    missing = _missing(values)
    unseen = float("nan")
    if ref["kind"] == "categorical":
        text = values[~missing].astype(str)
        place = {c: i for i, c in enumerate(ref["categories"])}
        other = len(place)
        idx = text.map(place).fillna(other).to_numpy(dtype=int)
        counts = np.bincount(idx, minlength=other + 1)
        expected = [*ref["shares"], ref["other"], ref["missing"]]
        if vocabulary is not None:
            known = vocabulary if isinstance(vocabulary, Set) else set(vocabulary)
            unseen = float((~text.isin(known)).sum()) / n
    else:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        missing = np.isnan(x)
        edges = np.asarray(ref["edges"], dtype="float64")
        counts = np.bincount(
            np.searchsorted(edges, x[~missing], side="left"), minlength=len(edges) + 1
        )
        expected = [*ref["shares"], ref["missing"]]
    actual = np.append(counts, missing.sum()) / n
    value = psi(np.asarray(expected), actual) if n >= MIN_ROWS else float("nan")
    base = ref.get("unseen")
    return FeatureDrift(
        n,
        value,
        float(missing.sum()) / n,
        float(ref["missing"]),
        unseen,
        float("nan") if base is None or unseen != unseen else float(base),
    )


DRIFT_COLUMNS: Final = (
    "stream",
    "week",
    "feature",
    "rows",
    "psi",
    "missing_share",
    "missing_reference",
    "unseen_share",
    "unseen_reference",
    "watched",
)


def iso_week(times: pd.Series) -> pd.Series:
    """``2026-W48`` for each timestamp (ISO 8601 year and week)."""
    t = pd.to_datetime(times)
    cal = t.dt.isocalendar()
    return cal["year"].astype(str) + "-W" + cal["week"].astype(int).map("{:02d}".format)


def drift_table(
    features: pd.DataFrame,
    reference: Mapping[str, Any],
    *,
    streams: Sequence[Any] | np.ndarray | pd.Series,
    groups: Sequence[Any] | np.ndarray | pd.Series,
    scores: np.ndarray | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per (stream, group, feature) of the served ``features`` against ``reference``
    (:func:`build_reference`), for every feature the reference holds that ``features`` has,
    and the score when ``scores`` are given. ``groups`` labels each row's period (an ISO
    week from :func:`iso_week`, or one label for a whole window). Streams the reference does
    not know are compared against its :data:`ALL_STREAMS` entry; ``categories`` (the model's
    vocabularies) give the unseen shares. Columns:
    :data:`DRIFT_COLUMNS`."""
    stream = np.asarray(pd.Series(streams, dtype=object).fillna("unknown").astype(str))
    group = np.asarray(pd.Series(groups, dtype=object).astype(str))
    if len(stream) != len(features) or len(group) != len(features):
        raise ValueError("streams and groups: one value per feature row")
    refs = reference.get("streams") or {}
    frame = features.reset_index(drop=True)
    vocabularies = {k: frozenset(v) for k, v in (categories or {}).items()}
    score_values = None if scores is None else pd.Series(np.asarray(scores, dtype="float64"))
    rows: list[tuple] = []
    keys = pd.DataFrame({"stream": stream, "group": group})
    for (s, g), idx in keys.groupby(["stream", "group"], sort=True).indices.items():
        ref = refs.get(s) or refs.get(ALL_STREAMS)
        if ref is None:
            continue
        for name, entry in ref["features"].items():
            if name == SCORE:
                if score_values is None:
                    continue
                values = score_values.iloc[idx]
            elif name in frame.columns:
                values = frame[name].iloc[idx]
            else:
                continue
            d = compare(values, entry, vocabularies.get(name))
            rows.append(
                (
                    s,
                    g,
                    name,
                    d.rows,
                    d.psi,
                    d.missing_share,
                    d.missing_reference,
                    d.unseen_share,
                    d.unseen_reference,
                    bool(entry.get("watched", True)),
                )
            )
    return pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))


def levels(table: pd.DataFrame, thresholds: Thresholds) -> pd.Series:
    """``alert`` when PSI, or the rise of the unseen or the missing share over training's,
    passes its alert threshold; ``warn`` when PSI passes its warning threshold; ``ok``
    otherwise (a row without a PSI - too few rows - is ``ok``); ``unwatched`` for a numeric
    feature the model has no split on (shown, never alarming)."""
    psi_values = table["psi"].fillna(0.0)
    unseen = _unseen_rise(table)
    rise = (table["missing_share"] - table["missing_reference"]).fillna(0.0)
    enough = table["rows"] >= MIN_ROWS
    alert = enough & (
        (psi_values >= thresholds.psi_alert)
        | (unseen >= thresholds.unseen_alert)
        | (rise >= thresholds.missing_alert)
    )
    warn = enough & (psi_values >= thresholds.psi_warn)
    watched = table["watched"].astype(bool) if "watched" in table else True
    level = np.where(alert, "alert", np.where(warn, "warn", "ok"))
    return pd.Series(np.where(watched, level, "unwatched"), index=table.index)


def _unseen_rise(table: pd.DataFrame) -> pd.Series:
    return (table["unseen_share"] - table["unseen_reference"].fillna(0.0)).fillna(0.0)


def alerts(table: pd.DataFrame, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The rows that warn or alarm, worst first, each with the reason in words."""
    lv = levels(table, thresholds)
    unseen_rise = _unseen_rise(table)
    out = []
    for i in np.flatnonzero(np.isin(lv.to_numpy(), ["warn", "alert"])):
        r = table.iloc[i]
        why = []
        if r["psi"] == r["psi"] and r["psi"] >= thresholds.psi_warn:
            why.append(f"PSI {r['psi']:.2f}")
        if unseen_rise.iloc[i] >= thresholds.unseen_alert:
            base = r["unseen_reference"]
            was = f" (training {base:.1%})" if base == base else ""
            why.append(f"{r['unseen_share']:.1%} categories unknown to the model{was}")
        rise = r["missing_share"] - r["missing_reference"]
        if rise == rise and rise >= thresholds.missing_alert:
            why.append(f"missing {r['missing_share']:.1%} (training {r['missing_reference']:.1%})")
        out.append(
            {
                "level": lv.iloc[i],
                "stream": r["stream"],
                "week": r["week"],
                "feature": r["feature"],
                "rows": int(r["rows"]),
                "psi": None if math.isnan(r["psi"]) else float(r["psi"]),
                "why": "; ".join(why),
            }
        )
    out.sort(key=lambda a: (a["level"] != "alert", -(a["psi"] or 0.0)))
    return out
