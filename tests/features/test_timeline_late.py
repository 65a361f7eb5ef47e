"""Late (out-of-order) events in a Timeline with running sums keep every answer exact."""

import random

import pytest

from features.history import Timeline


def test_late_events_keep_counts_and_sums_exact():
    rng = random.Random(7)
    events = [(rng.randrange(0, 1000), rng.uniform(-3, 3)) for _ in range(300)]
    timeline = Timeline(with_sums=True)
    for t, v in events:  # arbitrary order: most adds are late inserts
        timeline.add(t, v)
    assert list(timeline.times) == sorted(t for t, _ in events)
    assert len(timeline.sums) == len(events) + 1
    for before in range(-1, 1002, 7):
        expected = sum(v for t, v in events if t < before)
        assert timeline.count(before) == sum(t < before for t, _ in events)
        assert timeline.total(before) == pytest.approx(expected, abs=1e-9)
