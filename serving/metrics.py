"""Prometheus metrics of the scoring service: the score distribution, shipments per risk
band, scoring latency, outcomes received, reloads, and the drift gauges (set by
:class:`serving.drift.DriftMonitor` after each refresh, never on the scoring path).

``prometheus_client`` is imported on first use, not at import time: BentoML workers set
``PROMETHEUS_MULTIPROC_DIR`` after importing the service module, and metrics created before
that would never reach ``/metrics``. One set of metrics per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_METRICS: ServiceMetrics | None = None

SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)


@dataclass(frozen=True)
class ServiceMetrics:
    scores: Any
    bands: Any
    latency: Any
    outcomes: Any
    reloads: Any
    shed: Any
    drift_psi: Any
    drift_unseen: Any
    drift_missing: Any
    drift_level: Any

    def observe_scores(self, scores, bands) -> None:
        observe_many(self.scores, scores)
        values, counts = np.unique(np.asarray(bands, dtype=str), return_counts=True)
        for band, count in zip(values.tolist(), counts.tolist(), strict=True):
            self.bands.labels(band=band).inc(count)


def observe_many(histogram, values) -> None:
    """``histogram.observe(v)`` for every ``v`` of ``values`` in one step per bucket rather
    than one per value (a 10,000-shipment manifest: about 10,000 times fewer metric
    updates; in multiprocess mode each is a write to a memory-mapped file).

    prometheus_client has no bulk observe; this fills the same bucket and sum values its
    ``observe`` does (a test compares the two on the pinned version)."""
    values = np.asarray(values, dtype="float64")
    if not len(values):
        return
    histogram._raise_if_not_observable()
    bounds = histogram._upper_bounds
    bucket = np.searchsorted(np.asarray(bounds), values, side="left")
    # NaN sorts past +Inf: like observe(), it lands in no bucket (and makes the sum NaN)
    counts = np.bincount(bucket[bucket < len(bounds)], minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for i in np.flatnonzero(counts).tolist():
        histogram._buckets[i].inc(int(counts[i]))


def get_metrics() -> ServiceMetrics:
    """The process's metrics, created on first call."""
    global _METRICS
    with _LOCK:
        if _METRICS is None:
            from prometheus_client import Counter, Gauge, Histogram

            def drift_gauge(name: str, text: str) -> Any:
                # the latest value set in any worker (each refreshes from the same store)
                return Gauge(name, text, ["feature", "stream"], multiprocess_mode="mostrecent")

            _METRICS = ServiceMetrics(
                scores=Histogram(
                    "cargorisk_score",
                    "Calibrated risk scores served (probability of a seizure if inspected).",
                    buckets=SCORE_BUCKETS,
                ),
                bands=Counter(
                    "cargorisk_band_shipments", "Shipments scored, by risk band.", ["band"]
                ),
                latency=Histogram(
                    "cargorisk_scoring_seconds",
                    "In-process time to score a request (features, model, reasons, store).",
                    ["endpoint"],
                    buckets=LATENCY_BUCKETS,
                ),
                outcomes=Counter(
                    "cargorisk_outcomes", "Inspection outcomes received, by result.", ["result"]
                ),
                reloads=Counter(
                    "cargorisk_model_reloads", "Champion reload attempts, by result.", ["result"]
                ),
                shed=Counter(
                    "cargorisk_shed_requests",
                    "Requests answered 503 at once because the worker was at a limit "
                    "(max_scoring_in_flight, max_concurrent_requests), by endpoint and limit.",
                    ["endpoint", "limit"],
                ),
                drift_psi=drift_gauge(
                    "cargorisk_drift_psi",
                    "Population stability index of a feature (or the score) over the last "
                    "drift_window_days of served traffic against the champion's training "
                    "window, by stream.",
                ),
                drift_unseen=drift_gauge(
                    "cargorisk_drift_unseen_share",
                    "Share of a categorical feature's served values the champion never saw in "
                    "training (scored as missing), by stream.",
                ),
                drift_missing=drift_gauge(
                    "cargorisk_drift_missing_share",
                    "Share of a feature's served values that are missing, by stream.",
                ),
                drift_level=drift_gauge(
                    "cargorisk_drift_level",
                    "Drift level of a feature by the configured thresholds: 0 ok, 1 warn, "
                    "2 alert (-1: a numeric feature the champion does not split on), by stream.",
                ),
            )
        return _METRICS
