"""The model health page: drift of the served traffic per feature, stream and week against
the champion's training window, and the alerts it raises; then the outcome figures of the same
weeks (``health_outcomes.html`` over :mod:`serving.health_outcomes`: hit rates by who selected
the inspection, the recall estimated from the random picks).

Reading the page never computes drift: it shows the last report of the service's
:class:`serving.drift.DriftMonitor` (refreshed in the background every
``drift_refresh_minutes``). The heat maps are PNGs drawn from that report and served from
this origin (the CSP allows images from ``'self'`` only).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from features.catalog import FEATURE_NAMES
from features.drift import SCORE
from serving.drift import DriftReport, heatmap_png
from serving.ui.session_gate import PageBase

log = logging.getLogger("cargorisk.ui")

HEAT_ROWS = 25
"""Features per stream in the heat table: the score, then the most drifted."""


def heat_rows(report: DriftReport, stream: str, limit: int = HEAT_ROWS) -> dict[str, Any]:
    """One stream's heat table: the weeks (columns), and per row (the score first, then the
    features the model uses by their largest PSI) the window's cell and one cell per week."""
    weeks = report.weeks[(report.weeks["stream"] == stream) & report.weeks["watched"]]
    window = report.window[report.window["stream"] == stream]
    unused = int(report.weeks.loc[report.weeks["stream"] == stream, "feature"].nunique()) - int(
        weeks["feature"].nunique()
    )
    columns = sorted(weeks["week"].unique().tolist())
    worst = weeks.groupby("feature")["psi"].max().fillna(0.0)
    ranked = [SCORE] + [
        f for f in worst.sort_values(ascending=False, kind="stable").index if f != SCORE
    ]
    ranked = [f for f in ranked if f in worst.index][:limit]
    cells = {(r.feature, r.week): r for r in weeks.itertuples(index=False)}
    now = {r.feature: r for r in window.itertuples(index=False)}
    rows = []
    for feature in ranked:
        rows.append(
            {
                "feature": feature,
                "window": _cell(now.get(feature)),
                "weeks": [_cell(cells.get((feature, w))) for w in columns],
            }
        )
    return {
        "stream": stream,
        "weeks": columns,
        "rows": rows,
        "features": len(worst),
        "unused": unused,
    }


def _cell(r) -> dict[str, Any] | None:
    if r is None:
        return None
    psi = None if pd.isna(r.psi) else float(r.psi)
    heat = 0 if psi is None else min(5, int(psi / 0.05))
    unseen = None if pd.isna(r.unseen_share) else float(r.unseen_share)
    unseen_ref = None if pd.isna(r.unseen_reference) else float(r.unseen_reference)
    return {
        "psi": psi,
        "level": r.level,
        "heat": heat,
        "rows": int(r.rows),
        "missing": float(r.missing_share),
        "missing_reference": float(r.missing_reference),
        "unseen": unseen,
        "unseen_reference": unseen_ref,
    }


class HealthPages(PageBase):
    def health(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "view_model")
        current = engine.served_model
        monitor = engine.drift
        report: DriftReport | None = monitor.report
        engine.store.audit(
            "ui_health_viewed", caller, {"version": current.version if current else None}
        )
        outcomes, outcomes_error = self._outcomes(engine)
        streams = []
        if report is not None and not report.weeks.empty:
            order = [s for s in ("sea", "air", "express") if s in set(report.weeks["stream"])]
            order += sorted(set(report.weeks["stream"]) - set(order))
            streams = [heat_rows(report, s) for s in order]
        return self.render(
            request,
            "health.html",
            session=session,
            caller=caller,
            active="health",
            current=current,
            report=report,
            drift_error=monitor.error,
            streams=streams,
            settings=engine.settings,
            catalog_names=set(FEATURE_NAMES),
            outcomes=outcomes,
            outcomes_error=outcomes_error,
        )

    @staticmethod
    def _outcomes(engine) -> tuple[Any, str | None]:
        """Performance from outcomes (:func:`serving.health_outcomes.outcome_report`) over the
        weeks the drift shows: cheap enough for every view (0.28 s of CPU on a
        quickstart-size store, docs/monitoring.md); a failure is shown, not raised."""
        from serving.health_outcomes import outcome_report

        weeks = engine.settings.drift_weeks
        since = dt.datetime.now(dt.UTC).date() - dt.timedelta(weeks=weeks)
        try:
            return outcome_report(engine.store, since=since), None
        except Exception as exc:
            log.exception("health page: outcome figures failed")
            return None, f"{type(exc).__name__}: {exc}"

    def health_heatmap(self, request: Request) -> Response:
        engine, _, _ = self.officer(request, "view_model")
        report: DriftReport | None = engine.drift.report
        stream = request.path_params["stream"]
        if report is None or stream not in set(report.weeks["stream"]):
            return Response("no drift measured for this stream", 404)
        return Response(
            heatmap_png(report, stream),
            media_type="image/png",
            headers={"cache-control": "private, max-age=60"},
        )
