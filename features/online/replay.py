"""The online features as the service computes them, without the service (issue 15): for
tests and benchmarks of ``features/``, which may not import ``serving``.

The service holds no history: it keeps the aggregate rows of the snapshot's tables
(:mod:`features.snapshot`) in its store, computes a manifest's features from the rows of its
keys (:func:`features.online.rows.feature_rows`) and then counts the manifest, its amendments
and its inspection reports with the deltas of :mod:`features.online.rows`. Here the same
happens in memory:

* :func:`snapshot_tables` - the snapshot of contract frames as of an instant (DuckDB, the
  engine's SQL, through a temporary directory);
* :class:`OnlineReplay` - those tables in a :class:`~features.online.rows.MemoryRows` and the
  event rules of the store: a shipment counts once, at its first declaration (a re-send
  counts nothing); an amendment moves the shipment's counted reports to the declaration in
  force; one report in force per inspection ``(shipment_id, inspected_at)`` - the same
  report again changes nothing, a different one (a correction) takes the earlier one's counts
  back; a report counts from ``known = max(result_at, first declared_at)``, held until the
  replay's clock (:meth:`OnlineReplay.advance`) has passed it; a report of a shipment never
  declared is refused, naming ``shipment_id``;
* :func:`replay` - a history fed as the service receives it: each instant's shipments scored
  before they are counted, each report counted once known;
* :func:`features_as_of` - the features of probe shipments over a snapshot as of a time.

Features are "as of now": the totals every event counted so far, windows from each shipment's
own ``declared_at`` over the day buckets held. A shipment is scored as the service scores it:
declared now, so its features equal the offline pipeline's (tested for every shipment).
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import engine
from features.contracts import SHIPMENT_COLUMNS, AttributeSpec, missing_required
from features.errors import ContractError
from features.manifest import NS_PER_DAY, prepare
from features.online.rows import MemoryRows
from features.pipeline import check_outcomes, check_shipments
from features.snapshot import Snapshot, read_snapshot, write_snapshot

_SETTINGS = engine.EngineSettings(threads=1, memory_limit="1GB")


def _instant(value: Any) -> int:
    """An instant as int64 ns: an int as is, else anything :class:`pandas.Timestamp` reads."""
    if isinstance(value, int | np.integer):
        return int(value)
    return int(pd.Timestamp(value).value)


def _ns(values: Any) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[ns]").astype("int64")


def snapshot_tables(
    shipments: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    as_of: int,
    settings: engine.EngineSettings | None = None,
) -> Snapshot:
    """:func:`features.snapshot.write_snapshot` of contract frames as of ``as_of`` (int64 ns)
    with DuckDB, read back."""
    s = check_shipments(shipments)
    o = check_outcomes(outcomes)
    with tempfile.TemporaryDirectory(prefix="cargorisk-replay-") as tmp:
        folder = Path(tmp)
        s[list(SHIPMENT_COLUMNS)].to_parquet(folder / "s.parquet", index=False)
        outcome_files = None
        if len(o):
            o.to_parquet(folder / "o.parquet", index=False)
            outcome_files = folder / "o.parquet"
        write_snapshot(
            folder / "s.parquet",
            outcome_files,
            folder / "snap",
            as_of=int(as_of),
            settings=settings or _SETTINGS,
        )
        return read_snapshot(folder / "snap")


class OnlineReplay:
    """Aggregate rows in memory and the store's event rules (see the module): what the
    service holds and answers, for tests. ``now`` is the replay's clock (int64 ns): a report
    counts once its ``known`` is before it; None: every report counts when added."""

    def __init__(
        self,
        rows: MemoryRows | None = None,
        *,
        now: int | None = None,
        attributes: Mapping[str, AttributeSpec] | None = None,
    ) -> None:
        self.rows = rows if rows is not None else MemoryRows()
        self.now = now
        self.attributes = dict(attributes) if attributes else None
        # the declaration in force: a checked contract frame and the shipment's row in it
        self._declared: dict[str, tuple[pd.DataFrame, int]] = {}
        self._first: dict[str, int] = {}  # first declared_at (ns)
        # (shipment_id, inspected_at ns) -> [result_at ns, seized, counted]
        self._reports: dict[tuple[str, int], list] = {}
        self._held: list[tuple[int, str, int, int, bool]] = []

    @classmethod
    def from_history(
        cls,
        shipments: pd.DataFrame,
        outcomes: pd.DataFrame | None = None,
        *,
        as_of: int | pd.Timestamp | str | None = None,
        attributes: Mapping[str, AttributeSpec] | None = None,
    ) -> OnlineReplay:
        """The service started on a history materialised as of ``as_of`` (default: the
        midnight after its latest declaration or result): the snapshot's rows, the
        shipments declared, their reports known before ``as_of`` counted and the later ones
        held until due (the first report of an inspection, as the snapshot counts it;
        reports of shipments not in the history are ignored, as offline). Every shipment
        must be declared before ``as_of``."""
        s = check_shipments(shipments)
        o = check_outcomes(outcomes)
        t = _ns(s["declared_at"])
        ids = s["shipment_id"].astype(str).tolist()
        first = dict(zip(ids, t.tolist(), strict=True))
        o = o[o["shipment_id"].astype(str).isin(first)]
        o = o.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
        o_ids = o["shipment_id"].astype(str).tolist()
        result_at = _ns(o["result_at"]).tolist()
        known = [max(r, first[sid]) for sid, r in zip(o_ids, result_at, strict=True)]
        if as_of is None:
            latest = max([*t.tolist(), *known], default=0)
            as_of = (latest // NS_PER_DAY + 1) * NS_PER_DAY
        as_of = _instant(as_of)
        if len(t) and int(t.max()) >= as_of:
            raise ContractError(
                f"declared_at: the history must be declared before as_of ({as_of}); "
                f"{ids[int(t.argmax())]!r} is not"
            )
        snap = snapshot_tables(s, o, as_of)
        out = cls(MemoryRows(snap.tables), now=as_of, attributes=attributes)
        out._declare(s)
        inspected = _ns(o["inspected_at"]).tolist()
        seized = _seized(o["result"])
        for sid, at, r, k, hit in zip(o_ids, inspected, result_at, known, seized, strict=True):
            counted = k < as_of
            out._reports[(sid, at)] = [r, hit, counted]
            if not counted:
                heapq.heappush(out._held, (k, sid, at, r, hit))
        return out

    def __len__(self) -> int:
        """Shipments declared (counted once each)."""
        return len(self._declared)

    # -- reads ---------------------------------------------------------------------------------
    def features(
        self,
        shipments: pd.DataFrame | Mapping[str, Any],
        *,
        prepared: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Feature rows of ``shipments`` (a contract frame, or one shipment as a mapping of
        its fields) from the rows held now: the training frame's columns, the attribute
        features last, the frame's index. Nothing is counted. Raises :class:`ContractError`
        naming a missing required column or an attribute the schema does not know."""
        if isinstance(shipments, Mapping):
            missing = missing_required("shipments", shipments)
            if missing:
                raise ContractError(f"shipment lacks required field(s): {', '.join(missing)}")
        else:
            check_shipments(shipments)
        p = prepared if prepared is not None else prepare(shipments, tuple_keys=True)
        return self.rows.features(shipments, p, self.attributes)

    # -- events --------------------------------------------------------------------------------
    def advance(self, now: int | pd.Timestamp | str) -> None:
        """Move the clock to ``now`` (never back) and count the held reports known before
        it."""
        now = _instant(now)
        if self.now is not None and now < self.now:
            return
        self.now = now
        due = []
        while self._held and self._held[0][0] < now:
            _, sid, at, r, hit = heapq.heappop(self._held)
            report = self._reports.get((sid, at))
            if report is None or report[2] or (report[0], report[1]) != (r, hit):
                continue  # corrected while held: the correction counts in its place
            report[2] = True
            due.append((sid, r, hit))
        self._count(due, 1)

    def add_shipments(
        self, shipments: pd.DataFrame, *, prepared: dict[str, Any] | None = None
    ) -> None:
        """Count the shipments not declared yet (first declarations; one already declared
        counts nothing, whatever it holds: an amendment is :meth:`amend_shipments`).
        ``prepared``: ``prepare(shipments, tuple_keys=True)`` if already made."""
        self._add_checked(check_shipments(shipments), prepared)

    def _add_checked(self, s: pd.DataFrame, prepared: dict[str, Any] | None) -> None:
        ids = s["shipment_id"].astype(str).tolist()
        fresh = [i for i, sid in enumerate(ids) if sid not in self._declared]
        if not fresh:
            return
        chosen = s if len(fresh) == len(ids) else s.iloc[fresh]
        if prepared is None or len(fresh) != len(ids):
            prepared = prepare(chosen, tuple_keys=True)
        self.rows.add_shipments(prepared)
        self._declare(chosen)

    def amend_shipments(self, shipments: pd.DataFrame) -> None:
        """Put new declarations of declared shipments in force: their counted reports move
        from the declaration in force before to this one (the shipment's place in others'
        history stays as first declared). Raises :class:`ContractError` naming
        ``shipment_id`` for a shipment never declared (nothing changes then)."""
        s = check_shipments(shipments)
        ids = s["shipment_id"].astype(str).tolist()
        self._check_declared(ids)
        amended = set(ids)
        moved = [
            (sid, r, hit)
            for (sid, _), (r, hit, counted) in self._reports.items()
            if sid in amended and counted
        ]
        if moved:
            known = [max(r, self._first[sid]) for sid, r, _ in moved]
            seized = [hit for _, _, hit in moved]
            before = self._in_force([sid for sid, _, _ in moved])
            self.rows.add_reports(before, known, seized, sign=-1)
        for i, sid in enumerate(ids):
            self._declared[sid] = (s, i)
        if moved:
            after = self._in_force([sid for sid, _, _ in moved])
            self.rows.add_reports(after, known, seized, sign=1)

    def add_outcomes(self, outcomes: pd.DataFrame) -> None:
        """Take inspection reports, one in force per ``(shipment_id, inspected_at)``: the
        same report again changes nothing; a different one (a correction) takes the earlier
        one's counts back and counts instead. A report counts now if known before the clock,
        else when :meth:`advance` passes it. Raises :class:`ContractError` naming a missing
        column or ``shipment_id`` of a shipment never declared (nothing counted then)."""
        o = check_outcomes(outcomes)
        if not len(o):
            return
        ids = o["shipment_id"].astype(str).tolist()
        self._check_declared(ids)
        inspected = _ns(o["inspected_at"]).tolist()
        result_at = _ns(o["result_at"]).tolist()
        take_back, add = [], []
        for sid, at, r, hit in zip(ids, inspected, result_at, _seized(o["result"]), strict=True):
            old = self._reports.get((sid, at))
            if old is not None and (old[0], old[1]) == (r, hit):
                continue
            if old is not None and old[2]:
                take_back.append((sid, old[0], old[1]))
            known = max(r, self._first[sid])
            counted = self.now is None or known < self.now
            self._reports[(sid, at)] = [r, hit, counted]
            if counted:
                add.append((sid, r, hit))
            else:
                heapq.heappush(self._held, (known, sid, at, r, hit))
        self._count(take_back, -1)
        self._count(add, 1)

    # -- the ledger ----------------------------------------------------------------------------
    def _declare(self, s: pd.DataFrame) -> None:
        ids = s["shipment_id"].astype(str).tolist()
        t = _ns(s["declared_at"]).tolist()
        for i, (sid, when) in enumerate(zip(ids, t, strict=True)):
            self._declared[sid] = (s, i)
            self._first[sid] = when

    def _in_force(self, ids: list[str]) -> dict[str, Any]:
        """The declarations in force of shipments ``ids`` (repeats allowed), prepared in
        that order."""
        frames: dict[int, tuple[pd.DataFrame, list[int], list[int]]] = {}
        for at, sid in enumerate(ids):
            frame, row = self._declared[sid]
            entry = frames.setdefault(id(frame), (frame, [], []))
            entry[1].append(row)
            entry[2].append(at)
        parts, order = [], []
        for frame, rows, ats in frames.values():
            parts.append(frame[list(SHIPMENT_COLUMNS)].iloc[rows])
            order += ats
        joined = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        joined = joined.reset_index(drop=True).iloc[np.argsort(order, kind="stable")]
        return prepare(joined.reset_index(drop=True), tuple_keys=True)

    def _check_declared(self, ids: list[str]) -> None:
        unknown = [sid for sid in dict.fromkeys(ids) if sid not in self._declared]
        if unknown:
            shown = ", ".join(repr(sid) for sid in unknown[:5])
            raise ContractError(f"shipment_id: no shipment {shown} declared")

    def _count(self, reports: list[tuple[str, int, bool]], sign: int) -> None:
        """Count (``sign`` -1: take back) ``(shipment id, result_at, seized)`` reports on
        their shipments' declarations in force."""
        if not reports:
            return
        p = self._in_force([sid for sid, _, _ in reports])
        known = [max(r, self._first[sid]) for sid, r, _ in reports]
        self.rows.add_reports(p, known, [hit for _, _, hit in reports], sign=sign)


def _plain_columns(s: pd.DataFrame) -> pd.DataFrame:
    """Text columns as object arrays: a replay takes a few rows at a time, and taking rows of
    Arrow-backed text costs more than the features."""
    text = [c for c in s.columns if isinstance(s[c].dtype, pd.StringDtype)]
    return s.astype(dict.fromkeys(text, object)) if text else s


def _seized(results: pd.Series) -> list[bool]:
    return (results.astype(str).str.casefold() == "seized").tolist()


def replay(
    shipments: pd.DataFrame,
    outcomes: pd.DataFrame | None = None,
    *,
    start: OnlineReplay | None = None,
    attributes: Mapping[str, AttributeSpec] | None = None,
    score: bool = True,
) -> tuple[pd.DataFrame | None, OnlineReplay]:
    """Feed ``shipments`` and ``outcomes`` as the service receives them, on ``start`` (a new
    :class:`OnlineReplay` with the ``attributes`` schema unless given): the shipments of each
    declaration instant in time order - the clock moved to it, their features read, then
    they are counted - and each report taken once its shipment is declared, counted once
    known (reports of shipments neither declared nor in ``shipments`` are ignored, as
    offline). Returns the feature rows (in the order and index of ``shipments``; None unless
    ``score``: counting only) and the replay."""
    state = start if start is not None else OnlineReplay(attributes=attributes)
    s = _plain_columns(check_shipments(shipments))
    o = check_outcomes(outcomes)
    o_ids = o["shipment_id"].astype(str)
    state.add_outcomes(o[o_ids.isin(state._declared).to_numpy()])
    by_shipment: dict[str, list[int]] = {}
    for i, sid in enumerate(o_ids.tolist()):
        by_shipment.setdefault(sid, []).append(i)
    t = _ns(s["declared_at"])
    order = np.argsort(t, kind="stable")
    # in time order once: each instant's rows are then a slice (a view), not a take
    s_sorted = s.iloc[order]
    given = shipments.iloc[order] if state.attributes else s_sorted
    t = t[order]
    frames = []
    start_i = 0
    while start_i < len(order):
        end = int(np.searchsorted(t, t[start_i], side="right"))
        checked = s_sorted.iloc[start_i:end]
        state.advance(int(t[start_i]))
        p = prepare(checked, tuple_keys=True)
        if score:
            frames.append(state.rows.features(given.iloc[start_i:end], p, state.attributes))
        state._add_checked(checked, p)
        ids = checked["shipment_id"].astype(str).tolist()
        mine = [i for sid in ids for i in by_shipment.get(sid, ())]
        if mine:
            state.add_outcomes(o.iloc[sorted(mine)])
        start_i = end
    if not score:
        return None, state
    if not frames:
        return state.features(shipments), state
    out = pd.concat(frames)
    out.index = shipments.index[order]
    return out.loc[shipments.index], state


def features_as_of(
    shipments: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    probes: pd.DataFrame | Mapping[str, Any],
    as_of: int | pd.Timestamp,
    *,
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> pd.DataFrame:
    """The features of ``probes`` from a snapshot of the history as of ``as_of`` (shipments
    declared and results known before it): what a service started on that history answers
    first."""
    return OnlineReplay.from_history(
        shipments, outcomes, as_of=as_of, attributes=attributes
    ).features(probes)
