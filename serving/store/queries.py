"""What the service and the worklist read back: contract frames of shipments and outcomes,
a shipment's versions, reports and scores, the audit trail and the worklist's rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.contracts import (
    OUTCOME_COLUMNS,
    SHIPMENT_COLUMNS,
    as_contract,
)
from serving.store.rows import attributes_frame
from serving.store.tables import (
    REPORT_FIELDS,
    audit_events,
    exploration_picks,
    metadata,
    outcome_reports,
    reports_in_force,
    scores,
    shipment_versions,
    shipments,
)

WORKLIST_COLUMNS = (
    "shipment_id",
    "mode",
    "declared_at",
    "arrival_at",
    "shipper_id",
    "shipper_name",
    "consignee_id",
    "consignee_name",
    "origin_country",
    "loading_port",
    "transshipment_ports",
    "discharge_port",
    "vessel",
    "voyage",
    "flight",
    "bill_of_lading",
    "air_waybill",
    "container_type",
    "hs_code",
    "goods_description",
)
"""Columns of a shipment the worklist table shows or filters on."""


class QueriesStore:
    """The store's reads (a part of :class:`serving.store.Store`)."""

    engine: Engine

    # -- reads -----------------------------------------------------------------------------
    def shipments_frame(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """Stored shipments, each as its declaration in force, as a contract frame (declared
        at or after ``since``), followed by their attributes as ``attr.<name>`` columns when
        any shipment has some."""
        cond = shipments.c.declared_at >= since if since is not None else None
        return self._shipments_frame(shipments, cond)

    def _shipments_frame(self, table: sa.Table, cond=None) -> pd.DataFrame:
        query = sa.select(*[table.c[n] for n in SHIPMENT_COLUMNS], table.c.attributes).order_by(
            table.c.seq
        )
        if cond is not None:
            query = query.where(cond)
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        out = as_contract("shipments", frame)
        if frame["attributes"].notna().any():
            out = pd.concat([out, attributes_frame(frame["attributes"], out.index)], axis=1)
        return out

    def history_frame(self) -> pd.DataFrame:
        """Every shipment as first declared (version 1), as a contract frame with its
        attributes, in the order received: what the history features count (an amendment
        moves a shipment's inspections, not its declaration, in the history of others; see
        :meth:`amended_frame` and docs/serving.md)."""
        return self._shipments_frame(shipment_versions, shipment_versions.c.version == 1)

    def amended_frame(self) -> tuple[pd.DataFrame, list[int]]:
        """The declarations in force of amended shipments (version 2 and up) as a contract
        frame, and their version numbers: what their inspections count against."""
        cond = shipments.c.version > 1
        frame = self._shipments_frame(shipments, cond)
        with self.engine.connect() as conn:
            versions = conn.execute(
                sa.select(shipments.c.version).where(cond).order_by(shipments.c.seq)
            ).scalars()
            return frame, [int(v) for v in versions]

    def shipment_versions(self, shipment_id: str) -> list[dict[str, Any]]:
        """Every version of a declaration, oldest first: its fields, ``version``,
        ``received_at``, ``caller``, ``request_id`` and ``changed`` (fields that differ from
        the version before; empty for version 1)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(shipment_versions)
                .where(shipment_versions.c.shipment_id == shipment_id)
                .order_by(shipment_versions.c.version)
            ).mappings()
            out = []
            for r in rows:
                record = dict(r)
                record.pop("seq", None)
                record["changed"] = json.loads(record["changed"]) if record["changed"] else []
                record["attributes"] = (
                    json.loads(record["attributes"]) if record["attributes"] else {}
                )
                out.append(record)
            return out

    def outcomes_frame(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """The reports in force (one per inspection, the latest correction) as a contract
        frame (inspected at or after ``since``), in the order they were received."""
        query = (
            sa.select(*[outcome_reports.c[n] for n in OUTCOME_COLUMNS])
            .where(reports_in_force())
            .order_by(outcome_reports.c.seq)
        )
        if since is not None:
            query = query.where(outcome_reports.c.inspected_at >= since)
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        return as_contract("outcomes", frame)

    def outcome_reports(self, shipment_id: str) -> list[dict[str, Any]]:
        """Every report of a shipment's inspections (corrections and the reports they
        replaced), oldest first, each with ``in_force``."""
        with self.engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    sa.select(*[outcome_reports.c[n] for n in REPORT_FIELDS])
                    .where(outcome_reports.c.shipment_id == shipment_id)
                    .order_by(outcome_reports.c.inspected_at, outcome_reports.c.seq)
                ).mappings()
            ]
        latest = {}
        for r in rows:
            latest[r["inspected_at"]] = r["revision"]
        for r in rows:
            r["in_force"] = latest[r["inspected_at"]] == r["revision"]
        return rows

    def count(self, table: str) -> int:
        """Rows of a table; ``outcomes``: inspections (reports in force)."""
        query = sa.select(sa.func.count())
        if table == "outcomes":
            query = query.select_from(outcome_reports).where(reports_in_force())
        else:
            query = query.select_from(metadata.tables[table])
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def shipment(self, shipment_id: str) -> dict[str, Any] | None:
        """The declaration in force of a shipment (with ``attributes`` and ``version``)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(
                        *[shipments.c[n] for n in SHIPMENT_COLUMNS],
                        shipments.c.attributes,
                        shipments.c.version,
                    ).where(shipments.c.shipment_id == shipment_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        record = dict(row)
        record["attributes"] = json.loads(record["attributes"]) if record["attributes"] else {}
        return record

    def declared_at(self, shipment_ids: Iterable[str]) -> dict[str, dt.datetime]:
        """When each of the stored shipments among ``shipment_ids`` was declared (the
        declaration in force); ids the store does not hold are absent."""
        ids = list(dict.fromkeys(shipment_ids))
        out: dict[str, dt.datetime] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5_000):  # under every driver's parameter limit
                rows = conn.execute(
                    sa.select(shipments.c.shipment_id, shipments.c.declared_at).where(
                        shipments.c.shipment_id.in_(ids[start : start + 5_000])
                    )
                )
                out.update({r.shipment_id: r.declared_at for r in rows})
        return out

    def modes_of(self, shipment_ids: Iterable[str]) -> dict[str, str]:
        """The transport mode of each stored shipment among ``shipment_ids`` (declaration in
        force); ids the store does not hold are absent."""
        ids = list(dict.fromkeys(shipment_ids))
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5_000):  # under every driver's parameter limit
                rows = conn.execute(
                    sa.select(shipments.c.shipment_id, shipments.c.mode).where(
                        shipments.c.shipment_id.in_(ids[start : start + 5_000])
                    )
                )
                out.update({r.shipment_id: r.mode for r in rows})
        return out

    def latest_score(self, shipment_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(scores)
                    .where(scores.c.shipment_id == shipment_id)
                    .order_by(scores.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        out = dict(row)
        out["reasons"] = None if out["reasons"] is None else json.loads(out["reasons"])
        return out

    def scores_for(self, request_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(request_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(scores).where(scores.c.request_id.in_(ids))).mappings()
            return [dict(r) for r in rows]

    def outcomes_for(self, shipment_id: str) -> list[dict[str, Any]]:
        """The reports in force of a shipment's inspections (contract fields), by inspection
        time."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*[outcome_reports.c[n] for n in OUTCOME_COLUMNS])
                .where(outcome_reports.c.shipment_id == shipment_id, reports_in_force())
                .order_by(outcome_reports.c.inspected_at)
            ).mappings()
            return [dict(r) for r in rows]

    def recent_scores(self, model_version: str, limit: int) -> np.ndarray:
        """The last ``limit`` scores served by one model version (oldest first)."""
        with self.engine.connect() as conn:
            values = conn.execute(
                sa.select(scores.c.score)
                .where(scores.c.model_version == model_version)
                .order_by(scores.c.id.desc())
                .limit(limit)
            ).scalars()
            return np.asarray(list(values), dtype=float)[::-1]

    def served_scores(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """The latest score of each shipment scored at or after ``since`` (``shipment_id``,
        ``scored_at``, ``model_version``, ``score``): the served traffic drift is measured
        on."""
        latest = sa.select(sa.func.max(scores.c.id)).group_by(scores.c.shipment_id)
        if since is not None:
            latest = latest.where(scores.c.scored_at >= since)
        query = sa.select(
            scores.c.shipment_id, scores.c.scored_at, scores.c.model_version, scores.c.score
        ).where(scores.c.id.in_(latest))
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        frame["scored_at"] = pd.to_datetime(frame["scored_at"])
        return frame

    def audit_events(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def picks_frame(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """The recorded picks of inspection plans of days in [start, end) (all without
        bounds), one row per pick with the plan's day, scope and port, in the order drawn."""
        query = sa.select(exploration_picks).order_by(exploration_picks.c.id)
        if start is not None:
            query = query.where(exploration_picks.c.plan_day >= start)
        if end is not None:
            query = query.where(exploration_picks.c.plan_day < end)
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        frame["plan_day"] = pd.to_datetime(frame["plan_day"]).dt.date
        frame["drawn_at"] = pd.to_datetime(frame["drawn_at"])
        return frame.drop(columns="id")

    # -- worklist queries ------------------------------------------------------------------
    def declared_between(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None, *, last=True
    ) -> dt.datetime | None:
        """The latest (or, with ``last=False``, earliest) declaration time in [start, end)."""
        col = shipments.c.declared_at
        query = sa.select(sa.func.max(col) if last else sa.func.min(col))
        if start is not None:
            query = query.where(col >= start)
        if end is not None:
            query = query.where(col < end)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        if isinstance(value, str):  # SQLite aggregates return text
            value = dt.datetime.fromisoformat(value)
        return value

    def worklist(self, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
        """Shipments declared in [start, end) with their latest score (score, band,
        percentile, model version, whether reasons were given) and latest inspection
        (``result``, ``inspected_at``; null when never inspected). One row per shipment."""
        day = sa.select(shipments.c.shipment_id).where(
            shipments.c.declared_at >= start, shipments.c.declared_at < end
        )
        latest = (
            sa.select(sa.func.max(scores.c.id).label("score_id"))
            .where(scores.c.shipment_id.in_(day))
            .group_by(scores.c.shipment_id)
            .subquery()
        )
        score_q = sa.select(
            scores.c.shipment_id,
            scores.c.score,
            scores.c.band,
            scores.c.percentile,
            scores.c.model_version,
            scores.c.scored_at,
            scores.c.reasons.is_not(None).label("has_reasons"),
        ).join(latest, scores.c.id == latest.c.score_id)
        ship_q = sa.select(*[shipments.c[n] for n in WORKLIST_COLUMNS]).where(
            shipments.c.declared_at >= start, shipments.c.declared_at < end
        )
        out_q = sa.select(
            outcome_reports.c.shipment_id,
            outcome_reports.c.inspected_at,
            outcome_reports.c.result,
        ).where(outcome_reports.c.shipment_id.in_(day), reports_in_force())
        with self.engine.connect() as conn:
            ships = pd.read_sql(ship_q, conn)
            scored = pd.read_sql(score_q, conn)
            inspected = pd.read_sql(out_q, conn)
        if not inspected.empty:
            inspected = (
                inspected.sort_values("inspected_at")
                .drop_duplicates("shipment_id", keep="last")
                .rename(columns={"result": "outcome"})
            )
        else:
            inspected = pd.DataFrame(columns=["shipment_id", "inspected_at", "outcome"])
        frame = ships.merge(scored, on="shipment_id", how="left").merge(
            inspected, on="shipment_id", how="left"
        )
        for col in ("declared_at", "arrival_at", "scored_at", "inspected_at"):
            frame[col] = pd.to_datetime(frame[col])
        frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
        frame["has_reasons"] = frame["has_reasons"].fillna(False).astype(bool)
        return frame

    # -- investigations --------------------------------------------------------------------
    def timeline(self, shipment_ids: list[str]) -> tuple[list[dict], list[dict]]:
        """The shipments among ``shipment_ids`` (declaration in force: the worklist's columns,
        ``version``, latest score and band, inspections in force and seizures) and their
        events, newest first: ``declared``, ``amended`` (with the fields changed), ``scored``,
        ``inspected`` and ``corrected`` (a report replacing an earlier one, with its reason)."""
        ids = list(dict.fromkeys(shipment_ids))
        if not ids:
            return [], []
        cols = [shipments.c[n] for n in WORKLIST_COLUMNS]
        rows: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5_000):
                part = ids[start : start + 5_000]
                for r in conn.execute(
                    sa.select(*cols, shipments.c.version).where(shipments.c.shipment_id.in_(part))
                ).mappings():
                    rows[r["shipment_id"]] = {
                        **dict(r),
                        "score": None,
                        "band": None,
                        "inspections": 0,
                        "seizures": 0,
                    }
                v = shipment_versions.c
                for r in conn.execute(
                    sa.select(v.shipment_id, v.version, v.received_at, v.caller, v.changed).where(
                        v.shipment_id.in_(part), v.version > 1
                    )
                ).mappings():
                    changed = json.loads(r["changed"]) if r["changed"] else []
                    events.append(
                        {
                            "at": r["received_at"],
                            "event": "amended",
                            "shipment_id": r["shipment_id"],
                            "by": r["caller"],
                            "detail": f"version {r['version']}: "
                            + ", ".join(c.replace("_", " ") for c in changed),
                        }
                    )
                s = scores.c
                for r in conn.execute(
                    sa.select(
                        s.shipment_id, s.scored_at, s.score, s.band, s.model_version, s.caller
                    )
                    .where(s.shipment_id.in_(part))
                    .order_by(s.id)
                ).mappings():
                    row = rows.get(r["shipment_id"])
                    if row is not None:
                        row["score"], row["band"] = r["score"], r["band"]
                    events.append(
                        {
                            "at": r["scored_at"],
                            "event": "scored",
                            "shipment_id": r["shipment_id"],
                            "by": r["caller"],
                            "detail": f"{100 * r['score']:.1f} % ({r['band']}), model "
                            f"version {r['model_version']}",
                            "band": r["band"],
                        }
                    )
                o = outcome_reports.c
                reports = conn.execute(
                    sa.select(*[o[n] for n in REPORT_FIELDS])
                    .where(o.shipment_id.in_(part))
                    .order_by(o.seq)
                ).mappings()
                in_force: dict[tuple, dict] = {}
                for r in reports:
                    in_force[(r["shipment_id"], r["inspected_at"])] = dict(r)
                    words = str(r["result"])
                    if r["drug"]:
                        words += f", {r['drug']}"
                    if r["quantity_kg"] is not None:
                        words += f", {r['quantity_kg']:g} kg"
                    corrected = r["revision"] > 1
                    if corrected:
                        words += (
                            f" (correction, revision {r['revision']}: {r['correction_reason']})"
                        )
                    events.append(
                        {
                            "at": r["inspected_at"],
                            "event": "corrected" if corrected else "inspected",
                            "shipment_id": r["shipment_id"],
                            "by": r["caller"],
                            "detail": words,
                            "result": r["result"],
                        }
                    )
                for (sid, _), report in in_force.items():
                    row = rows.get(sid)
                    if row is not None:
                        row["inspections"] += 1
                        row["seizures"] += report["result"] == "seized"
        for row in rows.values():
            events.append(
                {
                    "at": row["declared_at"],
                    "event": "declared",
                    "shipment_id": row["shipment_id"],
                    "by": None,
                    "detail": f"{row['mode']} from {row['origin_country'] or '?'} to "
                    f"{row['discharge_port'] or '?'}",
                }
            )
        for e in events:
            if isinstance(e["at"], str):
                e["at"] = dt.datetime.fromisoformat(e["at"])
        order = {"declared": 0, "scored": 1, "amended": 2, "inspected": 3, "corrected": 4}
        events.sort(key=lambda e: (e["at"], order[e["event"]]), reverse=True)
        ships = sorted(rows.values(), key=lambda r: r["declared_at"], reverse=True)
        return ships, events
