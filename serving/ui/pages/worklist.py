"""The worklist page: a day's shipments ranked by risk, the cut line, exploration picks,
filters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from features.contracts import (
    EARLIEST,
    LATEST,
)
from serving.ui import worklist as wl
from serving.ui.format import shown_value
from serving.ui.session_gate import PageBase

BELOW_PAGE = 50
"""Rows shown below the cut line at first (more on request)."""


class WorklistPages(PageBase):
    # -- worklist --------------------------------------------------------------------------
    def worklist(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        settings = engine.settings
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "worklist"}
        try:
            filters = wl.Filters.from_query(request.query_params)
        except wl.FilterError as exc:
            return self.render(
                request, "worklist.html", 400, error=str(exc), filters=wl.Filters(), day=None,
                **ctx,
            )  # fmt: skip
        store = engine.store
        day = filters.day
        if day is not None and not EARLIEST.date() <= day < LATEST.date():
            message = (
                f"day: {day.isoformat()} is outside the dates shipments can have "
                f"({EARLIEST.date().isoformat()} to {(LATEST.date() - dt.timedelta(days=1))})"
            )
            return self.render(
                request, "worklist.html", 400, error=message, filters=wl.Filters(), day=None,
                **ctx,
            )  # fmt: skip
        if day is None:
            latest = store.declared_between()
            day = latest.date() if latest is not None else None
        if day is None:
            return self.render(
                request, "worklist.html", filters=filters, day=None, error=None, **ctx
            )
        start = dt.datetime.combine(day, dt.time())
        end = start + dt.timedelta(days=1)
        frame = store.worklist(start, end)
        in_scope = wl.scope(frame, wl.Filters(stream=filters.stream, mode=filters.mode))
        ports = sorted(p for p in in_scope["discharge_port"].dropna().unique().tolist())
        planned, summary = wl.plan(
            wl.scope(frame, filters),
            capacity=settings.capacity,
            exploration_share=settings.exploration_share,
            seed=wl.exploration_seed(day, filters.scope_key, filters.port, settings.seed),
        )
        store.record_picks(
            day,
            filters.scope_key,
            filters.port,
            wl.picks(planned, summary),
            scored=summary.scored,
            pool=summary.pool,
            caller=caller,
        )
        visible = wl.view(planned, filters)
        try:
            shown_below = max(BELOW_PAGE, min(int(request.query_params.get("below", 0)), 50_000))
        except ValueError:
            shown_below = BELOW_PAGE
        sections = {
            "model": visible[visible["pick"] == "model"],
            "random": visible[visible["pick"] == "random"],
            "below": visible[(visible["pick"] == "") & visible["rank"].notna()],
            "unscored": visible[visible["rank"].isna()],
        }
        marks = store.watch_marks(visible["shipment_id"].tolist())
        before = store.declared_between(end=start)
        after = store.declared_between(start=end, last=False)
        query = {
            "day": day.isoformat(),
            "stream": filters.stream,
            "mode": filters.mode,
            "port": filters.port,
            "transport": filters.transport,
            "band": filters.band,
            "uninspected": "1" if filters.uninspected else "",
        }
        store.audit(
            "ui_worklist_viewed",
            caller,
            {k: v for k, v in query.items() if v} | {"rows": len(visible)},
        )
        return self.render(
            request,
            "worklist.html",
            filters=filters,
            day=day,
            error=None,
            ports=ports,
            summary=summary,
            visible=len(visible),
            inspected=int(planned["outcome"].notna().sum()),
            model_rows=self._rows(sections["model"], marks),
            random_rows=self._rows(sections["random"], marks),
            below_rows=self._rows(sections["below"].head(shown_below), marks),
            below_total=len(sections["below"]),
            unscored_rows=self._rows(sections["unscored"].head(BELOW_PAGE), marks),
            watched=len(marks),
            unscored_total=len(sections["unscored"]),
            query=query,
            more_below=shown_below + 200,
            prev_day=before.date().isoformat() if before is not None else None,
            next_day=after.date().isoformat() if after is not None else None,
            **ctx,
        )

    @staticmethod
    def _rows(frame: pd.DataFrame, marks: dict | None = None) -> list[dict[str, Any]]:
        """The rows of a worklist section; ``marks``: the watchlist entries in force each
        shipment touches."""
        marks = marks or {}
        rows = []
        for r in frame.itertuples(index=False):
            transport = shown_value(r.flight) or " ".join(
                filter(None, [shown_value(r.vessel), shown_value(r.voyage)])
            )
            route = " → ".join(
                filter(
                    None,
                    [
                        shown_value(r.loading_port) or shown_value(r.origin_country),
                        shown_value(r.discharge_port),
                    ],
                )
            )
            rows.append(
                {
                    "shipment_id": r.shipment_id,
                    "rank": None if pd.isna(r.rank) else int(r.rank),
                    "score": None if pd.isna(r.score) else float(r.score),
                    "band": None if pd.isna(r.band) else str(r.band),
                    "pick": r.pick,
                    "mode": r.mode,
                    "transport": transport,
                    "route": route,
                    "shipper": shown_value(r.shipper_name) or shown_value(r.shipper_id),
                    "consignee": shown_value(r.consignee_name) or shown_value(r.consignee_id),
                    "goods": shown_value(r.goods_description)[:60],
                    "hs_code": shown_value(r.hs_code),
                    "origin": shown_value(r.origin_country),
                    "outcome": None if pd.isna(r.outcome) else str(r.outcome),
                    "watch": [
                        f"{e.words} {e.display}: {e.reason}" for e in marks.get(r.shipment_id, ())
                    ],
                }
            )
        return rows
