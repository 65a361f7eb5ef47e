"""Applying a mapping to one chunk of source rows: :func:`ingest_chunk`.

The chunk becomes valid ``shipments`` rows (checked by the contract in
:mod:`features.contracts`) followed by one ``attr.<name>`` column per attribute, valid
``outcomes`` rows when the chunk holds the mapping's label column, **quarantine** rows (only
what cannot be scored - no id, no readable declaration time or mode, a code missing from a
rejecting value map, a repeated id) and **blanked** rows (an optional value that cannot be
read or breaks the contract is left blank and reported; an inspection outcome that breaks the
contract is not written and reported the same way).

Odd but real values (0 kg, bulk cargo above 1,000 t, a declared value of 0) are accepted as
they are: the contract accepts them and features flag them.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from features.contracts import (
    IDENTIFIER_FIELDS,
    NAME_FIELDS,
    OUTCOME_COLUMNS,
    OUTCOME_KINDS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    SHIPMENT_KINDS,
    AttributeSpec,
    Kind,
    Outcomes,
    Shipments,
    attribute_column,
    attribute_frame,
    check_attribute_value,
    normal_text,
)
from features.errors import ContractError
from features.ingest.issues import (
    OUTCOME_PREFIX,
    Issues,
    blank_refused,
    blanked_rows,
    is_fatal_field,
    outcome_failures,
    quarantine_rows,
    repeated_ids,
    schema_failures,
    without_unreadable,
)
from features.ingest.mapping import Mapping
from features.ingest.values import (
    SourceCells,
    empty_column,
    normal_identifiers,
    normalised_text,
    read_field,
)

_REQUIRED_SHIPMENT: Final = frozenset(REQUIRED_SHIPMENT_COLUMNS)
_SHIPMENTS_SCHEMA: Final = Shipments.to_schema()
_OUTCOMES_SCHEMA: Final = Outcomes.to_schema()


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of source rows became.

    ``shipments`` are validated contract rows followed by the mapping's ``attr.*`` columns;
    ``outcomes`` validated outcome rows (empty when the chunk has no label column, see
    ``labelled``); ``quarantine`` has one row per failing (source row, field) of a rejected
    row, with :data:`QUARANTINE_COLUMNS` then ``source.<column>`` values; ``blanked`` one row
    per optional value of an *accepted* row that was left blank (:data:`BLANKED_COLUMNS`).
    ``rows`` is how many source rows the chunk held and ``rejected`` how many were quarantined.
    """

    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    quarantine: pd.DataFrame
    blanked: pd.DataFrame
    rows: int
    rejected: int
    labelled: bool


def _shipment_frame(cells: SourceCells, mapping: Mapping, issues: Issues) -> pd.DataFrame:
    kinds = SHIPMENT_KINDS
    columns: dict[str, pd.Series] = {}
    order = sorted(mapping.shipments, key=lambda n: n != "declared_at")  # delays need it first
    for name in order:
        columns[name] = read_field(
            name,
            kinds[name],
            mapping.shipments[name],
            cells,
            columns.get("declared_at"),
            issues,
            required=name in _REQUIRED_SHIPMENT,
        )
    if "declared_value_usd" not in columns and mapping.currency_rates_usd:
        currency, value = columns.get("currency"), columns.get("declared_value")
        if currency is not None and value is not None:
            rate = currency.map(mapping.currency_rates_usd).astype("float64")
            no_rate = (currency.notna() & rate.isna()).to_numpy()
            issues.add(
                no_rate,
                "declared_value_usd",
                "currency has no rate in the mapping's currency_rates_usd",
                currency,
                fatal=False,
            )
            columns["declared_value_usd"] = value * rate
    for name in IDENTIFIER_FIELDS:
        if name in columns:
            columns[name] = normal_identifiers(name, columns[name], issues)
    for name in NAME_FIELDS:
        if name in columns:
            columns[name] = normalised_text(columns[name], normal_text)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(cells.n))
    for name in SHIPMENT_COLUMNS:
        if name not in frame.columns:
            frame[name] = empty_column(kinds[name], cells.n)
    return frame[list(SHIPMENT_COLUMNS)]


def _attribute_values(cells: SourceCells, mapping: Mapping, issues: Issues) -> pd.DataFrame:
    """The ``attr.*`` columns: read like fields, then judged by the contract's attribute rule
    (one check per distinct value); a value the contract refuses is blanked and reported."""
    columns: dict[str, pd.Series] = {}
    for name, spec in mapping.attributes.items():
        field = attribute_column(name)
        kind = "float" if spec.kind == "numeric" else "str"
        values = read_field(field, kind, spec, cells, None, issues, required=False)
        refused: dict[str, list[Any]] = {}
        for value in pd.unique(values.dropna()):
            try:
                check_attribute_value(name, spec.spec, float(value) if kind == "float" else value)
            except ContractError as exc:
                refused.setdefault(str(exc).partition(": ")[2], []).append(value)
        for reason, bad_values in refused.items():
            bad = values.isin(bad_values).to_numpy()
            issues.add(bad, field, reason, values, fatal=False)
            values = values.mask(bad)
        columns[field] = values
    frame = pd.DataFrame(columns, index=pd.RangeIndex(cells.n))
    return attribute_frame(frame, mapping.dataset_info.attributes)


def _outcome_frame(
    cells: SourceCells,
    mapping: Mapping,
    shipment_id: pd.Series,
    declared_at: pd.Series | None,
    issues: Issues,
) -> pd.DataFrame:
    """Outcome rows (index = chunk position) of the rows whose label says they were inspected.
    Problems go to ``issues`` under ``outcome.<field>``, only for those rows."""
    assert mapping.outcomes is not None
    found = Issues()
    columns = {"shipment_id": shipment_id}
    for name, spec in mapping.outcomes.fields.items():
        columns[name] = read_field(
            f"{OUTCOME_PREFIX}{name}",
            OUTCOME_KINDS[name],
            spec,
            cells,
            declared_at,
            found,
            required=False,
        )
    frame = pd.DataFrame(columns, index=pd.RangeIndex(cells.n))
    for name in OUTCOME_COLUMNS:
        if name not in frame.columns:
            frame[name] = empty_column(OUTCOME_KINDS[name], cells.n)
    problems = found.frame()
    label_failed = problems.loc[problems["field"] == f"{OUTCOME_PREFIX}result", "pos"]
    inspected = frame["result"].notna().to_numpy().copy()
    # only inspected rows have an outcome whose other fields matter; a bad label always does
    relevant = inspected[problems["pos"].to_numpy()] | problems["pos"].isin(label_failed).to_numpy()
    issues.extend(problems[relevant])
    inspected[label_failed.to_numpy()] = False
    return frame.loc[inspected, list(OUTCOME_COLUMNS)]


def ingest_chunk(
    chunk: pd.DataFrame,
    mapping: Mapping,
    *,
    first_row: int = 1,
    source_rows: Sequence[int] | np.ndarray | None = None,
    seen_ids: AbstractSet[str] = frozenset(),
) -> ChunkResult:
    """Apply ``mapping`` to one chunk of source rows and judge them against the contract.

    ``first_row`` is the source row number of the chunk's first row (1 = the first data row
    after the header); ``source_rows`` gives every row's number instead, when the chunk's rows
    are not consecutive (malformed rows between them were set aside). ``seen_ids`` holds the
    ``shipment_id`` values already accepted from earlier chunks: a repeat is quarantined and the
    first occurrence kept. Outcomes are read only when the chunk holds the label column. The
    input is not modified. Raises ``KeyError`` naming the source columns the mapping needs but
    the chunk lacks.
    """
    header = list(chunk.columns)
    missing = mapping.missing_columns(header)
    if missing:
        raise KeyError(f"source column(s) missing: {', '.join(missing)}")
    n = len(chunk)
    rows = (
        np.asarray(source_rows, dtype="int64")
        if source_rows is not None
        else np.arange(first_row, first_row + n, dtype="int64")
    )
    if len(rows) != n:
        raise ValueError(f"source_rows has {len(rows)} numbers for {n} rows")
    labelled = mapping.is_labelled(header)
    cells = SourceCells(chunk, mapping.null_values)
    issues = Issues()
    shipments = _shipment_frame(cells, mapping, issues)
    attributes = _attribute_values(cells, mapping, issues)
    read = issues.frame()
    contract = without_unreadable(
        schema_failures(Shipments, shipments, list(SHIPMENT_COLUMNS)), read
    )
    issues.extend(contract.assign(fatal=contract["field"].map(is_fatal_field).astype("bool")))

    outcomes = None
    if labelled:
        declared_at = shipments["declared_at"]
        outcomes = _outcome_frame(cells, mapping, shipments["shipment_id"], declared_at, issues)
        issues.extend(outcome_failures(outcomes, declared_at, issues.frame()))

    problems = issues.frame()
    bad = np.zeros(n, dtype=bool)
    bad[problems.loc[problems["fatal"], "pos"].to_numpy()] = True
    repeats = repeated_ids(shipments, bad, seen_ids)
    problems = pd.concat([problems, repeats], ignore_index=True)
    bad[repeats["pos"].to_numpy()] = True

    in_bad_row = bad[problems["pos"].to_numpy()]
    kept_issues = problems[~in_bad_row]
    good = ~bad
    shipments = blank_refused(shipments, kept_issues)
    # These rows passed every check above; only the contract's dtypes remain to be applied
    # (a full second validation would double the cost of a chunk for no new information).
    accepted = _SHIPMENTS_SCHEMA.coerce_dtype(shipments.loc[good].reset_index(drop=True))
    accepted = pd.concat([accepted, attributes.loc[good].reset_index(drop=True)], axis=1)
    if outcomes is not None:
        dropped = np.zeros(n, dtype=bool)
        outcome_issue = kept_issues["field"].str.startswith(OUTCOME_PREFIX).to_numpy()
        dropped[kept_issues.loc[outcome_issue, "pos"].to_numpy()] = True
        keep = (good & ~dropped)[outcomes.index.to_numpy()]
        outcome_rows = _OUTCOMES_SCHEMA.coerce_dtype(outcomes.loc[keep].reset_index(drop=True))
    else:
        outcome_rows = empty_outcomes()
    return ChunkResult(
        shipments=accepted,
        outcomes=outcome_rows,
        # a rejected row lists what rejected it; its optional problems would only be blanked
        quarantine=quarantine_rows(
            problems[in_bad_row & problems["fatal"].to_numpy()], chunk, rows
        ),
        blanked=blanked_rows(kept_issues, rows),
        rows=n,
        rejected=int(bad.sum()),
        labelled=labelled,
    )


def _empty_frame(kinds: dict[str, Kind]) -> pd.DataFrame:
    return pd.DataFrame({name: empty_column(kind, 0) for name, kind in kinds.items()})


def empty_shipments(attributes: dict[str, AttributeSpec] | None = None) -> pd.DataFrame:
    """A valid shipments frame with no rows (the contract's column order and dtypes), followed
    by the ``attr.*`` columns of ``attributes`` (text or float)."""
    core = Shipments.validate(_empty_frame(SHIPMENT_KINDS))
    if not attributes:
        return core
    return pd.concat([core, attribute_frame(core.iloc[:, :0], attributes)], axis=1)


def empty_outcomes() -> pd.DataFrame:
    """A valid outcomes frame with no rows."""
    return Outcomes.validate(_empty_frame(OUTCOME_KINDS))
