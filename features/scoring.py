"""The scoring model: everything needed to turn feature rows into risk scores and reasons.

A :class:`ScoringModel` is what training produces and serving loads (through the MLflow
registry; neither imports the other). It carries the LightGBM booster, the feature order, the
category vocabularies of categorical features (so a category unseen in training scores as
missing instead of shifting codes), the Platt calibration that turns raw scores into
probabilities, the score thresholds of the risk bands at the inspection capacity, and metadata
(training window, metrics). It is pure: serialising to/from text is here, file and registry I/O
belong to the callers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, DatasetInfo

BANDS = ("high", "medium", "low")
BIAS = "base_value"


@dataclass
class ScoringModel:
    booster: lgb.Booster
    feature_names: list[str]
    categories: dict[str, list[str]]
    calibration: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b": 0.0})
    thresholds: dict[str, float] = field(default_factory=dict)
    """Calibrated score at or above which a shipment is ``high`` / ``medium``."""
    metadata: dict[str, Any] = field(default_factory=dict)

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
    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's input frame: columns in training order, categoricals on the training
        vocabulary (unseen values become missing), numerics as float."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise KeyError(f"feature rows lack columns: {', '.join(missing)}")
        out = {}
        for name in self.feature_names:
            col = features[name]
            if name in self.categories:
                values = col.astype("object").where(col.notna(), None)
                out[name] = pd.Categorical(values, categories=self.categories[name])
            else:
                out[name] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(out, index=features.index)

    # -- scores --------------------------------------------------------------------------
    def raw_score(self, features: pd.DataFrame, *, num_threads: int = 0) -> np.ndarray:
        """Log-odds from the booster (the space SHAP contributions add up in)."""
        frame = self.prepare(features)
        return self.booster.predict(frame, raw_score=True, num_threads=num_threads)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibration["a"], self.calibration["b"]
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(raw, dtype=float) + b)))

    def predict(self, features: pd.DataFrame, *, num_threads: int = 0) -> np.ndarray:
        """Calibrated probability that the shipment would be found to carry narcotics if
        inspected."""
        return self.calibrate(self.raw_score(features, num_threads=num_threads))

    def band(self, scores: np.ndarray) -> np.ndarray:
        """``high`` / ``medium`` / ``low`` by the capacity thresholds."""
        scores = np.asarray(scores, dtype=float)
        high = self.thresholds.get("high", np.inf)
        medium = self.thresholds.get("medium", np.inf)
        return np.where(scores >= high, "high", np.where(scores >= medium, "medium", "low"))

    def contributions(self, features: pd.DataFrame, *, num_threads: int = 0) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds (``pred_contrib``), one column per feature
        plus ``base_value``; each row sums to :meth:`raw_score`."""
        frame = self.prepare(features)
        values = self.booster.predict(frame, pred_contrib=True, num_threads=num_threads)
        return pd.DataFrame(values, index=features.index, columns=[*self.feature_names, BIAS])

    # -- serialisation -------------------------------------------------------------------
    def to_parts(self) -> tuple[str, dict[str, Any]]:
        """The booster as LightGBM text and everything else as a JSON-able dict."""
        meta = {
            "feature_names": self.feature_names,
            "categories": self.categories,
            "calibration": self.calibration,
            "thresholds": self.thresholds,
            "metadata": self.metadata,
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
        )
