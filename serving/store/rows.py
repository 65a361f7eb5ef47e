"""Rows between Python and SQL: now as the contract's naive UTC, rows as dicts or columns,
SQLite's DATETIME text for a whole column, and the customs service's attributes as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import (
    ATTRIBUTE_PREFIX,
    attribute_column,
    attribute_columns,
)
from features.errors import CargoriskError


def utcnow() -> dt.datetime:
    """Now, as the naive UTC timestamp the contract uses."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


Rows = list[dict[str, Any]] | dict[str, list]
"""Rows to write: one dict per row, or one list per column (same names, same length)."""


SQLITE_DATETIME = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
"""SQLAlchemy's default SQLite storage format of DATETIME columns."""


class DatetimeColumn:
    """SQLAlchemy's SQLite DATETIME bind processor over a whole column: a naive datetime's
    ``isoformat(" ", "microseconds")`` is the very text of SQLAlchemy's storage format (tested)
    at a fifth of the cost of formatting its seven fields through a dict; anything else goes
    through SQLAlchemy's own processor."""

    def __init__(self, proc) -> None:
        self.proc = proc

    def __call__(self, value: Any) -> Any:
        return self.proc(value)

    def convert(self, values: list) -> list:
        proc, datetime = self.proc, dt.datetime
        return [
            None
            if v is None
            else v.isoformat(" ", "microseconds")
            if type(v) is datetime and v.tzinfo is None
            else proc(v)
            for v in values
        ]


def as_columns(rows: Rows) -> dict[str, list]:
    if isinstance(rows, dict):
        return rows
    return {name: [r[name] for r in rows] for name in rows[0]} if rows else {}


def inserted_id(result: Any) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise CargoriskError("the database returned no id for the new row")
    return int(key[0])


def as_rows(rows: Rows) -> list[dict[str, Any]]:
    if not isinstance(rows, dict):
        return rows
    names = list(rows)
    return [dict(zip(names, values, strict=True)) for values in zip(*rows.values(), strict=True)]


def row_count(rows: Rows) -> int:
    if isinstance(rows, dict):
        return len(next(iter(rows.values()), ()))
    return len(rows)


def attributes_json(frame: pd.DataFrame) -> list[str | None]:
    """The ``attr.*`` columns of a frame as one JSON object per row (None without any)."""
    names = attribute_columns(frame)
    if not names:
        return [None] * len(frame)
    keys = [c.removeprefix(ATTRIBUTE_PREFIX) for c in names]
    columns = [frame[c].tolist() for c in names]
    out: list[str | None] = []
    for values in zip(*columns, strict=True):
        item = {k: _plain(v) for k, v in zip(keys, values, strict=True) if not _blank(v)}
        out.append(json.dumps(item, sort_keys=True) if item else None)
    return out


def _blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def attributes_frame(values: Iterable[str | None], index: pd.Index) -> pd.DataFrame:
    """Stored attribute objects back as ``attr.<name>`` columns (text or float as stored;
    absent where a shipment lacks one)."""
    parsed = [json.loads(v) if isinstance(v, str) and v else {} for v in values]
    names = sorted({k for item in parsed for k in item})
    data = {}
    for name in names:
        column = [item.get(name) for item in parsed]
        numeric = all(v is None or isinstance(v, (int, float)) for v in column)
        data[attribute_column(name)] = (
            pd.Series(column, index=index, dtype="float64")
            if numeric
            else pd.Series(column, index=index, dtype=object)
        )
    return pd.DataFrame(data, index=index)
