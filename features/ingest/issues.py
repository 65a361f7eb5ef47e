"""What failed while ingesting a chunk, and how it is reported.

Problems are collected per (row position, field) in :class:`Issues`; pandera's failure
report is turned into readable reasons (:func:`check_reason`, :func:`schema_failures`) - the
rules themselves live only in the contract; a row with a fatal issue becomes quarantine rows
(with the source row's own values), a non-fatal one a blanked row. Repeated ids and the
per-reason counts of the summary are here too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Set as AbstractSet
from typing import Final

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from features.contracts import (
    IDENTIFIER_PATTERN,
    OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    Outcomes,
    Shipments,
)

QUARANTINE_COLUMNS: Final = ("source_row", "field", "reason", "value")
"""Leading columns of a quarantine frame; the source row's own values follow as ``source.<col>``."""
BLANKED_COLUMNS: Final = ("source_row", "field", "reason", "value")
"""Columns of a blanked frame: which optional value of an accepted row was left blank, and why."""

SOURCE_PREFIX: Final = "source."
ROW_FIELD: Final = "(row)"
"""Field name used when a failure concerns the row as a whole rather than one field."""
OUTCOME_PREFIX: Final = "outcome."
OUTCOME_DROPPED: Final = " (outcome not written)"
"""Appended to the reason of a blanked outcome field: the whole inspection result is left out."""

_MAX_SHOWN: Final = 200
_REQUIRED_SHIPMENT: Final = frozenset(REQUIRED_SHIPMENT_COLUMNS)
_SHIPMENTS_SCHEMA: Final = Shipments.to_schema()
_UNIQUE_SHIPMENT: Final = tuple(n for n, c in _SHIPMENTS_SCHEMA.columns.items() if c.unique)


class Issues:
    """Problems found in one chunk: (position, field, reason, value, fatal).

    A ``fatal`` issue rejects the whole row (quarantine); any other one blanks the value (or, for
    an outcome field, leaves the outcome out) and is reported if the row is accepted."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(
        self, mask: np.ndarray, field: str, reason: str, values: pd.Series, *, fatal: bool
    ) -> None:
        positions = np.flatnonzero(mask)
        if len(positions):
            self.parts.append(
                pd.DataFrame(
                    {
                        "pos": positions,
                        "field": field,
                        "reason": reason,
                        "value": values.iloc[positions].astype("str").to_numpy(),
                        "fatal": fatal,
                    }
                )
            )

    def extend(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self.parts.append(frame)

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return _no_issues()
        return pd.concat(self.parts, ignore_index=True)


def _no_issues() -> pd.DataFrame:
    return pd.DataFrame({"pos": [], "field": [], "reason": [], "value": [], "fatal": []}).astype(
        {"pos": "int64", "field": "str", "reason": "str", "value": "str", "fatal": "bool"}
    )


# pandera check name -> readable reason (the rule itself stays in the contract)
def check_reason(check: str) -> str:
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
        if pattern == IDENTIFIER_PATTERN:  # too long to show: say what it means
            return "is not an identifier (1-64 characters, no control or format character)"
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


def schema_failures(
    model: type[pa.DataFrameModel], frame: pd.DataFrame, columns: list[str]
) -> pd.DataFrame:
    """Validate ``frame`` with the contract; failures as (pos, field, reason, value) rows."""
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return _no_issues().drop(columns="fatal")
    cases = cases[cases["index"].notna()]
    cases = cases[cases["check"] != "field_uniqueness"]  # keep-first, handled by the caller
    whole_row = cases["schema_context"] == "DataFrameSchema"
    row_level = cases[whole_row].drop_duplicates(["index", "check"])
    fields = {
        check: ", ".join(dict.fromkeys(w for w in re.findall(r"\w+", check) if w in columns))
        or ROW_FIELD
        for check in row_level["check"].unique()
    }
    positions = row_level["index"].astype("int64").to_numpy()
    named = row_level["check"].map(fields).to_numpy()
    row_level = pd.DataFrame(
        {
            "pos": positions,
            "field": named,
            "reason": row_level["check"].to_numpy(),
            # the values the rule compared, e.g. "departed_at=2026-11-05; arrival_at=2026-11-01"
            "value": [
                "; ".join(f"{f}={frame[f].iloc[p]}" for f in field.split(", ") if f in frame)
                for p, field in zip(positions, named, strict=True)
            ],
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
            "reason": [check_reason(c) for c in cell["check"]],
            "value": ["" if pd.isna(v) else str(v) for v in cell["failure_case"]],
        }
    )
    return pd.concat([cell_level, row_level], ignore_index=True)


def without_unreadable(found: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
    """Drop contract failures of cells whose source value could not even be read, and row rules
    (``departed_at, arrival_at``) that failed only because one of their cells could not."""
    if parsed.empty or found.empty:
        return found
    seen = pd.MultiIndex.from_frame(parsed[["pos", "field"]])
    keep = ~pd.MultiIndex.from_frame(found[["pos", "field"]]).isin(seen)
    compound = found["field"].str.contains(", ", regex=False).to_numpy()
    if compound.any():
        unreadable = set(zip(parsed["pos"], parsed["field"], strict=True))
        for i in np.flatnonzero(compound):
            pos, fields = found["pos"].iat[i], str(found["field"].iat[i]).split(", ")
            keep[i] = not any((pos, f) in unreadable for f in fields)
    return found[keep]


def is_fatal_field(field: str) -> bool:
    """A contract failure of a required field (or of the row as a whole) rejects the row."""
    return field == ROW_FIELD or any(f in _REQUIRED_SHIPMENT for f in field.split(", "))


def _shown(value: pd.Series) -> pd.Series:
    value = value.astype("str")
    long = value.str.len() > _MAX_SHOWN
    return value.where(~long, value.str.slice(0, _MAX_SHOWN) + "…")


def quarantine_rows(issues: pd.DataFrame, chunk: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    issues = issues.sort_values(["pos", "field"], kind="stable")
    positions = issues["pos"].to_numpy()
    source = chunk.iloc[positions].reset_index(drop=True).astype("str")
    source.columns = [f"{SOURCE_PREFIX}{c}" for c in source.columns]
    head = pd.DataFrame(
        {
            "source_row": rows[positions],
            "field": issues["field"].to_numpy(),
            "reason": issues["reason"].to_numpy(),
            "value": _shown(issues["value"]).to_numpy(),
        }
    )
    return pd.concat([head, source], axis=1)


def blanked_rows(issues: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    issues = issues.sort_values(["pos", "field"], kind="stable")
    outcome = issues["field"].str.startswith(OUTCOME_PREFIX).to_numpy()
    reason = issues["reason"].astype("str").to_numpy(dtype=object)
    reason[outcome] = reason[outcome] + OUTCOME_DROPPED
    return pd.DataFrame(
        {
            "source_row": rows[issues["pos"].to_numpy()],
            "field": issues["field"].astype("str").to_numpy(),
            "reason": pd.Series(reason, dtype="str").to_numpy(),
            "value": _shown(issues["value"]).to_numpy(),
        }
    )


def outcome_failures(
    outcomes: pd.DataFrame, declared_at: pd.Series, read: pd.DataFrame
) -> pd.DataFrame:
    """The outcomes contract's failures (never fatal: the outcome is left out, the shipment is
    still scored), under ``outcome.<field>``."""
    if outcomes.empty:
        return _no_issues()
    found = schema_failures(Outcomes, outcomes.reset_index(drop=True), list(OUTCOME_COLUMNS))
    found["pos"] = outcomes.index.to_numpy()[found["pos"].to_numpy()]
    # the outcome's shipment_id is the shipment's own, judged there already
    found = found[found["field"] != "shipment_id"]
    found["field"] = [
        ", ".join(OUTCOME_PREFIX + f for f in str(fields).split(", ")) for fields in found["field"]
    ]
    # outcome dates derived from a missing or unreadable declaration date fail only as a
    # consequence: the declaration date's own failure is the reason worth reading
    no_date = np.flatnonzero(declared_at.isna().to_numpy())
    found = found[~found["pos"].isin(no_date)]
    return without_unreadable(found, read).assign(fatal=False)


def repeated_ids(
    shipments: pd.DataFrame, bad: np.ndarray, seen_ids: AbstractSet[str]
) -> pd.DataFrame:
    """Rows repeating a unique field (the contract's ``unique`` flag: ``shipment_id``) of an
    accepted row, earlier in the chunk or in ``seen_ids``: the first accepted occurrence wins."""
    found = Issues()
    for name in _UNIQUE_SHIPMENT:
        ids = shipments[name]
        repeat = ids.notna() & ~pd.Series(bad) & ids.where(~bad).duplicated(keep="first")
        earlier = np.fromiter(
            map(seen_ids.__contains__, ids.to_numpy(dtype=object)), dtype=bool, count=len(ids)
        )
        dup = (repeat.to_numpy() | earlier) & ids.notna().to_numpy() & ~bad
        found.add(dup, name, "repeats an earlier accepted row (first one kept)", ids, fatal=True)
    return found.frame()


def blank_refused(shipments: pd.DataFrame, issues: pd.DataFrame) -> pd.DataFrame:
    """``shipments`` with the values named by (non-fatal) ``issues`` left blank; values that
    could not be read are blank already, this blanks those the contract refused."""
    out = shipments.copy()
    for field, positions in issues.groupby("field", sort=False)["pos"]:
        mask = np.zeros(len(out), dtype=bool)
        mask[positions.to_numpy()] = True
        for name in str(field).split(", "):
            if name in out.columns:
                out[name] = out[name].mask(mask)
    return out


def reason_counts(issues: pd.DataFrame) -> pd.Series:
    """How many source rows failed (quarantine) or were blanked (blanked) for each
    ``field: reason`` (a row may count under several)."""
    if issues.empty:
        return pd.Series(dtype="int64")
    keys = issues["field"].astype("str") + ": " + issues["reason"].astype("str")
    per_row = pd.DataFrame({"key": keys, "row": issues["source_row"]}).drop_duplicates()
    return per_row["key"].value_counts()
