"""Bulk metric updates fill Prometheus exactly as one update per scored shipment would."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import SCORE_BUCKETS, observe_many


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    pairs = (line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    return {name: float(value) for name, value in pairs if "_created" not in name}


def test_bulk_observe_equals_observing_one_by_one():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [rng.uniform(0, 1, 5_000), np.array(SCORE_BUCKETS), [0.0, 1e-9, 1.0, 2.5]]
    )
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h_one = Histogram("score", "s", buckets=SCORE_BUCKETS, registry=one)
    h_bulk = Histogram("score", "s", buckets=SCORE_BUCKETS, registry=bulk)
    for v in values.tolist():
        h_one.observe(v)
    observe_many(h_bulk, values)
    observe_many(h_bulk, [])
    expected, got = _samples(one), _samples(bulk)
    assert expected.keys() == got.keys()
    for name, value in expected.items():  # counts exact; the sum to float rounding
        assert got[name] == pytest.approx(value, rel=1e-12), name
    assert got['score_bucket{le="+Inf"}'] == len(values) == 5016
    assert got['score_bucket{le="0.001"}'] == np.sum(values <= 0.001)


def test_bulk_observe_of_nan_fills_no_bucket_as_observe_does():
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h_one = Histogram("score", "s", buckets=SCORE_BUCKETS, registry=one)
    h_bulk = Histogram("score", "s", buckets=SCORE_BUCKETS, registry=bulk)
    values = [0.2, float("nan"), 0.7]
    for v in values:
        h_one.observe(v)
    observe_many(h_bulk, values)
    expected, got = _samples(one), _samples(bulk)
    assert {k: v for k, v in got.items() if "_sum" not in k} == {
        k: v for k, v in expected.items() if "_sum" not in k
    }
    assert got['score_bucket{le="+Inf"}'] == 2
