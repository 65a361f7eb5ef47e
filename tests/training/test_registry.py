"""A model round-trips through the MLflow registry and scores identically; gate decisions."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from cargorisk.settings import load_settings
from features.errors import CargoriskError
from training import registry
from training.config import GateConfig, TrainConfig
from training.jobs import gate_decision
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
        info = registry.log_scoring_model(
            model, registry.input_example(model, features), settings.model_name
        )
    assert int(info.registered_model_version) == 1
    assert (home / "mlruns" / "mlflow.db").is_file()
    assert (home / "mlruns" / "artifacts").is_dir()  # embedded artifacts under home
    loaded = registry.load_scoring_model(f"models:/{settings.model_name}/1")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_array_equal(
        loaded.contributions(features).to_numpy(), model.contributions(features).to_numpy()
    )
    assert loaded.categories == model.categories and loaded.thresholds == model.thresholds
    # the pyfunc flavour (what `mlflow models serve` would run) agrees too
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/1")
    example = registry.input_example(model, features.head(50), rows=50)
    np.testing.assert_allclose(pyfunc.predict(example), model.predict(features.head(50)))

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
