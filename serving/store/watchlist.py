"""The officers' watchlist: parties and identifiers flagged with a reason and an expiry,
kept append-only (every addition, change and removal with who, when and why), and which
shipments touch an entry in force.

A watchlist hit is shown to officers (the worklist marks the shipment, the score response
names the entry) and is never a model feature: see docs/ui.md ("Watchlists") for why.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.contracts import EARLIEST, LATEST, normal_text
from features.errors import CargoriskError
from serving.store.identity import Caller
from serving.store.rows import utcnow
from serving.store.search import KINDS, index_entries, key_of
from serving.store.tables import audit_events, search_terms, watchlist_events

ACTIONS = ("added", "changed", "removed")
MAX_REASON = 500


class WatchlistError(CargoriskError):
    """A watchlist request the officer must fix; the message names the field."""


@dataclass(frozen=True)
class WatchEntry:
    """A watchlist entry as it stands (its latest event) and its history (oldest first)."""

    entry: str
    kind: str
    term: str
    display: str
    reason: str
    expires_at: dt.datetime
    added_by: str
    added_at: dt.datetime
    removed: bool
    history: list[dict[str, Any]]

    def in_force(self, now: dt.datetime) -> bool:
        return not self.removed and self.expires_at > now

    @property
    def words(self) -> str:
        return KINDS[self.kind].words


def _check(reason: str, expires_at: dt.datetime | None, now: dt.datetime) -> str:
    reason = " ".join(normal_text(str(reason or "")).split())
    if not reason:
        raise WatchlistError("reason: say why (it is kept with the entry and audited)")
    if len(reason) > MAX_REASON:
        raise WatchlistError(f"reason: at most {MAX_REASON} characters (got {len(reason)})")
    if expires_at is None:
        raise WatchlistError("expires_at: every entry needs an expiry")
    if not EARLIEST <= expires_at < LATEST:
        raise WatchlistError("expires_at: a date between 1990 and 2099")
    if expires_at <= now:
        raise WatchlistError(f"expires_at: {expires_at:%Y-%m-%d %H:%M} is not in the future")
    return reason


class WatchlistStore:
    """The watchlist's writes and reads (a part of :class:`serving.store.Store`)."""

    engine: Engine

    def _watch_event(self, conn, caller: Caller, **row: Any) -> None:
        at = utcnow()
        conn.execute(watchlist_events.insert(), {**row, "at": at, "caller": caller.label})
        conn.execute(
            audit_events.insert(),
            {
                "at": at,
                "caller": caller.label,
                "action": f"watchlist_{row['action']}",
                "detail": json.dumps(
                    {k: row[k] for k in ("entry", "kind", "term", "reason", "expires_at")},
                    default=str,
                ),
            },
        )

    def watch(
        self,
        kind: str,
        value: str,
        *,
        reason: str,
        expires_at: dt.datetime | None,
        caller: Caller,
        display: str | None = None,
    ) -> str:
        """Flag a party or identifier (``value`` as written; normalised as the search index
        keys its kind); returns the new entry's id. Audited."""
        try:
            term = key_of(kind, value)
        except ValueError as exc:
            raise WatchlistError(str(exc)) from None
        if term is None:
            raise WatchlistError(f"value: give the {KINDS[kind].words} to watch")
        reason = _check(reason, expires_at, utcnow())
        entry = uuid.uuid4().hex
        shown = display or " ".join(normal_text(str(value)).split())
        with self.engine.begin() as conn:
            self._watch_event(
                conn,
                caller,
                entry=entry,
                action="added",
                kind=kind,
                term=term,
                display=shown[:300],
                reason=reason,
                expires_at=expires_at,
            )
        return entry

    def change_watch(
        self,
        entry: str,
        *,
        reason: str,
        expires_at: dt.datetime | None,
        caller: Caller,
        remove: bool = False,
    ) -> None:
        """Change an entry's reason and expiry, or remove it (``remove``; the reason says
        why). Audited; the earlier events stay."""
        now = utcnow()
        current = self.watch_entry(entry)
        if current is None or current.removed:
            raise WatchlistError(f"entry: no watchlist entry {entry!r} in force")
        if remove:
            reason = " ".join(normal_text(str(reason or "")).split())
            if not reason:
                raise WatchlistError("reason: say why the entry is removed")
            expires_at = current.expires_at
        else:
            reason = _check(reason, expires_at, now)
        with self.engine.begin() as conn:
            self._watch_event(
                conn,
                caller,
                entry=entry,
                action="removed" if remove else "changed",
                kind=current.kind,
                term=current.term,
                display=current.display,
                reason=reason[:MAX_REASON],
                expires_at=expires_at,
            )

    def _entries(self, cond=None) -> list[WatchEntry]:
        w = watchlist_events.c
        query = sa.select(watchlist_events).order_by(w.id)
        if cond is not None:
            query = query.where(cond)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        by_entry: dict[str, list[dict]] = {}
        for r in rows:
            by_entry.setdefault(r["entry"], []).append(r)
        out = []
        for entry, events in by_entry.items():
            first, last = events[0], events[-1]
            out.append(
                WatchEntry(
                    entry=entry,
                    kind=last["kind"],
                    term=last["term"],
                    display=last["display"],
                    reason=last["reason"],
                    expires_at=last["expires_at"],
                    added_by=first["caller"],
                    added_at=first["at"],
                    removed=last["action"] == "removed",
                    history=events,
                )
            )
        return out

    def watch_entry(self, entry: str) -> WatchEntry | None:
        found = self._entries(watchlist_events.c.entry == entry)
        return found[0] if found else None

    def watchlist(self, *, all_entries: bool = False) -> list[WatchEntry]:
        """The entries in force (or every entry ever made), newest first."""
        now = utcnow()
        entries = self._entries()
        if not all_entries:
            entries = [e for e in entries if e.in_force(now)]
        return sorted(entries, key=lambda e: e.added_at, reverse=True)

    def watched(self, kind: str, term: str) -> list[WatchEntry]:
        """The entries in force on one party or identifier."""
        w = watchlist_events.c
        now = utcnow()
        return [e for e in self._entries((w.kind == kind) & (w.term == term)) if e.in_force(now)]

    def watched_keys(self, kind: str, terms: list[str]) -> set[str]:
        """Which of ``terms`` (of one kind) an entry in force watches."""
        wanted = set(terms)
        return {e.term for e in self.watchlist() if e.kind == kind and e.term in wanted}

    def watch_hits(self, ship: dict[str, list]) -> dict[str, list[WatchEntry]]:
        """The entries in force each of these declarations (contract columns, one list each)
        touches: by any party, identifier or reference it carries."""
        entries = self.watchlist()
        if not entries:
            return {}
        by_key: dict[tuple[str, str], list[WatchEntry]] = {}
        for e in entries:
            by_key.setdefault((e.kind, e.term), []).append(e)
        _, postings = index_entries(ship)
        out: dict[str, list[WatchEntry]] = {}
        for kind, term, sid in postings:
            for e in by_key.get((kind, term), ()):
                if e not in out.setdefault(sid, []):
                    out[sid].append(e)
        return out

    def watch_marks(self, shipment_ids: list[str]) -> dict[str, list[WatchEntry]]:
        """The entries in force the stored shipments among ``shipment_ids`` touch (any
        version of their declaration)."""
        entries = self.watchlist()
        if not entries or not shipment_ids:
            return {}
        t = search_terms.c
        out: dict[str, list[WatchEntry]] = {}
        ids = list(dict.fromkeys(shipment_ids))
        with self.engine.connect() as conn:
            for e in entries:
                for start in range(0, len(ids), 5_000):
                    for sid in conn.execute(
                        sa.select(t.shipment_id).where(
                            t.kind == e.kind,
                            t.term == e.term,
                            t.shipment_id.in_(ids[start : start + 5_000]),
                        )
                    ).scalars():
                        out.setdefault(sid, []).append(e)
        return out
