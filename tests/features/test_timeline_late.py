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


@pytest.mark.parametrize("with_sums", [True, False])
def test_add_many_equals_adding_one_by_one(with_sums):
    rng = random.Random(11)
    one, many = Timeline(with_sums=with_sums), Timeline(with_sums=with_sums)
    for _ in range(40):  # batches: some entirely after what is held, most overlapping it
        start = rng.randrange(0, 2000)
        batch = sorted(
            (start + rng.randrange(0, 300), rng.uniform(-3, 3)) for _ in range(rng.randrange(0, 30))
        )
        for t, v in batch:
            one.add(t, v)
        many.add_many([t for t, _ in batch], [v for _, v in batch] if with_sums else None)
        assert list(many.times) == list(one.times)
        if with_sums:
            assert len(many.sums) == len(many.times) + 1
            for before in range(-1, 2400, 37):
                assert many.total(before) == pytest.approx(one.total(before), abs=1e-9)
