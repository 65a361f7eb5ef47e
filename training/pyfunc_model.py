"""MLflow "models from code" entry point for cargorisk models.

This file is copied *into* every logged model artifact (``python_model=<this file>``), so
whoever loads ``models:/<name>@champion`` (serving, ``mlflow models serve``, ``cargorisk
evaluate``) gets the same predict code without importing ``training``. The artifact carries
``booster.txt`` (LightGBM text) and ``scoring_meta.json`` (feature order, category
vocabularies, calibration, band thresholds, training window, metrics); see
:class:`features.scoring.ScoringModel`; and ``drift_reference.json``
(:func:`features.drift.build_reference`), read into ``drift_reference``.

``mlflow.pyfunc.load_model(uri).unwrap_python_model().scoring_model`` is the ScoringModel.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from features.scoring import ScoringModel


class CargoRiskModel(PythonModel):
    """Feature rows in (categoricals as strings), calibrated risk probabilities out."""

    def load_context(self, context) -> None:
        booster = Path(context.artifacts["booster"]).read_text(encoding="utf-8")
        meta = json.loads(Path(context.artifacts["meta"]).read_text(encoding="utf-8"))
        self.scoring_model = ScoringModel.from_parts(booster, meta)
        # the drift reference of the training window (models logged before it existed: None)
        reference = context.artifacts.get("drift_reference")
        self.drift_reference = (
            json.loads(Path(reference).read_text(encoding="utf-8")) if reference else None
        )

    def predict(self, context, model_input: pd.DataFrame, params=None):
        return self.scoring_model.predict(model_input)


mlflow.models.set_model(CargoRiskModel())
