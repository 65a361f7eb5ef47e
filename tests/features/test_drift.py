"""PSI, unseen and missing shares on tiny frames (features/drift.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features.drift import (
    ALL_STREAMS,
    EPSILON,
    SCORE,
    Thresholds,
    alerts,
    build_reference,
    compare,
    drift_table,
    iso_week,
    levels,
    psi,
    split_points,
)


def test_psi_by_hand():
    # 0.5/0.5 against 0.9/0.1: (0.4 ln 1.8) + (-0.4 ln 0.2)
    expected = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(expected)
    assert psi(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0


def test_psi_empty_bin_counts_as_epsilon():
    value = psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    assert value == pytest.approx(
        (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    )
    with pytest.raises(ValueError, match="3 reference bins against 2"):
        psi(np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.5]))


def _reference(frame, streams, scores=None):
    return build_reference(
        frame, streams, ["weight", "port"], ["port"], scores=scores, window={"from": "x"}
    )


def test_numeric_reference_quantile_bins_and_missing():
    frame = pd.DataFrame({"weight": [1.0, 2, 3, 4, np.nan] * 20, "port": ["A"] * 100})
    ref = _reference(frame, ["sea"] * 100)
    entry = ref["streams"]["sea"]["features"]["weight"]
    assert entry["kind"] == "numeric"
    assert entry["missing"] == pytest.approx(0.2)
    assert sum(entry["shares"]) + entry["missing"] == pytest.approx(1.0)
    # the same values again: no drift; JSON round trip keeps it usable
    again = compare(frame["weight"], json.loads(json.dumps(entry)))
    assert again.psi == pytest.approx(0.0)
    assert again.missing_share == pytest.approx(0.2)
    assert math.isnan(again.unseen_share)


def test_numeric_shift_raises_psi():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"weight": rng.normal(0, 1, 2000), "port": ["A"] * 2000})
    entry = _reference(frame, ["sea"] * 2000)["streams"]["sea"]["features"]["weight"]
    same = compare(pd.Series(rng.normal(0, 1, 2000)), entry)
    moved = compare(pd.Series(rng.normal(1, 1, 2000)), entry)
    assert same.psi < 0.05
    assert moved.psi > 0.5


def test_categorical_unseen_and_other_bin():
    frame = pd.DataFrame({"weight": [1.0] * 100, "port": ["A"] * 60 + ["B"] * 30 + [None] * 10})
    entry = _reference(frame, ["sea"] * 100)["streams"]["sea"]["features"]["port"]
    assert entry["unseen"] is None  # no vocabulary given
    assert entry["categories"] == ["A", "B"]
    assert entry["shares"] == pytest.approx([0.6, 0.3])
    assert entry["other"] == 0.0
    assert entry["missing"] == pytest.approx(0.1)
    served = pd.Series(["A"] * 40 + ["C"] * 40 + [None] * 20)
    d = compare(served, entry, vocabulary={"A", "B"})
    assert d.unseen_share == pytest.approx(0.4)
    assert math.isnan(d.unseen_reference)
    assert d.missing_share == pytest.approx(0.2)
    # bins A, B, other, missing: 0.6/0.3/0/0.1 -> 0.4/0/0.4/0.2
    by_hand = psi(np.array([0.6, 0.3, 0.0, 0.1]), np.array([0.4, 0.0, 0.4, 0.2]))
    assert d.psi == pytest.approx(by_hand)


def test_too_few_rows_give_no_psi():
    frame = pd.DataFrame({"weight": [1.0, 2.0] * 50, "port": ["A"] * 100})
    entry = _reference(frame, ["sea"] * 100)["streams"]["sea"]["features"]["weight"]
    assert math.isnan(compare(pd.Series([5.0] * 10), entry).psi)


def test_drift_table_per_stream_and_week_with_score():
    frame = pd.DataFrame(
        {"weight": [1.0, 2.0] * 100, "port": ["A"] * 100 + ["B"] * 100},
    )
    streams = ["sea"] * 100 + ["air"] * 100
    ref = _reference(frame, streams, scores=np.linspace(0, 1, 200))
    assert set(ref["streams"]) == {"sea", "air", ALL_STREAMS}
    served = pd.DataFrame({"weight": [1.0, 2.0] * 60, "port": ["B"] * 60 + ["B"] * 60})
    weeks = ["2026-W47"] * 60 + ["2026-W48"] * 60
    table = drift_table(
        served,
        ref,
        streams=["sea"] * 120,
        groups=weeks,
        scores=np.full(120, 0.5),
        categories={"port": ["A", "B"]},
    )
    assert set(table["feature"]) == {"weight", "port", SCORE}
    assert set(table["week"]) == {"2026-W47", "2026-W48"}
    port = table[table["feature"] == "port"]
    # sea learned only "A": all "B" is a large shift, but B is a known category
    assert (port["psi"] > 1).all()
    assert (port["unseen_share"] == 0).all()
    weight = table[table["feature"] == "weight"]
    assert weight["psi"].to_numpy() == pytest.approx([0.0, 0.0])
    # a stream the reference does not know is compared with all streams
    other = drift_table(served, ref, streams=["rail"] * 120, groups=["w"] * 120)
    assert set(other["stream"]) == {"rail"}
    assert len(other) == 2  # no scores given: no score row


def test_levels_and_alerts():
    table = pd.DataFrame(
        {
            "stream": ["sea"] * 5,
            "week": ["w"] * 5,
            "feature": ["a", "b", "c", "d", "e"],
            "rows": [100, 100, 100, 100, 10],
            "psi": [0.05, 0.15, 0.4, 0.01, 0.9],
            "missing_share": [0.0, 0.0, 0.0, 0.5, 0.0],
            "missing_reference": [0.0, 0.0, 0.0, 0.1, 0.0],
            "unseen_share": [0.2, np.nan, np.nan, 0.3, np.nan],
            "unseen_reference": [0.1, np.nan, np.nan, 0.29, np.nan],
        }
    )
    t = Thresholds()
    assert levels(table, t).tolist() == ["alert", "warn", "alert", "alert", "ok"]
    found = alerts(table, t)
    assert [a["feature"] for a in found] == ["c", "a", "d", "b"]
    # a: 10 points more values unknown to the model than in training; d: 1 point more
    assert found[1]["why"] == "20.0% categories unknown to the model (training 10.0%)"
    assert found[2]["why"] == "missing 50.0% (training 10.0%)"


def test_iso_week():
    weeks = iso_week(pd.Series(pd.to_datetime(["2026-11-29", "2026-11-30", "2027-01-01"])))
    assert weeks.tolist() == ["2026-W48", "2026-W49", "2026-W53"]


def test_reference_refuses_missing_columns():
    with pytest.raises(KeyError, match="weight"):
        build_reference(pd.DataFrame({"port": ["A"]}), ["sea"], ["weight"], [])


def test_reference_records_the_training_share_outside_the_vocabulary():
    frame = pd.DataFrame({"weight": [1.0] * 100, "port": ["A"] * 80 + ["Z"] * 20})
    ref = build_reference(frame, ["sea"] * 100, ["weight", "port"], {"port": ["A"]})
    entry = ref["streams"]["sea"]["features"]["port"]
    assert entry["unseen"] == pytest.approx(0.2)
    d = compare(pd.Series(["A"] * 50 + ["Z"] * 50), entry, vocabulary=["A"])
    assert (d.unseen_share, d.unseen_reference) == (pytest.approx(0.5), pytest.approx(0.2))


def test_bins_at_the_models_split_points():
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 100, 2000)
    y = (x > 40).astype(float)
    unused = rng.normal(0, 1, 2000)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 3, "verbose": -1, "num_threads": 1},
        lgb.Dataset(np.column_stack([x, unused]), y),
        num_boost_round=3,
    )
    splits = split_points(booster.dump_model(), ["age", "noise"])
    assert splits["used"] == {"age"}
    assert splits["thresholds"]["noise"] == []
    assert all(35 < t < 45 for t in splits["thresholds"]["age"])
    frame = pd.DataFrame({"age": x, "noise": unused})
    ref = build_reference(frame, ["sea"] * 2000, ["age", "noise"], [], splits=splits)
    age = ref["streams"]["sea"]["features"]["age"]
    assert age["edges"] == splits["thresholds"]["age"] and age["watched"]
    assert ref["streams"]["sea"]["features"]["noise"]["watched"] is False
    # the old grow older (every age above the split + 60): no drift the model can see, where
    # quantile bins would alarm; a shift across the split is drift
    older = pd.Series(np.where(x > 45, x + 60, x))
    assert compare(older, age).psi < 0.01
    quantile = build_reference(frame, ["sea"] * 2000, ["age"], [])["streams"]["sea"]
    assert compare(older, quantile["features"]["age"]).psi > 1
    assert compare(pd.Series(rng.uniform(0, 30, 500)), age).psi > 0.5
    table = drift_table(frame.head(100), ref, streams=["sea"] * 100, groups=["w"] * 100)
    assert levels(table, Thresholds()).tolist() == ["ok", "unwatched"]
