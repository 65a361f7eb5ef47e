"""Online aggregates per key (issue 15): the offline engine's snapshot bulk-loaded into the
store's ``key_totals``, ``key_days`` and ``key_pairs`` tables, and read back.

:func:`materialize` replaces the three tables with a snapshot (``features.snapshot``) in one
transaction and records the load in ``aggregate_loads``: PostgreSQL through ``COPY ... FROM
STDIN`` (psycopg), DuckDB streaming the Parquet out as CSV; SQLite through ``executemany`` in
batches. A reader sees the previous aggregates or the new ones, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from features.errors import CargoriskError
from features.snapshot import TABLE_COLUMNS, TABLE_KEYS, TABLES, Snapshot, snapshot_meta, table_sql
from serving.store.rows import utcnow
from serving.store.store import Store
from serving.store.tables import aggregate_loads, metadata, pending_reports

_CHUNK = 1 << 20
"""Bytes per write to PostgreSQL's COPY stream."""
_INDEX_MEMORY = "1GB"
"""PostgreSQL ``maintenance_work_mem`` of the load's transaction (``SET LOCAL``): the primary
keys are built after the rows, and with the server's default (64 MB) each build of a table of
tens of millions of keys sorts on disk in many passes."""
_BATCH = 20_000
"""Rows per ``executemany`` on SQLite."""


@dataclass(frozen=True)
class LoadResult:
    """One materialisation: as of when (int64 ns), rows per table, and the seconds of each
    step (PostgreSQL: per table, waiting for its CSV, the ``COPY``, the key build; then the
    commit)."""

    as_of: int
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def _columns(table: str) -> list[str]:
    return ["dim", *(c for c, _ in TABLE_COLUMNS[table])]


def materialize(store: Store, snapshot_dir: Path) -> LoadResult:
    """Replace the store's aggregate tables with the snapshot under ``snapshot_dir``."""
    import duckdb

    snapshot_dir = Path(snapshot_dir)
    meta = snapshot_meta(snapshot_dir)
    missing = [t for t in TABLES if not any((snapshot_dir / t).glob("*/*.parquet"))]
    if missing:
        raise CargoriskError(f"{snapshot_dir}: snapshot without table(s) {', '.join(missing)}")
    postgres = store.engine.dialect.name == "postgresql"
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    spill = tempfile.mkdtemp(prefix="cargorisk-materialize-")
    con = duckdb.connect(config={"threads": 1, "memory_limit": "1GB", "temp_directory": spill})
    try:
        with store.engine.begin() as conn:
            if postgres:
                conn.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{_INDEX_MEMORY}'"))
                conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
                rows.update(_copy_all(conn, con, snapshot_dir, Path(spill), seconds))
            else:
                for table in TABLES:
                    conn.execute(sa.text(f"DELETE FROM {table}"))
                for table in TABLES:
                    rows[table] = _insert(conn, con, snapshot_dir, table)
            conn.execute(
                aggregate_loads.insert().values(
                    as_of_ns=int(meta["as_of_ns"]),
                    source=os.fspath(snapshot_dir.resolve()),
                    rows=json.dumps(rows),
                    loaded_at=utcnow(),
                )
            )
            committing = time.perf_counter()
        seconds["commit"] = time.perf_counter() - committing
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return LoadResult(as_of=int(meta["as_of_ns"]), rows=rows, seconds=seconds)


def _ordered(snapshot_dir: Path, table: str) -> str:
    """The snapshot table's rows in primary-key order (index pages fill in order)."""
    return f"{table_sql(snapshot_dir, table)} ORDER BY {', '.join(TABLE_KEYS[table])}"


def _export(con, snapshot_dir: Path, table: str, spill: Path) -> Path:
    """The snapshot table as CSV written by DuckDB in key order, under ``spill``."""
    csv = spill / f"{table}.csv"
    path = "'" + os.fspath(csv).replace("'", "''") + "'"
    con.execute(f"COPY ({_ordered(snapshot_dir, table)}) TO {path} (FORMAT CSV, HEADER false)")
    return csv


def _copy_all(
    conn, con, snapshot_dir: Path, spill: Path, seconds: dict[str, float]
) -> dict[str, int]:
    """PostgreSQL: every table loaded by :func:`_copy`, DuckDB writing the next table's CSV
    in a thread of its own while PostgreSQL loads this one (DuckDB's work and the server's
    overlap on two cores; one CSV ahead at most, so the spill holds two tables at most).
    ``seconds`` gets each step's time."""
    from concurrent.futures import ThreadPoolExecutor

    rows: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="materialize-export") as pool:
        ahead = pool.submit(_export, con, snapshot_dir, TABLES[0], spill)
        for k, table in enumerate(TABLES):
            waited = time.perf_counter()
            csv = ahead.result()
            seconds[f"{table} csv wait"] = time.perf_counter() - waited
            if k + 1 < len(TABLES):
                ahead = pool.submit(_export, con, snapshot_dir, TABLES[k + 1], spill)
            rows[table] = _copy(conn, csv, table, seconds)
    return rows


def _copy(conn, csv: Path, table: str, seconds: dict[str, float]) -> int:
    """PostgreSQL: the table's CSV (:func:`_export`) streamed into ``COPY FROM STDIN`` with
    the primary key and every other index of the table dropped, then each built once (a sort,
    not millions of index insertions: ``key_pairs``' index by value, in another order than the
    rows, made its ``COPY`` ~10x slower than the other tables') - all inside the load's
    transaction. ``FREEZE``: the table was truncated in this transaction, so its rows are
    written frozen and marked visible to all, and the first reads after the load do not
    rewrite every page to set hint bits."""
    indexes = sorted(metadata.tables[table].indexes, key=lambda index: str(index.name))
    conn.execute(sa.text(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}"))
    for index in indexes:
        conn.execute(sa.text(f'DROP INDEX "{index.name}"'))
    names = ", ".join(f'"{c}"' for c in _columns(table))
    raw = conn.connection.driver_connection
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT csv, FREEZE)"
    started = time.perf_counter()
    with raw.cursor() as cursor, open(csv, "rb") as source:
        with cursor.copy(statement) as copy:
            while chunk := source.read(_CHUNK):
                copy.write(chunk)
        count = cursor.rowcount
    csv.unlink()
    seconds[f"{table} copy"] = time.perf_counter() - started
    started = time.perf_counter()
    keys = ", ".join(f'"{c}"' for c in TABLE_KEYS[table])
    conn.execute(sa.text(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({keys})"))
    seconds[f"{table} key"] = time.perf_counter() - started
    for index in indexes:
        started = time.perf_counter()
        index.create(conn)
        seconds[f"{index.name}"] = time.perf_counter() - started
    # The planner's statistics of the new rows, in the same transaction: without them, the
    # first hour's plans guessed (a 1 M history's key_pairs lookups went by the value
    # index, ~0.4 s each, instead of the primary key, 0.2 ms) until autovacuum analysed.
    started = time.perf_counter()
    conn.execute(sa.text(f"ANALYZE {table}"))
    seconds[f"{table} analyze"] = time.perf_counter() - started
    return int(count)


def _insert(conn, con, snapshot_dir: Path, table: str) -> int:
    """SQLite: the table's rows read by DuckDB in batches, inserted with ``executemany``."""
    columns = _columns(table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    result = con.execute(_ordered(snapshot_dir, table))
    count = 0
    while batch := result.fetchmany(_BATCH):
        conn.exec_driver_sql(sql, batch)
        count += len(batch)
    return count


def read_aggregates(store: Store) -> Snapshot:
    """The aggregates the store holds, as a :class:`~features.snapshot.Snapshot` (each table
    sorted by its key; ``as_of`` of the latest load)."""
    with store.engine.connect() as conn:
        as_of = conn.execute(
            sa.select(aggregate_loads.c.as_of_ns).order_by(aggregate_loads.c.seq.desc()).limit(1)
        ).scalar()
        if as_of is None:
            raise LookupError("no aggregates loaded in this store (cargorisk features materialize)")
        tables = {}
        for table in TABLES:
            order = ", ".join(f'"{c}"' for c in TABLE_KEYS[table])
            columns = ", ".join(f'"{c}"' for c in _columns(table))
            tables[table] = pd.read_sql_query(
                sa.text(f"SELECT {columns} FROM {table} ORDER BY {order}"), conn
            )
    return Snapshot(as_of=int(as_of), tables=tables)


def materialize_history(store: Store, *, as_of: int | None = None) -> LoadResult:
    """Build the aggregates from the store's own history and load them: the shipments as
    first declared and the reports in force written to a temporary Parquet directory, the
    offline engine's snapshot of them (DuckDB, one thread) as of ``as_of`` (default: just
    after the latest declaration or result the store holds, so every event is in it and the
    day buckets kept reach as far back as a window of any later shipment does),
    :func:`materialize`; then the reports of
    amended shipments moved from the declaration first made to the one in force, as the
    service counts them. For a service starting on a store with history but no aggregates."""
    from features import engine as offline
    from features.snapshot import write_snapshot
    from serving.store import online

    ships = store.history_frame()
    outs = store.outcomes_frame()
    amended, _ = store.amended_frame()
    if as_of is None:
        latest = 0
        if len(ships):
            latest = int(ships["declared_at"].max().value)
        if len(outs):
            latest = max(latest, int(outs["result_at"].max().value))
        as_of = latest + 1
    work = Path(tempfile.mkdtemp(prefix="cargorisk-history-"))
    try:
        ships.to_parquet(work / "shipments.parquet", index=False)
        outs.to_parquet(work / "outcomes.parquet", index=False)
        write_snapshot(
            work / "shipments.parquet",
            work / "outcomes.parquet",
            work / "snapshot",
            as_of=as_of,
            settings=offline.EngineSettings(threads=1, temp_directory=str(work)),
        )
        result = materialize(store, work / "snapshot")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with store.engine.begin() as conn:  # the snapshot counted the held reports due before as_of
        conn.execute(pending_reports.delete().where(pending_reports.c.due_ns < as_of))
    if len(amended):
        from features.contracts import SHIPMENT_COLUMNS, frame_columns

        ids = amended["shipment_id"].astype(str).tolist()
        first = ships.set_index(ships["shipment_id"].astype(str)).loc[ids]
        with store.engine.begin() as conn:
            reports = online.reports_of(conn, ids)
            declared = online.first_declared(conn, ids)
            online.move_reports(
                conn,
                frame_columns(first, SHIPMENT_COLUMNS),
                frame_columns(amended, SHIPMENT_COLUMNS),
                reports,
                declared,
                before_ns=as_of,
            )
    return result
