"""A model round-trips through the MLflow registry and scores identically; gate decisions."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from common.settings import load_settings
from features.errors import CargoriskError
from training import registry
from training.config import GateConfig, TrainConfig
from training.jobs.promote import gate_decision
from training.split import temporal_split
from training.train import fit_model

from .synthetic import CATEGORICAL, NAMES, frame


@pytest.fixture
def fitted():
    features, y = frame(n=3000)
    split = temporal_split(features["declared_at"], test_days=6)
    model, _ = fit_model(
        features,
        y,
        split,
        feature_names=NAMES,
        categorical=CATEGORICAL,
        config=TrainConfig(num_boost_round=60),
        seed=1,
        capacity=0.05,
    )
    model.metadata = {"test_period": split.period("test")}
    return model, features


def test_round_trip_scores_identically(home, fitted):
    model, features = fitted
    settings = load_settings()
    registry.configure(settings)
    experiment_id = registry.ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id):
        info = registry.log_scoring_model(model, model.input_example(features), settings.model_name)
    assert int(info.registered_model_version) == 1
    assert (home / "mlruns" / "mlflow.db").is_file()
    assert (home / "mlruns" / "artifacts").is_dir()  # embedded artifacts under home
    loaded = registry.load_scoring_model(f"models:/{settings.model_name}/1")
    np.testing.assert_array_equal(loaded.score(features), model.score(features))
    np.testing.assert_array_equal(loaded.contributions(features), model.contributions(features))
    assert loaded.categories == model.categories and loaded.thresholds == model.thresholds
    # the pyfunc flavour (what `mlflow models serve` would run) agrees too
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/1")
    example = model.input_example(features.head(50), rows=50)
    np.testing.assert_allclose(pyfunc.predict(example), model.score(features.head(50)))

    assert registry.champion_version(settings) is None
    registry.set_champion(settings, 1, {"reason": "test"})
    assert registry.champion_version(settings) == 1
    versions = registry.list_versions(settings)
    assert versions[0].aliases == ["champion"] and "gate" in versions[0].tags


def test_unknown_version_is_a_clear_error(home):
    settings = load_settings()
    registry.configure(settings)
    with pytest.raises(CargoriskError, match="no registered version"):
        registry.latest_version(settings)
    with pytest.raises(CargoriskError, match="cannot load model"):
        registry.load_scoring_model(f"models:/{settings.model_name}/9")


def test_resolve_model_uri():
    settings = load_settings(model_name="m")
    assert registry.resolve_model_uri(settings, None) == "models:/m@champion"
    assert registry.resolve_model_uri(settings, "3") == "models:/m/3"
    assert registry.resolve_model_uri(settings, "staging") == "models:/m@staging"
    assert registry.resolve_model_uri(settings, "runs:/abc/model") == "runs:/abc/model"


def _m(p, auc=0.5):
    return {"precision_at_capacity": p, "recall_at_capacity": 0.0, "pr_auc": auc}


def test_gate_refuses_worse_and_accepts_better():
    config = TrainConfig()
    assert gate_decision(_m(0.30), _m(0.25), _m(0.10), config)[0] is True
    passed, why = gate_decision(_m(0.20), _m(0.25), _m(0.10), config)
    assert passed is False and "does not beat champion" in why
    # tie at capacity: PR-AUC decides
    assert gate_decision(_m(0.25, 0.4), _m(0.25, 0.3), _m(0.1), config)[0] is True
    assert gate_decision(_m(0.25, 0.3), _m(0.25, 0.3), _m(0.1), config)[0] is False
    # a first champion must still beat the rules baseline
    assert gate_decision(_m(0.30), None, _m(0.10), config)[0] is True
    passed, why = gate_decision(_m(0.10), None, _m(0.12), config)
    assert passed is False and "rules baseline" in why
    # a minimum gain
    strict = TrainConfig(gate=GateConfig(min_gain=0.02))
    assert gate_decision(_m(0.26), _m(0.25), _m(0.1), strict)[0] is False


def _g(p, interval, auc=0.5):
    return {**_m(p, auc), "precision_interval": list(interval)}


def test_wilson_interval():
    from training.metrics import wilson_interval

    low, high = wilson_interval(0, 8)
    assert low == 0 and high == pytest.approx(0.3244, abs=1e-3)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow = wilson_interval(500, 1000)
    assert narrow[1] - narrow[0] < 0.07


def test_gate_with_little_evidence_says_so_and_uses_intervals():
    config = TrainConfig()  # gate.min_seizures 10
    rules = _g(0.0, (0.0, 0.32))
    # the quickstart case: 1 seizure, everybody at precision 0 - a first model goes through
    passed, why = gate_decision(_g(0.0, (0.0, 0.32)), None, rules, config, positives=1)
    assert passed and "too little evidence" in why and "1 seizure " in why
    assert "first model of this registry" in why
    # ... unless it is clearly below the rules baseline
    passed, why = gate_decision(
        _g(0.0, (0.0, 0.30)), None, _g(0.5, (0.2, 0.8)), config, positives=4
    )
    assert not passed and "clearly below the rules baseline" in why
    # against a champion: not below it on the point estimates passes, below it stays out
    champion = _g(0.125, (0.02, 0.47), auc=0.3)
    ok = gate_decision(_g(0.125, (0.02, 0.47), 0.4), champion, rules, config, positives=3)
    assert ok[0] and "not below the champion" in ok[1]
    refused = gate_decision(_g(0.0, (0.0, 0.32)), champion, rules, config, positives=3)
    assert not refused[0] and "champion stays" in refused[1]
    clearly = gate_decision(_g(0.0, (0.0, 0.1)), _g(0.5, (0.2, 0.8)), rules, config, positives=5)
    assert not clearly[0] and "clearly below the champion" in clearly[1]
    # no positive at all: nothing to compare a champion with
    none = gate_decision(_g(0.0, (0.0, 0.32)), champion, rules, config, positives=0)
    assert not none[0] and "nothing to compare" in none[1]
    # the label's own noun
    _, why = gate_decision(rules, None, rules, config, positives=2, positive="fraud finding")
    assert "2 fraud findings" in why


def test_gate_stays_strict_with_evidence():
    config = TrainConfig()
    rules = _g(0.10, (0.05, 0.2))
    passed, why = gate_decision(_g(0.10, (0.05, 0.2)), None, rules, config, positives=10)
    assert not passed and "does not beat the rules baseline" in why
    passed, _ = gate_decision(
        _g(0.24, (0.1, 0.4)), _g(0.25, (0.1, 0.4)), rules, config, positives=40
    )
    assert not passed
    lenient = TrainConfig(gate=GateConfig(min_seizures=100))
    passed, why = gate_decision(_g(0.10, (0.05, 0.2)), None, rules, lenient, positives=40)
    assert passed and "gate.min_seizures 100" in why
