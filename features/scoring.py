"""The scoring model: everything needed to turn feature rows into risk scores and reasons.

A :class:`ScoringModel` is what training produces and serving loads (through the MLflow
registry; neither imports the other). It carries the LightGBM booster, the feature order, the
category vocabularies of categorical features (so a category unseen in training scores as
missing instead of shifting codes), the Platt calibration that turns raw scores into
probabilities, the score thresholds of the risk bands at the inspection capacity, and metadata
(training window, metrics). It is pure: serialising to/from text is here, file and registry I/O
belong to the callers.

This is the one scoring path. Training fits on :meth:`FeatureEncoder.frame`, evaluation, the
batch job, the API, the UI and the tests score with :meth:`ScoringModel.score` and explain with
:meth:`ScoringModel.explain`, all on the float matrix of :meth:`FeatureEncoder.matrix` (no
categorical DataFrame, which cost tens of milliseconds per call), so one shipment gets the same
score and the same reasons - same features, same order, same words - wherever it is looked at.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features import catalog
from features.contracts import AttributeSpec, DatasetInfo, LabelMeaning

BANDS = ("high", "medium", "low")
BIAS = "base_value"
TOP_REASONS = 5
"""How many reasons a shipment gets: the largest contributions by size, either direction."""

Reason = dict[str, Any]
"""``{"feature", "text", "value", "contribution", "direction"}`` - one line of an explanation."""


class FeatureEncoder:
    """Feature rows -> the float matrix LightGBM scores: columns in the model's order, numeric
    features as float (NaN when missing or not a number), categorical features as their code
    (the position in the vocabulary; unseen or missing -> NaN, so an unseen category scores as
    missing). Training fits on it and every scorer scores with it: one encoding.

    ``trained`` is the vocabulary a booster recorded itself (``booster.pandas_categorical``,
    set by models fitted on categorical frames before this encoder existed); its positions are
    the codes that booster learned, restricted to the declared vocabulary."""

    def __init__(
        self,
        feature_names: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        trained: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.names = list(feature_names)
        cat_names = [n for n in self.names if n in categories]
        if trained is not None and len(trained) != len(cat_names):
            raise ValueError(
                f"booster has {len(trained)} categorical features, the model declares "
                f"{len(cat_names)}"
            )
        self.codes: dict[str, dict[str, float]] = {}
        for k, name in enumerate(cat_names):
            declared = list(categories[name])
            vocabulary = list(trained[k]) if trained is not None else declared
            allowed = set(declared)
            self.codes[name] = {v: float(i) for i, v in enumerate(vocabulary) if v in allowed}
        self.numeric = [n for n in self.names if n not in self.codes]
        self._numeric_pos = np.array([self.names.index(n) for n in self.numeric], dtype=int)
        self._cat_pos = {name: self.names.index(name) for name in self.codes}

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The ``(rows, features)`` float matrix; raises ``KeyError`` naming absent columns."""
        missing = [c for c in self.names if c not in features.columns]
        if missing:
            raise KeyError(f"feature rows lack columns: {', '.join(missing)}")
        out = np.empty((len(features), len(self.names)), dtype="float64")
        numeric = features[self.numeric]
        try:
            out[:, self._numeric_pos] = numeric.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            out[:, self._numeric_pos] = np.column_stack(
                [pd.to_numeric(numeric[c], errors="coerce").to_numpy("float64") for c in numeric]
            )
        for name, codes in self.codes.items():
            out[:, self._cat_pos[name]] = [
                codes.get(v, np.nan) if isinstance(v, str) else np.nan
                for v in features[name].tolist()
            ]
        return out

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """:meth:`matrix` with the feature names as columns and the rows' index (what a
        training set selects column subsets from)."""
        return pd.DataFrame(self.matrix(features), index=features.index, columns=self.names)


@dataclass
class ScoringModel:
    booster: lgb.Booster
    feature_names: list[str]
    categories: dict[str, list[str]]
    calibration: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b": 0.0})
    thresholds: dict[str, float] = field(default_factory=dict)
    """Calibrated score at or above which a shipment is ``high`` / ``medium``."""
    metadata: dict[str, Any] = field(default_factory=dict)
    definitions: int = catalog.DEFINITIONS
    """The feature definitions (:data:`features.catalog.DEFINITIONS`) the model was trained
    on; 1 for a model logged before the version was recorded."""

    def __post_init__(self) -> None:
        # built once, at construction (a model is loaded once and scores many times)
        trained = getattr(self.booster, "pandas_categorical", None) or None
        self.encoder = FeatureEncoder(self.feature_names, self.categories, trained)

    # -- what the model was trained on ------------------------------------------------------
    @property
    def dataset(self) -> DatasetInfo:
        """What a positive meant and which attributes the training data carried
        (``metadata["dataset"]``; a model without it was trained on narcotics seizures and
        no attributes)."""
        return DatasetInfo.model_validate(self.metadata.get("dataset") or {})

    @property
    def attributes(self) -> dict[str, AttributeSpec]:
        """The attribute schema this model scores with: every attribute of its training
        data (whether or not a family selection kept the attribute features)."""
        return dict(self.dataset.attributes)

    # -- input ---------------------------------------------------------------------------
    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The model's input (:meth:`FeatureEncoder.matrix`) for feature rows."""
        return self.encoder.matrix(features)

    def _input(self, rows: pd.DataFrame | np.ndarray) -> np.ndarray:
        return rows if isinstance(rows, np.ndarray) else self.matrix(rows)

    # -- scores --------------------------------------------------------------------------
    def raw_score(self, rows: pd.DataFrame | np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """Log-odds from the booster (the space SHAP contributions add up in). ``rows``:
        feature rows or their :meth:`matrix`."""
        raw = self.booster.predict(self._input(rows), raw_score=True, num_threads=num_threads)
        return np.asarray(raw, dtype="float64")

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibration["a"], self.calibration["b"]
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(raw, dtype=float) + b)))

    def score(self, rows: pd.DataFrame | np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """Calibrated probability that the shipment would be found positive (by default:
        carrying narcotics) if inspected."""
        return self.calibrate(self.raw_score(rows, num_threads=num_threads))

    def predict(self, rows: pd.DataFrame | np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """:meth:`score` under the name MLflow's pyfunc wrapper calls (every logged model's
        copy of ``training/pyfunc_model.py`` calls ``scoring_model.predict``)."""
        return self.score(rows, num_threads=num_threads)

    def band(self, scores: np.ndarray) -> np.ndarray:
        """``high`` / ``medium`` / ``low`` by the capacity thresholds."""
        scores = np.asarray(scores, dtype=float)
        high = self.thresholds.get("high", np.inf)
        medium = self.thresholds.get("medium", np.inf)
        return np.where(scores >= high, "high", np.where(scores >= medium, "medium", "low"))

    def contributions(self, rows: pd.DataFrame | np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """Exact TreeSHAP contributions in log-odds (``pred_contrib``): one column per feature
        (in :attr:`feature_names` order), then the base value; each row sums to
        :meth:`raw_score`."""
        values = self.booster.predict(self._input(rows), pred_contrib=True, num_threads=num_threads)
        return np.asarray(values, dtype="float64")

    # -- reasons -------------------------------------------------------------------------
    def explain(
        self,
        features: pd.DataFrame,
        *,
        top: int = TOP_REASONS,
        all_contributions: bool = False,
        contributions: np.ndarray | None = None,
        label: LabelMeaning | None = None,
        attributes: Mapping[str, AttributeSpec] | None = None,
    ) -> list[dict[str, Any]]:
        """For each row of ``features``: its ``base_value``, ``raw_score`` and ``reasons`` -
        the ``top`` contributions largest by size (either direction; ties keep feature order),
        each worded by the catalog from the shipment's own value in the words of the model's
        label and attributes - and with ``all_contributions`` every contribution by feature.

        ``contributions``: the rows' :meth:`contributions` when the caller already has them
        (the API derives raw scores from them); ``label`` / ``attributes`` override the
        model's own (a caller that parsed them once per model)."""
        if contributions is None:
            threads = 1 if len(features) <= 16 else 0
            contributions = self.contributions(features, num_threads=threads)
        if label is None or attributes is None:
            info = self.dataset
            label = info.label if label is None else label
            attributes = info.attributes if attributes is None else attributes
        names = self.feature_names
        values = contributions[:, :-1]
        base = contributions[:, -1]
        raw = contributions.sum(axis=1)
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
        columns = {name: features[name].tolist() for name in {names[j] for j in order.ravel()}}
        out = []
        for i in range(len(features)):
            reasons: list[Reason] = []
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

    # -- serialisation -------------------------------------------------------------------
    def to_parts(self) -> tuple[str, dict[str, Any]]:
        """The booster as LightGBM text and everything else as a JSON-able dict."""
        meta = {
            "feature_names": self.feature_names,
            "categories": self.categories,
            "calibration": self.calibration,
            "thresholds": self.thresholds,
            "metadata": self.metadata,
            "feature_definitions": self.definitions,
        }
        return self.booster.model_to_string(), json.loads(json.dumps(meta, default=str))

    @classmethod
    def from_parts(cls, booster_text: str, meta: dict[str, Any]) -> ScoringModel:
        return cls(
            booster=lgb.Booster(model_str=booster_text),
            feature_names=list(meta["feature_names"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            calibration=dict(meta.get("calibration", {"a": 1.0, "b": 0.0})),
            thresholds=dict(meta.get("thresholds", {})),
            metadata=dict(meta.get("metadata", {})),
            definitions=int(meta.get("feature_definitions", 1)),
        )

    def definitions_problem(self) -> str | None:
        """Why this model cannot score the features this code computes, or None: it was
        trained on other feature definitions (the same names meant something else)."""
        if self.definitions == catalog.DEFINITIONS:
            return None
        return (
            f"trained on feature definitions {self.definitions}, this code computes "
            f"definitions {catalog.DEFINITIONS} (features.catalog.DEFINITIONS says what "
            "changed: the same feature names mean other values); retrain it (cargorisk "
            "retrain, or train and promote)"
        )

    def input_example(self, features: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
        """A few feature rows as a caller of the logged model sends them: the model's
        columns, categoricals as strings (missing as None), numerics as float."""
        sample = features[self.feature_names].head(rows)
        out: dict[str, Any] = {}
        for name in self.feature_names:
            col = sample[name]
            if name in self.categories:
                out[name] = [None if _missing(v) else str(v) for v in col.tolist()]
            else:
                out[name] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(out)


def reason_sentence(
    name: str,
    value: Any,
    *,
    label: LabelMeaning | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> str:
    """The catalog's sentence for one feature value, in the words of the model's label and
    attributes (a feature the catalog does not know is said as ``name = value``)."""
    try:
        return catalog.reason_text(name, value, label=label, attributes=attributes)
    except KeyError:
        return f"{name} = {value}"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> float | str | None:
    """A feature value as JSON: numbers as float, missing as None, categories as text."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return float(bool(value))
    if isinstance(value, (np.integer, int)):
        return float(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    return str(value)
