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
* Many fits, one encoding: family selection, the raw-columns challenger and tuning fit many
  boosters on column subsets of the same rows. :func:`prepare_fit` encodes the labelled
  training and validation rows once (the category vocabulary does not depend on which other
  columns a model uses); :func:`fit_booster` picks columns from it.
* The round cap (``num_boost_round``) is a safety net: early stopping on validation decides.
  A fit that runs to the cap without early stopping acting says so (:attr:`FitInfo.at_cap`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.errors import CargoriskError
from features.registry_contract import capacity_metric
from features.scoring import FeatureEncoder, ScoringModel
from training.config import TrainConfig
from training.metrics import capacity_metrics, n_selected
from training.split import TemporalSplit


@dataclass(frozen=True)
class FitInfo:
    """What one fit decided, for logging."""

    best_iteration: int
    scale_pos_weight: float
    n_train: int
    n_valid: int
    train_positives: int
    valid_positives: int
    at_cap: bool = False
    """Training reached ``num_boost_round`` without early stopping acting: the cap, not the
    validation data, chose the number of trees."""


@dataclass(frozen=True)
class ValidScore:
    """A model's quality on the labelled validation rows: precision at the inspection capacity
    first, average precision (PR-AUC) to break ties. Ordered: larger is better."""

    precision: float
    pr_auc: float

    @property
    def key(self) -> tuple[float, float]:
        """Sort key: compare two scores with ``a.key >= b.key`` (NaN - one class only -
        ranks below every real value)."""
        return (_or_low(self.precision), _or_low(self.pr_auc))

    def no_worse_than(self, other: ValidScore) -> bool:
        """At least as good on *both* measures. One more hit among a few dozen validation
        positives moves precision at capacity by a step while the ranking as a whole (average
        precision) may get worse: a family is judged on both, so noise in one alone does not
        decide."""
        mine, theirs = self.key, other.key
        return mine[0] >= theirs[0] and mine[1] >= theirs[1]

    def text(self, capacity: float) -> str:
        return f"precision@{capacity:.0%} {self.precision:.4f}, PR-AUC {self.pr_auc:.4f}"


def _or_low(value: float) -> float:
    return -1.0 if value != value else value


def valid_score(y: np.ndarray, score: np.ndarray, capacity: float) -> ValidScore:
    """:class:`ValidScore` of ``score`` (any monotone score: raw log-odds rank like the
    calibrated probability) on labels ``y``."""
    m = capacity_metrics(y, score, [capacity])
    return ValidScore(m[capacity_metric("precision", capacity)], m["pr_auc"])


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
    """The model input as a frame, by the very encoder every scorer uses
    (:class:`features.scoring.FeatureEncoder`): training fits on the codes serving scores
    with, so categories are encoded identically."""
    return FeatureEncoder(feature_names, categories).frame(features)


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


@dataclass
class FitData:
    """The labelled training and validation rows, encoded once for every fit of a run.

    ``x_train`` / ``x_valid`` hold every candidate feature (categoricals on the training-period
    vocabulary); a fit uses a subset of their columns."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_valid: pd.DataFrame
    y_valid: np.ndarray
    categories: dict[str, list[str]]
    scale_pos_weight: float


def prepare_fit(
    features: pd.DataFrame,
    label: np.ndarray,
    split: TemporalSplit,
    *,
    feature_names: Sequence[str],
    categorical: Sequence[str],
    config: TrainConfig,
) -> FitData:
    """Encode the labelled rows of the training and validation periods.

    Raises :class:`CargoriskError` when a period has no positive label (or only positives)."""
    labelled = ~np.isnan(label)
    train_rows = split.train & labelled
    valid_rows = split.valid & labelled
    y_train, y_valid = label[train_rows], label[valid_rows]
    for name, y in (("training", y_train), ("validation", y_valid)):
        if len(y) == 0 or y.sum() == 0:
            raise CargoriskError(
                f"the {name} period has {int(y.sum()) if len(y) else 0} positive labels among "
                f"{len(y)} labelled shipments; move the split (--valid-from/--test-from or "
                "--test-days) or use more days of data"
            )
        if y.sum() == len(y):
            raise CargoriskError(f"every labelled shipment of the {name} period is positive")
    categories = vocabularies(features.loc[train_rows], categorical)
    return FitData(
        x_train=encode(features.loc[train_rows], feature_names, categories),
        y_train=y_train,
        x_valid=encode(features.loc[valid_rows], feature_names, categories),
        y_valid=y_valid,
        categories=categories,
        scale_pos_weight=_pos_weight(y_train, config.imbalance),
    )


def fit_booster(
    data: FitData,
    feature_names: Sequence[str],
    *,
    config: TrainConfig,
    seed: int,
    lightgbm: dict | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[lgb.Booster, FitInfo]:
    """One LightGBM fit on the columns ``feature_names`` of ``data``: train on the labelled
    training rows, stop early on the labelled validation rows, keep only the trees early
    stopping chose. ``lightgbm`` overrides the configured hyper-parameters (tuning)."""
    names = list(feature_names)
    if not names:
        raise CargoriskError("a model needs at least one feature")
    categorical = [n for n in names if n in data.categories]
    params = {
        **config.lightgbm,
        **(lightgbm or {}),
        "objective": "binary",
        "metric": config.stopping_metric,
        "scale_pos_weight": data.scale_pos_weight,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.num_threads,
        "verbosity": -1,
    }
    dtrain = lgb.Dataset(
        data.x_train[names], data.y_train, categorical_feature=categorical, free_raw_data=True
    )
    dvalid = lgb.Dataset(data.x_valid[names], data.y_valid, reference=dtrain)
    period = max(1, min(100, config.num_boost_round // 10))

    def _progress(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration % period == 0 and env.evaluation_result_list:
            _, metric, value, _ = env.evaluation_result_list[0][:4]
            progress(f"  round {env.iteration:4d}  validation {metric} {value:.4f}")

    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=config.num_boost_round,
        valid_sets=[dvalid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False), _progress],
    )
    ran = booster.current_iteration()
    best = booster.best_iteration or ran
    # early stopping acted only if training stopped before the cap; reaching the cap means the
    # cap chose the trees (the validation metric may still have been improving)
    at_cap = ran >= config.num_boost_round and best > ran - config.early_stopping_rounds
    # keep only the trees early stopping chose, so the artifact scores what was validated
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    info = FitInfo(
        best_iteration=int(best),
        scale_pos_weight=float(data.scale_pos_weight),
        n_train=len(data.y_train),
        n_valid=len(data.y_valid),
        train_positives=int(data.y_train.sum()),
        valid_positives=int(data.y_valid.sum()),
        at_cap=bool(at_cap),
    )
    return booster, info


def validation_score(
    booster: lgb.Booster, data: FitData, feature_names: Sequence[str], capacity: float
) -> ValidScore:
    """The booster's :class:`ValidScore` on the labelled validation rows it stopped on."""
    raw = booster.predict(data.x_valid[list(feature_names)], raw_score=True, num_threads=1)
    return valid_score(data.y_valid, np.asarray(raw, dtype="float64"), capacity)


def finish_model(
    booster: lgb.Booster,
    feature_names: Sequence[str],
    data: FitData,
    features: pd.DataFrame,
    split: TemporalSplit,
    *,
    capacity: float,
    num_threads: int = 1,
) -> ScoringModel:
    """The scoring model of a fitted booster: Platt calibration on the labelled validation rows
    and band thresholds on *all* validation-period shipments (serving ranks all traffic, not
    only what gets inspected). Carries only its own features' vocabularies."""
    names = list(feature_names)
    categories = {n: data.categories[n] for n in names if n in data.categories}
    model = ScoringModel(booster=booster, feature_names=names, categories=categories)
    raw_valid = model.raw_score(data.x_valid[names].to_numpy(), num_threads=num_threads)
    model.calibration = platt(raw_valid, data.y_valid)
    all_valid = model.score(features.loc[split.valid], num_threads=num_threads)
    model.thresholds = capacity_thresholds(all_valid, capacity)
    return model


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
    """One model on ``feature_names``: :func:`prepare_fit`, :func:`fit_booster`,
    :func:`finish_model`.

    Raises :class:`CargoriskError` when a period has no positive label.
    """
    data = prepare_fit(
        features,
        label,
        split,
        feature_names=feature_names,
        categorical=categorical,
        config=config,
    )
    progress(
        f"training LightGBM on {len(data.y_train):,} labelled shipments "
        f"({int(data.y_train.sum()):,} positive), validating on {len(data.y_valid):,}"
    )
    booster, info = fit_booster(data, feature_names, config=config, seed=seed, progress=progress)
    progress(f"  best round {info.best_iteration}" + (" (at the round cap)" if info.at_cap else ""))
    model = finish_model(
        booster,
        feature_names,
        data,
        features,
        split,
        capacity=capacity,
        num_threads=config.num_threads,
    )
    return model, info
