"""Reading one field's values out of a chunk's source cells, as the mapping says.

``when`` rules first, then the source value (``column``, ``coalesce``, ``constant`` or a
delay after the declaration), through the value map, ``upper``, number parsing (thousands
and decimal marks, units, scale), date parsing and time zones, then ``default`` for blanks.
A value that cannot be read is left blank and recorded as an issue; identifiers and names
are normalised as the API and the features normalise them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pandas as pd

from features.contracts import (
    REQUIRED_SHIPMENT_COLUMNS,
    identifier_problem,
    normal_text,
)
from features.ingest.issues import Issues
from features.ingest.mapping import ValueSpec

UNITS_TO_KG: Final = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}
"""Weight units a source may use for ``*_kg`` fields, with their size in kilograms."""

VALUE_MAP_MISS: Final = "value is not in the mapping's value map"

_TIME_OF_DAY: Final = re.compile(r"%[HMSIpXcTfzZ]")
"""strptime directives that carry a time of day: a format without any reads calendar days."""
_ISO_DAY: Final = r"\d{4}-\d{2}-\d{2}"
"""An ISO 8601 value that is only a date (no time of day): a calendar day."""

_REQUIRED_SHIPMENT: Final = frozenset(REQUIRED_SHIPMENT_COLUMNS)


def _text(series: pd.Series, null_values: Sequence[str]) -> pd.Series:
    """Source values as trimmed text, with blanks and declared null markers as missing."""
    text = series.astype("str").str.strip()
    empty = text.isna() | (text == "")
    if null_values:
        empty |= text.isin(list(null_values))
    return text.mask(empty)


class SourceCells:
    """The chunk's source cells, read as trimmed text once per column; a column the chunk does
    not have (one named only in ``coalesce``/``when``) reads as blank."""

    def __init__(self, chunk: pd.DataFrame, null_values: Sequence[str]) -> None:
        self.chunk = chunk
        self.n = len(chunk)
        self.null_values = null_values
        self._texts: dict[str, pd.Series] = {}

    def text(self, column: str) -> pd.Series:
        if column not in self._texts:
            if column in self.chunk.columns:
                raw = self.chunk[column]
            else:
                raw = pd.Series([None] * self.n, dtype=object)
            self._texts[column] = _text(raw, self.null_values).reset_index(drop=True)
        return self._texts[column]

    def raw(self, column: str) -> pd.Series:
        return self.chunk[column].reset_index(drop=True)

    def coalesce(self, columns: Sequence[str]) -> pd.Series:
        value = self.text(columns[0])
        for column in columns[1:]:
            value = value.fillna(self.text(column))
        return value


def read_field(
    field: str,
    kind: str,
    spec: ValueSpec,
    cells: SourceCells,
    declared_at: pd.Series | None,
    issues: Issues,
    *,
    required: bool,
) -> pd.Series:
    """One column read from the source as the mapping says: ``when`` rules first, then the
    source value, then ``default`` for blanks. Values that cannot be read are recorded in
    ``issues`` (fatal for a required field and for a code missing from a rejecting value map)
    and are left blank, never filled by the default."""
    n = cells.n
    if spec.source == "delay":
        if declared_at is None:
            raise ValueError(f"{field}: days_after_declared needs declared_at")
        days = spec.days_after_declared  # type: ignore[attr-defined]
        return declared_at + pd.to_timedelta(days, unit="D")
    matched = np.zeros(n, dtype=bool)
    derived = np.full(n, None, dtype=object)
    for rule in spec.when:
        hit = rule.holds(cells.text(rule.column)) & ~matched
        derived[hit] = rule.value
        matched |= hit

    typed = False
    if spec.source == "column":
        raw = cells.raw(str(spec.column))
        typed = (kind == "datetime" and pd.api.types.is_datetime64_any_dtype(raw)) or (
            kind in ("int", "float") and pd.api.types.is_numeric_dtype(raw) and spec.values is None
        )
        if not typed:
            raw = cells.text(str(spec.column))
    elif spec.source == "coalesce":
        raw = cells.coalesce(spec.coalesce or ())
    elif spec.source == "constant":
        raw = _text(pd.Series([spec.constant] * n, dtype="object"), [])
    else:
        raw = pd.Series([None] * n, dtype=object).astype("str")
    if matched.any():
        raw = raw.mask(matched)  # a matching rule decides; the column is not read there

    failed = np.zeros(n, dtype=bool)
    if typed:
        if kind == "datetime":
            return _to_utc(raw, spec, np.zeros(n, dtype=bool), field, issues, required, failed)
        value = _scaled(raw.astype("float64"), spec)
    else:
        value = _mapped(raw, spec, field, issues, failed)
        if kind == "datetime":
            return _parse_time(value, raw, spec, field, issues, required, failed)
        if kind in ("int", "float"):
            value = _number(value, raw, spec, field, issues, required, failed)

    if kind == "int":
        fractional = (value.notna() & (value % 1 != 0)).to_numpy()
        issues.add(fractional, field, "is not a whole number", raw, fatal=required)
        failed |= fractional
        value = value.mask(fractional)
    if matched.any():
        rule_values = pd.Series(derived, dtype=object)
        if kind == "str":
            value = value.astype(object).mask(matched, rule_values).astype("str")
        else:
            value = value.mask(matched, rule_values.astype("float64"))
    if spec.default is not None:
        fill = value.isna().to_numpy() & ~failed
        default = spec.default if kind != "str" else str(spec.default)
        value = value.mask(fill, default)
    return value.astype("Int64") if kind == "int" else value


def _mapped(
    raw: pd.Series, spec: ValueSpec, field: str, issues: Issues, failed: np.ndarray
) -> pd.Series:
    """Text through the value map and ``upper``. A code missing from a rejecting value map is
    always fatal: the mapping says such a row must not pass."""
    value = raw
    if spec.values is not None:
        known = raw.isin(list(spec.values))
        mapped = raw.map(spec.values)
        unmapped = (raw.notna() & ~known).to_numpy()
        if spec.unmapped == "keep":
            value = mapped.where(known, raw)
        else:
            shown = ", ".join(list(spec.values)[:10]) + (", …" if len(spec.values) > 10 else "")
            issues.add(unmapped, field, f"{VALUE_MAP_MISS} ({shown})", raw, fatal=True)
            failed |= unmapped
            value = mapped
        value = value.astype("str")
    if spec.upper:
        value = value.str.upper()
    return value


def _number(
    value: pd.Series,
    raw: pd.Series,
    spec: ValueSpec,
    field: str,
    issues: Issues,
    required: bool,
    failed: np.ndarray,
) -> pd.Series:
    if spec.thousands:
        value = value.str.replace(spec.thousands, "", regex=False)
    if spec.decimal != ".":
        value = value.str.replace(spec.decimal, ".", regex=False)
    number = pd.to_numeric(value, errors="coerce")
    bad = (value.notna() & number.isna()).to_numpy() & ~failed
    issues.add(bad, field, "is not a number", raw, fatal=required)
    failed |= bad
    return _scaled(number.astype("float64"), spec)


def _scaled(number: pd.Series, spec: ValueSpec) -> pd.Series:
    unit = getattr(spec, "unit", None)
    factor = UNITS_TO_KG[unit] if unit else spec.scale
    return number * factor if factor is not None else number


def _parse_time(
    value: pd.Series,
    raw: pd.Series,
    spec: ValueSpec,
    field: str,
    issues: Issues,
    required: bool,
    failed: np.ndarray,
) -> pd.Series:
    """Dates and times as naive UTC. A value without a time of day (the format has no time
    directive, or an ISO value is only YYYY-MM-DD) is a calendar day: midnight of that day,
    never shifted by the time zone, so a day-based split puts it on its own day."""
    fmt = getattr(spec, "date_format", None) or "ISO8601"
    try:
        parsed = pd.to_datetime(value, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # mixed UTC offsets: read all as UTC
        parsed = pd.to_datetime(value, format=fmt, errors="coerce", utc=True)
    bad = (value.notna() & parsed.isna()).to_numpy() & ~failed
    issues.add(bad, field, f"is not a date in the format {fmt}", raw, fatal=required)
    failed |= bad
    if fmt == "ISO8601":
        day_only = value.str.fullmatch(_ISO_DAY).fillna(False).to_numpy(dtype=bool)
    else:
        day_only = np.full(len(value), not _TIME_OF_DAY.search(fmt), dtype=bool)
    return _to_utc(parsed, spec, day_only, field, issues, required, failed)


def _to_utc(
    parsed: pd.Series,
    spec: ValueSpec,
    day_only: np.ndarray,
    field: str,
    issues: Issues,
    required: bool,
    failed: np.ndarray,
) -> pd.Series:
    """Timestamps as naive UTC, the contract's convention; calendar days stay as they are."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    timezone = getattr(spec, "timezone", None)
    if not timezone or day_only.all():
        return parsed
    timed = parsed.mask(day_only)
    local = timed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    skipped = (timed.notna() & local.isna()).to_numpy()
    reason = f"is not a single valid local time in {timezone} (clock change)"
    issues.add(skipped, field, reason, parsed, fatal=required)
    failed |= skipped
    utc = local.dt.tz_convert("UTC").dt.tz_localize(None)
    return utc.mask(day_only, parsed) if day_only.any() else utc


def normalised_text(values: pd.Series, normalise: Callable[[str], str]) -> pd.Series:
    """Text values through ``normalise`` (once per distinct non-ASCII value; ASCII text is
    left as it is, so a plain export costs one vectorised check)."""
    text = values.dropna()
    if text.empty:
        return values
    wide = text[~text.astype("str").str.isascii()]
    if wide.empty:
        return values
    mapped = {v: normalise(v) for v in wide.unique()}
    return values.mask(values.isin(list(mapped)), values.map(mapped))


def normal_identifiers(name: str, values: pd.Series, issues: Issues) -> pd.Series:
    """Identifiers normalised as the API and the features normalise them
    (:func:`features.contracts.normal_identifier`). One holding a control or format character
    (zero-width, bidi override, BOM, NEL) is refused, the reason naming the character: as any
    contract failure, a required one (``shipment_id``) quarantines its row, an optional one
    (a party id) is left blank and reported."""
    text = values.dropna().astype("str")
    if text.empty:
        return values
    # ASCII text needs no look: its control characters break the contract's identifier
    # pattern (judged with every other field); only non-ASCII values are normalised
    wide = text[~text.str.isascii()].unique().tolist()
    problems = {v: identifier_problem(v) for v in wide}
    refused = {v: p for v, p in problems.items() if p is not None}
    for value, problem in refused.items():
        mask = (values == value).fillna(False).to_numpy()
        issues.add(mask, name, problem, values, fatal=name in _REQUIRED_SHIPMENT)
    values = values.mask(values.isin(list(refused)))
    return normalised_text(values, normal_text)


def empty_column(kind: str, n: int) -> pd.Series:
    dtype = {"datetime": "datetime64[ns]", "int": "Int64", "float": "float64", "str": "str"}[kind]
    return pd.Series(np.nan, index=pd.RangeIndex(n), dtype=dtype)
