"""API bodies of the scoring service, generated from the shipment/outcome contract.

The contract (:mod:`features.contracts`) is the one declaration of what a shipment and an
inspection outcome are. The pydantic models here are *built from* its pandera schemas: each
column becomes a field with the same type, nullability, pattern, length bound, allowed values
and range, so the API refuses exactly what the contract refuses and names the field. The two
frame-level rules of the contract (departure before arrival, clean results name no drug) run
as the contract's own rule functions on the assembled frame
(:func:`features.contracts.frame_rule_errors`).

Response bodies (score, reasons, shipment view) are declared here once and reused by the
service, the CLI and the worklist UI.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import pandas as pd
import pandera.pandas as pa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from features.contracts import (
    ATTRIBUTE_NAME,
    DECLARED_SHIPMENT_COLUMNS,
    IDENTIFIER_FIELDS,
    MAX_ATTRIBUTE_TEXT,
    MAX_ATTRIBUTES,
    MAX_IDENTIFIER,
    NAME_FIELDS,
    RECORDED_SHIPMENT_COLUMNS,
    SCHEMAS,
    column_kind,
    columns_frame,
    identifier_problem,
    normal_text,
    record_columns,
)


def _exclusive_bounds(prop: dict[str, Any]) -> None:
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = prop.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            prop[bound] = value
            prop[key] = True


def openapi30(schema: dict[str, Any], *_: Any) -> None:
    """Write the schema the OpenAPI 3.0 way, which BentoML's description declares: "may be
    null" as ``nullable: true`` (not ``anyOf [..., {type: null}]``) and exclusive bounds as
    booleans, so clients and fuzzers read the description correctly."""
    for prop in schema.get("properties", {}).values():
        _exclusive_bounds(prop)
        if prop.get("type") == "null":  # a field that may only be null (OpenAPI 3.0 has no null)
            del prop["type"]
            prop.update(nullable=True, enum=[None])
        options = prop.get("anyOf")
        if not options:
            continue
        for option in options:
            _exclusive_bounds(option)
        others = [o for o in options if o.get("type") != "null"]
        if len(others) == len(options):
            continue
        prop.pop("anyOf")
        if len(others) == 1:
            prop.update(others[0])
        else:
            prop["anyOf"] = others
        prop["nullable"] = True


_CONFIG = ConfigDict(
    extra="forbid",
    regex_engine="python-re",
    allow_inf_nan=False,
    json_schema_extra=openapi30,
)


_PYTHON_TYPES = {"datetime": dt.datetime, "int": int, "float": float, "str": str}


def _python_type(column: pa.Column) -> type:
    return _PYTHON_TYPES[column_kind(column)]


def _bound(value: Any) -> Any:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def field_spec(column: pa.Column) -> tuple[Any, Any]:
    """The pydantic (annotation, FieldInfo) of one contract column: same type, nullability,
    pattern, maximum length, allowed values and range as the pandera column."""
    base: Any = _python_type(column)
    kwargs: dict[str, Any] = {}
    for check in column.checks:
        stats = check.statistics or {}
        if check.name == "str_matches":
            kwargs["pattern"] = stats["pattern"]
        elif check.name == "str_length":
            if stats.get("max_value") is not None:
                kwargs["max_length"] = stats["max_value"]
            if stats.get("min_value") is not None:
                kwargs["min_length"] = stats["min_value"]
        elif check.name == "isin":
            base = Literal[tuple(stats["allowed_values"])]
        elif check.name == "greater_than_or_equal_to":
            kwargs["ge"] = _bound(stats["min_value"])
        elif check.name == "greater_than":
            kwargs["gt"] = _bound(stats["min_value"])
        elif check.name == "less_than_or_equal_to":
            kwargs["le"] = _bound(stats["max_value"])
        elif check.name == "less_than":
            kwargs["lt"] = _bound(stats["max_value"])
        else:  # pragma: no cover - a new kind of contract check must be mapped here
            raise TypeError(f"contract check {check.name!r} on {column.name} has no API mapping")
    if base is int:  # counts: integers only ("12", 12.0 and true are refused)
        kwargs["strict"] = True
    if column.nullable:
        return base | None, Field(default=None, **kwargs)
    return base, Field(..., **kwargs)


_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?",
    re.ASCII,
)


def _iso_text(value: Any) -> Any:
    """Timestamps come as ISO 8601 text only. A number, or text of digits ("1795899152"),
    is ambiguous (seconds? milliseconds? days?), and pydantic would read it as epoch
    seconds: refused."""
    if isinstance(value, str):
        if not _ISO_8601.fullmatch(value.strip()):
            raise ValueError(
                f"timestamps must be ISO 8601 text, e.g. 2026-03-01T08:00:00Z, not {value[:40]!r}"
            )
        return value
    if isinstance(value, dt.datetime):  # built in Python (the worklist, tests)
        return value
    raise ValueError("timestamps must be ISO 8601 text, e.g. 2026-03-01T08:00:00Z")


def _normaliser(identifiers: tuple[str, ...], names: tuple[str, ...]):
    """A model's before-validator normalising its identifier and name fields once, as ingest
    and the features do (:func:`features.contracts.normal_identifier` / ``normal_text``):
    "ＡＢＣ１" is "ABC1"; an identifier holding a control or format character (zero-width,
    bidi override, BOM, NEL) is refused, the error naming the field and the character. One
    call per record, not per field: ASCII text (nearly all of it) is only looked at."""

    def normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        errors = []
        for fields, is_id in ((identifiers, True), (names, False)):
            for name in fields:
                value = data.get(name)
                if value.__class__ is not str:
                    continue
                if is_id and len(value) > MAX_IDENTIFIER:  # say so, not the long pattern
                    problem: str | None = (
                        f"is {len(value)} characters long: identifiers have at most "
                        f"{MAX_IDENTIFIER}"
                    )
                elif value.isascii():
                    continue
                else:
                    problem = identifier_problem(value) if is_id else None
                if problem is not None:
                    errors.append(
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "identifier", "{problem}", {"problem": problem}
                            ),
                            loc=(name,),
                            input=value,
                        )
                    )
                    continue
                out = dict(data) if out is None else out
                out[name] = normal_text(value)
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data if out is None else out

    return normalise


def _not_bool(value: Any) -> Any:
    """A count or a measure is a number; JSON true/false is not (pydantic would take it
    as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true/false")
    return value


def _naive_utc(value: Any) -> Any:
    """The contract's timestamps are naive UTC; accept offsets and convert them."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


AttributeName = Annotated[str, StringConstraints(pattern=ATTRIBUTE_NAME)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_TEXT, pattern=r"^[^\x00-\x1f\x7f]*$")]
    | StrictInt
    | StrictFloat
    | None
)
ATTRIBUTES_FIELD: Any = (
    dict[AttributeName, AttributeValue] | None,
    Field(
        default=None,
        max_length=MAX_ATTRIBUTES,
        description=(
            "The customs service's own fields (customs office, import type, tax rate...), "
            "as the model was trained with them: a code as text, a number as a number. An "
            "attribute the model does not know is refused naming it; a missing one is missing."
        ),
    ),
)
"""A shipment's ``attributes`` object: names and value types are checked here, the names
and kinds against the model being served by the engine (:func:`shipment_attributes`)."""


def _model_from_contract(
    name: str,
    schema: pa.DataFrameSchema,
    doc: str,
    *,
    exclude: tuple[str, ...] = (),
    **extra: Any,
) -> type[BaseModel]:
    schema = schema.remove_columns(list(exclude)) if exclude else schema
    fields = {col_name: field_spec(col) for col_name, col in schema.columns.items()}
    fields.update(extra)
    identifier_fields = [n for n in IDENTIFIER_FIELDS if n in schema.columns]
    name_fields = [n for n in NAME_FIELDS if n in schema.columns]
    timestamp_fields = [n for n, c in schema.columns.items() if _python_type(c) is dt.datetime]
    number_fields = [n for n, c in schema.columns.items() if _python_type(c) in (int, float)]
    validators: dict[str, Any] = {}
    if identifier_fields or name_fields:
        validators["_normal_text"] = model_validator(mode="before")(
            _normaliser(tuple(identifier_fields), tuple(name_fields))
        )
    if number_fields:
        validators["_number"] = field_validator(*number_fields, mode="before")(
            lambda cls, v: _not_bool(v)
        )
    if timestamp_fields:
        validators["_iso"] = field_validator(*timestamp_fields, mode="before")(
            lambda cls, v: v if v is None else _iso_text(v)
        )
        validators["_utc"] = field_validator(*timestamp_fields, mode="after")(
            lambda cls, v: _naive_utc(v)
        )
    # fields and validators are built from the contract at run time: beyond the stubs' overloads
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        name, __config__=_CONFIG, __doc__=doc, __validators__=validators, **fields
    )
    return model


SHIPMENTS_SCHEMA = SCHEMAS["shipments"]
OUTCOMES_SCHEMA = SCHEMAS["outcomes"]

ShipmentIn = _model_from_contract(
    "Shipment",
    SHIPMENTS_SCHEMA,
    "One consignment as declared (bill of lading, air waybill or express parcel): parties, "
    "route, goods and transport references. Fields and rules are those of the shipments "
    "contract; `attributes` carries the customs service's own fields. Declaring a "
    "shipment_id again is an amendment: every version is kept and the latest is in force.",
    exclude=RECORDED_SHIPMENT_COLUMNS,
    attributes=ATTRIBUTES_FIELD,
    amendments_after_score=(
        None,
        Field(
            default=None,
            description="Counted by the service (amendments of substance after a first score): "
            "absent or null, so that a contract record can be sent as it is.",
        ),
    ),
)


class CorrectionIn(BaseModel):
    """Why a report replaces the one already in force for the same inspection."""

    model_config = _CONFIG
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=3, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$"
        ),
    ] = Field(description="Why the earlier report was wrong (kept with both reports).")


CORRECTION_FIELD: Any = (
    CorrectionIn | None,
    Field(
        default=None,
        description=(
            "Set only to correct a report already recorded for the same inspection "
            "(shipment_id, inspected_at) with another result: an officer's correction, with "
            "the reason. Without it, a report that differs from the one on record is refused "
            "with 409 naming that report; an identical re-send is accepted and changes nothing."
        ),
    ),
)
"""An outcome's ``correction`` object: not a contract column (a frame of outcomes holds the
reports in force; corrections live in the store's report history)."""

OutcomeIn = _model_from_contract(
    "Outcome",
    OUTCOMES_SCHEMA,
    "One inspection and what it found; result_at is when the result became known. A second, "
    "different report of the same inspection is a correction (see `correction`).",
    correction=CORRECTION_FIELD,
)


def shipments_frame(shipments: list[BaseModel]) -> pd.DataFrame:
    """Validated API shipments as a contract frame (contract column order and dtypes; the
    columns the store records, such as ``amendments_after_score``, blank)."""
    return columns_frame("shipments", declared_columns([s.model_dump() for s in shipments]))


def declared_columns(records: list[dict[str, Any]]) -> dict[str, list]:
    """Validated shipment records (``model_dump()``) as one list per contract column: the
    declared ones from the records, the recorded ones (``amendments_after_score``) blank."""
    columns = record_columns(records, DECLARED_SHIPMENT_COLUMNS)
    for name in RECORDED_SHIPMENT_COLUMNS:
        columns[name] = [None] * len(records)
    return columns


def outcomes_frame(outcomes: list[BaseModel]) -> pd.DataFrame:
    """Validated API outcomes as a contract frame (their ``correction`` is not a column: see
    :func:`correction_reasons`)."""
    return columns_frame("outcomes", [o.model_dump(exclude={"correction"}) for o in outcomes])


def correction_reasons(outcomes: list[BaseModel]) -> list[str | None]:
    """The correction reason of each validated outcome (None: not declared a correction)."""
    corrections = [getattr(o, "correction", None) for o in outcomes]
    return [None if c is None else c.reason for c in corrections]


# -- responses --------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(json_schema_extra=openapi30)


class Reason(_Response):
    """One feature's contribution to a score, in words an officer can act on."""

    feature: str = Field(description="Feature name in the catalog.")
    text: str = Field(description="Officer-readable sentence from the feature catalog.")
    value: float | str | None = Field(description="The feature's value for this shipment.")
    contribution: float = Field(description="SHAP contribution in log-odds (exact TreeSHAP).")
    direction: Literal["raises", "lowers"] = Field(description="Effect on the risk.")


class WatchlistHit(_Response):
    """A watchlist entry in force that a shipment touches: shown to officers, never a model
    feature (docs/ui.md, "Watchlists")."""

    kind: str = Field(description="What is watched: consignee, phone, container...")
    value: str = Field(description="The watched value as the officer wrote it.")
    reason: str = Field(description="Why an officer put it on the watchlist.")
    expires_at: dt.datetime
    added_by: str


class ScoreResult(_Response):
    """The risk score of one shipment and why."""

    shipment_id: str
    score: float = Field(description="Calibrated probability that an inspection would seize.")
    raw_score: float = Field(description="Model log-odds; base_value + contributions = raw.")
    base_value: float | None = Field(
        default=None, description="Expected log-odds over the training data (explained rows)."
    )
    percentile: float = Field(
        description="Share (0-100) of recent traffic scored by this model at or below this score."
    )
    band: Literal["high", "medium", "low"] = Field(
        description="Risk band from thresholds tied to the inspection capacity."
    )
    rank: int | None = Field(default=None, description="1 = riskiest in this manifest.")
    shipment_version: int | None = Field(
        default=None,
        description="Version of the declaration scored: 1 as first declared; a shipment_id "
        "declared again with other content is an amendment, the next version.",
    )
    model_name: str
    model_version: str
    reasons: list[Reason] | None = Field(
        default=None, description="Largest contributions; absent below the explained share."
    )
    watchlist: list[WatchlistHit] | None = Field(
        default=None,
        description="Watchlist entries in force this shipment touches (by a party, "
        "identifier or reference); not part of the score.",
    )
    contributions: dict[str, float] | None = Field(
        default=None, description="Every feature's contribution, when asked for."
    )


class ScoreResponse(ScoreResult):
    request_id: str = Field(description="Audit reference of this scoring request.")


class BatchResponse(_Response):
    request_id: str
    model_name: str
    model_version: str
    count: int
    explained: int = Field(description="How many of the top-ranked shipments carry reasons.")
    results: list[ScoreResult] = Field(description="Sorted by risk, riskiest first.")


class OutcomesAck(_Response):
    request_id: str
    accepted: int = Field(
        description="Outcomes accepted: new reports, corrections and identical re-sends."
    )
    recorded: int = Field(
        default=0, description="New reports stored (corrections included) and applied."
    )
    corrections: int = Field(default=0, description="Of those, corrections of a report.")
    unchanged: int = Field(
        default=0, description="Identical re-sends of a report on record: nothing stored."
    )


class OutcomeReport(_Response):
    """One report of an inspection as the store keeps it: the outcome's fields, which report
    of that inspection it is (1 = the first; higher = a correction), who sent it and when."""

    shipment_id: str
    inspected_at: dt.datetime
    result_at: dt.datetime
    result: str
    drug: str | None
    quantity_kg: float | None
    method: str
    selected_by: str
    revision: int
    received_at: dt.datetime
    caller: str
    request_id: str | None = None
    correction_reason: str | None = None
    in_force: bool = True


class DeclarationVersion(_Response):
    """One version of a declaration: who sent it, when, and which fields it changed."""

    version: int
    received_at: dt.datetime
    caller: str
    request_id: str | None = None
    changed: list[str] = Field(description="Fields that differ from the version before.")
    amendments_after_score: int | None = Field(
        default=None,
        description="Amendments of parties, goods, route or weight after a first score, "
        "counted up to this version.",
    )


class ScoreRecord(_Response):
    request_id: str
    scored_at: dt.datetime
    caller: str
    model_version: str
    shipment_version: int | None = None
    score: float
    percentile: float | None
    band: str
    reasons: list[Reason] | None


class SearchResult(_Response):
    """One value found by ``GET /search``."""

    kind: str = Field(description="shipment, container, consignee, phone, address...")
    value: str = Field(description="As first written in a declaration.")
    key: str = Field(description="As the index keeps it (normalised); the party page's id.")
    match: Literal["exact", "prefix", "similar"]
    similarity: float = Field(description="Trigram similarity for similar names, else 1 or 0.")
    shipments: int = Field(description="Shipments carrying it (any version of a declaration).")
    shipment_id: str | None = Field(description="One of them (the only one when shipments=1).")


class SearchResponse(_Response):
    query: str
    offset: int
    limit: int
    more: bool = Field(description="More results follow: ask again with offset + limit.")
    results: list[SearchResult]


_WATCH_TEXT = r"^[^\x00-\x1f\x7f]*$"


def _expiry_utc(value: dt.datetime) -> dt.datetime:
    try:
        return _naive_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC time
        raise ValueError("a date between 1990 and 2099") from None


_Expiry = Annotated[dt.datetime, AfterValidator(_expiry_utc)]
"""When an entry lapses: UTC (an offset is converted; a date alone is its midnight)."""


class WatchAdd(BaseModel):
    """``POST /watchlist``: flag a party or identifier."""

    model_config = _CONFIG
    kind: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="What is watched: a kind of the search (consignee, phone, container...); "
        "the store names the kinds when given another."
    )
    value: Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=_WATCH_TEXT)] = (
        Field(description="As written; normalised as the search index keys its kind.")
    )
    reason: Annotated[str, StringConstraints(max_length=600, pattern=_WATCH_TEXT)] = Field(
        description="Why (kept with the entry and audited)."
    )
    expires_at: _Expiry = Field(description="When the entry lapses (UTC, in the future).")


class WatchChange(BaseModel):
    """``POST /watchlist/{entry}``: change an entry's reason and expiry, or remove it."""

    model_config = _CONFIG
    action: Literal["change", "remove"]
    reason: Annotated[str, StringConstraints(max_length=600, pattern=_WATCH_TEXT)] = Field(
        description="Why it is changed or removed (kept with the entry and audited)."
    )
    expires_at: _Expiry | None = Field(default=None, description="The new expiry (change).")


class WatchEvent(_Response):
    action: Literal["added", "changed", "removed"]
    at: dt.datetime
    caller: str
    reason: str
    expires_at: dt.datetime


class WatchEntryView(_Response):
    """A watchlist entry as it stands, with its history (oldest first)."""

    entry: str
    kind: str
    key: str = Field(description="As the index keeps it (normalised); the party page's id.")
    value: str = Field(description="As the officer wrote it.")
    reason: str
    expires_at: dt.datetime
    added_by: str
    added_at: dt.datetime
    in_force: bool
    history: list[WatchEvent]


class WatchlistResponse(_Response):
    entries: list[WatchEntryView]


class ShipmentView(_Response):
    """What the service knows about one shipment: declaration, latest score, inspections."""

    shipment: dict[str, Any]
    latest_score: ScoreRecord | None
    outcomes: list[dict[str, Any]] = Field(
        description="The report in force of each inspection, by inspection time."
    )
    reports: list[OutcomeReport] = Field(
        default_factory=list,
        description="Every report of its inspections: first reports and corrections (with "
        "reason, author and time), including those a correction replaced.",
    )
    versions: list[DeclarationVersion] = Field(
        default_factory=list,
        description="Every version of the declaration, oldest first; the last is in force.",
    )


class ReloadResponse(_Response):
    reloaded: bool
    model_name: str
    model_version: str | None
    previous_version: str | None
    message: str
    shadow_version: str | None = Field(
        default=None,
        description="The shadow challenger loaded (alias shadow_alias), or null when none.",
    )
    shadow_message: str | None = Field(
        default=None, description="What the challenger's reload did, or why there is none."
    )


class ErrorDetail(_Response):
    loc: list[str | int]
    msg: str


class ErrorBody(_Response):
    error: str
    detail: list[ErrorDetail] = Field(default_factory=list)


class ConflictBody(_Response):
    """409: a report that differs from the one on record for the same inspection, sent
    without ``correction``; ``existing`` is the report in force."""

    error: str
    detail: list[ErrorDetail] = Field(default_factory=list)
    existing: list[OutcomeReport] = Field(default_factory=list)
