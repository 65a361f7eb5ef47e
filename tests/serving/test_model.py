"""The champion is loaded from the MLflow registry exactly as training registers it."""

from __future__ import annotations

import numpy as np
import pytest

from common.settings import load_settings
from features.pipeline import build_training_frame
from serving.model import ModelHolder, ModelLoadError, load_champion
from tests.serving.helpers import register_model, tiny_history, train_tiny_model


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history(n=300)
    return ships, outs, train_tiny_model(ships, outs)


@pytest.mark.slow
def test_champion_round_trips_through_the_registry(home, world):
    ships, outs, model = world
    settings = load_settings()
    version = register_model(model, settings.tracking_uri, settings.model_name, home / "art")
    loaded = load_champion(settings.tracking_uri, settings.model_name)
    assert loaded.version == version and loaded.uri.endswith(f"/{version}")
    feats = build_training_frame(ships, outs).head(50)
    np.testing.assert_allclose(loaded.scoring.score(feats), model.score(feats))


def test_missing_champion_is_a_clear_error(home):
    settings = load_settings()
    with pytest.raises(ModelLoadError, match="no model cargorisk-risk@champion"):
        load_champion(settings.tracking_uri, settings.model_name)


def test_holder_keeps_the_old_model_when_a_load_fails(world):
    *_, model = world
    from serving.model import LoadedModel

    good = LoadedModel(model, "m", "1", "models:/m/1", None)
    results = iter([good, ModelLoadError("cannot load models:/m/2: bad file")])

    def loader():
        item = next(results)
        if isinstance(item, Exception):
            raise item
        return item

    holder = ModelHolder(loader)
    assert holder.load() == (True, "serving m version 1")
    ok, message = holder.load()
    assert not ok and "bad file" in message and "still serving version 1" in message
    assert holder.current.scoring is model and holder.current.version == "1"
    assert holder.last_error


def test_reasons_add_up_to_the_raw_score(world):
    ships, outs, model = world
    feats = build_training_frame(ships, outs).tail(20)
    items = model.explain(feats, all_contributions=True)
    raw = model.raw_score(feats)
    for item, expected in zip(items, raw, strict=True):
        total = item["base_value"] + sum(item["contributions"].values())
        assert total == pytest.approx(expected, abs=1e-9)
        assert item["raw_score"] == pytest.approx(expected, abs=1e-9)
        assert all(r["text"] for r in item["reasons"])


def test_the_matrix_encodes_as_lightgbm_does_for_a_categorical_frame(world):
    """Models fitted on pandas categorical frames (before the one encoder) score and explain
    through :meth:`ScoringModel.matrix` exactly as LightGBM scores their categorical frame,
    also for unseen categories, missing categoricals and missing numbers."""
    import lightgbm as lgb
    import pandas as pd

    from features.catalog import CATEGORICAL_FEATURES
    from features.scoring import ScoringModel

    ships, outs, model = world
    feats = build_training_frame(ships, outs)
    frame = pd.DataFrame(
        {
            n: (
                pd.Categorical(feats[n].astype("object"), categories=model.categories[n])
                if n in model.categories
                else feats[n].astype("float64")
            )
            for n in model.feature_names
        }
    )
    y = (np.arange(len(frame)) % 7 == 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(frame, y), num_boost_round=10)
    assert booster.pandas_categorical  # the old kind of booster
    old = ScoringModel.from_parts(
        booster.model_to_string(),
        {"feature_names": model.feature_names, "categories": model.categories},
    )
    rows = feats.tail(60).copy()
    rows.iloc[0, rows.columns.get_loc("origin_country")] = "ZZ"  # unseen
    rows.iloc[1, rows.columns.get_loc("container_type")] = None  # missing categorical
    numeric = [c for c in model.feature_names if c not in CATEGORICAL_FEATURES]
    rows.iloc[2, rows.columns.get_loc(numeric[0])] = np.nan
    reference = frame.tail(60).copy()
    reference.iloc[0, reference.columns.get_loc("origin_country")] = np.nan
    reference.iloc[1, reference.columns.get_loc("container_type")] = np.nan
    reference.iloc[2, reference.columns.get_loc(numeric[0])] = np.nan
    np.testing.assert_allclose(
        old.raw_score(rows, num_threads=1),
        booster.predict(reference, raw_score=True, num_threads=1),
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        old.contributions(rows, num_threads=1),
        booster.predict(reference, pred_contrib=True, num_threads=1),
        rtol=0,
        atol=1e-12,
    )


def test_unseen_and_missing_categories_score_alike(world):
    ships, outs, model = world
    row = build_training_frame(ships, outs).tail(1)
    unseen = row.assign(origin_country="ZZ")
    missing = row.assign(origin_country=None)
    assert model.score(unseen)[0] == model.score(missing)[0]


def test_loading_leaves_the_tracking_environment_alone(home, monkeypatch):
    """A load must not change MLFLOW_TRACKING_URI: the settings read it at every reload."""
    import os

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'other.db'}")
    with pytest.raises(ModelLoadError):
        load_champion(f"sqlite:///{home / 'mlflow.db'}", "cargorisk-risk")
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{home / 'other.db'}"


@pytest.mark.slow
def test_a_registry_set_elsewhere_in_the_process_is_not_used(home, world):
    """Training in the same process (or an inherited MLFLOW_REGISTRY_URI) points MLflow's
    process-wide registry elsewhere: the service still loads only from its own tracking URI."""
    import mlflow.tracking._model_registry.utils as registry

    *_, model = world
    other = f"sqlite:///{home / 'other.db'}"
    register_model(model, other, "cargorisk-risk", home / "art")
    registry._registry_uri = other  # what mlflow.set_registry_uri(other) leaves behind
    with pytest.raises(ModelLoadError, match="no model cargorisk-risk@champion"):
        load_champion(f"sqlite:///{home / 'mine.db'}", "cargorisk-risk")
    assert registry._registry_uri == other


@pytest.mark.slow
def test_a_champion_trained_on_other_feature_definitions_is_refused(home, world):
    """The seizure rates changed meaning under the same names (catalog.DEFINITIONS 2): a
    model logged before that records no definitions and would score the new values as if they
    were the old ones; the service refuses it and says to retrain."""
    from features import catalog
    from features.scoring import ScoringModel

    *_, model = world
    assert model.definitions == catalog.DEFINITIONS and model.definitions_problem() is None
    text, meta = model.to_parts()
    assert ScoringModel.from_parts(text, meta).definitions == catalog.DEFINITIONS
    meta.pop("feature_definitions")  # as logged before the version was recorded
    old = ScoringModel.from_parts(text, meta)
    assert old.definitions == 1
    assert "retrain" in (old.definitions_problem() or "")
    settings = load_settings()
    register_model(old, settings.tracking_uri, settings.model_name, home / "art")
    with pytest.raises(ModelLoadError, match=r"trained on feature definitions 1.*retrain"):
        load_champion(settings.tracking_uri, settings.model_name)
