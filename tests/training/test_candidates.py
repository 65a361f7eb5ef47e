"""The two candidates of a run: the full model (families selected) and the raw-columns
challenger; the registered one is never worse than the challenger on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contracts import AttributeSpec
from training.candidates import FeatureSet, feature_set, fit_candidates
from training.config import TrainConfig
from training.split import temporal_split
from training.train import prepare_fit

from .synthetic import frame

CONFIG = TrainConfig(num_boost_round=200, early_stopping_rounds=20, selection_min_positives=5)


def _world(raw_is_better: bool, seed: int = 0):
    """The synthetic frame with families: ``signal`` (manifest), ``route`` (rates), ten noise
    columns (history) and the raw columns ``raw_route`` / ``raw_code``. When
    ``raw_is_better``, the label also depends on a raw party code the other families do not
    see, so the challenger must win."""
    features, y = frame(n=9000, seed=seed)
    rng = np.random.default_rng(seed + 1)
    n = len(features)
    code = rng.choice([f"P{i}" for i in range(30)], n)
    if raw_is_better:
        bad = np.isin(code, ["P1", "P2", "P3"])
        y = np.where(bad & (rng.random(n) < 0.6), 1.0, np.where(bad, y, y * (rng.random(n) < 0.3)))
    noise = {f"noise_{i}": rng.normal(size=n) for i in range(10)}
    features = features.assign(raw_route=features["route"], raw_code=code, **noise)
    family = {
        "signal": "manifest",
        "route": "rates",
        **dict.fromkeys(noise, "history"),
        "raw_route": "raw",
        "raw_code": "raw",
    }
    fs = FeatureSet(
        names=list(family),
        categorical=["route", "raw_route", "raw_code"],
        family=family,
        version="test",
    )
    return features, y.astype(float), fs


def _fit(features, y, fs, config=CONFIG, **kwargs):
    split = temporal_split(features["declared_at"], test_days=6)
    data = prepare_fit(
        features, y, split, feature_names=fs.names, categorical=fs.categorical, config=config
    )
    return fit_candidates(data, features, split, fs, config=config, seed=7, capacity=0.05, **kwargs)


def test_full_model_registered_when_better_and_families_selected():
    features, y, fs = _world(raw_is_better=False)
    lines = []
    fitted = _fit(features, y, fs, progress=lines.append)
    assert fitted.challenger is not None and fitted.challenger.families == ("raw",)
    assert fitted.registered.valid.key >= fitted.challenger.valid.key
    assert fitted.selection is not None
    assert {d.family for d in fitted.selection.decisions} == {"manifest", "rates", "history"}
    assert "manifest" in fitted.full.families
    assert fitted.full.feature_names == fs.of(fitted.full.families)
    # selection: at most 2k fits, plus the challenger
    # each family set tried is the mean of selection_seeds fits; one more for the challenger
    seeds = CONFIG.selection_seeds
    assert fitted.fits == seeds * len(fitted.selection.fits) + 1 <= seeds * 2 * 3 + 1
    for c in (fitted.full, fitted.challenger):
        assert c.model is not None and c.model.feature_names == c.feature_names
        assert set(c.model.categories) == {n for n in c.feature_names if n in fs.categorical}
        assert set(c.model.thresholds) == {"high", "medium"}
    assert any("fit" in line and "raw_challenger" in line for line in lines)


def test_challenger_registered_when_better_on_validation():
    features, y, fs = _world(raw_is_better=True)
    fitted = _fit(features, y, fs)
    assert fitted.registered is fitted.challenger
    assert fitted.challenger.valid.key > fitted.full.valid.key
    assert "challenger is better on validation" in fitted.why


def test_switches_and_thin_validation():
    features, y, fs = _world(raw_is_better=False)
    plain = CONFIG.model_copy(update={"select_families": False, "challenger": False})
    fitted = _fit(features, y, fs, config=plain)
    assert fitted.fits == 1 and fitted.challenger is None and fitted.selection is None
    assert fitted.full.families == ("manifest", "rates", "history")
    assert fitted.registered is fitted.full and "no raw-columns challenger" in fitted.why
    thin = CONFIG.model_copy(update={"selection_min_positives": 10_000})
    lines = []
    fitted = _fit(features, y, fs, config=thin, progress=lines.append)
    assert fitted.selection is None and fitted.full.families == ("manifest", "rates", "history")
    assert any("family selection skipped" in line for line in lines)


def test_tuning_trains_the_final_full_model():
    features, y, fs = _world(raw_is_better=False)
    no_sel = CONFIG.model_copy(update={"select_families": False})
    trials = []
    fitted = _fit(
        features, y, fs, config=no_sel, tune_budget_s=600, tune_trials=3, on_trial=trials.append
    )
    assert fitted.tuning is not None and len(trials) == 3
    assert fitted.full.valid == fitted.tuning.best.score
    assert fitted.full.lightgbm == fitted.tuning.best.params
    assert fitted.fits == 1 + 1 + 3  # the untuned full model, the challenger, three trials


def test_feature_set_of_the_catalog_and_attributes():
    from features import catalog

    fs = feature_set(
        {
            "import_type": AttributeSpec(kind="categorical"),
            "tax_rate": AttributeSpec(kind="numeric"),
        }
    )
    assert fs.names[: len(catalog.FEATURE_NAMES)] == list(catalog.FEATURE_NAMES)
    assert fs.names[-2:] == ["attr.import_type", "attr.tax_rate"]
    assert "attr.import_type" in fs.categorical and "attr.tax_rate" not in fs.categorical
    assert fs.family["attr.tax_rate"] == "attributes"
    assert fs.of(["attributes"]) == ["attr.import_type", "attr.tax_rate"]
    assert set(fs.present(["manifest", "attributes", "nothing"])) == {"manifest", "attributes"}
    assert feature_set().version == fs.version  # attributes are not the catalog


@pytest.mark.parametrize("kind", ["full", "challenger"])
def test_each_candidate_scores_frames_with_only_its_columns(kind):
    features, y, fs = _world(raw_is_better=False)
    fitted = _fit(features, y, fs)
    candidate = fitted.full if kind == "full" else fitted.challenger
    subset = features[candidate.feature_names]
    assert np.allclose(candidate.model.score(subset), candidate.model.score(features))
    with pytest.raises(KeyError, match="lack columns"):
        candidate.model.score(pd.DataFrame(index=features.index[:2]))
