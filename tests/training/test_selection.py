"""Family selection: backward elimination on validation, bounded in fits, one decision per
family; on real LightGBM fits a family of pure noise goes and the signal stays."""

from __future__ import annotations

import numpy as np
import pytest

from training.selection import select_families
from training.train import ValidScore

from .synthetic import frame


def _table(scores: dict[frozenset, float]):
    """An evaluate() from a table of family set -> precision (PR-AUC = precision / 2), counting
    its calls."""
    calls: list[tuple[str, ...]] = []

    def evaluate(families: tuple[str, ...]) -> ValidScore:
        calls.append(families)
        p = scores[frozenset(families)]
        return ValidScore(p, p / 2)

    return evaluate, calls


def test_a_family_that_helps_stays_and_one_that_does_not_goes():
    scores = {
        frozenset({"manifest", "history", "rates"}): 0.50,
        frozenset({"history", "rates"}): 0.30,  # without manifest: worse -> manifest stays
        frozenset({"manifest", "rates"}): 0.55,  # without history: better -> candidate
        frozenset({"manifest", "history"}): 0.50,  # without rates: equal -> candidate
        frozenset({"manifest"}): 0.56,
    }
    evaluate, calls = _table(scores)
    selection = select_families(["manifest", "history", "rates"], evaluate)
    assert selection.kept == ("manifest",)
    assert selection.score == ValidScore(0.56, 0.28)
    decisions = {d.family: d for d in selection.decisions}
    assert [d.family for d in selection.decisions] == ["manifest", "history", "rates"]
    assert decisions["manifest"].kept and decisions["manifest"].without_family.precision == 0.30
    # history helped most when removed, so it went first (from all three); then rates from
    # {manifest, rates}: 0.56 >= 0.55, not worse -> dropped
    assert not decisions["history"].kept
    assert decisions["history"].judged_in == ("manifest", "history", "rates")
    assert not decisions["rates"].kept
    assert decisions["rates"].judged_in == ("manifest", "rates")
    assert decisions["rates"].with_family.precision == 0.55
    # 1 + k fits, then one more (the first removal was already known): each set fitted once
    assert len(calls) == len(set(calls)) == 5 == len(selection.fits)


def test_removal_that_is_only_good_alone_is_undone_in_the_running_set():
    scores = {
        frozenset({"a", "b", "c"}): 0.50,
        frozenset({"b", "c"}): 0.52,  # a alone removable
        frozenset({"a", "c"}): 0.51,  # b alone removable
        frozenset({"a", "b"}): 0.40,  # c needed
        frozenset({"c"}): 0.45,  # but a and b together are needed: b stays
    }
    evaluate, calls = _table(scores)
    selection = select_families(["a", "b", "c"], evaluate)
    assert selection.kept == ("b", "c")
    kept = {d.family: d.kept for d in selection.decisions}
    assert kept == {"a": False, "b": True, "c": True}
    assert len(calls) == 5


def test_fits_are_bounded_by_twice_the_families():
    families = ["manifest", "rates", "history", "change", "network", "attributes"]
    evaluate_calls = []

    def evaluate(subset):  # every removal is harmless: the worst case for the number of fits
        evaluate_calls.append(subset)
        return ValidScore(0.5, 0.5)

    selection = select_families(families, evaluate)
    assert len(selection.kept) == 1  # at least one family always stays
    assert len(evaluate_calls) <= 2 * len(families)
    last = next(d for d in selection.decisions if d.family == selection.kept[0])
    assert last.kept and last.without_family.precision != last.without_family.precision  # NaN


def test_ties_are_broken_by_average_precision_and_nan_ranks_last():
    def evaluate(subset):
        return {
            ("x", "y"): ValidScore(0.5, 0.40),
            ("y",): ValidScore(0.5, 0.45),  # same precision, better PR-AUC without x
            ("x",): ValidScore(float("nan"), float("nan")),
        }[subset]

    selection = select_families(["x", "y"], evaluate)
    assert selection.kept == ("y",)
    assert ValidScore(0.1, 0.1).key > ValidScore(float("nan"), 0.9).key


def test_single_family_is_one_fit_and_bad_input():
    evaluate, calls = _table({frozenset({"manifest"}): 0.3})
    selection = select_families(["manifest"], evaluate)
    assert selection.kept == ("manifest",) and len(calls) == 1
    with pytest.raises(ValueError, match="no feature family"):
        select_families([], evaluate)


def test_report_forms():
    evaluate, _ = _table({frozenset({"a", "b"}): 0.5, frozenset({"a"}): 0.6, frozenset({"b"}): 0.1})
    selection = select_families(["a", "b"], evaluate)
    data = selection.as_dict(0.05)
    assert data["kept"] == ["a"] and data["dropped"] == ["b"] and len(data["fits"]) == 3
    md = selection.markdown(0.05)
    assert "| b | 0.5000 / 0.2500 | 0.6000 / 0.3000 | dropped |" in md
    assert "Fits: 3" in md


def test_real_fits_drop_a_family_of_noise():
    """LightGBM on the synthetic frame: the signal family stays, twenty noise columns go."""
    from training.config import TrainConfig
    from training.split import temporal_split
    from training.train import ValidScore, fit_booster, prepare_fit, validation_score

    features, y = frame(n=8000, seed=4)
    rng = np.random.default_rng(5)
    noise = {f"noise_{i}": rng.normal(size=len(features)) for i in range(20)}
    features = features.assign(**noise)
    family = {"signal": "manifest", "route": "manifest", **dict.fromkeys(noise, "history")}
    split = temporal_split(features["declared_at"], test_days=6)
    config = TrainConfig(num_boost_round=200, early_stopping_rounds=20)
    data = prepare_fit(
        features, y, split, feature_names=list(family), categorical=["route"], config=config
    )

    def evaluate(families):
        """As training does: the mean of three fits (seeds), since one fit's noise is as large
        as twenty noise columns' effect (one seed alone keeps them half the time)."""
        names = [n for n in family if family[n] in families]
        scores = []
        for seed in (1, 2, 3):
            booster, _ = fit_booster(data, names, config=config, seed=seed)
            scores.append(validation_score(booster, data, names, 0.05))
        return ValidScore(
            float(np.mean([s.precision for s in scores])),
            float(np.mean([s.pr_auc for s in scores])),
        )

    selection = select_families(["manifest", "history"], evaluate)
    assert selection.kept == ("manifest",)
    assert {d.family: d.kept for d in selection.decisions} == {"manifest": True, "history": False}
