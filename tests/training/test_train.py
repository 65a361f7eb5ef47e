"""Fitting: learns the signal, deterministic under the seed, calibrated, thresholds at capacity."""

from __future__ import annotations

import numpy as np
import pytest

from features.errors import CargoriskError
from training.config import DEFAULT_CONFIG, TrainConfig, load_config
from training.metrics import precision_at
from training.split import temporal_split
from training.train import capacity_thresholds, fit_model

from .synthetic import CATEGORICAL, NAMES, frame

CONFIG = TrainConfig(num_boost_round=120, early_stopping_rounds=20)


def _fit(seed: int = 7, features=None, y=None):
    if features is None:
        features, y = frame()
    split = temporal_split(features["declared_at"], test_days=6)
    model, info = fit_model(
        features,
        y,
        split,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        config=CONFIG,
        seed=seed,
        capacity=0.05,
    )
    return model, info, split, features, y


def test_learns_signal_and_beats_random():
    model, info, split, features, y = _fit()
    test = split.test
    p = model.score(features.loc[test])
    assert precision_at(y[test], p, 0.05) > 3 * y[test].mean()
    assert info.best_iteration >= 1
    assert model.categories["route"] == ["risky", "safe", "usual"]


def test_deterministic_under_seed():
    a, *_ = _fit(seed=3)
    b, *_ = _fit(seed=3)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.calibration == b.calibration and a.thresholds == b.thresholds


def test_calibrated_probabilities_match_observed_rate():
    model, _, split, features, y = _fit()
    p = model.score(features.loc[split.test])
    assert abs(p.mean() - y[split.test].mean()) < 0.35 * y[split.test].mean()


def test_thresholds_cut_the_capacity_share_of_validation_traffic():
    model, _, split, features, _ = _fit()
    p = model.score(features.loc[split.valid])
    share_high = (p >= model.thresholds["high"]).mean()
    share_medium = (p >= model.thresholds["medium"]).mean()
    assert 0.05 <= share_high < 0.06
    assert 0.15 <= share_medium < 0.16


def test_capacity_thresholds_by_hand():
    scores = np.arange(100) / 100
    assert capacity_thresholds(scores, 0.05) == {"high": 0.95, "medium": 0.85}


def test_unseen_category_scores_as_missing():
    model, _, _, features, _ = _fit()
    row = features.head(1).copy()
    row_missing = row.assign(route=None)
    row_unseen = row.assign(route="never-seen-port")
    assert model.score(row_unseen)[0] == model.score(row_missing)[0]


def test_no_positive_in_training_period_is_a_clear_error():
    features, y = frame()
    y = y.copy()
    split = temporal_split(features["declared_at"], test_days=6)
    y[split.train] = 0
    with pytest.raises(CargoriskError, match="training period has 0 positive labels"):
        _fit(features=features, y=y)


def test_repository_config_is_the_documented_default():
    assert load_config(DEFAULT_CONFIG) == TrainConfig()


def test_bad_config_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_boost_round: -3\n")
    with pytest.raises(CargoriskError, match="num_boost_round"):
        load_config(path)
    path.write_text("lightgbm: {seed: 1}\n")
    with pytest.raises(CargoriskError, match=r"lightgbm\.seed"):
        load_config(path)
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(CargoriskError, match="learning_rate"):
        load_config(path)


def test_round_cap_is_reported_when_early_stopping_never_acts():
    from training.train import fit_booster, prepare_fit

    features, y = frame()
    split = temporal_split(features["declared_at"], test_days=6)
    capped = TrainConfig(num_boost_round=5, early_stopping_rounds=50)
    data = prepare_fit(
        features, y, split, feature_names=NAMES, categorical=CATEGORICAL, config=capped
    )
    _, info = fit_booster(data, NAMES, config=capped, seed=1)
    assert info.at_cap and info.best_iteration <= 5
    # a generous cap: early stopping decides long before it
    _, info = fit_booster(
        data, NAMES, config=CONFIG.model_copy(update={"num_boost_round": 5000}), seed=1
    )
    assert not info.at_cap and info.best_iteration < 5000 - CONFIG.early_stopping_rounds
    lines = []
    fit_model(
        features,
        y,
        split,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        config=capped,
        seed=1,
        capacity=0.05,
        progress=lines.append,
    )
    assert any("at the round cap" in line for line in lines)


def test_default_round_cap_is_a_safety_net():
    assert TrainConfig().num_boost_round == 5000
