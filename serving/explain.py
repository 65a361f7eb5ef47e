"""Why a shipment scored as it did: SHAP contributions turned into officer sentences.

The contributions are LightGBM's exact TreeSHAP values (``pred_contrib``) in log-odds: for
every shipment, ``base_value + sum(contributions) == raw_score`` exactly, so the reasons shown
account for the whole score. The largest contributions (by size, either direction) become the
top reasons, each worded by the feature catalog (``features.catalog.reason_text``) from the
shipment's own feature value, e.g. "consignee first seen 3 days ago".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features import catalog
from features.contracts import AttributeSpec, LabelMeaning
from features.scoring import ScoringModel
from serving.model import FastScorer

TOP_REASONS = 5


def _plain(value: Any) -> float | str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, (bool, np.bool_)):
        return float(bool(value))
    return str(value)


def reason_sentence(
    name: str,
    value: Any,
    *,
    label: LabelMeaning | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> str:
    """The catalog's sentence for one feature value, in the words of the model's label and
    attributes (falls back to the description)."""
    try:
        return catalog.reason_text(name, value, label=label, attributes=attributes)
    except Exception:
        try:
            return f"{catalog.feature(name).description}: {value}"
        except Exception:
            return f"{name} = {value}"


def explain(
    model: ScoringModel | FastScorer,
    features: pd.DataFrame,
    *,
    top: int = TOP_REASONS,
    all_contributions: bool = False,
) -> list[dict[str, Any]]:
    """For each row of ``features``: its base value, raw score, top reasons and (optionally)
    every contribution. Small requests run LightGBM on one thread (lower latency)."""
    scorer = model if isinstance(model, FastScorer) else FastScorer(model)
    threads = 1 if len(features) <= 16 else 0
    contrib = scorer.contributions(features, num_threads=threads)
    info = scorer.scoring.dataset
    return reasons_from_contributions(
        scorer.names,
        contrib,
        features,
        top=top,
        all_contributions=all_contributions,
        label=info.label,
        attributes=info.attributes,
    )


def reasons_from_contributions(
    names: list[str],
    contrib: np.ndarray,
    features: pd.DataFrame,
    *,
    top: int = TOP_REASONS,
    all_contributions: bool = False,
    label: LabelMeaning | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> list[dict[str, Any]]:
    """Turn TreeSHAP rows (one column per feature, then the base value) into reasons, worded
    for the model's label and attributes."""
    values = contrib[:, :-1]
    base = contrib[:, -1]
    raw = contrib.sum(axis=1)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
    columns = {name: features[name].tolist() for name in {names[j] for j in order.ravel()}}
    out = []
    for i in range(len(features)):
        reasons = []
        for j in order[i]:
            c = float(values[i, j])
            if c == 0.0:
                continue
            name = names[j]
            value = _plain(columns[name][i])
            reasons.append(
                {
                    "feature": name,
                    "text": reason_sentence(name, value, label=label, attributes=attributes),
                    "value": value,
                    "contribution": c,
                    "direction": "raises" if c > 0 else "lowers",
                }
            )
        item: dict[str, Any] = {
            "base_value": float(base[i]),
            "raw_score": float(raw[i]),
            "reasons": reasons,
        }
        if all_contributions:
            item["contributions"] = dict(zip(names, values[i].tolist(), strict=True))
        out.append(item)
    return out
