"""Contract tables on disk: the one reader and writer of a data directory.

A data directory holds ``shipments`` and ``outcomes`` (``.parquet`` or ``.csv``, or a directory
of month partitions ``<table>/month=YYYY-MM/*.parquet`` as ``cargorisk simulate --by-month``
writes them, read back as one table in month order) in the contract's shape and, optionally,
``dataset.json`` (a :class:`~features.contracts.DatasetInfo`:
what a positive label means and the attribute schema of the ``attr.*`` columns). Training reads
one with ``--data``, the service seeds its store from one, ``cargorisk score`` reads its history
from one, and ``ingest`` / ``export`` / the quickstart write them.

This module is the only place in ``features/`` that touches files: reading a file *into the
contract* is part of the contract (one CSV rule - every cell read as text, so an HS code
``"0901"`` stays ``"0901"`` - and one set of error messages), and training, serving and the CLI
all need it while none of them may import another. It holds no state and no settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.errors as pa_errors
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from features.contracts import (
    TABLES,
    AttributeSpec,
    DatasetInfo,
    describe_failures,
    missing_required,
    validate_outcomes,
    validate_shipments,
)
from features.errors import CargoriskError, ContractError

INFO_FILE = "dataset.json"


@dataclass(frozen=True)
class ContractTables:
    """The validated contract tables of one data directory and what they mean."""

    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    info: DatasetInfo = field(default_factory=DatasetInfo)
    source: str = ""


PARTITION_GLOB = "month=*/*.parquet"
"""Month partitions of a table directory (``shipments/month=2026-01/part-0.parquet``)."""
PART_FILE = "part-0.parquet"
"""The file of one month partition, as :func:`write_partition` names it."""


def partition_path(data_dir: str | Path, table: str, month: str) -> Path:
    """Where month ``month`` (``YYYY-MM``) of ``table`` lives in a data directory written by
    month: ``<table>/month=<month>/part-0.parquet`` (read back by :func:`read_frame`)."""
    return Path(data_dir) / table / f"month={month}" / PART_FILE


def write_partition(data_dir: str | Path, table: str, month: str, frame: pd.DataFrame) -> Path:
    """Write one month of ``table`` as Parquet, next to its target and renamed into place (an
    interrupted run never leaves a half-written partition). Returns its path."""
    path = partition_path(data_dir, table, month)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{PART_FILE}.partial")
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)
    return path


def read_frame(path: Path, *, what: str | None = None) -> pd.DataFrame:
    """One table file, ``.parquet`` or ``.csv`` (every CSV cell read as text and only an
    empty cell as missing: the contract, not the CSV reader, decides what a value is), or a
    directory of month partitions (concatenated in month order, then file order).
    ``what`` names the option the path came from in errors (``--input``)."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if path.is_dir():
        return _read_partitions(path, name)
    if not path.is_file():
        raise CargoriskError(f"{name}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise CargoriskError(f"{name}: expected a .csv or .parquet file")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # unreadable file: corrupt parquet, bad CSV
        raise CargoriskError(f"{name}: cannot read ({type(exc).__name__}: {exc})") from exc


def _read_partitions(path: Path, name: str) -> pd.DataFrame:
    parts = sorted(path.glob(PARTITION_GLOB))
    if not parts:
        raise CargoriskError(f"{name}: a directory without month partitions ({PARTITION_GLOB})")
    frames = [read_frame(part) for part in parts]
    # an empty month (no outcomes yet) adds no rows; its all-null columns must not decide dtypes
    rows = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(rows, ignore_index=True) if len(rows) > 1 else rows[0]


def table_path(data_dir: Path, table: str) -> Path | None:
    """``<table>.parquet``, ``<table>.csv`` or the partitioned ``<table>/`` of ``data_dir``;
    None when there is none. Two of them at once is an error: which one is the table?"""
    candidates = [Path(data_dir) / f"{table}{suffix}" for suffix in (".parquet", ".csv")]
    found = [path for path in candidates if path.is_file()]
    partitioned = Path(data_dir) / table
    if partitioned.is_dir() and any(partitioned.glob(PARTITION_GLOB)):
        found.append(partitioned)
    if len(found) > 1:
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
        raise CargoriskError(f"{data_dir}: {table} table given twice ({names}); keep one")
    return found[0] if found else None


def find_table(data_dir: Path, table: str) -> Path:
    """``<table>.parquet``, ``<table>.csv`` or the month partitions ``<table>/`` of
    ``data_dir``."""
    path = table_path(data_dir, table)
    if path is None:
        raise CargoriskError(
            f"{data_dir}: no {table} table (expected {table}.parquet, {table}.csv or "
            f"{table}/{PARTITION_GLOB})"
        )
    return path


def read_info(data_dir: Path) -> DatasetInfo | None:
    """``data_dir/dataset.json`` (what the label means, the attribute schema); None when the
    directory has none."""
    path = Path(data_dir) / INFO_FILE
    if not path.is_file():
        return None
    try:
        return DatasetInfo.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise CargoriskError(f"{path}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise CargoriskError(f"{path}: not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CargoriskError(f"{path}: {where}: {first['msg']}") from None


def validate_table(
    table: str, frame: pd.DataFrame, attributes: Mapping[str, AttributeSpec] | None = None
) -> pd.DataFrame:
    """Validate one contract table; missing required columns and bad values become a
    :class:`ContractError` naming the fields. Shipments keep their ``attr.*`` columns, checked
    against ``attributes`` when given."""
    missing = missing_required(table, frame.columns)
    if missing:
        raise ContractError(f"{table} table lacks required column(s): {', '.join(missing)}")
    try:
        if table == "shipments":
            return validate_shipments(frame, attributes=attributes)
        return validate_outcomes(frame)
    except (pa_errors.SchemaErrors, pa_errors.SchemaError) as exc:
        raise ContractError(describe_failures(table, exc)) from None
    except ContractError as exc:  # an attribute column the schema does not declare, a bad value
        raise ContractError(
            f"{table} table breaks the contract - {exc} (attributes are declared in {INFO_FILE})"
        ) from None


def read_contract_dir(
    data_dir: str | Path, *, what: str = "--data", keep_undeclared: bool = False
) -> ContractTables:
    """Read and validate the contract tables of ``data_dir``. ``attr.*`` columns are checked
    against ``dataset.json``; without one, a directory has no attributes - unless
    ``keep_undeclared``, which keeps them as they are (a reader that drops what its model does
    not know)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CargoriskError(f"{what} {data_dir}: not a directory")
    info = read_info(data_dir)
    attributes = None if info is None and keep_undeclared else (info or DatasetInfo()).attributes
    frames = {
        table: validate_table(table, read_frame(find_table(data_dir, table)), attributes)
        for table in TABLES
    }
    return ContractTables(
        frames["shipments"], frames["outcomes"], info or DatasetInfo(), str(data_dir.resolve())
    )


class ContractDirWriter:
    """Contract tables written into a data directory chunk by chunk (bounded memory whatever
    their size), each under a temporary name until :meth:`commit` renames them all into place,
    so an interrupted write never leaves a directory that looks complete.

    ``schemas``: the Parquet schema of each table (``shipments`` and ``outcomes``), fixed up
    front so that a table without rows still has its typed columns; ``info`` becomes
    ``dataset.json``. :meth:`abandon` removes what was written."""

    def __init__(
        self,
        out_dir: str | Path,
        schemas: Mapping[str, pa.Schema],
        info: DatasetInfo | None = None,
    ) -> None:
        if set(schemas) != set(TABLES):
            raise ContractError(
                f"a contract directory holds the tables {', '.join(TABLES)}; "
                f"got schemas for {', '.join(sorted(schemas)) or 'none'}"
            )
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.final: dict[str, Path] = {table: self.out / f"{table}.parquet" for table in TABLES}
        if info is not None:
            self.final["dataset"] = self.out / INFO_FILE
        self._partial = {k: p.with_name(f".{p.name}.partial") for k, p in self.final.items()}
        self._schemas = dict(schemas)
        self._writers: dict[str, pq.ParquetWriter] = {}
        for table in TABLES:
            self._writers[table] = pq.ParquetWriter(self._partial[table], self._schemas[table])
        if info is not None:
            self._partial["dataset"].write_text(
                info.model_dump_json(indent=2) + "\n", encoding="utf-8"
            )

    def write(self, table: str, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (in the table's schema) to ``table``."""
        if len(frame):
            rows = pa.Table.from_pandas(frame, schema=self._schemas[table], preserve_index=False)
            self._writers[table].write_table(rows)

    def commit(self) -> dict[str, Path]:
        """Close the tables and put every file in place; returns their final paths."""
        self._close()
        for key, partial in self._partial.items():
            os.replace(partial, self.final[key])
        return dict(self.final)

    def abandon(self) -> None:
        """Close the tables and remove what was written."""
        self._close()
        for partial in self._partial.values():
            partial.unlink(missing_ok=True)

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def write_contract_dir(
    out_dir: str | Path,
    shipments: pd.DataFrame,
    outcomes: pd.DataFrame,
    info: DatasetInfo | None = None,
) -> Path:
    """Write contract tables (and ``dataset.json`` when ``info`` is given) as Parquet - what
    :func:`read_contract_dir` reads back - through a :class:`ContractDirWriter`. Returns the
    directory."""
    frames = {"shipments": shipments, "outcomes": outcomes}
    writer = ContractDirWriter(
        out_dir,
        {
            table: pa.Schema.from_pandas(frame, preserve_index=False)
            for table, frame in frames.items()
        },
        info,
    )
    try:
        for table, frame in frames.items():
            writer.write(table, frame)
        writer.commit()
    except BaseException:
        writer.abandon()
        raise
    return writer.out
