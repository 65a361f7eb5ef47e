"""The aggregates as of now per key: what an online store starts from (issues 14 and 15).

The offline engine (:mod:`features.engine`) answers "what was known of this key before this
shipment" for every shipment of the history. Serving needs the other cut: for every key, what
is known **as of one instant** ``as_of`` (declarations strictly before it, inspection results
known strictly before it), in a form an online store can load in bulk and then keep up to
date event by event. That is the *snapshot*, four tables per key dimension:

* ``key_totals`` - one row per ``(dim, key)``: shipments so far, first seen (int64 ns), the
  sum and count of log value per kg (value-mean dimensions), inspections and seizures known
  (outcome dimensions), and the distinct partners so far (``distinct_<partner>`` of the
  distinct-count pairs of :data:`features.history.DISTINCT`);
* ``key_days`` - one row per ``(dim, key, day)`` for the dimensions with windows: shipments
  (counted windows) and seizures known (seizure windows) per UTC day, ``day_start`` = that
  day's midnight UTC in ns, for the days a window as of ``as_of`` can still reach: the ``w``
  days before ``as_of``'s day and that day up to ``as_of`` (``w`` the dimension's longest
  window; the newest bucket is partial when ``as_of`` is not a midnight). Windows are on the
  same grid (:func:`features.history.window_start`), so a ``w``-day window as of any ``t >=
  as_of`` on ``as_of``'s UTC day is exactly the sum of the buckets with ``day_start >=
  window_start(t, w)`` plus the events from ``as_of`` to ``t``, and an online store rolls
  forward by adding to the bucket of each event's day;
* ``key_pairs`` - one row per ``(dim, partner, key, value)``: the first time the key was
  declared with that partner value (a new pair online increments ``distinct_<partner>``);
* ``key_components`` - one row per consignee and identifier (phone, address, recipient code)
  of the link graph: its component, the component's parties and seizures known, a
  consignee's own seizures (``net:size``, ``net:seizures``).

Every column is ``NULL`` where the dimension does not define that aggregate (no value sum for
a party, no inspections for an HS code without outcome counts). Keys are the normalised key
text of :mod:`features.manifest`; a combination key is its parts joined by
:data:`SEPARATOR` (a missing optional route part is empty), so :func:`key_text` of a prepared
online key (``prepare(..., tuple_keys=True)``) finds its row.

The snapshot is defined once as SQL in DuckDB's dialect over the engine's ``keys`` and
``outcomes`` relations (with key text instead of codes, :func:`load_keys`), one query per
``(table, dimension)``, and transpiled by SQLGlot for Spark. Both write Parquet partitioned by
dimension: ``<out>/<table>/dim=<dim>/*.parquet`` and ``<out>/snapshot.json`` (``as_of``, row
counts). :func:`snapshot_raw` turns a snapshot back into the raw aggregates of shipments
declared at ``as_of`` - equal to the offline pipeline's and the online state's (tested).

The multi-valued keys ride in the same tables: transshipment ports as the ``key_totals``
dimension :data:`PORT_DIM`, description words per HS chapter as the ``key_pairs`` dimension
:data:`WORDS_DIM`; the link graph's components (``key_components``, :func:`components`) are
the connected components of its distinct links (scipy), in this process, after the queries.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from features import engine, history
from features.errors import CargoriskError, ContractError
from features.manifest import NS_PER_DAY
from features.network import IDENTIFIERS

SEPARATOR: Final = engine.KEY_TEXT_SEPARATOR
"""Joins the parts of a combination key's text (every normaliser drops it from values)."""

GLOBAL_KEY: Final = engine.GLOBAL_KEY_TEXT
"""The one key of the ``global`` dimension (as the online state keys it)."""

PORT_DIM: Final = "port"
"""The ``key_totals`` dimension of transshipment ports (a multi-valued key: one row per port
of a route): shipments and the inspections and seizures known on them (``ports:max_rate``)."""

WORDS_DIM: Final = "description"
"""The ``key_pairs`` dimension of goods-description words: key = HS chapter, partner
``word``, value = the word, ``first_seen`` = its first declaration with that chapter
(``desc:seen``)."""

SNAPSHOT_FILE: Final = "snapshot.json"
FORMAT_VERSION: Final = 1

PARTNERS: Final = tuple(sorted({value for _, value in history.DISTINCT}))
"""The partner values of distinct counts (``distinct_<partner>`` columns of ``key_totals``)."""

TABLE_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "key_totals": (
        ("key", "VARCHAR"),
        ("shipments", "BIGINT"),
        ("first_seen", "BIGINT"),
        ("value_sum", "DOUBLE"),
        ("value_count", "BIGINT"),
        ("inspections", "BIGINT"),
        ("seizures", "BIGINT"),
        *((f"distinct_{v}", "BIGINT") for v in PARTNERS),
    ),
    "key_days": (
        ("key", "VARCHAR"),
        ("day_start", "BIGINT"),
        ("shipments", "BIGINT"),
        ("seizures", "BIGINT"),
    ),
    "key_pairs": (
        ("key", "VARCHAR"),
        ("partner", "VARCHAR"),
        ("value", "VARCHAR"),
        ("first_seen", "BIGINT"),
    ),
    "key_components": (
        ("key", "VARCHAR"),
        ("component", "BIGINT"),
        ("parties", "BIGINT"),
        ("seizures", "BIGINT"),
        ("own_seizures", "BIGINT"),
    ),
}
"""Each snapshot table's columns (after the partition column ``dim``) and SQL types; times are
int64 ns since the epoch (UTC). The online store's tables are declared from these."""

TABLES: Final = tuple(TABLE_COLUMNS)

TABLE_KEYS: Final = {
    "key_totals": ("dim", "key"),
    "key_days": ("dim", "key", "day_start"),
    "key_pairs": ("dim", "partner", "key", "value"),
    "key_components": ("dim", "key"),
}
"""Each table's primary key (``dim`` is the Parquet partition column)."""


def key_text(value: Any) -> str | None:
    """The snapshot's text of one prepared key: a string as is, a combination (tuple) as its
    parts joined by :data:`SEPARATOR` (a missing optional part empty), None when missing."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return SEPARATOR.join("" if part is None else str(part) for part in value)
    return str(value)


KEY_TEXTS: Final = "_key_text"
"""Where :func:`key_texts` leaves, in a prepared manifest (a dict), the key texts it made."""


def key_texts(p: Mapping[str, Any], name: str) -> list[Any]:
    """The key text (:func:`key_text`) of each row's ``name`` key of prepared shipments,
    made once per prepared dict (the keys, the deltas and the features of one manifest read
    the same columns)."""
    cache = p.get(KEY_TEXTS) if isinstance(p, dict) else None
    if cache is not None and name in cache:
        return cache[name]
    texts = [key_text(v) for v in np.asarray(p[name], dtype=object).tolist()]
    if isinstance(p, dict):
        p.setdefault(KEY_TEXTS, {})[name] = texts
    return texts


def spans(dim: engine.Dimension) -> tuple[int, int]:
    """Days of shipment buckets and of seizure buckets the snapshot keeps for ``dim`` (its
    longest counted window and its longest seizure window; 0 = none)."""
    return max(dim.windows, default=0), max(dim.seizure_windows, default=0)


MAX_WINDOW_DAYS: Final = max(max(spans(d)) for d in engine.dimensions())
"""The longest window of any dimension: a shipment at ``t`` reads no day bucket before
``history.window_start(t, MAX_WINDOW_DAYS)``."""


# -- the definitions ---------------------------------------------------------------------------
def _null(kind: str) -> str:
    return f"CAST(NULL AS {kind})"


def _own(dim: engine.Dimension, as_of: int) -> str:
    """The dimension's shipments declared before ``as_of`` with a declared key."""
    cols = ["row", "t", f"k_{dim.name} AS k"]
    cols += [f"k_{v} AS v{i}" for i, v in enumerate(dim.distinct)]
    if dim.value_mean:
        cols.append("lvk")
    return f"SELECT {', '.join(cols)} FROM keys WHERE k_{dim.name} IS NOT NULL AND t < {int(as_of)}"


def _known(as_of: int, since: int | None = None, seized_only: bool = False) -> str:
    """The dimension's outcomes known before ``as_of`` (and at or after ``since``)."""
    where = [f"o.known < {int(as_of)}"]
    if since is not None:
        where.append(f"o.known >= {int(since)}")
    if seized_only:
        where.append("o.seized = 1")
    return f"FROM outcomes AS o JOIN own ON o.row = own.row WHERE {' AND '.join(where)}"


def totals_sql(dim: engine.Dimension, as_of: int, own: str | None = None) -> str:
    """``key_totals`` of one dimension as of ``as_of`` (DuckDB dialect); ``own``: the query of
    the dimension's ``(row, t, k)`` if not its ``keys`` column (the ports)."""
    cols = ["k", "CAST(COUNT(*) AS BIGINT) AS shipments", "MIN(t) AS first_seen"]
    if dim.value_mean:
        cols += [
            "CAST(COALESCE(SUM(lvk), 0.0) AS DOUBLE) AS value_sum",
            "CAST(COUNT(lvk) AS BIGINT) AS value_count",
        ]
    else:
        cols += [f"{_null('DOUBLE')} AS value_sum", f"{_null('BIGINT')} AS value_count"]
    for partner in PARTNERS:
        if partner in dim.distinct:
            i = dim.distinct.index(partner)
            cols.append(f"CAST(COUNT(DISTINCT v{i}) AS BIGINT) AS distinct_{partner}")
        else:
            cols.append(f"{_null('BIGINT')} AS distinct_{partner}")
    own = own or _own(dim, as_of)
    ctes = [f"own AS ({own})", f"s AS (SELECT {', '.join(cols)} FROM own GROUP BY k)"]
    if dim.outcomes:
        ctes.append(
            "o AS (SELECT own.k, COUNT(*) AS inspections, SUM(o.seized) AS seizures "
            f"{_known(as_of)} GROUP BY own.k)"
        )
        outcome_cols = (
            "CAST(COALESCE(o.inspections, 0) AS BIGINT) AS inspections, "
            "CAST(COALESCE(o.seizures, 0) AS BIGINT) AS seizures"
        )
        join = " LEFT JOIN o ON s.k = o.k"
    else:
        outcome_cols = f"{_null('BIGINT')} AS inspections, {_null('BIGINT')} AS seizures"
        join = ""
    partner_cols = ", ".join(f"s.distinct_{p}" for p in PARTNERS)
    return (
        f"WITH {', '.join(ctes)} "
        "SELECT s.k AS key, s.shipments, s.first_seen, s.value_sum, s.value_count, "
        f"{outcome_cols}, {partner_cols} FROM s{join}"
    )


def days_sql(dim: engine.Dimension, as_of: int) -> str | None:
    """``key_days`` of one dimension as of ``as_of`` (None when it has no window): shipments
    and seizures known per UTC day, from :func:`features.history.window_start` of ``as_of``
    for the dimension's longest window."""
    ship_days, seizure_days = spans(dim)
    if not ship_days and not seizure_days:
        return None
    as_of = int(as_of)
    streams = []
    if ship_days:
        streams.append(
            "SELECT k, t AS happened, 1 AS ship, 0 AS seiz FROM own "
            f"WHERE t >= {history.window_start(as_of, ship_days)}"
        )
    if seizure_days:
        since = history.window_start(as_of, seizure_days)
        streams.append(
            f"SELECT own.k, o.known AS happened, 0 AS ship, 1 AS seiz "
            f"{_known(as_of, since, seized_only=True)}"
        )
    ship = "CAST(SUM(ship) AS BIGINT)" if ship_days else _null("BIGINT")
    seiz = "CAST(SUM(seiz) AS BIGINT)" if seizure_days else _null("BIGINT")
    # the midnight UTC of the event's day (times are after 1970: the division is the floor)
    bucket = f"(happened // {NS_PER_DAY}) * {NS_PER_DAY}"
    return (
        f"WITH own AS ({_own(dim, as_of)}), "
        f"ev AS ({' UNION ALL '.join(streams)}), "
        f"b AS (SELECT k, {bucket} AS day_start, ship, seiz FROM ev) "
        f"SELECT k AS key, day_start, {ship} AS shipments, {seiz} AS seizures "
        "FROM b GROUP BY k, day_start"
    )


def pairs_sql(dim: engine.Dimension, as_of: int) -> str | None:
    """``key_pairs`` of one dimension as of ``as_of`` (None without distinct counts): the
    first declaration of each (key, partner value)."""
    if not dim.distinct:
        return None
    parts = [
        f"SELECT k AS key, '{v}' AS partner, v{i} AS value, MIN(t) AS first_seen "
        f"FROM own WHERE v{i} IS NOT NULL GROUP BY k, v{i}"
        for i, v in enumerate(dim.distinct)
    ]
    return f"WITH own AS ({_own(dim, as_of)}) {' UNION ALL '.join(parts)}"


_BUILDERS: Final = {"key_totals": totals_sql, "key_days": days_sql, "key_pairs": pairs_sql}


def snapshot_queries(as_of: int, dialect: str = "duckdb") -> list[tuple[str, str, str]]:
    """Every ``(table, dimension, query)`` of a snapshot as of ``as_of`` (int64 ns), in
    DuckDB's dialect or transpiled by SQLGlot (``dialect="spark"``)."""
    queries = []
    for dim in engine.dimensions():
        for table, build in _BUILDERS.items():
            sql = build(dim, as_of)
            if sql is not None:
                queries.append((table, dim.name, sql))
    queries += multi_queries(as_of)
    if dialect == "duckdb":
        return queries
    import sqlglot

    return [
        (table, dim, sqlglot.transpile(sql, read="duckdb", write=dialect)[0])
        for table, dim, sql in queries
    ]


_PORTS: Final = engine.PORTS


def multi_queries(as_of: int) -> list[tuple[str, str, str]]:
    """The multi-valued keys over the ``ports`` ``(row, t, k_port)`` and ``words`` ``(row, t,
    k_hs2, word)`` relations of :func:`load_keys`: per port its totals, per (HS chapter, word)
    its first declaration."""
    as_of = int(as_of)
    ports = f"SELECT row, t, k_port AS k FROM ports WHERE t < {as_of}"
    words = (
        "SELECT k_hs2 AS key, 'word' AS partner, word AS value, MIN(t) AS first_seen "
        f"FROM words WHERE t < {as_of} GROUP BY k_hs2, word"
    )
    return [
        ("key_totals", PORT_DIM, totals_sql(_PORTS, as_of, own=ports)),
        ("key_pairs", WORDS_DIM, words),
    ]


# -- the keys as text --------------------------------------------------------------------------
def load_keys(con, shipments, outcomes=None) -> int:
    """:func:`features.engine.load_parquet` (``ship``, ``keys``, ``outcomes`` on ``con`` from
    contract Parquet files) with the normalised key **text** of each dimension instead of
    integer codes (the engine's one key derivation, :func:`features.engine.derive_keys`), so
    the snapshot's keys are what a new shipment's keys are online; then the multi-valued
    ``ports`` and ``words`` relations (:func:`features.engine.derive_multi`). Returns the
    number of shipments."""
    return engine.load_parquet(con, shipments, outcomes, text=True)


# -- running it --------------------------------------------------------------------------------
def default_as_of(con) -> int:
    """The midnight (UTC) after the latest declaration or known result on ``con``: every
    event of the data is in the snapshot (and the newest day bucket is a whole day)."""
    latest = con.execute(
        "SELECT GREATEST(COALESCE((SELECT MAX(t) FROM keys), 0), "
        "COALESCE((SELECT MAX(known) FROM outcomes), 0))"
    ).fetchall()[0][0]
    return (int(latest) // NS_PER_DAY + 1) * NS_PER_DAY


def parse_as_of(value: str | int | datetime | None) -> int | None:
    """``--as-of`` as int64 ns (UTC; a naive time is UTC), None when not given."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ContractError(f"as_of: not a time: {value!r}") from exc
    if stamp is pd.NaT:
        raise ContractError(f"as_of: not a time: {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value)


@dataclass(frozen=True)
class SnapshotResult:
    """What a snapshot run wrote: where, as of when (int64 ns), by which engine, rows per
    table."""

    out: Path
    as_of: int
    engine: str
    rows: dict[str, int]


_RELATIONS: Final = ("keys", "outcomes", "ports", "words")
"""What the snapshot's queries read (staged as Parquet for Spark)."""


def _prepare_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CargoriskError(f"--out {out}: exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _sql_path(path: Path) -> str:
    return "'" + os.fspath(path).replace("'", "''") + "'"


def write_snapshot(
    shipments,
    outcomes,
    out: Path,
    *,
    as_of: int | None = None,
    engine_name: str = "duckdb",
    settings: engine.EngineSettings | None = None,
) -> SnapshotResult:
    """Compute the snapshot of contract Parquet ``shipments`` / ``outcomes`` (files or globs,
    as :func:`features.engine.load_parquet` reads them) as of ``as_of`` (int64 ns; default
    :func:`default_as_of`) with DuckDB or Spark, and write it under ``out`` (an empty or new
    directory)."""
    if engine_name not in ("duckdb", "spark"):
        raise CargoriskError(f"engine: must be duckdb or spark (got {engine_name!r})")
    settings = settings or engine.EngineSettings()
    out = _prepare_out(out)
    with engine.duckdb_connection(settings) as con:
        load_keys(con, shipments, outcomes)
        if as_of is None:
            as_of = default_as_of(con)
        if engine_name == "duckdb":
            for table, dim, sql in snapshot_queries(as_of):
                target = out / table / f"dim={dim}"
                target.mkdir(parents=True, exist_ok=True)
                con.execute(f"COPY ({sql}) TO {_sql_path(target / 'part-0.parquet')} "
                            "(FORMAT PARQUET)")  # fmt: skip
        else:
            staging = Path(
                tempfile.mkdtemp(prefix="cargorisk-snapshot-", dir=settings.temp_directory)
            )
            try:
                for name in _RELATIONS:
                    con.execute(f"COPY {name} TO {_sql_path(staging / f'{name}.parquet')} "
                                "(FORMAT PARQUET)")  # fmt: skip
                _spark_write(staging, out, as_of, settings)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        _write_components(con, as_of, out / "key_components")
        rows = {table: _count(con, out / table) for table in TABLES}
    result = SnapshotResult(out=out, as_of=int(as_of), engine=engine_name, rows=rows)
    (out / SNAPSHOT_FILE).write_text(
        json.dumps(
            {
                "format": FORMAT_VERSION,
                "as_of": datetime.fromtimestamp(result.as_of / 1e9, UTC).isoformat(),
                "as_of_ns": result.as_of,
                "engine": engine_name,
                "rows": rows,
                "tables": {t: [c for c, _ in cols] for t, cols in TABLE_COLUMNS.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return result


def components(con, as_of: int) -> dict[str, Any]:
    """The link graph as of ``as_of``: consignees declared before ``as_of`` joined to the
    phones, addresses and recipient codes they declared, with the seizures known on their
    shipments - the graph :class:`features.network.LinkGraph` holds online, which is static as
    of one instant, so its components are :func:`scipy.sparse.csgraph.connected_components` of
    the distinct links. Per dimension (``consignee`` and each identifier), an Arrow table of its
    nodes: ``key``, ``component`` (the smallest node number in it - consignees in key order,
    then each identifier's values as they first appear in the (consignee, value)-ordered links:
    the same whatever order the links come in), the component's ``parties`` and ``seizures``,
    and a consignee's ``own_seizures``. Runs in this process (numpy, scipy) on the links the
    engine fetched as Arrow."""
    import pyarrow as pa
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    as_of = int(as_of)

    def fetch(sql: str) -> list[np.ndarray]:
        table = con.sql(sql).to_arrow_table()
        return [c.to_numpy(zero_copy_only=False) for c in table.columns]

    declared = f"t < {as_of} AND k_consignee IS NOT NULL"
    (party_keys,) = fetch(f"SELECT DISTINCT k_consignee FROM keys WHERE {declared} ORDER BY 1")
    party_index = pd.Index(party_keys)
    keys: dict[str, np.ndarray] = {"consignee": party_keys}
    heads, tails = [], []
    offset = len(party_keys)
    for ident in IDENTIFIERS:
        consignee, value = fetch(
            f"SELECT DISTINCT k_consignee, k_{ident} FROM keys WHERE {declared} "
            f"AND k_{ident} IS NOT NULL ORDER BY 1, 2"
        )
        codes, uniques = pd.factorize(value)  # numbered as they first appear
        heads.append(party_index.get_indexer(consignee))
        tails.append(codes + offset)
        keys[ident] = np.asarray(uniques, dtype=object)
        offset += len(uniques)
    n = offset
    seized_by, count = fetch(
        "SELECT k.k_consignee, COUNT(*) FROM outcomes AS o JOIN keys AS k ON o.row = k.row "
        f"WHERE o.known < {as_of} AND o.seized = 1 AND k.k_consignee IS NOT NULL "
        f"AND k.t < {as_of} GROUP BY 1"
    )
    own = np.zeros(len(party_keys), dtype="int64")
    own[party_index.get_indexer(seized_by)] = count
    if n:
        head, tail = np.concatenate(heads), np.concatenate(tails)
        graph = csr_matrix((np.ones(len(head), dtype="int8"), (head, tail)), shape=(n, n))
        n_labels, labels = connected_components(graph, directed=False)
    else:
        n_labels, labels = 0, np.zeros(0, dtype="int64")
    smallest = np.full(n_labels, n, dtype="int64")
    np.minimum.at(smallest, labels, np.arange(n, dtype="int64"))
    party_labels = labels[: len(party_keys)]
    parties = np.bincount(party_labels, minlength=n_labels).astype("int64")
    seizures = np.bincount(party_labels, weights=own, minlength=n_labels).astype("int64")
    out: dict[str, Any] = {}
    start = 0
    for dim in ("consignee", *IDENTIFIERS):
        label = labels[start : start + len(keys[dim])]
        out[dim] = pa.table(
            {
                "key": pa.array(keys[dim], type=pa.string()),
                "component": pa.array(smallest[label], type=pa.int64()),
                "parties": pa.array(parties[label], type=pa.int64()),
                "seizures": pa.array(seizures[label], type=pa.int64()),
                "own_seizures": pa.array(own, type=pa.int64())
                if dim == "consignee"
                else pa.nulls(len(label), type=pa.int64()),
            }
        )
        start += len(keys[dim])
    return out


def _write_components(con, as_of: int, folder: Path) -> None:
    """``key_components``: :func:`components` written per dimension by DuckDB."""
    for dim, table in components(con, as_of).items():
        target = folder / f"dim={dim}"
        target.mkdir(parents=True, exist_ok=True)
        con.register("component_rows", table)
        con.execute(
            f"COPY (SELECT * FROM component_rows) TO {_sql_path(target / 'part-0.parquet')} "
            "(FORMAT PARQUET)"
        )
        con.unregister("component_rows")


def _count(con, folder: Path) -> int:
    """Rows of one written table (every dimension's files)."""
    files = _sql_path(folder / "*" / "*.parquet")
    return int(con.execute(f"SELECT count(*) FROM read_parquet({files})").fetchall()[0][0])


def _spark_write(staging: Path, out: Path, as_of: int, settings: engine.EngineSettings) -> None:
    """Spark reads the staged relations (:data:`_RELATIONS`) and runs the transpiled queries,
    writing each ``(table, dimension)`` as DuckDB does."""
    with engine.spark_session(settings.spark_master, settings.spark_driver_memory) as spark:
        frames = []
        for name in _RELATIONS:
            frame = spark.read.parquet(os.fspath(staging / f"{name}.parquet")).cache()
            frame.createOrReplaceTempView(name)
            frames.append(frame)
        try:
            for table, dim, sql in snapshot_queries(as_of, dialect="spark"):
                target = out / table / f"dim={dim}"
                spark.sql(sql).write.mode("overwrite").parquet(os.fspath(target))
        finally:
            for frame in frames:
                frame.unpersist()


# -- reading it back ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A snapshot read back: ``as_of`` (int64 ns) and each table as a pandas frame with the
    partition column ``dim`` first, sorted by its key columns."""

    as_of: int
    tables: Mapping[str, Any]


def snapshot_meta(path: Path) -> dict[str, Any]:
    """``snapshot.json`` of the snapshot under ``path`` (``as_of_ns``, ``rows``...)."""
    path = Path(path)
    meta_file = path / SNAPSHOT_FILE
    if not meta_file.is_file():
        raise CargoriskError(f"{path}: not a snapshot (no {SNAPSHOT_FILE})")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise CargoriskError(
            f"{meta_file}: format {meta.get('format')!r}, expected {FORMAT_VERSION}"
        )
    return meta


def table_sql(path: Path, table: str) -> str:
    """A DuckDB query reading one table of the snapshot under ``path``: ``dim`` and the
    table's columns, in :data:`TABLE_COLUMNS` order (not sorted)."""
    names = ", ".join(c for c, _ in TABLE_COLUMNS[table])
    files = _sql_path(Path(path) / table / "*" / "*.parquet")
    return (
        f"SELECT dim, {names} FROM read_parquet({files}, hive_partitioning = true, "
        "hive_types = {'dim': VARCHAR})"
    )


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot written under ``path`` (by either engine), each table sorted by its key."""
    import duckdb

    meta = snapshot_meta(path)
    tables = {}
    con = duckdb.connect()
    try:
        for table in TABLES:
            order = ", ".join(TABLE_KEYS[table])
            tables[table] = con.sql(f"{table_sql(path, table)} ORDER BY {order}").df()
    finally:
        con.close()
    return Snapshot(as_of=int(meta["as_of_ns"]), tables=tables)


def snapshot_raw(snap: Snapshot, p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The raw aggregates (``n:``, ``n<w>:``, ``first:``, ``d:``, ``sum:`` / ``cnt:``,
    ``insp:``, ``seiz:``, ``seiz<w>:``, ``ports:max_rate``, ``desc:seen`` / ``desc:tokens``,
    ``net:size`` / ``net:seizures``) of prepared shipments declared at ``snap.as_of``, read
    from the snapshot alone (:func:`tables_raw`). Equal to the offline pipeline's and the
    online state's for them (windows on the UTC-day grid of
    :func:`features.history.window_start`).

    Raises :class:`ContractError` when a shipment is not declared at ``as_of`` (its windows
    would need events after the snapshot)."""
    t = np.asarray(p["t"], dtype="int64")
    if len(t) and (t != snap.as_of).any():
        raise ContractError(
            "declared_at: snapshot_raw describes shipments declared at the snapshot's as_of "
            f"({snap.as_of}); got {int(t[t != snap.as_of][0])}"
        )
    return tables_raw(snap.tables, p)


def tables_raw(tables: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The raw aggregates of prepared shipments from aggregate rows in the snapshot's table
    shapes (:data:`TABLE_COLUMNS`, with ``dim``; at least every row of the shipments' keys;
    each table a frame or a list of row mappings):
    the one definition behind :func:`snapshot_raw` and the online store's features
    (:mod:`features.online.rows`). Totals are as the rows hold them; a ``w``-day window of a
    shipment declared at ``t`` sums the key's day buckets from
    :func:`features.history.window_start` ``(t, w)`` on."""
    t = np.asarray(p["t"], dtype="int64")
    totals_table = tables["key_totals"]
    if isinstance(totals_table, pd.DataFrame):
        totals_table = totals_table.to_dict("records")
    totals = {(row["dim"], row["key"]): row for row in totals_table}
    listed: dict[tuple[str, str], list[tuple[int, Any, Any]]] = {}
    for d, k, start, ship, seiz in table_rows(
        tables["key_days"], ("dim", "key", "day_start", "shipments", "seizures")
    ):
        listed.setdefault((d, k), []).append((int(start), ship, seiz))
    days = {key: _Buckets(buckets) for key, buckets in listed.items()}
    nan = np.nan
    n = len(t)
    t_list = t.tolist()
    raw: dict[str, np.ndarray] = {}
    for dim in engine.dimensions():
        names = _raw_names(dim)
        keys = key_texts(p, dim.name)
        # one key at one time has one set of values: computed once for a manifest's
        # shipments that share them, then gathered (row -1: a shipment without the key)
        where: dict[tuple[str, int], int] = {}
        found: list[list[float]] = []
        rows = [-1] * n
        for i, key in enumerate(keys):
            if key is None:
                continue
            j = where.get((key, t_list[i]))
            if j is None:
                j = where[(key, t_list[i])] = len(found)
                row = totals.get((dim.name, key))
                buckets = days.get((dim.name, key), _NO_BUCKETS)
                values = _dimension_values(dim, row, buckets, t_list[i])
                found.append([values[name] for name in names])
            rows[i] = j
        found.append([nan] * len(names))
        matrix = np.array(found, dtype="float64")[np.asarray(rows, dtype=np.int64)]
        raw.update({name: matrix[:, j].copy() for j, name in enumerate(names)})
    raw.update(_multi_values(tables, p, totals, history.prior_rate(raw)))
    raw.update(_network_values(tables, p))
    return raw


def table_rows(table: Any, columns: Sequence[str]) -> list[tuple]:
    """The ``columns`` of an aggregate table's rows, as tuples: ``table`` a frame or a list of
    row mappings (what a store reads without pandas)."""
    if isinstance(table, pd.DataFrame):
        if not len(table):
            return []
        return list(zip(*(table[c].tolist() for c in columns), strict=True))
    return [tuple(row[c] for c in columns) for row in table]


_NAMES: dict[str, list[str]] = {}


def _raw_names(dim: engine.Dimension) -> list[str]:
    """The raw aggregate names of a dimension (:func:`features.engine.dimension_sql`'s)."""
    names = _NAMES.get(dim.name)
    if names is None:
        names = _NAMES[dim.name] = list(engine.dimension_sql(dim)[1])
    return names


def _network_values(tables: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``net:size`` / ``net:seizures``: the network a shipment at ``as_of`` connects to (the
    components of its consignee and identifiers), as :meth:`LinkGraph.component` counts it."""
    node = {
        (d, k): (c, parties, seized, own)
        for d, k, c, parties, seized, own in table_rows(
            tables["key_components"],
            ("dim", "key", "component", "parties", "seizures", "own_seizures"),
        )
    }
    size, seizures = [], []
    idents = list(zip(*(p[d] for d in IDENTIFIERS), strict=True))
    for consignee, values in zip(p["consignee"], idents, strict=True):
        found = [node.get((d, v)) for d, v in zip(IDENTIFIERS, values, strict=True) if v]
        own = node.get(("consignee", consignee)) if consignee is not None else None
        if own is not None and int(own[1]) == 0:  # never declared: no party, nothing linked
            own = None
        comps = {f[0]: f for f in found if f is not None}
        if own is not None:
            comps[own[0]] = own
        parties = sum(int(c[1]) for c in comps.values()) + (0 if own is not None else 1)
        seized = sum(int(c[2]) for c in comps.values()) - (int(own[3]) if own is not None else 0)
        size.append(float(parties))
        seizures.append(float(seized))
    return {
        "net:size": np.array(size, dtype="float64"),
        "net:seizures": np.array(seizures, dtype="float64"),
    }


def _multi_values(tables: Mapping[str, Any], p: Mapping[str, Any], totals: dict, prior) -> dict:
    """``ports:max_rate`` (the riskiest transshipment port's relative seizure rate) and
    ``desc:seen`` / ``desc:tokens`` (description words seen before with the HS chapter)."""
    seen_before = {
        (k, v)
        for d, k, v in table_rows(tables["key_pairs"], ("dim", "key", "value"))
        if d == WORDS_DIM
    }
    max_rate, seen, tokens = [], [], []
    for i, (ports, chapter, words_of) in enumerate(
        zip(p["ports"], p["hs2"], p["tokens"], strict=True)
    ):
        rates = []
        for port in ports:
            row = totals.get((PORT_DIM, port))
            insp = 0.0 if row is None else float(row["inspections"])
            seiz = 0.0 if row is None else float(row["seizures"])
            rates.append(float(history.relative_rate(seiz, insp, prior[i])))
        max_rate.append(max(rates) if rates else np.nan)
        own = words_of if chapter is not None else ()
        seen.append(float(sum(1 for w in own if (chapter, w) in seen_before)))
        tokens.append(float(len(own)))
    return {
        "ports:max_rate": np.array(max_rate, dtype="float64"),
        "desc:seen": np.array(seen, dtype="float64"),
        "desc:tokens": np.array(tokens, dtype="float64"),
    }


def _missing(v: Any) -> bool:
    """NULL as a store or a frame gives it: None, pandas' NA, NaN."""
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


class _Buckets:
    """One key's day buckets, sorted, with suffix sums of shipments (column 1) and seizures
    (column 2): a window is one binary search, however many shipments ask."""

    __slots__ = ("starts", "sums")

    def __init__(self, buckets: list[tuple[int, Any, Any]]) -> None:
        buckets = sorted(buckets)
        self.starts = [b[0] for b in buckets]
        self.sums: dict[int, list[float]] = {}
        for column in (1, 2):
            total, suffix = 0.0, [0.0] * (len(buckets) + 1)
            for i in range(len(buckets) - 1, -1, -1):
                v = buckets[i][column]
                if not _missing(v):
                    total += float(v)
                suffix[i] = total
            self.sums[column] = suffix

    def since(self, start: int, column: int) -> float:
        """The sum of ``column`` over the buckets from ``start`` on."""
        return self.sums[column][bisect.bisect_left(self.starts, start)]


_NO_BUCKETS: Final = _Buckets([])


def _dimension_values(
    dim: engine.Dimension, row: dict | None, buckets: _Buckets, t: int
) -> dict[str, float]:
    """One key's raw aggregates for a shipment declared at ``t`` from its ``key_totals`` row
    (None: never declared) and its day buckets."""

    def value(column: str, default: float = 0.0) -> float:
        v = None if row is None else row[column]
        if v is None or _missing(v):
            return default
        return float(v)

    def window(column: int, days: int) -> float:
        return buckets.since(history.window_start(t, days), column)

    shipments = value("shipments")
    out = {f"n:{dim.name}": shipments}
    out |= {f"n{w}:{dim.name}": window(1, w) for w in dim.windows}
    out[f"first:{dim.name}"] = value("first_seen") if shipments > 0 else np.nan
    out |= {f"d:{dim.name}:{v}": value(f"distinct_{v}") for v in dim.distinct}
    out[f"sum:{dim.name}"] = value("value_sum")
    out[f"cnt:{dim.name}"] = value("value_count")
    out[f"insp:{dim.name}"] = value("inspections")
    out[f"seiz:{dim.name}"] = value("seizures")
    out |= {f"seiz{w}:{dim.name}": window(2, w) for w in dim.seizure_windows}
    return out
