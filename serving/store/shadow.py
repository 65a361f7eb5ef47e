"""The shadow challenger's part of the store: its scores (written by the shadow scorer's
thread) and the pairs of champion and challenger scores with the outcomes in force, which
:func:`serving.shadow.compare` turns into the comparison the model page shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from serving.store.rows import utcnow
from serving.store.tables import outcome_reports, reports_in_force, scores, shadow_scores

PAIR_COLUMNS = (
    "shipment_id",
    "champion_version",
    "challenger_version",
    "champion_score",
    "challenger_score",
    "inspected",
    "seized",
    "random",
)
"""Columns of :meth:`ShadowStore.shadow_pairs` (the input of ``serving.shadow.compare``)."""


class ShadowStore:
    engine: Engine

    def record_shadow_scores(
        self, rows: list[dict[str, Any]], at: dt.datetime | None = None
    ) -> None:
        """Store challenger scores (``shipment_id``, ``shipment_version``, ``request_id``,
        ``model_name``, ``model_version``, ``champion_version``, ``score``, ``raw_score``)."""
        if not rows:
            return
        at = at or utcnow()
        with self.engine.begin() as conn:
            conn.execute(shadow_scores.insert(), [{**r, "scored_at": at} for r in rows])

    def shadow_pairs(
        self, since: dt.datetime | None = None, challenger_version: str | None = None
    ) -> pd.DataFrame:
        """One row per shipment scored by both the champion and the challenger in the same
        request (the latest such request of each shipment), with what its inspections in force
        say: ``inspected``, ``seized`` (any inspection found drugs) and ``random`` (one was a
        random exploration pick)."""
        s, c = shadow_scores, scores
        pair = sa.select(
            s.c.id,
            s.c.shipment_id,
            s.c.champion_version,
            s.c.model_version.label("challenger_version"),
            c.c.score.label("champion_score"),
            s.c.score.label("challenger_score"),
        ).join(
            c,
            sa.and_(
                c.c.request_id == s.c.request_id,
                c.c.shipment_id == s.c.shipment_id,
                c.c.model_version == s.c.champion_version,
            ),
        )
        if since is not None:
            pair = pair.where(s.c.scored_at >= since)
        if challenger_version is not None:
            pair = pair.where(s.c.model_version == str(challenger_version))
        o = outcome_reports
        reports = sa.select(o.c.shipment_id, o.c.result, o.c.selected_by).where(reports_in_force())
        with self.engine.connect() as conn:
            frame = pd.read_sql(pair, conn)
            outcomes = pd.read_sql(reports, conn)
        if frame.empty:
            return pd.DataFrame(columns=list(PAIR_COLUMNS))
        frame = frame.sort_values("id").drop_duplicates("shipment_id", keep="last")
        if outcomes.empty:
            per = pd.DataFrame(columns=["inspected", "seized", "random"], dtype=bool)
        else:
            outcomes["inspected"] = True
            outcomes["seized"] = outcomes["result"] == "seized"
            outcomes["random"] = outcomes["selected_by"] == "random"
            per = outcomes.groupby("shipment_id")[["inspected", "seized", "random"]].any()
        frame = frame.join(per, on="shipment_id")
        for col in ("inspected", "seized", "random"):
            frame[col] = frame[col].astype("boolean").fillna(False).astype(bool)
        return frame[list(PAIR_COLUMNS)].reset_index(drop=True)
