"""Turning a customs export in its own column names into contract rows, one chunk at a time.

A customs service never sends data in our column names: a Korean import-declaration export calls
the declaration number ``DECL_NO``, codes the transport mode as ``10``/``40``/``50``, writes dates
as ``25/11/2026`` and weights in tonnes. A **mapping** (YAML, validated by :class:`Mapping`) says,
for each contract field, where its value comes from and how to read it. :func:`ingest_chunk`
applies the mapping to one chunk of source rows and splits it into

* valid ``shipments`` rows (checked by the contract in :mod:`features.contracts`),
* valid ``outcomes`` rows, when the mapping names a **label column** (an inspection result per
  declaration, e.g. a seizure flag), and
* quarantine rows: one per failing (source row, field) with a readable reason, the offending
  value and the source row's original values, so nothing is lost and the row can be fixed.

A source row is accepted whole or quarantined whole: if its shipment or its inspection outcome
breaks the contract, neither is written. The rules themselves live only in the contract; this
module reads pandera's failure report and turns its check names into sentences.

Everything here is pure (frames in, new frames out); reading files and writing Parquet is the
job of :mod:`cargorisk.ingestion`.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pandera.errors
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

from features.contracts import (
    OUTCOME_COLUMNS,
    OUTCOME_KINDS,
    REQUIRED_OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    SHIPMENT_KINDS,
    Outcomes,
    Shipments,
)

UNITS_TO_KG: Final = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}
"""Weight units a source may use for ``*_kg`` fields, with their size in kilograms."""

QUARANTINE_COLUMNS: Final = ("source_row", "field", "reason", "value")
"""Leading columns of a quarantine frame; the source row's own values follow as ``source.<col>``."""

SOURCE_PREFIX: Final = "source."
ROW_FIELD: Final = "(row)"
"""Field name used when a failure concerns the row as a whole rather than one field."""

_MAX_SHOWN: Final = 200


_REQUIRED_SHIPMENT: Final = REQUIRED_SHIPMENT_COLUMNS
_REQUIRED_OUTCOME: Final = tuple(n for n in REQUIRED_OUTCOME_COLUMNS if n != "shipment_id")
_SHIPMENTS_SCHEMA: Final = Shipments.to_schema()
_OUTCOMES_SCHEMA: Final = Outcomes.to_schema()
_UNIQUE_SHIPMENT: Final = tuple(n for n, c in Shipments.to_schema().columns.items() if c.unique)


# --------------------------------------------------------------------------------------------
# The mapping file
# --------------------------------------------------------------------------------------------
class FieldMap(BaseModel):
    """Where one contract field comes from, and how to read it.

    Exactly one of ``column`` (a source column), ``constant`` (the same value for every row, for
    fields the source lacks) or ``days_after_declared`` (a timestamp set from the declaration
    date plus a stated delay, e.g. when the source has no inspection date) must be given. A
    plain string in the YAML is shorthand for ``{column: <string>}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = None
    constant: str | int | float | bool | None = None
    days_after_declared: float | None = None
    values: dict[str, str | None] | None = Field(
        default=None,
        description="Value map: source value -> contract value (null = empty). Applied first.",
    )
    unmapped: Literal["reject", "keep"] = Field(
        default="reject",
        description="What a source value missing from `values` does: reject the row or pass as is.",
    )
    date_format: str | None = Field(
        default=None, description="strptime format, e.g. '%d/%m/%Y'; default ISO 8601."
    )
    timezone: str | None = Field(
        default=None,
        description="Time zone of naive source timestamps (e.g. 'Asia/Seoul'); stored in UTC.",
    )
    unit: Literal["kg", "t", "g", "lb"] | None = Field(
        default=None, description="Weight unit of the source, for *_kg fields."
    )
    scale: float | None = Field(
        default=None, description="Multiply the source number by this (any numeric field)."
    )
    upper: bool = Field(default=False, description="Upper-case the text (country/port codes).")
    thousands: str | None = Field(
        default=None, max_length=1, description="Thousands separator in numbers, e.g. ','."
    )
    decimal: str = Field(
        default=".", min_length=1, max_length=1, description="Decimal mark, e.g. ','."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if isinstance(data, dict) and isinstance(data.get("values"), dict):
            # YAML reads `10: sea` with an integer key; source values are always text.
            data = {
                **data,
                "values": {
                    _yaml_key(k): (None if v is None else str(v)) for k, v in data["values"].items()
                },
            }
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldMap:
        given = [
            n
            for n in ("column", "constant", "days_after_declared")
            if getattr(self, n) is not None or n in self.model_fields_set
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'column', 'constant' or 'days_after_declared' "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.unit is not None and self.scale is not None:
            raise ValueError("give 'unit' or 'scale', not both")
        return self

    @property
    def source(self) -> Literal["column", "constant", "delay"]:
        if self.column is not None:
            return "column"
        if self.days_after_declared is not None:
            return "delay"
        return "constant"


def _yaml_key(key: Any) -> str:
    if isinstance(key, bool):  # YAML 1.1 turns bare yes/no/true/false into booleans
        raise ValueError(
            f"value-map key {key!r} was read by YAML as a boolean; quote it (e.g. 'Y', 'yes')"
        )
    return str(key)


def _check_fields(
    section: str, fields: dict[str, FieldMap], kinds: dict[str, str]
) -> dict[str, FieldMap]:
    for name, spec in fields.items():
        if name not in kinds:
            close = difflib.get_close_matches(name, list(kinds), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"'{name}' is not a field of the {section} contract{hint}")
        kind = kinds[name]
        where = f"{section}.{name}"
        if (spec.date_format or spec.timezone or spec.days_after_declared is not None) and (
            kind != "datetime"
        ):
            raise ValueError(
                f"{where}: date_format/timezone/days_after_declared apply to timestamps only"
            )
        if spec.unit is not None and not name.endswith("_kg"):
            raise ValueError(f"{where}: 'unit' applies to weights in kg only; use 'scale'")
        numeric_only = spec.scale is not None or spec.thousands or spec.decimal != "."
        if numeric_only and kind not in ("int", "float"):
            raise ValueError(f"{where}: scale/thousands/decimal apply to numeric fields only")
    return fields


class OutcomeMap(BaseModel):
    """How a label column becomes ``outcomes`` rows (one per inspected declaration).

    ``result`` must read the label column; its value map turns the source's flag into
    ``seized``/``clean`` and maps "not inspected" markers to null (no outcome row). Where the
    source has no inspection or result dates, set them with ``days_after_declared``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: dict[str, FieldMap]

    @field_validator("fields")
    @classmethod
    def _known(cls, fields: dict[str, FieldMap]) -> dict[str, FieldMap]:
        kinds = {k: v for k, v in OUTCOME_KINDS.items() if k != "shipment_id"}
        _check_fields("outcomes", fields, kinds)
        missing = [n for n in _REQUIRED_OUTCOME if n not in fields]
        if missing:
            raise ValueError(
                f"required outcome field(s) {', '.join(missing)} not mapped "
                "(give a source column, a constant or days_after_declared)"
            )
        if fields["result"].column is None:
            raise ValueError("outcomes.result must read the label column (give 'column')")
        return fields

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return {"fields": data} if isinstance(data, dict) and "fields" not in data else data


class Mapping(BaseModel):
    """A mapping file: source columns -> contract fields, for one source format.

    * ``shipments``: contract field -> :class:`FieldMap`; every required field must be mapped.
    * ``currency_rates_usd``: USD per unit of each currency; when given and
      ``declared_value_usd`` is not mapped, it is ``declared_value`` × the rate of ``currency``.
    * ``null_values``: source strings meaning "empty" (besides the empty string), e.g. ``-``.
    * ``outcomes`` (optional): the label column and how to read inspections from it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shipments: dict[str, FieldMap]
    currency_rates_usd: dict[str, PositiveFloat] = Field(default_factory=dict)
    null_values: list[str] = Field(default_factory=list)
    outcomes: OutcomeMap | None = None

    @field_validator("shipments")
    @classmethod
    def _known(cls, fields: dict[str, FieldMap]) -> dict[str, FieldMap]:
        return _check_fields("shipments", fields, SHIPMENT_KINDS)

    @field_validator("currency_rates_usd")
    @classmethod
    def _codes(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [c for c in rates if not re.fullmatch(r"[A-Z]{3}", str(c))]
        if bad:
            raise ValueError(f"currency codes must be 3 capital letters, got {bad}")
        return rates

    @model_validator(mode="after")
    def _complete(self) -> Mapping:
        derivable = {"declared_value_usd"} if self.currency_rates_usd else set()
        missing = [n for n in _REQUIRED_SHIPMENT if n not in self.shipments and n not in derivable]
        if missing:
            raise ValueError(
                f"required shipment field(s) {', '.join(missing)} not mapped (give a source "
                "column or a constant; declared_value_usd may instead come from "
                "currency_rates_usd)"
            )
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every source column the mapping reads, in first-use order."""
        specs = list(self.shipments.values())
        if self.outcomes is not None:
            specs += list(self.outcomes.fields.values())
        return tuple(dict.fromkeys(s.column for s in specs if s.column is not None))


def load_mapping(data: Any) -> Mapping:
    """Validate a parsed mapping document (raises ``pydantic.ValidationError``)."""
    return Mapping.model_validate(data)


# --------------------------------------------------------------------------------------------
# Applying a mapping to one chunk
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of source rows became.

    ``shipments``/``outcomes`` are validated contract frames; ``quarantine`` has one row per
    failing (source row, field) with :data:`QUARANTINE_COLUMNS` then ``source.<column>`` values;
    ``rows`` is how many source rows the chunk held and ``rejected`` how many were quarantined.
    """

    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    quarantine: pd.DataFrame
    rows: int
    rejected: int


class _Failures:
    """Collects (position, field, reason, value) failures of one chunk."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, mask: np.ndarray, field: str, reason: str, values: pd.Series) -> None:
        positions = np.flatnonzero(mask)
        if len(positions):
            self.parts.append(
                pd.DataFrame(
                    {
                        "pos": positions,
                        "field": field,
                        "reason": reason,
                        "value": values.iloc[positions].astype("str").to_numpy(),
                    }
                )
            )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({"pos": [], "field": [], "reason": [], "value": []}).astype(
                {"pos": "int64", "field": "str", "reason": "str", "value": "str"}
            )
        return pd.concat(self.parts, ignore_index=True)


def _text(series: pd.Series, null_values: list[str]) -> pd.Series:
    """Source values as trimmed text, with blanks and declared null markers as missing."""
    text = series.astype("str").str.strip()
    empty = text.isna() | (text == "")
    if null_values:
        empty |= text.isin(null_values)
    return text.mask(empty)


def _read_field(
    name: str,
    kind: str,
    spec: FieldMap,
    chunk: pd.DataFrame,
    declared_at: pd.Series | None,
    null_values: list[str],
    failures: _Failures,
) -> pd.Series:
    """One contract column read from the source as the mapping says; failures are recorded."""
    n = len(chunk)
    if spec.source == "delay":
        if declared_at is None:
            raise ValueError(f"{name}: days_after_declared needs declared_at")
        return declared_at + pd.to_timedelta(spec.days_after_declared, unit="D")
    if spec.source == "constant":
        raw = _text(pd.Series([spec.constant] * n, dtype="object"), [])
    else:
        raw = chunk[spec.column]
        typed = (kind == "datetime" and pd.api.types.is_datetime64_any_dtype(raw)) or (
            kind in ("int", "float") and pd.api.types.is_numeric_dtype(raw) and spec.values is None
        )
        if typed:  # e.g. a Parquet source that already stores numbers or timestamps
            raw = raw.reset_index(drop=True)
            if kind == "datetime":
                return _to_utc(raw, spec, name, failures)
            return _scaled(raw.astype("float64"), spec, kind, name, raw, failures)
        raw = _text(raw, null_values).reset_index(drop=True)
    value = raw
    if spec.values is not None:
        known = raw.isin(list(spec.values))
        mapped = raw.map(spec.values)
        unmapped = (raw.notna() & ~known).to_numpy()
        if spec.unmapped == "keep":
            value = mapped.where(known, raw)
        else:
            shown = ", ".join(list(spec.values)[:10]) + (", …" if len(spec.values) > 10 else "")
            failures.add(unmapped, name, f"value is not in the mapping's value map ({shown})", raw)
            value = mapped
        value = value.astype("str")
    if spec.upper:
        value = value.str.upper()
    if kind == "str":
        return value
    if kind == "datetime":
        fmt = spec.date_format or "ISO8601"
        try:
            parsed = pd.to_datetime(value, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # mixed UTC offsets: read all as UTC
            parsed = pd.to_datetime(value, format=fmt, errors="coerce", utc=True)
        bad = (value.notna() & parsed.isna()).to_numpy()
        failures.add(bad, name, f"is not a date in the format {fmt}", raw)
        return _to_utc(parsed, spec, name, failures)
    if spec.thousands:
        value = value.str.replace(spec.thousands, "", regex=False)
    if spec.decimal != ".":
        value = value.str.replace(spec.decimal, ".", regex=False)
    number = pd.to_numeric(value, errors="coerce")
    bad = (value.notna() & number.isna()).to_numpy()
    failures.add(bad, name, "is not a number", raw)
    return _scaled(number.astype("float64"), spec, kind, name, raw, failures)


def _to_utc(parsed: pd.Series, spec: FieldMap, name: str, failures: _Failures) -> pd.Series:
    """Timestamps as naive UTC, the contract's convention."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if spec.timezone:
        local = parsed.dt.tz_localize(spec.timezone, ambiguous="NaT", nonexistent="NaT")
        skipped = (parsed.notna() & local.isna()).to_numpy()
        reason = f"is not a single valid local time in {spec.timezone} (clock change)"
        failures.add(skipped, name, reason, parsed)
        return local.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _scaled(
    number: pd.Series, spec: FieldMap, kind: str, name: str, raw: pd.Series, failures: _Failures
) -> pd.Series:
    factor = UNITS_TO_KG[spec.unit] if spec.unit else spec.scale
    if factor is not None:
        number = number * factor
    if kind == "int":
        fractional = (number.notna() & (number % 1 != 0)).to_numpy()
        failures.add(fractional, name, "is not a whole number", raw)
        return number.where(~fractional).astype("Int64")
    return number


def _shipment_frame(
    chunk: pd.DataFrame, mapping: Mapping, failures: _Failures
) -> tuple[pd.DataFrame, pd.Series | None]:
    kinds = SHIPMENT_KINDS
    columns: dict[str, pd.Series] = {}
    order = sorted(mapping.shipments, key=lambda n: n != "declared_at")  # delays need it first
    for name in order:
        columns[name] = _read_field(
            name,
            kinds[name],
            mapping.shipments[name],
            chunk,
            columns.get("declared_at"),
            mapping.null_values,
            failures,
        )
    if "declared_value_usd" not in columns and mapping.currency_rates_usd:
        currency, value = columns.get("currency"), columns.get("declared_value")
        if currency is not None and value is not None:
            rate = currency.map(mapping.currency_rates_usd).astype("float64")
            no_rate = (currency.notna() & rate.isna()).to_numpy()
            failures.add(
                no_rate,
                "declared_value_usd",
                "currency has no rate in the mapping's currency_rates_usd",
                currency,
            )
            columns["declared_value_usd"] = value * rate
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(chunk)))
    for name in SHIPMENT_COLUMNS:
        if name not in frame.columns:
            frame[name] = _empty(kinds[name], len(chunk))
    return frame[list(SHIPMENT_COLUMNS)], columns.get("declared_at")


def _empty(kind: str, n: int) -> pd.Series:
    dtype = {"datetime": "datetime64[ns]", "int": "Int64", "float": "float64", "str": "str"}[kind]
    return pd.Series(np.nan, index=pd.RangeIndex(n), dtype=dtype)


def _outcome_frame(
    chunk: pd.DataFrame,
    mapping: Mapping,
    shipment_id: pd.Series,
    declared_at: pd.Series | None,
    failures: _Failures,
) -> pd.DataFrame:
    """Outcome rows (index = chunk position) for the rows whose label says they were inspected."""
    assert mapping.outcomes is not None
    columns = {"shipment_id": shipment_id}
    for name, spec in mapping.outcomes.fields.items():
        columns[name] = _read_field(
            f"outcome.{name}",
            OUTCOME_KINDS[name],
            spec,
            chunk,
            declared_at,
            mapping.null_values,
            failures,
        )
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(chunk)))
    for name in OUTCOME_COLUMNS:
        if name not in frame.columns:
            frame[name] = _empty(OUTCOME_KINDS[name], len(chunk))
    unreadable_label = np.zeros(len(chunk), dtype=bool)
    for part in failures.parts:
        unreadable_label[part.loc[part["field"] == "outcome.result", "pos"].to_numpy()] = True
    inspected = frame["result"].notna().to_numpy() & ~unreadable_label
    return frame.loc[inspected, list(OUTCOME_COLUMNS)]


# pandera check name -> readable reason (the rule itself stays in the contract)
def _reason(check: str) -> str:
    if check == "not_nullable":
        return "is required but empty"
    if check == "field_uniqueness":
        return "must be unique"
    match = re.fullmatch(r"(\w+)\((.*)\)", check, flags=re.DOTALL)
    if not match:
        return check  # a dataframe-level check: its error text is already a sentence
    name, args = match.groups()
    if name == "isin":
        try:
            allowed = ast.literal_eval(args)
            return "must be one of " + ", ".join(str(a) for a in allowed)
        except (ValueError, SyntaxError):
            return f"must be one of {args}"
    if name == "str_matches":
        pattern = args.strip("'\"")  # the pattern's own text (escapes stay escapes)
        return f"does not have the expected form (pattern {pattern})"
    if name == "str_length":
        low, _, high = args.partition(", ")
        if low in ("None", "0"):
            return f"is longer than {high} characters"
        return f"must be {low} to {high} characters long"
    words = {
        "greater_than_or_equal_to": "must be at least",
        "greater_than": "must be greater than",
        "less_than_or_equal_to": "must be at most",
        "less_than": "must be less than",
        "equal_to": "must equal",
        "in_range": "must be in the range",
    }
    if name in words:
        return f"{words[name]} {args.removesuffix(' 00:00:00')}"
    if name in ("coerce_dtype", "dtype"):
        return f"cannot be read as {args.strip(chr(39))}"
    return check


def _schema_failures(model: type, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Validate ``frame`` with the contract; failures as (pos, field, reason, value) rows."""
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return _Failures().frame()
    cases = cases[cases["index"].notna()]
    cases = cases[cases["check"] != "field_uniqueness"]  # keep-first, handled by the caller
    whole_row = cases["schema_context"] == "DataFrameSchema"
    row_level = cases[whole_row].drop_duplicates(["index", "check"])
    fields = {
        check: ", ".join(dict.fromkeys(w for w in re.findall(r"\w+", check) if w in columns))
        or ROW_FIELD
        for check in row_level["check"].unique()
    }
    row_level = pd.DataFrame(
        {
            "pos": row_level["index"].astype("int64").to_numpy(),
            "field": row_level["check"].map(fields).to_numpy(),
            "reason": row_level["check"].to_numpy(),
            "value": "",
        }
    )
    cell = cases[~whole_row]
    # a missing required value also fails its dtype coercion: report it once, as "required"
    required = cell.loc[cell["check"] == "not_nullable", ["index", "column"]]
    keys = pd.MultiIndex.from_frame(cell[["index", "column"]])
    redundant = keys.isin(pd.MultiIndex.from_frame(required)) & (
        cell["check"].str.contains("dtype").to_numpy()
    )
    cell = cell[~redundant]
    cell_level = pd.DataFrame(
        {
            "pos": cell["index"].astype("int64").to_numpy(),
            "field": cell["column"].astype("str").to_numpy(),
            "reason": [_reason(c) for c in cell["check"]],
            "value": ["" if pd.isna(v) else str(v) for v in cell["failure_case"]],
        }
    )
    return pd.concat([cell_level, row_level], ignore_index=True)


def _without_parsed(found: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
    """Drop contract failures of cells whose source value could not even be read."""
    if parsed.empty or found.empty:
        return found
    seen = pd.MultiIndex.from_frame(parsed[["pos", "field"]])
    return found[~pd.MultiIndex.from_frame(found[["pos", "field"]]).isin(seen)]


def _quarantine(failures: pd.DataFrame, chunk: pd.DataFrame, first_row: int) -> pd.DataFrame:
    failures = failures.sort_values(["pos", "field"], kind="stable")
    positions = failures["pos"].to_numpy()
    source = chunk.iloc[positions].reset_index(drop=True).astype("str")
    source.columns = [f"{SOURCE_PREFIX}{c}" for c in source.columns]
    value = failures["value"].astype("str")
    long = value.str.len() > _MAX_SHOWN
    value = value.where(~long, value.str.slice(0, _MAX_SHOWN) + "…")
    head = pd.DataFrame(
        {
            "source_row": positions + first_row,
            "field": failures["field"].to_numpy(),
            "reason": failures["reason"].to_numpy(),
            "value": value.to_numpy(),
        }
    )
    return pd.concat([head, source], axis=1)


def ingest_chunk(
    chunk: pd.DataFrame,
    mapping: Mapping,
    *,
    first_row: int = 1,
    seen_ids: AbstractSet[str] = frozenset(),
) -> ChunkResult:
    """Apply ``mapping`` to one chunk of source rows and judge them against the contract.

    ``first_row`` is the source row number of the chunk's first row (1 = the first data row
    after the header). ``seen_ids`` holds the ``shipment_id`` values already accepted from
    earlier chunks: a repeat is quarantined and the first occurrence kept. The input is not
    modified. Returns valid shipments, their outcomes and the quarantine (see
    :class:`ChunkResult`).
    """
    missing = [c for c in mapping.source_columns if c not in chunk.columns]
    if missing:
        raise KeyError(f"source column(s) missing: {', '.join(missing)}")
    parsed = _Failures()
    shipments, declared_at = _shipment_frame(chunk, mapping, parsed)
    outcomes = None
    if mapping.outcomes is not None:
        outcomes = _outcome_frame(chunk, mapping, shipments["shipment_id"], declared_at, parsed)
    parse_failures = parsed.frame()
    parts = [parse_failures]
    parts.append(
        _without_parsed(
            _schema_failures(Shipments, shipments, list(SHIPMENT_COLUMNS)), parse_failures
        )
    )
    if outcomes is not None and len(outcomes):
        found = _schema_failures(Outcomes, outcomes.reset_index(drop=True), list(OUTCOME_COLUMNS))
        found["pos"] = outcomes.index.to_numpy()[found["pos"].to_numpy()]
        found["field"] = "outcome." + found["field"]
        # outcome dates derived from a missing or unreadable declaration date fail only as a
        # consequence: the declaration date's own failure is the reason worth reading
        no_date = np.flatnonzero(shipments["declared_at"].isna().to_numpy())
        found = found[~found["pos"].isin(no_date)]
        parts.append(_without_parsed(found, parse_failures))
    failures = pd.concat(parts, ignore_index=True)

    bad = np.zeros(len(chunk), dtype=bool)
    bad[failures["pos"].to_numpy()] = True
    # uniqueness (from the contract's `unique` flag): first accepted occurrence wins
    for name in _UNIQUE_SHIPMENT:
        ids = shipments[name]
        repeat = ids.notna() & ~pd.Series(bad) & ids.where(~bad).duplicated(keep="first")
        earlier = np.fromiter(
            map(seen_ids.__contains__, ids.to_numpy(dtype=object)), dtype=bool, count=len(ids)
        )
        dup = (repeat.to_numpy() | earlier) & ids.notna().to_numpy() & ~bad
        if dup.any():
            extra = _Failures()
            extra.add(dup, name, "repeats an earlier accepted row (first one kept)", ids)
            failures = pd.concat([failures, extra.frame()], ignore_index=True)
            bad |= dup

    good = ~bad
    # These rows passed every check above; only the contract's dtypes remain to be applied
    # (a full second validation would double the cost of a chunk for no new information).
    accepted = _SHIPMENTS_SCHEMA.coerce_dtype(shipments.loc[good].reset_index(drop=True))
    if outcomes is not None:
        keep = good[outcomes.index.to_numpy()]
        outcome_rows = _OUTCOMES_SCHEMA.coerce_dtype(outcomes.loc[keep].reset_index(drop=True))
    else:
        outcome_rows = empty_outcomes()
    return ChunkResult(
        shipments=accepted,
        outcomes=outcome_rows,
        quarantine=_quarantine(failures, chunk, first_row),
        rows=len(chunk),
        rejected=int(bad.sum()),
    )


def _empty_frame(kinds: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: _empty(kind, 0) for name, kind in kinds.items()})


def empty_shipments() -> pd.DataFrame:
    """A valid shipments frame with no rows (the contract's column order and dtypes)."""
    return Shipments.validate(_empty_frame(SHIPMENT_KINDS))


def empty_outcomes() -> pd.DataFrame:
    """A valid outcomes frame with no rows."""
    return Outcomes.validate(_empty_frame(OUTCOME_KINDS))


def reason_counts(quarantine: pd.DataFrame) -> pd.Series:
    """How many source rows failed for each ``field: reason`` (a row may count under several)."""
    if quarantine.empty:
        return pd.Series(dtype="int64")
    keys = quarantine["field"].astype("str") + ": " + quarantine["reason"].astype("str")
    per_row = pd.DataFrame({"key": keys, "row": quarantine["source_row"]}).drop_duplicates()
    return per_row["key"].value_counts()
