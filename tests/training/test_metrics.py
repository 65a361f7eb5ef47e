"""Capacity metrics on examples small enough to count by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    brier,
    capacity_curve,
    capacity_metrics,
    hits_at,
    lift_at,
    n_selected,
    precision_at,
    recall_at,
    reliability_curve,
)

# 10 shipments, 3 seizures; by score the order is s9 s8 ... s0
Y = [0, 0, 1, 0, 0, 0, 1, 0, 1, 0]
S = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
# ranked labels: s9=0, s8=1, s7=0, s6=1, s5=0, s4=0, s3=0, s2=1, s1=0, s0=0


def test_n_selected_rounds_up_and_never_zero():
    assert n_selected(10, 0.1) == 1
    assert n_selected(10, 0.25) == 3
    assert n_selected(1000, 0.01) == 10
    assert n_selected(5, 0.01) == 1
    assert n_selected(0, 0.5) == 0


def test_precision_recall_lift_by_hand():
    # top 20 % = 2 shipments: s9 (clean), s8 (seized) -> 1 hit
    assert precision_at(Y, S, 0.2) == pytest.approx(0.5)
    assert recall_at(Y, S, 0.2) == pytest.approx(1 / 3)
    assert lift_at(Y, S, 0.2) == pytest.approx(0.5 / 0.3)
    # top 40 % = 4: s9 s8 s7 s6 -> 2 hits
    assert precision_at(Y, S, 0.4) == pytest.approx(0.5)
    assert recall_at(Y, S, 0.4) == pytest.approx(2 / 3)
    # everything: precision = base rate, recall = 1
    assert precision_at(Y, S, 1.0) == pytest.approx(0.3)
    assert recall_at(Y, S, 1.0) == pytest.approx(1.0)


def test_ties_share_hits_like_random_selection():
    # two shipments tie at the top with one seizure between them; capacity picks one -> 0.5 hit
    y = [1, 0, 0, 0]
    s = [1.0, 1.0, 0.0, 0.0]
    assert hits_at(y, s, 1) == pytest.approx(0.5)
    assert hits_at(y, s, 2) == pytest.approx(1.0)
    # three tied in the middle: top 2 = the sure one + 1 of 3 tied (1 of which is seized)
    y = [1, 1, 0, 0, 0]
    s = [0.9, 0.5, 0.5, 0.5, 0.1]
    assert hits_at(y, s, 2) == pytest.approx(1 + 1 / 3)


def test_constant_score_is_exactly_random_selection():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.07).astype(float)
    m = capacity_metrics(y, np.zeros(1000))
    for label in ("1pct", "2pct", "5pct", "10pct"):
        assert m[f"precision_at_{label}"] == pytest.approx(y.mean())
        assert m[f"lift_at_{label}"] == pytest.approx(1.0)
    assert m["recall_at_5pct"] == pytest.approx(0.05)
    assert m["roc_auc"] == 0.5
    assert m["pr_auc"] == pytest.approx(y.mean())


def test_capacity_metrics_keys_and_aucs():
    m = capacity_metrics(Y, S, probability=S)
    assert m["n_rows"] == 10 and m["n_positive"] == 3 and m["base_rate"] == pytest.approx(0.3)
    # ROC-AUC by hand: pairs (pos, neg) with pos scored higher. positives at 0.2, 0.6, 0.8;
    # negatives below 0.2: 2, below 0.6: 5, below 0.8: 6 -> 13 of 21
    assert m["roc_auc"] == pytest.approx(13 / 21)
    # average precision: hits at ranks 2, 4, 8 -> (1/2 + 2/4 + 3/8) / 3
    assert m["pr_auc"] == pytest.approx((0.5 + 0.5 + 0.375) / 3)
    assert m["brier"] == pytest.approx(np.mean((np.array(S) - np.array(Y)) ** 2))


def test_perfect_ranking():
    y = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    s = [0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert precision_at(y, s, 0.2) == 1.0
    assert recall_at(y, s, 0.2) == 1.0
    assert lift_at(y, s, 0.2) == pytest.approx(5.0)


def test_brier_and_reliability_by_hand():
    assert brier([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)
    curve = reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], bins=2)
    assert curve == [
        {"predicted": pytest.approx(0.15), "observed": 0.0, "count": 2},
        {"predicted": pytest.approx(0.8), "observed": 1.0, "count": 2},
    ]


def test_curve_matches_point_metrics():
    curve = capacity_curve(Y, S, [0.2, 0.4])
    assert curve[0]["precision"] == pytest.approx(precision_at(Y, S, 0.2))
    assert curve[1]["recall"] == pytest.approx(recall_at(Y, S, 0.4))


def test_no_positive_gives_nan_not_crash():
    m = capacity_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(m["recall_at_1pct"]) and math.isnan(m["roc_auc"])


def test_missing_labels_are_rejected():
    with pytest.raises(ValueError, match="labels contain missing"):
        precision_at([1, np.nan], [0.1, 0.2], 0.5)
