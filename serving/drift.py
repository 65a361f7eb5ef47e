"""Drift of the served traffic against the champion's training reference, for the service
(``/metrics`` gauges, the health page) and ``cargorisk monitor``.

The store keeps every scored shipment and its score, not its feature values (a 10,000-
shipment manifest's 136 features would cost the scoring path its commit budget and the store
~1 GB per 100,000 shipments as JSON). The features are therefore *recomputed* from the store's
shipments and outcomes by the offline pipeline (:func:`features.pipeline.build_training_frame`,
each shipment as of its own declaration - the values the service computed online; the parity
tests hold the two paths together), on the feature engine the settings name. That costs a
pass over the whole stored history (about 20 s of CPU for 360,000 shipments with the pandas
engine), so the service does it on a background thread every ``drift_refresh_minutes``, never
on the scoring path, and keeps the last result for the gauges and the page.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common.settings import engine_options
from features.drift import Thresholds, alerts, drift_table, iso_week, levels
from features.pipeline import build_training_frame
from features.scoring import ScoringModel

log = logging.getLogger("cargorisk.serving")

LEVEL_VALUE = {"unwatched": -1, "ok": 0, "warn": 1, "alert": 2}
"""The ``cargorisk_drift_level`` gauge's value of each level (-1: a numeric feature the model
does not split on, shown but never alarming)."""


@dataclass(frozen=True)
class DriftReport:
    """Drift of the served traffic of one model version."""

    model_version: str
    computed_at: dt.datetime
    thresholds: Thresholds
    served: int
    """Scored shipments in the weeks shown."""
    weeks: pd.DataFrame
    """:func:`features.drift.drift_table` by stream and ISO week, with ``level``."""
    window: pd.DataFrame
    """The same over the last ``window_days`` days of served traffic (the gauges), by stream."""
    window_from: dt.datetime | None = None
    window_to: dt.datetime | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """The window's rows that warn or alarm, worst first (:func:`features.drift.alerts`)."""
    reference_window: dict[str, Any] = field(default_factory=dict)
    """The training window the reference was taken from."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (``cargorisk monitor --json``)."""

        def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
            out = frame.astype(object).where(frame.notna(), None)
            return [dict(r) for r in out.to_dict(orient="records")]

        return {
            "model_version": self.model_version,
            "computed_at": self.computed_at.isoformat(),
            "thresholds": vars(self.thresholds),
            "served": self.served,
            "reference_window": self.reference_window,
            "window": {
                "from": self.window_from.isoformat() if self.window_from else None,
                "to": self.window_to.isoformat() if self.window_to else None,
                "rows": rows(self.window),
            },
            "weeks": rows(self.weeks),
            "alerts": self.alerts,
        }


def served_features(
    store, scoring: ScoringModel, *, weeks: int, engine: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The feature rows of the shipments the service scored that were declared within the
    last ``weeks`` ISO weeks before the latest of them (recomputed as of each declaration
    from the store's history; see the module's doc)."""
    served = store.served_scores()
    if served.empty:
        return pd.DataFrame()
    ships = store.history_frame()
    outs = store.outcomes_frame()
    features = build_training_frame(ships, outs, attributes=scoring.attributes, **(engine or {}))
    features = features[features["shipment_id"].isin(set(served["shipment_id"]))]
    if features.empty:
        return features
    latest = pd.Timestamp(features["declared_at"].max())
    monday = (latest - pd.Timedelta(days=latest.weekday())).normalize()
    start = monday - pd.Timedelta(weeks=weeks - 1)
    return features[features["declared_at"] >= start].reset_index(drop=True)


def measure(
    features: pd.DataFrame,
    scoring: ScoringModel,
    reference: dict[str, Any],
    *,
    thresholds: Thresholds,
    window_days: int,
    model_version: str,
) -> DriftReport:
    """Drift of served feature rows (:func:`served_features`) by stream and ISO week, and over
    the last ``window_days`` days before the latest declaration."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    empty = pd.DataFrame(columns=[*_columns(), "level"])
    if features.empty:
        return DriftReport(model_version, now, thresholds, 0, empty, empty)
    # the model's own scores of the served rows: comparable with the reference's, whichever
    # version served them at the time (for this version's own traffic, the scores it served)
    scores = scoring.score(features, num_threads=1)
    weekly = drift_table(
        features,
        reference,
        streams=features["mode"],
        groups=iso_week(features["declared_at"]),
        scores=scores,
        categories=scoring.categories,
    )
    weekly["level"] = levels(weekly, thresholds)
    latest = pd.Timestamp(features["declared_at"].max())
    start = latest.normalize() - pd.Timedelta(days=window_days - 1)
    recent = (features["declared_at"] >= start).to_numpy()
    label = f"last {window_days} days"
    window = drift_table(
        features.loc[recent],
        reference,
        streams=features.loc[recent, "mode"],
        groups=np.full(int(recent.sum()), label),
        scores=scores[recent],
        categories=scoring.categories,
    )
    window["level"] = levels(window, thresholds)
    return DriftReport(
        model_version=model_version,
        computed_at=now,
        thresholds=thresholds,
        served=len(features),
        weeks=weekly,
        window=window,
        window_from=start.to_pydatetime(),
        window_to=latest.to_pydatetime(),
        alerts=alerts(window, thresholds),
        reference_window=dict(reference.get("window") or {}),
        seconds=time.perf_counter() - started,
    )


def _columns() -> list[str]:
    from features.drift import DRIFT_COLUMNS

    return list(DRIFT_COLUMNS)


class DriftMonitor:
    """The service's drift: recomputed on a background thread every
    ``drift_refresh_minutes`` (or by :meth:`refresh`), kept as :attr:`report` and published
    as gauges; reading it never computes anything."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.report: DriftReport | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def notice(self) -> None:
        """Shipments were scored: let the thread check whether drift is due (an event set -
        nothing is computed on the caller's thread)."""
        self._wake.set()

    def refresh(self) -> DriftReport | None:
        """Recompute drift for the model in service now; keeps the error instead of raising
        (the service must not fall over because the monitor did)."""
        with self._lock:
            started = time.perf_counter()
            model = self.engine.served_model
            try:
                if model is None:
                    raise RuntimeError("no model in service")
                if not model.drift_reference:
                    raise RuntimeError(
                        f"model version {model.version} was logged without a drift reference "
                        "(trained before references were recorded); retrain to monitor drift"
                    )
                settings = self.engine.settings
                features = served_features(
                    self.engine.store,
                    model.scoring,
                    weeks=settings.drift_weeks,
                    engine=engine_options(settings),
                )
                report = measure(
                    features,
                    model.scoring,
                    model.drift_reference,
                    thresholds=settings.drift_thresholds,
                    window_days=settings.drift_window_days,
                    model_version=model.version,
                )
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("drift: not computed: %s", self.error)
                return None
            report = _with_seconds(report, time.perf_counter() - started)
            self.report, self.error = report, None
            publish(self.engine.metrics, report)
            log.info(
                "drift: %d served shipments, %d alerts (%.1f s)",
                report.served,
                sum(a["level"] == "alert" for a in report.alerts),
                report.seconds,
            )
            return report

    def due(self) -> bool:
        """Whether the background thread should recompute now: something was scored and there
        is no report yet, or the last one is ``drift_refresh_minutes`` old, or it is of
        another model version than the one serving (a reload), or it saw no traffic and
        traffic has come since."""
        model = self.engine.served_model
        if model is None or not model.drift_reference:
            return self.report is None and self.error is None and model is not None
        report = self.report
        if report is None or report.model_version != model.version:
            return self.engine.store.count("scores") > 0
        minutes = self.engine.settings.drift_refresh_minutes
        if minutes <= 0:
            return False
        age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - report.computed_at
        if age >= dt.timedelta(minutes=minutes):
            return True
        return report.served == 0 and self.engine.store.count("scores") > 0

    def start(self, poll_seconds: float = 60.0, settle_seconds: float = 5.0) -> None:
        """Check on a daemon thread whether drift is :meth:`due` - every ``poll_seconds``, and
        ``settle_seconds`` after shipments were scored (:meth:`notice`; a burst of manifests
        is one check) - and recompute it then (no thread when ``drift_refresh_minutes`` is
        0)."""
        if self.engine.settings.drift_refresh_minutes <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                if self._wake.wait(poll_seconds):
                    self._stop.wait(settle_seconds)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    if self.due():
                        self.refresh()
                except Exception:  # the store may be briefly unavailable; try again later
                    log.exception("drift: check failed")

        self._thread = threading.Thread(target=loop, name="drift", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def _with_seconds(report: DriftReport, seconds: float) -> DriftReport:
    from dataclasses import replace

    return replace(report, seconds=seconds)


def publish(metrics, report: DriftReport) -> None:
    """Set the drift gauges from ``report``'s window (one series per feature and stream;
    series of features no longer reported are removed)."""
    gauges = (metrics.drift_psi, metrics.drift_unseen, metrics.drift_missing, metrics.drift_level)
    for gauge in gauges:
        gauge.clear()
    for r in report.window.itertuples(index=False):
        labels = {"feature": r.feature, "stream": r.stream}
        if r.psi == r.psi:
            metrics.drift_psi.labels(**labels).set(float(r.psi))
        if r.unseen_share == r.unseen_share:
            metrics.drift_unseen.labels(**labels).set(float(r.unseen_share))
        if r.missing_share == r.missing_share:
            metrics.drift_missing.labels(**labels).set(float(r.missing_share))
        metrics.drift_level.labels(**labels).set(LEVEL_VALUE[r.level])


def heatmap_figure(weeks: pd.DataFrame, stream: str, thresholds: Thresholds, limit: int = 20):
    """A matplotlib figure: PSI by ISO week (columns) of the score and the ``limit`` most
    drifted features of ``stream`` (rows), coloured up to twice the alert threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    from features.drift import SCORE

    part = weeks[(weeks["stream"] == stream) & weeks["watched"].astype(bool)]
    worst = part.groupby("feature")["psi"].max().fillna(0.0)
    names = [SCORE] if SCORE in worst.index else []
    names += [f for f in worst.sort_values(ascending=False).index if f != SCORE][: limit - 1]
    columns = sorted(part["week"].unique().tolist())
    grid = part.pivot_table(index="feature", columns="week", values="psi", aggfunc="first")
    grid = grid.reindex(index=names, columns=columns)
    cmap = LinearSegmentedColormap.from_list("psi", ["#f4f6f8", "#f6d28b", "#c0392b"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(columns), 1.0 + 0.32 * len(names)))
    top = 2 * thresholds.psi_alert
    ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0, vmax=top)
    ax.set_xticks(range(len(columns)), [c.split("-")[1] for c in columns], fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(columns)):
            v = grid.iat[i, j]
            if v == v:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(
        f"{stream}: PSI against training by ISO week "
        f"(warn {thresholds.psi_warn:g}, alert {thresholds.psi_alert:g})",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


_PNG_CACHE: dict[tuple[str, str, str], bytes] = {}
_PNG_LOCK = threading.Lock()


def heatmap_png(report: DriftReport, stream: str) -> bytes:
    """:func:`heatmap_figure` of ``report`` as PNG bytes, drawn once per report and stream."""
    key = (report.model_version, report.computed_at.isoformat(), stream)
    with _PNG_LOCK:
        if key in _PNG_CACHE:
            return _PNG_CACHE[key]
        import io

        import matplotlib.pyplot as plt

        fig = heatmap_figure(report.weeks, stream, report.thresholds)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        if len(_PNG_CACHE) > 16:
            _PNG_CACHE.clear()
        _PNG_CACHE[key] = buf.getvalue()
        return _PNG_CACHE[key]
