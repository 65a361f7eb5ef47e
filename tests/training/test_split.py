"""The temporal split never lets a training row come after a validation or test row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import CargoriskError
from training.split import temporal_split


def _times(days: int, per_day: int = 7, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01")
    offsets = rng.integers(0, days * 86_400, size=days * per_day)
    return pd.Series(start + pd.to_timedelta(offsets, unit="s")).sample(frac=1, random_state=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"test_days": 5},
        {"test_days": 4, "valid_days": 6},
        {"valid_from": "2026-01-20", "test_from": "2026-01-27"},
    ],
)
def test_periods_are_ordered_disjoint_and_complete(kwargs):
    times = _times(40)
    split = temporal_split(times, **kwargs)
    masks = np.stack([split.train, split.valid, split.test]).astype(int)
    assert (masks.sum(axis=0) == 1).all()  # every shipment in exactly one period
    values = times.to_numpy()
    assert values[split.train].max() < values[split.valid].min()
    assert values[split.valid].max() < values[split.test].min()
    assert values[split.train].max() < split.valid_from.to_datetime64()
    assert values[split.test].min() >= split.test_from.to_datetime64()
    # boundaries are midnights
    assert split.valid_from == split.valid_from.normalize()


def test_no_leak_for_shipments_on_the_boundary_day():
    times = pd.Series(
        pd.to_datetime(
            [
                "2026-01-01 10:00",
                "2026-01-02 00:00",
                "2026-01-02 23:59",
                "2026-01-03 00:00",
                "2026-01-03 12:00",
            ]
        )
    )
    split = temporal_split(times, valid_from="2026-01-02", test_from="2026-01-03")
    assert split.train.tolist() == [True, False, False, False, False]
    assert split.valid.tolist() == [False, True, True, False, False]
    assert split.test.tolist() == [False, False, False, True, True]


def test_test_days_counts_back_from_last_day():
    split = temporal_split(_times(30), test_days=7)
    assert split.test_from == pd.Timestamp("2026-01-24")
    assert split.valid_from == pd.Timestamp("2026-01-17")
    assert split.period("test")["from"] == "2026-01-24T00:00:00"


def test_single_day_is_a_clear_error():
    times = pd.Series(pd.to_datetime(["2026-03-01 01:00", "2026-03-01 20:00"]))
    with pytest.raises(CargoriskError, match="1 day"):
        temporal_split(times)


def test_empty_and_bad_boundaries():
    with pytest.raises(CargoriskError, match="no shipments"):
        temporal_split(pd.Series([], dtype="datetime64[ns]"))
    with pytest.raises(CargoriskError, match="both"):
        temporal_split(_times(20), valid_from="2026-01-05")
    with pytest.raises(CargoriskError, match="boundaries"):
        temporal_split(_times(20), valid_from="2026-01-15", test_from="2026-01-10")
    with pytest.raises(CargoriskError, match="not a date"):
        temporal_split(_times(20), valid_from="soon", test_from="later")
