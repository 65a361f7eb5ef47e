"""Pruning the online aggregates' day buckets (issue 15): ``key_days`` gains a row per key and
UTC day; a bucket older than the longest window its dimension's features read can never be
read again by a shipment declared from the *horizon* on, so it is deleted.

* The horizon: ``min(now, latest declared_at stored) - grace`` - the clock of the data (a
  replay of an older period keeps its own windows) never ahead of the wall clock (a
  declaration dated in the future moves nothing), less ``grace`` days for declarations that
  arrive late. A declaration dated before the horizon is still scored, but the windows
  that reach before the kept buckets count only what is kept (as after a materialisation,
  whose snapshot keeps the buckets from its own ``as_of``'s windows on).
* Kept: per dimension, the buckets from ``window_start(horizon, span)`` on, ``span`` the
  dimension's longest window (:func:`features.snapshot.spans`: shipment and seizure windows;
  :data:`features.snapshot.MAX_WINDOW_DAYS` at most) - what a shipment at the horizon or later
  reads (:func:`features.history.window_start` grows with ``t``), and what a snapshot as of the
  horizon would hold.
* Bounded work: one run reads at most ``batch`` rows of ``key_days`` in primary-key order from
  where the previous run stopped (a cursor that wraps around) and deletes the old ones among
  them, in one short transaction that takes the aggregates' lock
  (:func:`serving.store.online.serialise`); no index beyond the primary key.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from features import engine
from features.history import window_start
from features.manifest import NS_PER_DAY
from features.snapshot import spans
from serving.store.online import serialise
from serving.store.tables import shipments

log = logging.getLogger(__name__)

Cursor = tuple[str, str, int] | None
"""Where a sweep of ``key_days`` goes on from: the last ``(dim, key, day_start)`` read."""


def horizon(conn, grace_days: int, now_ns: int | None = None) -> int | None:
    """The horizon (int64 ns): ``min(now, latest declared_at stored) - grace_days``; None in
    a store without shipments."""
    latest = conn.execute(sa.select(sa.func.max(shipments.c.declared_at))).scalar()
    if latest is None:
        return None
    now_ns = time.time_ns() if now_ns is None else int(now_ns)
    return min(now_ns, int(pd.Timestamp(latest).value)) - int(grace_days) * NS_PER_DAY


def cutoffs(horizon_ns: int) -> dict[str, int]:
    """Per dimension with day buckets, the first ``day_start`` kept: the earliest bucket a
    shipment declared at ``horizon_ns`` or later reads."""
    out = {}
    for dim in engine.dimensions():
        span = max(spans(dim))
        if span:
            out[dim.name] = int(window_start(int(horizon_ns), span))
    return out


@dataclass(frozen=True)
class Swept:
    """One run: rows read, rows deleted, and where the next run goes on (None: from the
    start, this run reached the end)."""

    read: int
    deleted: int
    cursor: Cursor


_AFTER = {
    None: "",
    "row": 'WHERE ("dim", "key", "day_start") > (:dim, :key, :day) ',
}


def sweep(conn, keep_from: dict[str, int], cursor: Cursor, batch: int) -> Swept:
    """Read up to ``batch`` rows of ``key_days`` after ``cursor`` (primary-key order) and
    delete those before ``keep_from[dim]`` (within ``conn``'s transaction)."""
    where = _AFTER[None if cursor is None else "row"]
    params: dict = {"n": int(batch)}
    if cursor is not None:
        params |= {"dim": cursor[0], "key": cursor[1], "day": int(cursor[2])}
    rows = conn.execute(
        sa.text(
            f'SELECT "dim", "key", "day_start" FROM key_days {where}'
            'ORDER BY "dim", "key", "day_start" LIMIT :n'
        ),
        params,
    ).all()
    old = [
        {"dim": d, "key": k, "day": int(s)}
        for d, k, s in rows
        if d in keep_from and int(s) < keep_from[d]
    ]
    if old:
        serialise(conn)
        conn.execute(
            sa.text(
                'DELETE FROM key_days WHERE "dim" = :dim AND "key" = :key AND "day_start" = :day'
            ),
            old,
        )
    last: Cursor = None
    if len(rows) == batch:
        d, k, s = rows[-1]
        last = (str(d), str(k), int(s))
    return Swept(read=len(rows), deleted=len(old), cursor=last)


class DayPruner:
    """The service's background job: every ``interval`` seconds one
    bounded :func:`sweep` of ``key_days`` against the horizon of that moment (the latest
    in :attr:`horizon`, the buckets deleted so far in :attr:`deleted`)."""

    def __init__(self, db: sa.engine.Engine, *, interval: float, grace_days: int,
                 batch: int = 20_000) -> None:  # fmt: skip
        self.db = db
        self.interval = float(interval)
        self.grace_days = int(grace_days)
        self.batch = int(batch)
        self.cursor: Cursor = None
        self.horizon: int | None = None
        self.deleted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now_ns: int | None = None) -> Swept:
        """One run: the horizon read, one bounded sweep, committed."""
        with self.db.begin() as conn:
            h = horizon(conn, self.grace_days, now_ns)
            if h is None:
                return Swept(0, 0, self.cursor)
            swept = sweep(conn, cutoffs(h), self.cursor, self.batch)
        self.horizon = h if self.horizon is None else max(self.horizon, h)
        self.cursor = swept.cursor
        self.deleted += swept.deleted
        return swept

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="prune-days", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                swept = self.run_once()
                if swept.deleted:
                    log.info("pruned %d day buckets older than the windows read", swept.deleted)
            except Exception:  # the next run tries again; nothing is lost by waiting
                log.exception("pruning the day buckets failed")
