"""Fit the risk model: LightGBM on the training period, early stopping and calibration on the
validation period, band thresholds at the inspection capacity.

* Class imbalance: seizures are rare even among inspected shipments, so positives are
  up-weighted (``scale_pos_weight``, by default the square root of the negative/positive ratio).
  Ranking is what matters; the Platt calibration fitted afterwards on validation turns the
  weighted log-odds back into honest probabilities.
* Categorical features use LightGBM's native categorical splits on the vocabulary seen in the
  training period; the vocabulary travels inside the model artifact so serving encodes a
  category exactly as training did (an unseen value scores as missing).
* Determinism: ``seed`` from settings, ``deterministic=True``, fixed thread count, data in a
  fixed order (declaration time, then shipment id) - the same data and settings give the same
  booster, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.errors import CargoriskError
from features.scoring import ScoringModel
from training.config import TrainConfig
from training.metrics import n_selected
from training.split import TemporalSplit


@dataclass(frozen=True)
class FitInfo:
    """What the fit decided, for logging."""

    best_iteration: int
    scale_pos_weight: float
    n_train: int
    n_valid: int
    train_positives: int
    valid_positives: int


def vocabularies(features: pd.DataFrame, categorical: Sequence[str]) -> dict[str, list[str]]:
    """Sorted category values of each categorical feature as strings (missing excluded)."""
    out = {}
    for name in categorical:
        values = features[name].dropna().astype(str).unique().tolist()
        out[name] = sorted(values)
    return out


def encode(
    features: pd.DataFrame, feature_names: Sequence[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """The model input frame, built by the very code serving uses
    (:meth:`ScoringModel.prepare`), so training and scoring encode categories identically."""
    shell = ScoringModel(booster=None, feature_names=list(feature_names), categories=categories)
    return shell.prepare(features)


def platt(raw: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Platt scaling: probability = sigmoid(a * raw + b), fitted by (almost unpenalised)
    logistic regression on validation log-odds."""
    if len(np.unique(y)) < 2:
        return {"a": 1.0, "b": 0.0}
    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(np.asarray(raw, dtype=float).reshape(-1, 1), y.astype(int))
    return {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def capacity_thresholds(scores: np.ndarray, capacity: float) -> dict[str, float]:
    """Score cut-offs of the risk bands: ``high`` = the top ``capacity`` share of traffic,
    ``medium`` = the top three times that share."""
    ordered = np.sort(np.asarray(scores, dtype=float))[::-1]
    n = len(ordered)
    if n == 0:
        return {}
    high = ordered[n_selected(n, capacity) - 1]
    medium = ordered[n_selected(n, min(1.0, 3 * capacity)) - 1]
    return {"high": float(high), "medium": float(medium)}


def _pos_weight(y: np.ndarray, policy: str) -> float:
    pos = float(y.sum())
    neg = float(len(y) - pos)
    ratio = neg / pos if pos else 1.0
    return {"sqrt": ratio**0.5, "balanced": ratio, "none": 1.0}[policy]


def fit_model(
    features: pd.DataFrame,
    label: np.ndarray,
    split: TemporalSplit,
    *,
    feature_names: Sequence[str],
    categorical: Sequence[str],
    config: TrainConfig,
    seed: int,
    capacity: float,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[ScoringModel, FitInfo]:
    """Train on the labelled rows of the training period, stop early on the labelled rows of
    the validation period, calibrate on them, and set band thresholds on *all* validation-period
    shipments (serving ranks all traffic, not only what gets inspected).

    Raises :class:`CargoriskError` when a period has no positive label.
    """
    labelled = ~np.isnan(label)
    train_rows = split.train & labelled
    valid_rows = split.valid & labelled
    y_train, y_valid = label[train_rows], label[valid_rows]
    for name, y in (("training", y_train), ("validation", y_valid)):
        if len(y) == 0 or y.sum() == 0:
            raise CargoriskError(
                f"the {name} period has {int(y.sum()) if len(y) else 0} seizures among "
                f"{len(y)} labelled shipments; move the split (--valid-from/--test-from or "
                "--test-days) or use more days of data"
            )
        if y.sum() == len(y):
            raise CargoriskError(f"every labelled shipment of the {name} period is a seizure")

    categories = vocabularies(features.loc[train_rows], categorical)
    x_train = encode(features.loc[train_rows], feature_names, categories)
    x_valid = encode(features.loc[valid_rows], feature_names, categories)
    spw = _pos_weight(y_train, config.imbalance)
    params = {
        **config.lightgbm,
        "objective": "binary",
        "metric": config.stopping_metric,
        "scale_pos_weight": spw,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.num_threads,
        "verbosity": -1,
    }
    dtrain = lgb.Dataset(
        x_train, y_train, categorical_feature=list(categorical), free_raw_data=True
    )
    dvalid = lgb.Dataset(x_valid, y_valid, reference=dtrain)
    period = max(1, config.num_boost_round // 10)
    log: dict = {}

    def _progress(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration % period == 0 and env.evaluation_result_list:
            _, metric, value, _ = env.evaluation_result_list[0][:4]
            progress(f"  round {env.iteration:4d}  validation {metric} {value:.4f}")

    progress(
        f"training LightGBM on {len(y_train):,} labelled shipments "
        f"({int(y_train.sum()):,} seizures), validating on {len(y_valid):,}"
    )
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=config.num_boost_round,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(config.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(log),
            _progress,
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    # keep only the trees early stopping chose, so the artifact scores what was validated
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    progress(f"  best round {best}")

    model = ScoringModel(booster=booster, feature_names=list(feature_names), categories=categories)
    raw_valid = model.raw_score(features.loc[valid_rows], num_threads=config.num_threads)
    model.calibration = platt(raw_valid, y_valid)
    all_valid = model.predict(features.loc[split.valid], num_threads=config.num_threads)
    model.thresholds = capacity_thresholds(all_valid, capacity)
    info = FitInfo(
        best_iteration=int(best),
        scale_pos_weight=float(spw),
        n_train=len(y_train),
        n_valid=len(y_valid),
        train_positives=int(y_train.sum()),
        valid_positives=int(y_valid.sum()),
    )
    return model, info
