"""Online aggregates kept event by event (issue 15): the rows of a manifest's keys read in a
few queries, and the deltas of stored declarations, amendments and inspection reports
(:mod:`features.online.rows`) applied as upserts (``INSERT ... ON CONFLICT DO UPDATE SET x =
x + excluded.x``, SQLite and PostgreSQL) **inside the transaction that stores them**, each
event once: the ledger ``applied_events`` (primary key: ``shipment:<id>:<version>``,
``report:<id>:<inspected_at>:<revision>``) says which are counted, so a retry or a duplicate
never counts twice.

Events are counted when they are stored, as the service receives them: a report counts in the
totals from then on and in the day bucket of ``known = max(result_at, first declared_at)``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features.contracts import SHIPMENT_COLUMNS, columns_frame
from features.manifest import prepare
from features.online.rows import (
    Deltas,
    LinkChanges,
    ManifestKeys,
    component_id,
    distinct_deltas,
    graph_nodes,
    link_changes,
    outcome_deltas,
    shipment_deltas,
)
from features.snapshot import TABLE_COLUMNS, TABLE_KEYS, WORDS_DIM
from serving.store.rows import utcnow
from serving.store.tables import aggregate_loads, applied_events, pending_reports

_CHUNK = 400
"""Keys per ``(dim, key) IN (...)`` query (under every driver's parameter limit)."""


def columns_of(table: str) -> list[str]:
    """A snapshot table's columns in the store, ``dim`` first."""
    return ["dim", *(c for c, _ in TABLE_COLUMNS[table])]


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns_of(table)})


def _mark(conn) -> str:
    """The driver's positional parameter mark."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _fetch(conn, sql: str, params: Sequence[Any]) -> list[tuple]:
    """The rows of one query through the DBAPI cursor of ``conn`` (its transaction):
    SQLAlchemy's result layer costs more than the query for the hundreds of aggregate rows of
    one shipment and the hundreds of thousands of a manifest."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _run(conn, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple]]:
    """The rows of each query, in ``conn``'s transaction: on PostgreSQL (psycopg) sent
    together in one pipeline (one round trip to the server instead of one per query),
    elsewhere one after the other."""
    if len(queries) > 1 and conn.dialect.driver == "psycopg":
        raw = conn.connection.driver_connection
        cursors = []
        try:
            with raw.pipeline():
                for sql, params in queries:
                    cursor = raw.cursor()
                    cursors.append(cursor)
                    cursor.execute(sql, tuple(params))
            return [list(cursor.fetchall()) for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
    return [_fetch(conn, sql, params) for sql, params in queries]


def _select_queries(
    conn,
    table: str,
    keys: Sequence[tuple],
    key_cols: Sequence[str],
    where: str | None = None,
    *,
    select: str | None = None,
    group: str | None = None,
) -> list[tuple[str, list[Any]]]:
    """The queries of :func:`_select`."""
    if not keys:
        return []
    cols = select or ", ".join(f'"{c}"' for c in columns_of(table))
    *prefix_cols, last = key_cols
    groups: dict[tuple, list] = {}
    for key in keys:
        groups.setdefault(tuple(key[:-1]), []).append(key[-1])
    queries: list[tuple[str, list[Any]]] = []
    parts: list[str] = []
    params: list[Any] = []
    size = 0
    # positional parameters through the driver: SQLAlchemy's text() binding costs more than
    # the queries for a manifest's thousands of keys
    mark = _mark(conn)
    tail = f" GROUP BY {group}" if group else ""

    def flush() -> None:
        nonlocal parts, params, size
        if parts:
            queries.append((" UNION ALL ".join(parts), params))
        parts, params, size = [], [], 0

    for prefix, lasts in groups.items():
        for start in range(0, len(lasts), _CHUNK):
            chunk = lasts[start : start + _CHUNK]
            if size + len(chunk) > _CHUNK or len(parts) >= 200:
                flush()
            conds = [f'"{column}" = {mark}' for column in prefix_cols]
            params.extend(prefix)
            conds.append(f'"{last}" IN ({", ".join([mark] * len(chunk))})')
            params.extend(chunk)
            if where:
                conds.append(where)
            parts.append(f"SELECT {cols} FROM {table} WHERE {' AND '.join(conds)}{tail}")
            size += len(chunk)
    flush()
    return queries


def _select(
    conn,
    table: str,
    keys: Sequence[tuple],
    key_cols: Sequence[str],
    where: str | None = None,
    *,
    select: str | None = None,
    group: str | None = None,
) -> list[tuple]:
    """The rows of ``table`` whose ``key_cols`` are one of ``keys``, and ``where``: the keys
    grouped by all but their last column, one ``c1 = ? AND ... AND last IN (...)`` select per
    group joined by ``UNION ALL`` (each a primary-key range on SQLite and PostgreSQL; a
    row-value ``IN`` makes SQLite scan the table), in chunks under every driver's limits.
    ``select``: the select list (default every column, :func:`columns_of`), ``group`` a
    ``GROUP BY`` of each select."""
    queries = _select_queries(conn, table, keys, key_cols, where, select=select, group=group)
    return [row for rows in _run(conn, queries) for row in rows]


_MAX_SEGMENTS = 64
"""At most this many window starts are summed in the store (:func:`_day_segments`); a
manifest spread over more days reads its keys' day buckets one by one."""


def _day_segments(times: Iterable[int], since: int | None) -> list[int] | None:
    """The window starts (descending) that the features of shipments declared at ``times``
    read from the day buckets (:func:`features.history.window_start` of every window of
    every dimension), from ``since`` on; None when there are more than
    :data:`_MAX_SEGMENTS` (or no times)."""
    from features import engine
    from features.history import window_start
    from features.snapshot import spans

    windows = {w for dim in engine.dimensions() if any(spans(dim))
               for w in (*dim.windows, *dim.seizure_windows)}  # fmt: skip
    starts = {int(window_start(int(t), w)) for t in times for w in windows}
    if since is not None:
        starts = {s for s in starts if s >= since}
    if not starts or len(starts) > _MAX_SEGMENTS:
        return None
    return sorted(starts, reverse=True)


def _days_select(segments: Sequence[int]) -> tuple[str, str]:
    """The select list and ``GROUP BY`` that read the day buckets of a key summed per segment
    between consecutive window starts (``segments``, descending): each segment a row whose
    ``day_start`` is its window start. A window from any of those starts sums the same rows
    as from the buckets themselves (``day_start >= start`` holds for a bucket exactly when
    it holds for its segment's start), in a few rows per key instead of one per day."""
    cases = " ".join(f"WHEN day_start >= {int(s)} THEN {int(s)}" for s in segments)
    select = (
        f'"dim", "key", CASE {cases} END, CAST(SUM("shipments") AS BIGINT), '
        'CAST(SUM("seizures") AS BIGINT)'
    )
    return select, '"dim", "key", 3'


def fetch_rows(conn, keys: ManifestKeys, since: int | None = None) -> dict[str, list[dict]]:
    """The aggregate rows of a manifest's keys (:func:`features.online.rows.manifest_keys`),
    as lists of row mappings in the snapshot's table shapes: what its features are computed
    from. ``since``: day buckets from then on only (the earliest window start of the
    manifest). The day buckets come summed per segment between the window starts of the
    manifest's declaration times (``keys.times``, :func:`_days_select`) when there are few."""
    return read_rows(conn, keys, since)[1]


def read_rows(
    conn, keys: ManifestKeys, since: int | None = None, due_by: int | None = None
) -> tuple[bool, dict[str, list[dict]]]:
    """:func:`fetch_rows`, all queries at once (one round trip on PostgreSQL), and with
    ``due_by`` also :func:`any_due` ``(due_by)`` in the same batch: ``(due, rows)`` - when a
    held report is due, the rows are read before it counts."""
    wanted: dict[str, tuple[list[tuple], tuple[str, ...]]] = {
        "key_totals": (sorted(keys.totals), ("dim", "key")),
        "key_days": (sorted(keys.days), ("dim", "key")),
        # the features read the description words' pairs only (the partners' distinct
        # counts are in key_totals; the other pairs decide what a declaration adds)
        "key_pairs": (
            sorted(k for k in keys.pairs if k[0] == WORDS_DIM),
            ("dim", "partner", "key", "value"),
        ),
        "key_components": (sorted(keys.nodes), ("dim", "key")),
    }
    segments = _day_segments(keys.times, since)
    queries: list[tuple[str, Sequence[Any]]] = []
    if due_by is not None:
        queries.append(_due_query(conn, due_by))
    spans: dict[str, tuple[int, int]] = {}
    for table, (ks, key_cols) in wanted.items():
        if table != "key_days":
            more = _select_queries(conn, table, ks, key_cols)
        elif segments is not None:
            select, group = _days_select(segments)
            more = _select_queries(conn, table, ks, key_cols, f"day_start >= {segments[-1]}",
                                   select=select, group=group)  # fmt: skip
        else:
            where = None if since is None else f"day_start >= {int(since)}"
            more = _select_queries(conn, table, ks, key_cols, where)
        spans[table] = (len(queries), len(queries) + len(more))
        queries.extend(more)
    results = _run(conn, queries)
    due = bool(results[0]) if due_by is not None else False
    out = {}
    for table, (start, end) in spans.items():
        names = columns_of(table)
        out[table] = [dict(zip(names, r, strict=True)) for rows in results[start:end] for r in rows]
    return due, out


def aggregates_loaded(conn) -> bool:
    """Whether aggregates were ever loaded into this store (a materialised snapshot)."""
    return conn.execute(sa.select(aggregate_loads.c.seq).limit(1)).first() is not None


# -- applying deltas ---------------------------------------------------------------------------
def _sum(table: str, column: str) -> str:
    # NULL + x is NULL: a column the dimension does not define stays NULL, a new one starts
    # from the delta
    return (
        f'"{column}" = COALESCE({table}."{column}" + excluded."{column}", '
        f'{table}."{column}", excluded."{column}")'
    )


def _upsert_sql(table: str, mark: str) -> str:
    """The summing upsert of ``table``, with positional parameters ``mark`` (``?`` or
    ``%s``) in :func:`columns_of` order."""
    names = columns_of(table)
    keys = TABLE_KEYS[table]
    sets = []
    for column in names:
        if column in keys:
            continue
        if column == "first_seen":
            sets.append(
                f'"first_seen" = CASE WHEN {table}."first_seen" IS NULL OR '
                f'excluded."first_seen" < {table}."first_seen" THEN excluded."first_seen" '
                f'ELSE {table}."first_seen" END'
            )
        else:
            sets.append(_sum(table, column))
    cols = ", ".join(f'"{c}"' for c in names)
    marks = ", ".join(mark for _ in names)
    target = ", ".join(f'"{c}"' for c in keys)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
        f"ON CONFLICT ({target}) DO UPDATE SET {', '.join(sets)}"
    )


_UPSERT = {
    (table, mark): _upsert_sql(table, mark)
    for table in ("key_totals", "key_days")
    for mark in ("?", "%s")
}
"""The upserts, run through the driver's ``executemany`` (SQLAlchemy's parameter handling
costs more than SQLite's work for a manifest's thousands of rows)."""


def _execute_all(conn, statements: Sequence[tuple[str, Sequence[tuple]]]) -> None:
    """Each ``(sql, rows)`` as one ``executemany``, in order, in ``conn``'s transaction: on
    PostgreSQL (psycopg) all in one pipeline (one round trip), elsewhere one after the
    other."""
    statements = [(sql, rows) for sql, rows in statements if rows]
    if not statements:
        return
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.driver == "psycopg":
            with conn.connection.driver_connection.pipeline():
                for sql, rows in statements:
                    cursor.executemany(sql, rows)
        else:
            for sql, rows in statements:
                cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _deltas_statements(conn, deltas: Deltas) -> list[tuple[str, list[tuple]]]:
    """The statements of :func:`apply_deltas`."""
    mark = _mark(conn)
    out: list[tuple[str, list[tuple]]] = []
    for table, items in (("key_totals", deltas.totals), ("key_days", deltas.days)):
        if not items:
            continue
        names = columns_of(table)[len(TABLE_KEYS[table]) :]
        rows = [(*key, *(row[c] for c in names)) for key, row in sorted(items.items())]
        out.append((_UPSERT[(table, mark)], rows))
    own = [(int(n), consignee) for consignee, n in sorted(deltas.own.items()) if n != 0]
    if own:
        out.append(_consignee_nodes_statement(conn, [c for _, c in own]))
        # each statement over every consignee (the second one does not change what the
        # first one reads: a consignee's component)
        out.append((
            f'UPDATE key_components SET "seizures" = "seizures" + {mark} WHERE "component" = '
            f'(SELECT "component" FROM key_components WHERE "dim" = \'consignee\' '
            f'AND "key" = {mark})',
            own,
        ))  # fmt: skip
        out.append((
            f'UPDATE key_components SET "own_seizures" = COALESCE("own_seizures", 0) + {mark} '
            f'WHERE "dim" = \'consignee\' AND "key" = {mark}',
            own,
        ))  # fmt: skip
    return out


def apply_deltas(conn, deltas: Deltas) -> None:
    """Add ``deltas`` to the tables (within ``conn``'s transaction): totals and day buckets
    summed, the consignees' own seizures and their components' seizures (a consignee not in
    the link graph yet given its node first: :func:`add_consignee_nodes`)."""
    _execute_all(conn, _deltas_statements(conn, deltas))


def _consignee_nodes_statement(conn, consignees: Iterable[str]) -> tuple[str, list[tuple]]:
    """The statement of :func:`add_consignee_nodes`."""
    mark = _mark(conn)
    return (
        'INSERT INTO key_components ("dim", "key", "component", "parties", "seizures", '
        f"\"own_seizures\") VALUES ('consignee', {mark}, {mark}, 0, 0, 0) "
        'ON CONFLICT ("dim", "key") DO NOTHING',
        [(c, int(component_id("consignee", c))) for c in sorted(consignees)],
    )


def add_consignee_nodes(conn, consignees: Iterable[str]) -> None:
    """Make sure each consignee has a node in the link graph before a seizure is counted on
    it: a consignee that never declared a shipment gets one when an amendment names it on a
    seized shipment - a component of its own (:func:`features.online.rows.component_id`),
    no parties (it is no party until it declares: :func:`features.online.rows.link_changes`)
    and the seizures about to be added, as the offline link graph counts them. A
    consignee already in the graph is left alone."""
    _execute_all(conn, [_consignee_nodes_statement(conn, consignees)])


def _links_statements(conn, changes: LinkChanges) -> list[tuple[str, list[tuple]]]:
    """The statements of :func:`apply_links`."""
    mark = _mark(conn)
    out: list[tuple[str, list[tuple]]] = []
    if changes.relabel:
        # a component is relabelled to a root, never to another relabelled one: the order of
        # the updates does not matter
        out.append((
            f'UPDATE key_components SET "component" = {mark} WHERE "component" = {mark}',
            [(int(new), int(old)) for old, new in sorted(changes.relabel.items())],
        ))  # fmt: skip
    if changes.new_nodes:
        rows = []
        for (dim, key), component in changes.new_nodes.items():
            parties, seizures = changes.components[component]
            rows.append((dim, key, int(component), int(parties), int(seizures),
                         0 if dim == "consignee" else None))  # fmt: skip
        out.append((
            'INSERT INTO key_components ("dim", "key", "component", "parties", "seizures", '
            f'"own_seizures") VALUES ({", ".join([mark] * 6)})',
            rows,
        ))  # fmt: skip
    if changes.components:
        out.append((
            f'UPDATE key_components SET "parties" = {mark}, "seizures" = {mark} '
            f'WHERE "component" = {mark}',
            [(int(parties), int(seizures), int(component))
             for component, (parties, seizures) in sorted(changes.components.items())],
        ))  # fmt: skip
    return out


def apply_links(conn, changes: LinkChanges) -> None:
    """The link graph's changes: components merged (relabelled), new nodes, and the parties and
    seizures of every component that changed, on all its nodes (each kind of change one
    ``executemany``)."""
    _execute_all(conn, _links_statements(conn, changes))


_RETURNING_ROWS = 1_000
"""Rows per multi-row ``INSERT ... RETURNING`` (5,000 parameters of the pairs: under SQLite's
32,766 and PostgreSQL's 65,535)."""


def _insert_queries(
    conn,
    table: str,
    names: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[tuple],
    returning: Sequence[str],
) -> list[tuple[str, list]]:
    """Insert the ``rows`` (``names`` order) that ``table`` does not hold yet (by its key
    ``keys``), returning the ``returning`` columns of those it inserted: ``INSERT ... ON
    CONFLICT DO NOTHING RETURNING`` in multi-row statements (SQLite 3.35+, PostgreSQL) - the
    ledger's claim and the new partner pairs in one statement each, instead of a read of the
    rows present and an insert of the others."""
    mark = _mark(conn)
    cols = ", ".join(f'"{c}"' for c in names)
    one = f"({', '.join([mark] * len(names))})"
    target = ", ".join(f'"{c}"' for c in keys)
    back = ", ".join(f'"{c}"' for c in returning)
    out: list[tuple[str, list]] = []
    for start in range(0, len(rows), _RETURNING_ROWS):
        chunk = rows[start : start + _RETURNING_ROWS]
        sql = (
            f"INSERT INTO {table} ({cols}) VALUES {', '.join([one] * len(chunk))} "
            f"ON CONFLICT ({target}) DO NOTHING RETURNING {back}"
        )
        out.append((sql, [v for row in chunk for v in row]))
    return out


def _claim(conn, events: Sequence[tuple[str, str]], *, serialised: bool = False) -> set[str]:
    """Record events in the ledger; returns the ids that were not there yet (the ones to
    count). Ids repeated within ``events`` count once. ``serialised``: take the aggregates'
    turn first (:func:`serialise`), in the same round trip."""
    kinds = dict(events)
    ids = list(kinds)
    lock = _lock_queries(conn) if serialised else []
    if not ids:
        _run(conn, lock)
        return set()
    at = utcnow()
    stamp = applied_events.c.applied_at.type.dialect_impl(conn.dialect).bind_processor(
        conn.dialect
    )  # the stored form SQLAlchemy gives a datetime (SQLite: text)
    when = at if stamp is None else stamp(at)
    rows = [(e, kinds[e], when) for e in ids]
    queries = _insert_queries(conn, "applied_events", ("event_id", "kind", "applied_at"),
                              ("event_id",), rows, ("event_id",))  # fmt: skip
    results = _run(conn, [*lock, *queries])
    return {r[0] for rows in results[len(lock) :] for r in rows}


LOCK_ID = 15_015
"""The PostgreSQL advisory lock every transaction that changes the aggregates takes first."""


def _lock_queries(conn) -> list[tuple[str, tuple[int]]]:
    if conn.dialect.name == "postgresql":
        return [(f"SELECT pg_advisory_xact_lock({_mark(conn)})", (LOCK_ID,))]
    return []


def serialise(conn) -> None:
    """Make the transactions that change the aggregates take turns (their reads of pairs
    and components decide what they write). SQLite has one writer at a time already (these
    reads follow the transaction's first write); PostgreSQL takes a transaction-scoped
    advisory lock, released at commit or rollback."""
    _run(conn, _lock_queries(conn))


def shipment_event(shipment_id: str, version: int) -> str:
    return f"shipment:{shipment_id}:{int(version)}"


def report_event(shipment_id: str, inspected_at: Any, revision: int) -> str:
    return f"report:{shipment_id}:{pd.Timestamp(inspected_at).isoformat()}:{int(revision)}"


def _frame(rows: Mapping[str, list]) -> pd.DataFrame:
    return columns_frame("shipments", {n: list(rows[n]) for n in SHIPMENT_COLUMNS})


def _prepared(rows: Mapping[str, list]) -> dict[str, np.ndarray]:
    """The contract columns ``rows`` prepared: one shipment from its fields (as the service
    prepares one scored shipment; a frame costs more than the rest of its commit), more
    through a contract frame."""
    if len(rows["shipment_id"]) == 1:
        return prepare({n: rows[n][0] for n in SHIPMENT_COLUMNS}, tuple_keys=True)
    return prepare(_frame(rows), tuple_keys=True)


def add_declarations(
    conn,
    ship: Mapping[str, list],
    new_rows: Sequence[int],
    versions: Sequence[int],
    old: Mapping[str, Mapping[str, Any]],
    reports: Mapping[str, list[dict[str, Any]]],
    first_declared: Mapping[str, Any],
) -> None:
    """Count stored declarations (within the transaction that stores them): ``ship`` the
    request's contract columns, ``new_rows`` the rows stored as a new version (``versions``
    their numbers). A first version adds a shipment to the history; a later one (an
    amendment) moves the shipment's reports in force (``reports``: shipment id -> reports,
    each with ``result_at`` and ``result``) from the declaration in force before (``old``)
    to this one, at ``known = max(result_at, first declared_at)``."""
    events = [
        (shipment_event(ship["shipment_id"][i], v), "shipment")
        for i, v in zip(new_rows, versions, strict=True)
    ]
    fresh = _claim(conn, events, serialised=True)
    first = [
        i for (e, _), i, v in zip(events, new_rows, versions, strict=True) if e in fresh and v == 1
    ]
    amended = [
        i for (e, _), i, v in zip(events, new_rows, versions, strict=True) if e in fresh and v > 1
    ]
    if first:
        sub = {n: [ship[n][i] for i in first] for n in SHIPMENT_COLUMNS}
        p = _prepared(sub)
        deltas = shipment_deltas(p)
        # the new pairs inserted and the link graph's nodes read in one round trip (first
        # declarations change no component before apply_links)
        pairs = _insert_queries(
            conn,
            "key_pairs",
            ("dim", "partner", "key", "value", "first_seen"),
            TABLE_KEYS["key_pairs"],
            [(*pair, first_seen) for pair, first_seen in sorted(deltas.pairs.items())],
            ("dim", "partner", "key", "value"),
        )
        nodes_read = _select_queries(conn, "key_components", sorted(graph_nodes(p)), ("dim", "key"))
        results = _run(conn, [*pairs, *nodes_read])
        new_pairs = [tuple(r) for rows in results[: len(pairs)] for r in rows]
        deltas.add(distinct_deltas(new_pairs))
        nodes = {
            (r[0], r[1]): (int(r[2]), int(r[3]), int(r[4]))
            for rows in results[len(pairs) :]
            for r in rows
        }
        # the summing upserts and the link graph's changes: one round trip
        _execute_all(
            conn,
            [
                *_deltas_statements(conn, deltas),
                *_links_statements(conn, link_changes(nodes, p)),
            ],
        )
    if amended:
        ids = [ship["shipment_id"][i] for i in amended]
        before = {n: [old[s][n] for s in ids] for n in SHIPMENT_COLUMNS}
        after = {n: [ship[n][i] for i in amended] for n in SHIPMENT_COLUMNS}
        move_reports(conn, before, after, reports, first_declared)


def move_reports(
    conn,
    before: Mapping[str, list],
    after: Mapping[str, list],
    reports: Mapping[str, list[dict[str, Any]]],
    first_declared: Mapping[str, Any],
    *,
    before_ns: int | None = None,
) -> None:
    """Move the reports in force of shipments (``reports``: shipment id -> reports) from
    their declarations ``before`` to ``after`` (contract columns, one row per shipment):
    an amendment puts a shipment's inspections on the declaration in force. ``before_ns``:
    only the reports known before then (those a snapshot counted)."""
    ids = list(before["shipment_id"])
    moved = []
    for row, sid in enumerate(ids):
        for report in reports.get(sid, []):
            known = _known(report["result_at"], first_declared[sid])
            if before_ns is None or known < before_ns:
                moved.append((row, known, _seized(report["result"])))
    if not moved:
        return
    rows = [m[0] for m in moved]
    old_cols = {n: [before[n][r] for r in rows] for n in SHIPMENT_COLUMNS}
    new_cols = {n: [after[n][r] for r in rows] for n in SHIPMENT_COLUMNS}
    known_at = [m[1] for m in moved]
    seized = [m[2] for m in moved]
    deltas = outcome_deltas(_prepared(old_cols), known_at, seized, sign=-1)
    deltas.add(outcome_deltas(_prepared(new_cols), known_at, seized, sign=1))
    apply_deltas(conn, deltas)


def add_reports(
    conn,
    reports: Sequence[Mapping[str, Any]],
    replaced: Sequence[Mapping[str, Any] | None],
    declarations: Mapping[str, Mapping[str, Any]],
    first_declared: Mapping[str, Any],
    *,
    now_ns: int | None = None,
) -> None:
    """Count stored inspection reports (within the transaction that stores them): each new
    report (with ``revision``) on its shipment's declaration in force (``declarations``), the
    report it corrects (``replaced``, or None) taken back. A report known later than now
    (``now_ns``, default the clock) is held in ``pending_reports`` and counted when due
    (:func:`fold_due`); a held report corrected before then is dropped from it, not taken
    back."""
    now_ns = time.time_ns() if now_ns is None else int(now_ns)
    events = [
        (report_event(r["shipment_id"], r["inspected_at"], r["revision"]), "report")
        for r in reports
    ]
    fresh = _claim(conn, events, serialised=True)
    counted = [
        (e, r, old) for (e, _), r, old in zip(events, reports, replaced, strict=True) if e in fresh
    ]
    if not counted:
        return
    olds = [
        report_event(r["shipment_id"], old["inspected_at"], old["revision"])
        for _, r, old in counted
        if old is not None
    ]
    held = _pending(conn, olds)
    if held:
        conn.execute(pending_reports.delete().where(pending_reports.c.event_id.in_(sorted(held))))
    take_back, add, hold = [], [], []
    for event, r, old in counted:
        sid = r["shipment_id"]
        if old is not None and report_event(sid, old["inspected_at"], old["revision"]) not in held:
            take_back.append((sid, old))
        due = _known(r["result_at"], first_declared[sid])
        if due > now_ns:
            hold.append({"event_id": event, "shipment_id": sid,
                         "inspected_at": r["inspected_at"], "revision": int(r["revision"]),
                         "due_ns": due})  # fmt: skip
        else:
            add.append((sid, r))
    if hold:
        conn.execute(pending_reports.insert(), hold)
    _count_reports(conn, take_back, add, declarations, first_declared)


def _count_reports(conn, take_back, add, declarations, first_declared) -> None:
    """Apply the deltas of reports taken back and added (``(shipment id, report)`` pairs)."""
    deltas = Deltas()
    for sign, chosen in ((-1, take_back), (1, add)):
        if not chosen:
            continue
        cols = {n: [declarations[s][n] for s, _ in chosen] for n in SHIPMENT_COLUMNS}
        known = [_known(rep["result_at"], first_declared[s]) for s, rep in chosen]
        seized = [_seized(rep["result"]) for _, rep in chosen]
        deltas.add(outcome_deltas(_prepared(cols), known, seized, sign=sign))
    apply_deltas(conn, deltas)


def _pending(conn, event_ids: Sequence[str]) -> set[str]:
    """Which of ``event_ids`` are held in ``pending_reports``."""
    found: set[str] = set()
    ids = list(dict.fromkeys(event_ids))
    for start in range(0, len(ids), _CHUNK):
        found.update(
            conn.execute(
                sa.select(pending_reports.c.event_id).where(
                    pending_reports.c.event_id.in_(ids[start : start + _CHUNK])
                )
            ).scalars()
        )
    return found


def _due_query(conn, now_ns: int) -> tuple[str, tuple[int]]:
    return (f"SELECT 1 FROM pending_reports WHERE due_ns <= {_mark(conn)} LIMIT 1", (int(now_ns),))


def any_due(conn, now_ns: int) -> bool:
    """Whether a held report is due (a cheap read before :func:`fold_due`)."""
    return bool(_fetch(conn, *_due_query(conn, now_ns)))


def fold_due(conn, now_ns: int) -> int:
    """Count the held reports due by ``now_ns`` (within ``conn``'s transaction) on their
    shipments' declarations in force, and remove them from ``pending_reports``; returns how
    many."""
    from serving.store.tables import outcome_reports, shipments

    serialise(conn)
    due = (
        conn.execute(sa.select(pending_reports).where(pending_reports.c.due_ns <= now_ns))
        .mappings()
        .all()
    )
    if not due:
        return 0
    conn.execute(
        pending_reports.delete().where(pending_reports.c.event_id.in_([r["event_id"] for r in due]))
    )
    ids = sorted({r["shipment_id"] for r in due})
    found = {}
    for r in conn.execute(
        sa.select(outcome_reports).where(outcome_reports.c.shipment_id.in_(ids))
    ).mappings():
        found[(r["shipment_id"], r["inspected_at"], r["revision"])] = dict(r)
    declarations = {
        r["shipment_id"]: dict(r)
        for r in conn.execute(
            sa.select(*[shipments.c[n] for n in SHIPMENT_COLUMNS]).where(
                shipments.c.shipment_id.in_(ids)
            )
        ).mappings()
    }
    add = [
        (r["shipment_id"], found[(r["shipment_id"], r["inspected_at"], r["revision"])]) for r in due
    ]
    _count_reports(conn, [], add, declarations, first_declared(conn, ids))
    return len(add)


def held_events(conn, ids: Iterable[str]) -> set[tuple[str, Any]]:
    """``(shipment id, inspected_at)`` of the held reports of shipments ``ids``."""
    wanted = list(dict.fromkeys(ids))
    out: set[tuple[str, Any]] = set()
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            sa.select(pending_reports.c.shipment_id, pending_reports.c.inspected_at).where(
                pending_reports.c.shipment_id.in_(wanted[start : start + _CHUNK])
            )
        )
        out.update((r.shipment_id, r.inspected_at) for r in rows)
    return out


def _known(result_at: Any, declared_at: Any) -> int:
    return max(int(pd.Timestamp(result_at).value), int(pd.Timestamp(declared_at).value))


def _seized(result: Any) -> bool:
    return str(result).casefold() == "seized"


def first_declared(conn, ids: Iterable[str]) -> dict[str, dt.datetime]:
    """When each shipment was first declared (its version 1): where its reports count from."""
    from serving.store.tables import shipment_versions

    wanted = list(dict.fromkeys(ids))
    out: dict[str, dt.datetime] = {}
    for start in range(0, len(wanted), 5_000):
        rows = conn.execute(
            sa.select(shipment_versions.c.shipment_id, shipment_versions.c.declared_at).where(
                shipment_versions.c.version == 1,
                shipment_versions.c.shipment_id.in_(wanted[start : start + 5_000]),
            )
        )
        out.update({r.shipment_id: r.declared_at for r in rows})
    return out


def reports_of(conn, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The reports in force (latest revision of each inspection) of the shipments ``ids``
    that the aggregates count (not held in ``pending_reports``): shipment id -> reports
    (``inspected_at``, ``result_at``, ``result``, ``revision``)."""
    from serving.store.tables import outcome_reports

    wanted = list(dict.fromkeys(ids))
    latest: dict[tuple, dict[str, Any]] = {}
    for start in range(0, len(wanted), 5_000):
        rows = conn.execute(
            sa.select(
                outcome_reports.c.shipment_id,
                outcome_reports.c.inspected_at,
                outcome_reports.c.result_at,
                outcome_reports.c.result,
                outcome_reports.c.revision,
            )
            .where(outcome_reports.c.shipment_id.in_(wanted[start : start + 5_000]))
            .order_by(outcome_reports.c.seq)
        ).mappings()
        for r in rows:
            latest[(r["shipment_id"], r["inspected_at"])] = dict(r)
    held = held_events(conn, wanted)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, report in latest.items():
        if key not in held:  # a held report is not counted yet: nothing to move
            out.setdefault(key[0], []).append(report)
    return out


class OnlineStore:
    """The online aggregates' reads (a part of :class:`serving.store.Store`)."""

    engine: sa.engine.Engine

    def aggregate_rows(
        self, keys: ManifestKeys, since: int | None = None, *, due_first: bool = False
    ) -> dict[str, list[dict]]:
        """The aggregate rows of a manifest's keys (:func:`fetch_rows`), as of now.
        ``due_first``: the held reports due by now counted first (:meth:`fold_due_reports`),
        asked in the same round trip as the rows (read again only when one was due)."""
        now_ns = time.time_ns() if due_first else None
        with self.engine.connect() as conn:
            due, rows = read_rows(conn, keys, since, now_ns)
        if not due:
            return rows
        assert now_ns is not None
        with self.engine.begin() as conn:
            fold_due(conn, now_ns)
        with self.engine.connect() as conn:
            return fetch_rows(conn, keys, since)

    def fold_due_reports(self, now_ns: int | None = None) -> int:
        """Count the held reports now due (:func:`fold_due`); a read when none is."""
        now_ns = time.time_ns() if now_ns is None else int(now_ns)
        with self.engine.connect() as conn:
            if not any_due(conn, now_ns):
                return 0
        with self.engine.begin() as conn:
            return fold_due(conn, now_ns)

    def aggregates_loaded(self) -> bool:
        """Whether aggregates were ever loaded into this store (:func:`aggregates_loaded`)."""
        with self.engine.connect() as conn:
            return aggregates_loaded(conn)


class StoreViews:
    """What an officer sees of a party, read from the online aggregates: a profile from
    ``key_totals`` and ``key_days``, the links from the
    consignee pairs of phones, addresses and recipient codes in ``key_pairs`` (walked by
    :func:`features.online.views.linked_from` / ``walk_component``). ``shipments_365d``
    counts the day buckets from ``window_start(now, 365)``."""

    def __init__(self, engine: sa.engine.Engine, now_ns: int | None = None) -> None:
        self.engine = engine
        self.now_ns = time.time_ns() if now_ns is None else int(now_ns)
        self._cache: dict[str, dict[str, Any]] = {}

    def _totals(self, conn, dim: str, key: str) -> dict[str, Any] | None:
        row = (
            conn.execute(
                sa.text(f"SELECT * FROM key_totals WHERE dim = :dim AND {_KEY} = :key"),
                {"dim": dim, "key": key},
            )
            .mappings()
            .first()
        )
        return None if row is None else dict(row)

    def party_profile(self, role: str, party_id: str) -> dict[str, Any]:
        from features.errors import ContractError
        from features.history import COUNTERPARTY, ROLES, window_start
        from features.manifest import norm_text

        if role not in ROLES:
            raise ContractError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        key = norm_text(party_id)
        row, recent = None, 0
        if key is not None:
            with self.engine.connect() as conn:
                row = self._totals(conn, role, key)
                recent = int(
                    conn.execute(
                        sa.text(
                            f"SELECT COALESCE(SUM(shipments), 0) FROM key_days WHERE dim = :dim "
                            f"AND {_KEY} = :key AND day_start >= :since"
                        ),
                        {"dim": role, "key": key, "since": window_start(self.now_ns, 365)},
                    ).scalar()
                    or 0
                )

        def number(column: str) -> int:
            return 0 if row is None or row[column] is None else int(row[column])

        first = None if row is None or not number("shipments") else row["first_seen"]
        return {
            "role": role,
            "party_id": party_id,
            "first_seen": pd.Timestamp(int(first)) if first is not None else None,
            "shipments": number("shipments"),
            "shipments_365d": recent,
            "inspections": number("inspections"),
            "seizures": number("seizures"),
            "distinct_counterparties": number(f"distinct_{COUNTERPARTY[role]}"),
            "distinct_origins": number("distinct_origin"),
            "distinct_hs_chapters": number("distinct_hs2"),
        }

    def _identifiers_of(self, consignee: str) -> list[tuple[str, str]]:
        from features.network import IDENTIFIERS

        marks = ", ".join(f"'{d}'" for d in IDENTIFIERS)
        # in the order they were first declared with the consignee (within one declaration,
        # the order of IDENTIFIERS)
        rank = " ".join(f"WHEN '{d}' THEN {i}" for i, d in enumerate(IDENTIFIERS))
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT dim, {_KEY} FROM key_pairs WHERE partner = 'consignee' AND "
                    f"value = :c AND dim IN ({marks}) "
                    f"ORDER BY first_seen, CASE dim {rank} END, {_KEY}"
                ),
                {"c": consignee},
            ).all()
        return [(r[0], r[1]) for r in rows]

    def _members_of(self, ident: tuple[str, str]) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT value FROM key_pairs WHERE dim = :dim AND partner = 'consignee' "
                    f"AND {_KEY} = :key ORDER BY first_seen, value"
                ),
                {"dim": ident[0], "key": ident[1]},
            ).scalars()
            return list(rows)

    def _consignee(self, key: str) -> dict[str, Any]:
        cached = self._cache.get(key)
        if cached is not None:
            return dict(cached)
        from serving.store.tables import search_keys

        with self.engine.connect() as conn:
            row = self._totals(conn, "consignee", key)
            shown = conn.execute(
                sa.select(search_keys.c.display).where(
                    search_keys.c.kind == "consignee", search_keys.c.term == key
                )
            ).scalar()
        info = {
            "key": key,
            "party_id": " ".join(str(shown).split()) if shown else key,
            "shipments": 0 if row is None else int(row["shipments"] or 0),
            "seizures": 0 if row is None else int(row["seizures"] or 0),
        }
        self._cache[key] = info
        return dict(info)

    def linked_parties(self, party_id: str) -> list[dict[str, Any]]:
        from features.manifest import norm_text
        from features.online.views import linked_from

        key = norm_text(party_id)
        if key is None:
            return []
        return linked_from(key, self._identifiers_of, self._members_of, self._consignee)

    def consignees_of(self, ident: str, value: str) -> list[dict[str, Any]]:
        from features.errors import ContractError
        from features.network import IDENTIFIERS

        if ident not in IDENTIFIERS:
            raise ContractError(f"ident must be one of {', '.join(IDENTIFIERS)}; got {ident!r}")
        out = [self._consignee(c) for c in self._members_of((ident, value))]
        return sorted(out, key=lambda d: (-d["seizures"], d["party_id"]))

    def component(
        self, kind: str, value: str, *, max_parties: int = 150, hub: int = 8
    ) -> dict[str, Any]:
        from features.errors import ContractError
        from features.network import IDENTIFIERS
        from features.online.views import walk_component

        if kind != "consignee" and kind not in IDENTIFIERS:
            raise ContractError(f"kind must be consignee or one of {', '.join(IDENTIFIERS)}")
        return walk_component(
            kind,
            value,
            self._identifiers_of,
            self._members_of,
            self._consignee,
            max_parties=max_parties,
            hub=hub,
        )


_KEY = '"key"'
"""The column ``key`` quoted (a reserved word in some dialects)."""
