"""Optuna under a time budget: budgets parse, the first trial is the configuration, the best
trial wins on validation, and the same seed proposes the same trials."""

from __future__ import annotations

import pytest

from features.errors import CargoriskError
from training.config import TrainConfig
from training.split import temporal_split
from training.train import prepare_fit
from training.tuning import SPACE, parse_budget, tune

from .synthetic import CATEGORICAL, NAMES, frame

CONFIG = TrainConfig(num_boost_round=150, early_stopping_rounds=15)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("1.5h", 5400), (" 2m ", 120)]
)
def test_budgets(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["10", "m", "-1m", "0s", "ten minutes", "5d", ""])
def test_bad_budget_names_the_option(text):
    with pytest.raises(CargoriskError, match="--tune"):
        parse_budget(text)


@pytest.fixture(scope="module")
def data():
    features, y = frame(n=4000, seed=2)
    split = temporal_split(features["declared_at"], test_days=6)
    return prepare_fit(
        features, y, split, feature_names=NAMES, categorical=CATEGORICAL, config=CONFIG
    )


def _search(data, seed=3, trials=4, on_trial=lambda _t: None):
    return tune(
        data,
        NAMES,
        config=CONFIG,
        seed=seed,
        capacity=0.05,
        budget_s=600,
        max_trials=trials,
        on_trial=on_trial,
    )


def test_search_starts_from_the_configuration_and_keeps_the_best(data):
    seen = []
    result = _search(data, on_trial=seen.append)
    assert [t.number for t in result.trials] == [0, 1, 2, 3] and seen == result.trials
    first = result.trials[0].params
    for name, value in CONFIG.lightgbm.items():
        if name in SPACE:
            assert first[name] == pytest.approx(value), name
    assert set(result.trials[1].params) == set(SPACE)
    assert result.best.score.key == max(t.score.key for t in result.trials)
    assert result.info.best_iteration == result.best.best_iteration
    assert result.booster.num_trees() == result.best.best_iteration


def test_same_seed_same_trials(data):
    a, b = _search(data, seed=5, trials=3), _search(data, seed=5, trials=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.score for t in a.trials] == [t.score for t in b.trials]
    assert a.booster.model_to_string() == b.booster.model_to_string()


def test_time_budget_stops_the_search(data):
    result = tune(data, NAMES, config=CONFIG, seed=1, capacity=0.05, budget_s=0.01)
    assert len(result.trials) == 1  # checked between trials: the first one always runs
    with pytest.raises(CargoriskError, match="--tune-trials"):
        tune(data, NAMES, config=CONFIG, seed=1, capacity=0.05, budget_s=1, max_trials=0)
