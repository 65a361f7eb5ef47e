"""The model page: the champion in service, its test metrics beside the baselines, its
capacity curve, and the shadow challenger compared with it on the outcomes that arrived.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from features.contracts import (
    DatasetInfo,
)
from serving.ui.model_info import WHO
from serving.ui.session_gate import PageBase


class ModelPages(PageBase):
    # -- model -----------------------------------------------------------------------------
    def model(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "view_model")
        current = engine.served_model
        report = None
        if current is not None:
            report = self.reports(engine).get(current.name, current.version)
        engine.store.audit(
            "ui_model_viewed", caller, {"version": current.version if current else None}
        )
        shadow = engine.shadow_status()
        comparison = engine.shadow_comparison() if shadow["version"] is not None else None
        meta = current.scoring.metadata if current is not None else {}
        info = current.scoring.dataset if current is not None else DatasetInfo()
        return self.render(
            request,
            "model.html",
            label=info.label,
            attributes=[(spec.wording(name), spec.kind) for name, spec in info.attributes.items()],
            kind=meta.get("kind", "full"),
            families=meta.get("families") or [],
            session=session,
            caller=caller,
            active="model",
            current=current,
            report=report,
            rows=report.table() if report else [],
            WHO=WHO,
            meta=meta,
            thresholds=current.scoring.thresholds if current is not None else {},
            last_error=engine.model_error,
            capacity=engine.settings.capacity,
            exploration=engine.settings.exploration_share,
            shadow=shadow,
            comparison=comparison,
        )

    def capacity_curve(self, request: Request) -> Response:
        engine, _, _ = self.officer(request, "view_model")
        current = engine.served_model
        report = self.reports(engine).get(current.name, current.version) if current else None
        if report is None or report.capacity_curve_png is None:
            return Response("no capacity curve logged for this model", 404)
        return Response(
            report.capacity_curve_png,
            media_type="image/png",
            headers={"cache-control": "private, max-age=300"},
        )
