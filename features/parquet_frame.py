"""The training frame read lazily from contract Parquet: every shipment's history, few rows out.

:func:`features.pipeline.build_training_frame` takes whole frames: the shipments table in
pandas and a feature row for every shipment (about 4 GB per million shipments). Training needs
far fewer rows than it has history: the labelled ones (inspected shipments, whose outcome is
the label) and every shipment of the periods it evaluates and describes (the validation and
test windows, the drift reference's last days). Their features, though, are point-in-time
aggregates over the *whole* history.

:func:`parquet_training_frame` keeps the two apart. DuckDB reads the contract Parquet files
(one file, a list or month-partition globs, :func:`features.engine.load_parquet`) within the
engine's memory limit, computes every single-key aggregate over every shipment and hands back
only the kept rows' (each dimension's query filtered on the kept rows inside the engine);
the multi-valued keys (transshipment ports, description words:
:func:`features.engine.multi_aggregates`) too, over every shipment; and the link graph's
components (:func:`features.network.engine_components`): the engine reduces the history to
the graph's distinct links and seizures in time order, a union-find replays them in Python
(memory per node of the graph, not per shipment) and answers the kept rows. The kept rows
alone are read whole into pandas, validated against the contract, prepared and finished by the same
:func:`features.pipeline.feature_columns`: the same columns and values as the whole frame has
on those rows (tested feature by feature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features import engine, manifest, network
from features.contracts import missing_required
from features.engine import (
    EngineSettings,
    dimension_sql,
    dimensions,
    duckdb_connection,
    load_parquet,
    paths_sql,
)
from features.errors import ContractError
from features.pipeline import (
    AttributeSchema,
    attribute_values,
    feature_columns,
    feature_frame,
)


@dataclass(frozen=True)
class ParquetFrame:
    """The kept shipments and their feature rows, in ``(declared_at, shipment_id)`` order.

    ``shipments``: the kept rows of the shipments table (every column of the files);
    ``features``: their feature frame (:func:`~features.pipeline.build_training_frame`'s
    columns), index ``0..len-1`` like ``shipments``; ``total``: shipments in the whole history;
    ``first`` / ``last``: its first and last declaration time (UTC, tz-naive); ``earlier``:
    for each column asked for, the number of earlier shipments of the whole history with the
    same value (NaN when blank), per kept row."""

    shipments: pd.DataFrame
    features: pd.DataFrame
    total: int
    first: pd.Timestamp
    last: pd.Timestamp
    earlier: dict[str, np.ndarray]


MULTI = ("ports:max_rate", "desc:seen", "desc:tokens")
"""The multi-valued keys' raw aggregates (:func:`features.engine.multi_aggregates`)."""


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns")


def parquet_span(
    shipments: str | Sequence[str], settings: EngineSettings | None = None
) -> tuple[int, pd.Timestamp, pd.Timestamp]:
    """Number of shipments and their first and last declaration time (UTC, tz-naive) in
    contract Parquet files, read by DuckDB: what a temporal split needs before any row is
    read. ``ContractError`` naming missing required columns or declaration times, or when
    there is no shipment."""
    with duckdb_connection(settings) as con:
        relation = f"read_parquet({paths_sql(shipments)}, union_by_name = true)"
        columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        missing = missing_required("shipments", columns)
        if missing:  # the words of features.tables.validate_table
            raise ContractError(f"shipments table lacks required column(s): {', '.join(missing)}")
        n, first, last, blank = con.execute(
            "SELECT count(*), min(epoch_ns(declared_at)), max(epoch_ns(declared_at)), "
            f"count(*) - count(declared_at) FROM {relation}"
        ).fetchall()[0]
    if blank:
        raise ContractError("shipments: declared_at is missing on some rows")
    if not n:
        raise ContractError("the shipments table is empty")
    return int(n), _stamp(first), _stamp(last)


def _kept_sql(since: pd.Timestamp | None) -> str:
    """The kept rows: inspected shipments (an outcome of theirs is counted) and every
    shipment declared at or after ``since`` (all of them when None)."""
    if since is None:
        return "SELECT row FROM ship"
    since_ns = int(pd.Timestamp(since).as_unit("ns").value)
    return f"SELECT row FROM ship WHERE t >= {since_ns} UNION SELECT DISTINCT row FROM outcomes"


def _kept_aggregates(
    con, kept: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every dimension's raw aggregates of the kept rows (``kept``: sorted row numbers), each
    computed by DuckDB over the whole history and filtered on the kept rows inside the engine;
    NaN where the shipment's key is not declared. Also the inspections and seizures known
    before every shipment of the history (``insp:global``, ``seiz:global``: the prior of the
    ports' rates)."""
    raw: dict[str, np.ndarray] = {}
    every: dict[str, np.ndarray] = {}
    for dim in dimensions():
        sql, names = dimension_sql(dim)
        table = con.sql(f"SELECT d.* FROM ({sql}) AS d SEMI JOIN kept USING (row)").to_arrow_table()
        at = np.searchsorted(kept, table.column("row").to_numpy())
        for i, name in enumerate(names):
            out = np.full(len(kept), np.nan)
            out[at] = table.column(f"a{i}").to_numpy(zero_copy_only=False)
            raw[name] = out
        if dim.name == "global":
            cols = ", ".join(
                f"a{names.index(f'{what}:global')} AS {what}" for what in ("insp", "seiz")
            )
            table = con.sql(f"SELECT row, {cols} FROM ({sql}) AS d").to_arrow_table()
            rows = table.column("row").to_numpy()
            for what in ("insp", "seiz"):
                every[f"{what}:global"] = np.full(n, np.nan)
                every[f"{what}:global"][rows] = table.column(what).to_numpy(zero_copy_only=False)
    return raw, every


def _earlier(con, column: str, kept: np.ndarray) -> np.ndarray:
    """Earlier shipments (in row order) with the same declared value of ``column`` - as
    declared, not normalised - for each kept row; NaN where the value is blank."""
    if column not in {c for _, c, _ in manifest.KEY_FIELDS}:
        raise ValueError(f"earlier: {column} is not a key column of the contract")
    table = con.sql(
        f"SELECT row, n FROM (SELECT row, CASE WHEN {column} IS NOT NULL THEN "
        f"ROW_NUMBER() OVER (PARTITION BY {column} ORDER BY row) - 1 END AS n FROM ship) "
        "SEMI JOIN kept USING (row)"
    ).to_arrow_table()
    out = np.full(len(kept), np.nan)
    at = np.searchsorted(kept, table.column("row").to_numpy())
    out[at] = table.column("n").to_numpy(zero_copy_only=False).astype("float64")
    return out


def _validated(frame: pd.DataFrame, attributes: AttributeSchema | None) -> pd.DataFrame:
    """The kept shipments checked against the contract (values, attributes)."""
    from features.tables import validate_table

    return validate_table("shipments", frame, attributes)


def parquet_training_frame(
    shipments: Any,
    outcomes: Any,
    *,
    since: pd.Timestamp | None,
    attributes: AttributeSchema | None = None,
    settings: EngineSettings | None = None,
    earlier: Sequence[str] = (),
) -> ParquetFrame:
    """The feature rows of the shipments training needs, computed over the whole history of
    the contract Parquet files ``shipments`` and ``outcomes`` (files or globs).

    Kept: every inspected shipment (one with an outcome; outcomes of unknown shipments are
    ignored, as everywhere) and every shipment declared at or after ``since`` (tz-naive UTC;
    None keeps every shipment). Each kept row's features equal
    :func:`~features.pipeline.build_training_frame`'s row for the same shipment on the whole
    tables. The kept shipments are validated against the contract (``ContractError`` naming
    the field); the history is checked as :func:`features.engine.load_parquet` checks it
    (required columns, declaration times, repeated ids). ``earlier``: key columns whose
    point-in-time occurrence counts over the whole history come back with the kept rows
    (``ParquetFrame.earlier``)."""
    with duckdb_connection(settings) as con:
        con.execute("SET TimeZone = 'UTC'")  # time zone aware columns come back in UTC
        n = load_parquet(con, shipments, outcomes)
        con.execute(f"CREATE OR REPLACE TEMP TABLE kept AS {_kept_sql(since)}")
        kept = (
            con.sql("SELECT row FROM kept ORDER BY row")
            .to_arrow_table()
            .column("row")
            .to_numpy()
            .astype("int64")
        )
        raw, multi = _kept_aggregates(con, kept, n)
        counts = {column: _earlier(con, column, kept) for column in earlier}
        # the link graph's components over every shipment, answered for the kept rows: the
        # engine dedupes and sorts the graph's changes, Python replays them (bounded by the
        # graph's nodes, not by the shipments)
        raw.update(network.engine_components(con, "kept"))
        con.execute("DROP TABLE keys")  # the single-key aggregates are done
        # the multi-valued keys (ports, description words) by the engine over every shipment
        engine.multi_aggregates(lambda sql: con.sql(sql).to_arrow_table(), n, multi)
        raw.update({name: multi[name][kept] for name in MULTI})
        del multi
        first, last = con.execute("SELECT min(t), max(t) FROM ship").fetchall()[0]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE kept_ids AS SELECT s.row, s.shipment_id FROM ship AS s "
            "SEMI JOIN kept USING (row)"
        )
        table = con.sql(
            "SELECT r.* FROM raw_shipments AS r JOIN kept_ids AS k "
            "ON CAST(r.shipment_id AS VARCHAR) = k.shipment_id ORDER BY k.row"
        ).to_arrow_table()
    # into pandas once the engine has let its memory go (at 1M shipments the kept rows'
    # conversion beside DuckDB's tables was the peak)
    frame = table.to_pandas()
    del table
    frame = _validated(frame, attributes)
    attrs = attribute_values(frame, attributes)
    p = manifest.prepare(frame)
    if len(p["t"]) != len(kept):
        raise RuntimeError("parquet frame: kept shipments and their aggregates disagree")
    cols = feature_columns(p, raw)
    cols.update(attrs)
    features = feature_frame(
        cols,
        frame["shipment_id"].to_numpy(dtype=object),
        p["t"].astype("datetime64[ns]"),
        index=frame.index,
        attributes=attributes,
    )
    return ParquetFrame(frame, features, int(n), _stamp(first), _stamp(last), counts)
