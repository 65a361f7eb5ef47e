"""Turning a customs export in its own column names into contract rows, one chunk at a time.

A customs service never sends data in our column names: a Korean import-declaration export calls
the declaration number ``DECL_NO``, codes the transport mode as ``10``/``40``/``50``, writes dates
as ``25/11/2026`` and weights in tonnes. A **mapping** (YAML, validated by :class:`Mapping`) says,
for each contract field, where its value comes from and how to read it: a source column, the
first non-blank of several (``coalesce``), a constant, a derivation from other columns
(``when``), a ``default`` for blanks; and it declares the service's own extra columns as
**attributes** and what a positive label means. :func:`ingest_chunk` applies the mapping to one
chunk of source rows and splits it into

* valid ``shipments`` rows (checked by the contract in :mod:`features.contracts`), followed by
  one ``attr.<name>`` column per attribute,
* valid ``outcomes`` rows, when the chunk holds the mapping's **label column** (an inspection
  result per declaration, e.g. a seizure flag) - the same mapping reads unlabelled files,
* **quarantine** rows: only what cannot be scored - no id, no readable declaration time or
  mode, a code missing from a value map that says ``unmapped: reject``, a repeated id - one row
  per failing (source row, field) with a readable reason and the source row's own values,
* **blanked** rows: an optional field whose value cannot be read or breaks the contract is left
  blank (the shipment is kept and scored) and reported here; an inspection outcome that breaks
  the contract is not written and reported the same way. Nothing is changed silently.

Odd but real values (0 kg, bulk cargo above 1,000 t, a declared value of 0) are accepted as they
are: the contract accepts them and features flag them. The rules themselves live only in the
contract; this module reads pandera's failure report and turns its check names into sentences.

Everything here is pure (frames in, new frames out); reading files and writing Parquet is the
job of :mod:`cargorisk.ingestion`.
"""

from __future__ import annotations

import ast
import copy
import difflib
import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from features.contracts import (
    ATTRIBUTE_NAME,
    IDENTIFIER_FIELDS,
    IDENTIFIER_PATTERN,
    MAX_ATTRIBUTES,
    NAME_FIELDS,
    OUTCOME_COLUMNS,
    OUTCOME_KINDS,
    REQUIRED_OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    SHIPMENT_KINDS,
    AttributeSpec,
    DatasetInfo,
    Kind,
    LabelMeaning,
    Outcomes,
    Shipments,
    attribute_column,
    attribute_frame,
    check_attribute_value,
    identifier_problem,
    normal_text,
)
from features.errors import CargoriskError, ContractError

UNITS_TO_KG: Final = {"kg": 1.0, "t": 1000.0, "g": 0.001, "lb": 0.45359237}
"""Weight units a source may use for ``*_kg`` fields, with their size in kilograms."""

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
VALUE_MAP_MISS: Final = "value is not in the mapping's value map"

_MAX_SHOWN: Final = 200
_TIME_OF_DAY: Final = re.compile(r"%[HMSIpXcTfzZ]")
"""strptime directives that carry a time of day: a format without any reads calendar days."""
_ISO_DAY: Final = r"\d{4}-\d{2}-\d{2}"
"""An ISO 8601 value that is only a date (no time of day): a calendar day."""

_REQUIRED_SHIPMENT: Final = frozenset(REQUIRED_SHIPMENT_COLUMNS)
_REQUIRED_OUTCOME: Final = tuple(n for n in REQUIRED_OUTCOME_COLUMNS if n != "shipment_id")
_SHIPMENTS_SCHEMA: Final = Shipments.to_schema()
_OUTCOMES_SCHEMA: Final = Outcomes.to_schema()
_UNIQUE_SHIPMENT: Final = tuple(n for n, c in _SHIPMENTS_SCHEMA.columns.items() if c.unique)
_ATTRIBUTE_NAME_RE: Final = re.compile(ATTRIBUTE_NAME)


# --------------------------------------------------------------------------------------------
# The mapping file
# --------------------------------------------------------------------------------------------
def _yaml_text(value: Any, what: str) -> str:
    """A YAML scalar meant as source text (a code such as ``10`` or ``Y``) as a string."""
    if isinstance(value, bool):  # YAML 1.1 turns bare yes/no/true/false into booleans
        raise ValueError(
            f"{what} {value!r} was read by YAML as a boolean; quote it (e.g. 'Y', 'yes')"
        )
    return str(value)


class WhenRule(BaseModel):
    """One derivation: where a condition on a source column holds, the field takes ``value``.

    Conditions, each on one source column: ``present`` (the cell is not blank), ``absent`` (the
    cell is blank, or the file has no such column) and ``equals: {COLUMN: TEXT}`` (the trimmed
    cell reads exactly TEXT). ``value`` is already a contract value (``express``, a number):
    value maps, units and ``upper`` do not apply to it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    present: str | None = None
    absent: str | None = None
    equals: dict[str, str] | None = None
    value: str | int | float

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "value" in data and data["value"] is None:
            raise ValueError("'value' cannot be null (rows no rule matches are read as usual)")
        if "value" in data:
            _yaml_text(data["value"], "'value'")  # a bare yes/no is a YAML boolean: refuse it
        if isinstance(data.get("equals"), dict):
            data = {
                **data,
                "equals": {
                    str(k): _yaml_text(v, "'equals' text") for k, v in data["equals"].items()
                },
            }
        return data

    @model_validator(mode="after")
    def _one_condition(self) -> WhenRule:
        given = [n for n in ("present", "absent", "equals") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one condition: 'present', 'absent' or 'equals' "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.equals is not None and len(self.equals) != 1:
            raise ValueError("'equals' names exactly one column: {COLUMN: TEXT}")
        return self

    @property
    def column(self) -> str:
        """The source column the condition reads."""
        if self.equals is not None:
            return next(iter(self.equals))
        return self.present if self.present is not None else str(self.absent)

    def holds(self, text: pd.Series) -> np.ndarray:
        """Where the condition holds, given the column's cells as trimmed text (blank = NA)."""
        if self.present is not None:
            return text.notna().to_numpy()
        if self.absent is not None:
            return text.isna().to_numpy()
        assert self.equals is not None
        return (text == next(iter(self.equals.values()))).fillna(False).to_numpy(dtype=bool)


class _ValueSpec(BaseModel):
    """Where one value comes from and how to read it; shared by contract fields and attributes.

    Exactly one source: ``column``, ``coalesce`` (the first non-blank of several columns) or
    ``constant``; or only ``when`` rules. ``when`` rules come first (first match wins), then the
    source value, then ``default`` for what is still blank.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    _SOURCES: ClassVar[tuple[str, ...]] = ("column", "coalesce", "constant")

    column: str | None = None
    coalesce: list[str] | None = Field(
        default=None, min_length=1, description="Source columns; the first non-blank one wins."
    )
    constant: str | int | float | bool | None = None
    when: list[WhenRule] = Field(
        default_factory=list, description="Derivations from other columns; first match wins."
    )
    default: str | int | float | None = Field(
        default=None, description="Contract value for rows whose value is blank."
    )
    values: dict[str, str | None] | None = Field(
        default=None,
        description="Value map: source value -> contract value (null = empty). Applied first.",
    )
    unmapped: Literal["reject", "keep"] = Field(
        default="reject",
        description="What a source value missing from `values` does: reject the row or pass as is.",
    )
    upper: bool = Field(default=False, description="Upper-case the text (country/port codes).")
    scale: float | None = Field(
        default=None, description="Multiply the source number by this (any numeric field)."
    )
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
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("values"), dict):
            # YAML reads `10: sea` with an integer key; source values are always text.
            data = {
                **data,
                "values": {
                    _yaml_text(k, "value-map key"): (None if v is None else str(v))
                    for k, v in data["values"].items()
                },
            }
        if isinstance(data.get("coalesce"), list):
            data = {**data, "coalesce": [str(c) for c in data["coalesce"]]}
        if data.get("default") is not None:
            _yaml_text(data["default"], "'default'")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> _ValueSpec:
        given = [
            n
            for n in self._SOURCES
            if getattr(self, n) is not None or (n == "constant" and n in self.model_fields_set)
        ]
        options = ", ".join(f"'{n}'" for n in self._SOURCES[:-1]) + f" or '{self._SOURCES[-1]}'"
        if len(given) > 1 or (not given and not self.when):
            raise ValueError(
                f"give exactly one of {options}, or derive the field with 'when' "
                f"(got {', '.join(given) or 'none'})"
            )
        if given and given[0] not in ("column", "coalesce"):
            if self.when:
                raise ValueError(
                    f"'when' goes with 'column', 'coalesce' or neither, not '{given[0]}'"
                )
            if self.default is not None:
                raise ValueError(
                    f"'default' fills blanks of 'column', 'coalesce' or 'when', not '{given[0]}'"
                )
        return self

    @property
    def source(self) -> Literal["column", "coalesce", "constant", "delay", "when"]:
        """Where the value comes from (``when``: only from derivations and the default)."""
        if self.column is not None:
            return "column"
        if self.coalesce is not None:
            return "coalesce"
        if getattr(self, "days_after_declared", None) is not None:
            return "delay"
        if "constant" in self.model_fields_set:
            return "constant"
        return "when"

    @property
    def optional_columns(self) -> tuple[str, ...]:
        """Columns read only by ``coalesce`` or ``when``: a file without one reads it as blank."""
        return tuple(dict.fromkeys([*(self.coalesce or ()), *(r.column for r in self.when)]))


class FieldMap(_ValueSpec):
    """Where one contract field comes from, and how to read it.

    Besides the shared options (:class:`_ValueSpec`), a timestamp may come from
    ``days_after_declared`` (the declaration date plus a stated delay, e.g. when the source has
    no inspection date) and is read with ``date_format`` and ``timezone``; a weight may state its
    ``unit``. A plain string in the YAML is shorthand for ``{column: <string>}``.
    """

    _SOURCES: ClassVar[tuple[str, ...]] = ("column", "coalesce", "constant", "days_after_declared")

    days_after_declared: float | None = None
    date_format: str | None = Field(
        default=None, description="strptime format, e.g. '%d/%m/%Y'; default ISO 8601."
    )
    timezone: str | None = Field(
        default=None,
        description="Time zone of naive source times of day (e.g. 'Asia/Seoul'); stored in UTC. "
        "Dates without a time of day are calendar days and are not shifted.",
    )
    unit: Literal["kg", "t", "g", "lb"] | None = Field(
        default=None, description="Weight unit of the source, for *_kg fields."
    )

    @model_validator(mode="after")
    def _unit_or_scale(self) -> FieldMap:
        if self.unit is not None and self.scale is not None:
            raise ValueError("give 'unit' or 'scale', not both")
        return self


class AttributeMap(_ValueSpec):
    """One attribute of the source (a customs service's own field): where its value comes from
    (the shared options of :class:`_ValueSpec`), its ``kind`` and how an officer reads it."""

    kind: Literal["categorical", "numeric"]
    # the contract's own fields (same bounds), reused rather than re-declared
    label: str | None = AttributeSpec.model_fields["label"]  # type: ignore[assignment]
    description: str | None = AttributeSpec.model_fields["description"]  # type: ignore[assignment]

    @property
    def spec(self) -> AttributeSpec:
        """The attribute as the contract records it (``dataset.json``, the model)."""
        return AttributeSpec(kind=self.kind, label=self.label, description=self.description)


class OutcomeMap(BaseModel):
    """How a label column becomes ``outcomes`` rows (one per inspected declaration).

    ``result`` must read the label column; its value map turns the source's flag into
    ``seized``/``clean`` and maps "not inspected" markers to null (no outcome row). Where the
    source has no inspection or result dates, set them with ``days_after_declared``. The
    section applies only to files that hold the label column.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: dict[str, FieldMap]

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        return {"fields": data} if isinstance(data, dict) and "fields" not in data else data


def _coercing(column: Any) -> Any:
    """A contract column as a schema that coerces one value before checking it."""
    column = copy.deepcopy(column)
    column.coerce = True
    return column


_COERCING: Final = {
    section: {name: _coercing(column) for name, column in schema.columns.items()}
    for section, schema in (("shipments", _SHIPMENTS_SCHEMA), ("outcomes", _OUTCOMES_SCHEMA))
}
"""Each contract column, checking a value written in a mapping (a default, a rule's value)."""


def _contract_problem(section: str, name: str, kind: str, value: Any) -> str | None:
    """Why a value written in the mapping (a ``when`` value, a ``default``, a value-map target)
    breaks the contract field it is meant for; None when it does not."""
    if kind in ("int", "float"):
        if isinstance(value, str):
            return f"must be a number, got {value!r}"
        if kind == "int" and float(value) % 1:
            return f"must be a whole number, got {value!r}"
    else:
        value = str(value)
    try:
        _COERCING[section][name].validate(pd.DataFrame({name: [value]}), lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return f"{value!r} {_reason(str(exc.failure_cases['check'].iloc[0]))}"
    except pandera.errors.SchemaError as exc:
        return f"{value!r} {_reason(str(exc.check))}"
    return None


def _check_field(section: str, name: str, spec: FieldMap, kinds: dict[str, Kind]) -> None:
    """Refuse options that do not fit a contract field's kind, and mapping values (``when``,
    ``default``, value-map targets) the contract would refuse; errors name the option."""
    if name not in kinds:
        close = difflib.get_close_matches(name, list(kinds), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"{section}: '{name}' is not a field of the {section} contract{hint}")
    kind = kinds[name]
    where = f"{section}.{name}"
    if (spec.date_format or spec.timezone or spec.days_after_declared is not None) and (
        kind != "datetime"
    ):
        raise ValueError(
            f"{where}: date_format/timezone/days_after_declared apply to timestamps only"
        )
    if kind == "datetime" and (spec.when or spec.default is not None):
        raise ValueError(
            f"{where}: 'when' and 'default' do not apply to timestamps (an invented time would "
            "move the row in time)"
        )
    if spec.unit is not None and not name.endswith("_kg"):
        raise ValueError(f"{where}: 'unit' applies to weights in kg only; use 'scale'")
    numeric_only = spec.scale is not None or spec.thousands or spec.decimal != "."
    if numeric_only and kind not in ("int", "float"):
        raise ValueError(f"{where}: scale/thousands/decimal apply to numeric fields only")
    for i, rule in enumerate(spec.when):
        problem = _contract_problem(section, name, kind, rule.value)
        if problem:
            raise ValueError(f"{where}.when[{i}].value: {problem}")
    if spec.default is not None:
        problem = _contract_problem(section, name, kind, spec.default)
        if problem:
            raise ValueError(f"{where}.default: {problem}")
    if kind == "str" and spec.values:
        for key, target in spec.values.items():
            if target is None:
                continue
            problem = _contract_problem(
                section, name, kind, target.upper() if spec.upper else target
            )
            if problem:
                raise ValueError(f"{where}.values[{key!r}]: {problem}")


def _check_attribute(name: str, spec: AttributeMap) -> None:
    where = f"attributes.{name}"
    if not _ATTRIBUTE_NAME_RE.match(name):
        raise ValueError(
            f"{where}: an attribute name is lower-case letters, digits and _, starting with a "
            "letter, at most 48 characters (e.g. import_type)"
        )
    if name in SHIPMENT_KINDS:
        raise ValueError(f"{where}: '{name}' is a contract field; map it under 'shipments:'")
    if spec.kind == "categorical" and (
        spec.scale is not None or spec.thousands or spec.decimal != "."
    ):
        raise ValueError(f"{where}: scale/thousands/decimal apply to numeric attributes only")
    if spec.kind == "numeric" and spec.upper:
        raise ValueError(f"{where}: 'upper' applies to categorical attributes only")
    checks = [(f"when[{i}].value", r.value) for i, r in enumerate(spec.when)]
    if spec.default is not None:
        checks.append(("default", spec.default))
    for option, value in checks:
        if spec.kind == "numeric" and isinstance(value, str):
            raise ValueError(f"{where}.{option}: must be a number, got {value!r}")
        try:
            check_attribute_value(name, spec.spec, value)
        except ContractError as exc:
            raise ValueError(f"{where}.{option}: {str(exc).partition(': ')[2]}") from None


class Mapping(BaseModel):
    """A mapping file: source columns -> contract fields, for one source format.

    * ``label`` (optional): what a positive label means (:class:`LabelMeaning`); ``positive``
      defaults to "<name> finding". Without it, the contract's default (narcotics seizure).
    * ``shipments``: contract field -> :class:`FieldMap`; the contract's required fields
      (:data:`REQUIRED_SHIPMENT_COLUMNS`) must be mapped, every other one may be left out.
    * ``attributes``: attribute name -> :class:`AttributeMap`, the source's own extra fields.
    * ``currency_rates_usd``: USD per unit of each currency; when given and
      ``declared_value_usd`` is not mapped, it is ``declared_value`` × the rate of ``currency``.
    * ``null_values``: source strings meaning "empty" (besides the empty string), e.g. ``-``.
    * ``outcomes`` (optional): the label column and how to read inspections from it; applied
      only to files that hold the label column.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: LabelMeaning | None = None
    shipments: dict[str, FieldMap]
    attributes: dict[str, AttributeMap] = Field(default_factory=dict)
    currency_rates_usd: dict[str, PositiveFloat] = Field(default_factory=dict)
    null_values: list[str] = Field(default_factory=list)
    outcomes: OutcomeMap | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data.get("name"):
                raise ValueError("give 'name': what a positive label means (e.g. duty fraud)")
            if "positive" not in data:
                data = {**data, "positive": f"{data['name']} finding"}
        return data

    @field_validator("currency_rates_usd")
    @classmethod
    def _codes(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [c for c in rates if not re.fullmatch(r"[A-Z]{3}", str(c))]
        if bad:
            raise ValueError(f"currency codes must be 3 capital letters, got {bad}")
        return rates

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        for name, spec in self.shipments.items():
            _check_field("shipments", name, spec, SHIPMENT_KINDS)
        missing = [n for n in REQUIRED_SHIPMENT_COLUMNS if n not in self.shipments]
        if missing:
            raise ValueError(
                f"shipments: required field(s) {', '.join(missing)} not mapped (give a source "
                "column, 'coalesce', a constant or 'when' rules)"
            )
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise ValueError(f"attributes: at most {MAX_ATTRIBUTES}, got {len(self.attributes)}")
        for name, attribute in self.attributes.items():
            _check_attribute(name, attribute)
        if self.outcomes is not None:
            fields = self.outcomes.fields
            kinds = {k: v for k, v in OUTCOME_KINDS.items() if k != "shipment_id"}
            for name, spec in fields.items():
                _check_field("outcomes", name, spec, kinds)
            missing = [n for n in _REQUIRED_OUTCOME if n not in fields]
            if missing:
                raise ValueError(
                    f"outcomes: required outcome field(s) {', '.join(missing)} not mapped "
                    "(give a source column, a constant or days_after_declared)"
                )
            if fields["result"].column is None:
                raise ValueError("outcomes.result: must read the label column (give 'column')")
        return self

    # -- what the mapping reads ---------------------------------------------------------------
    def _shipment_specs(self) -> list[_ValueSpec]:
        return [*self.shipments.values(), *self.attributes.values()]

    @property
    def label_column(self) -> str | None:
        """The source column whose presence makes a file labelled (``outcomes.result``)."""
        return None if self.outcomes is None else self.outcomes.fields["result"].column

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns named by ``column`` in ``shipments`` and ``attributes``: a file without one
        cannot be ingested with this mapping."""
        return tuple(dict.fromkeys(s.column for s in self._shipment_specs() if s.column))

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every source column the mapping reads, in first-use order."""
        specs = self._shipment_specs()
        if self.outcomes is not None:
            specs += list(self.outcomes.fields.values())
        named = [c for s in specs for c in ((s.column,) if s.column else ()) + s.optional_columns]
        return tuple(dict.fromkeys(named))

    def is_labelled(self, header: Sequence[str]) -> bool:
        """Whether a file with these columns holds the label column (outcomes apply)."""
        return self.label_column is not None and self.label_column in header

    def missing_columns(self, header: Sequence[str]) -> list[str]:
        """Columns a file with this header lacks but must have: those named by ``column`` in
        ``shipments``/``attributes``, and in ``outcomes`` when the file is labelled."""
        needed = list(self.required_columns)
        if self.outcomes is not None and self.is_labelled(header):
            needed += [s.column for s in self.outcomes.fields.values() if s.column]
        return [c for c in dict.fromkeys(needed) if c not in header]

    def absent_columns(self, header: Sequence[str]) -> list[str]:
        """Columns named only in ``coalesce``/``when`` that a file lacks: read as blank."""
        specs = self._shipment_specs()
        if self.outcomes is not None and self.is_labelled(header):
            specs += list(self.outcomes.fields.values())
        named = dict.fromkeys(c for s in specs for c in s.optional_columns)
        return [c for c in named if c not in header]

    @property
    def dataset_info(self) -> DatasetInfo:
        """What travels with the ingested data (``dataset.json``) and every model trained on it."""
        return DatasetInfo(
            label=self.label or LabelMeaning(),
            attributes={name: spec.spec for name, spec in self.attributes.items()},
        )


class MappingError(CargoriskError):
    """A mapping file that cannot be read or does not describe a valid mapping."""


def _where(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the mapping file's path: ``shipments.mode.when[0]``."""
    out = ""
    for part in loc:
        if part == "fields":  # OutcomeMap's internal wrapper, not a key of the file
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_mapping(path: str | Path) -> Mapping:
    """Load and validate a mapping YAML; any problem is one :class:`MappingError` line naming
    the option, e.g. ``shipments.mode.when[0]: give exactly one condition ...``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"mapping {path}: cannot read ({exc.strerror})") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise MappingError(f"mapping {path}: not valid YAML ({first})") from exc
    try:
        return load_mapping(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "is not a known mapping option"
            problems.append(f"{where}: {message}" if where else message)
        raise MappingError(f"mapping {path}: " + "; ".join(problems)) from exc


def load_mapping(data: Any) -> Mapping:
    """Validate a parsed mapping document (raises ``pydantic.ValidationError``)."""
    return Mapping.model_validate(data)


# --------------------------------------------------------------------------------------------
# Applying a mapping to one chunk
# --------------------------------------------------------------------------------------------
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


class _Issues:
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


def _text(series: pd.Series, null_values: Sequence[str]) -> pd.Series:
    """Source values as trimmed text, with blanks and declared null markers as missing."""
    text = series.astype("str").str.strip()
    empty = text.isna() | (text == "")
    if null_values:
        empty |= text.isin(list(null_values))
    return text.mask(empty)


class _Cells:
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


def _read_field(
    field: str,
    kind: str,
    spec: _ValueSpec,
    cells: _Cells,
    declared_at: pd.Series | None,
    issues: _Issues,
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
    raw: pd.Series, spec: _ValueSpec, field: str, issues: _Issues, failed: np.ndarray
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
    spec: _ValueSpec,
    field: str,
    issues: _Issues,
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


def _scaled(number: pd.Series, spec: _ValueSpec) -> pd.Series:
    unit = getattr(spec, "unit", None)
    factor = UNITS_TO_KG[unit] if unit else spec.scale
    return number * factor if factor is not None else number


def _parse_time(
    value: pd.Series,
    raw: pd.Series,
    spec: _ValueSpec,
    field: str,
    issues: _Issues,
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
    spec: _ValueSpec,
    day_only: np.ndarray,
    field: str,
    issues: _Issues,
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


def _shipment_frame(cells: _Cells, mapping: Mapping, issues: _Issues) -> pd.DataFrame:
    kinds = SHIPMENT_KINDS
    columns: dict[str, pd.Series] = {}
    order = sorted(mapping.shipments, key=lambda n: n != "declared_at")  # delays need it first
    for name in order:
        columns[name] = _read_field(
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
            columns[name] = _identifiers(name, columns[name], issues)
    for name in NAME_FIELDS:
        if name in columns:
            columns[name] = _normal(columns[name], normal_text)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(cells.n))
    for name in SHIPMENT_COLUMNS:
        if name not in frame.columns:
            frame[name] = _empty(kinds[name], cells.n)
    return frame[list(SHIPMENT_COLUMNS)]


def _normal(values: pd.Series, normalise: Callable[[str], str]) -> pd.Series:
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


def _identifiers(name: str, values: pd.Series, issues: _Issues) -> pd.Series:
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
    return _normal(values, normal_text)


def _attribute_values(cells: _Cells, mapping: Mapping, issues: _Issues) -> pd.DataFrame:
    """The ``attr.*`` columns: read like fields, then judged by the contract's attribute rule
    (one check per distinct value); a value the contract refuses is blanked and reported."""
    columns: dict[str, pd.Series] = {}
    for name, spec in mapping.attributes.items():
        field = attribute_column(name)
        kind = "float" if spec.kind == "numeric" else "str"
        values = _read_field(field, kind, spec, cells, None, issues, required=False)
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


def _empty(kind: str, n: int) -> pd.Series:
    dtype = {"datetime": "datetime64[ns]", "int": "Int64", "float": "float64", "str": "str"}[kind]
    return pd.Series(np.nan, index=pd.RangeIndex(n), dtype=dtype)


def _outcome_frame(
    cells: _Cells,
    mapping: Mapping,
    shipment_id: pd.Series,
    declared_at: pd.Series | None,
    issues: _Issues,
) -> pd.DataFrame:
    """Outcome rows (index = chunk position) of the rows whose label says they were inspected.
    Problems go to ``issues`` under ``outcome.<field>``, only for those rows."""
    assert mapping.outcomes is not None
    found = _Issues()
    columns = {"shipment_id": shipment_id}
    for name, spec in mapping.outcomes.fields.items():
        columns[name] = _read_field(
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
            frame[name] = _empty(OUTCOME_KINDS[name], cells.n)
    problems = found.frame()
    label_failed = problems.loc[problems["field"] == f"{OUTCOME_PREFIX}result", "pos"]
    inspected = frame["result"].notna().to_numpy().copy()
    # only inspected rows have an outcome whose other fields matter; a bad label always does
    relevant = inspected[problems["pos"].to_numpy()] | problems["pos"].isin(label_failed).to_numpy()
    issues.extend(problems[relevant])
    inspected[label_failed.to_numpy()] = False
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


def _schema_failures(
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
            "reason": [_reason(c) for c in cell["check"]],
            "value": ["" if pd.isna(v) else str(v) for v in cell["failure_case"]],
        }
    )
    return pd.concat([cell_level, row_level], ignore_index=True)


def _without_parsed(found: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
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


def _fatal_field(field: str) -> bool:
    """A contract failure of a required field (or of the row as a whole) rejects the row."""
    return field == ROW_FIELD or any(f in _REQUIRED_SHIPMENT for f in field.split(", "))


def _shown(value: pd.Series) -> pd.Series:
    value = value.astype("str")
    long = value.str.len() > _MAX_SHOWN
    return value.where(~long, value.str.slice(0, _MAX_SHOWN) + "…")


def _quarantine(issues: pd.DataFrame, chunk: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
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


def _blanked(issues: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
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


def _outcome_failures(
    outcomes: pd.DataFrame, declared_at: pd.Series, read: pd.DataFrame
) -> pd.DataFrame:
    """The outcomes contract's failures (never fatal: the outcome is left out, the shipment is
    still scored), under ``outcome.<field>``."""
    if outcomes.empty:
        return _no_issues()
    found = _schema_failures(Outcomes, outcomes.reset_index(drop=True), list(OUTCOME_COLUMNS))
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
    return _without_parsed(found, read).assign(fatal=False)


def _repeats(shipments: pd.DataFrame, bad: np.ndarray, seen_ids: AbstractSet[str]) -> pd.DataFrame:
    """Rows repeating a unique field (the contract's ``unique`` flag: ``shipment_id``) of an
    accepted row, earlier in the chunk or in ``seen_ids``: the first accepted occurrence wins."""
    found = _Issues()
    for name in _UNIQUE_SHIPMENT:
        ids = shipments[name]
        repeat = ids.notna() & ~pd.Series(bad) & ids.where(~bad).duplicated(keep="first")
        earlier = np.fromiter(
            map(seen_ids.__contains__, ids.to_numpy(dtype=object)), dtype=bool, count=len(ids)
        )
        dup = (repeat.to_numpy() | earlier) & ids.notna().to_numpy() & ~bad
        found.add(dup, name, "repeats an earlier accepted row (first one kept)", ids, fatal=True)
    return found.frame()


def _blank(shipments: pd.DataFrame, issues: pd.DataFrame) -> pd.DataFrame:
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
    cells = _Cells(chunk, mapping.null_values)
    issues = _Issues()
    shipments = _shipment_frame(cells, mapping, issues)
    attributes = _attribute_values(cells, mapping, issues)
    read = issues.frame()
    contract = _without_parsed(_schema_failures(Shipments, shipments, list(SHIPMENT_COLUMNS)), read)
    issues.extend(contract.assign(fatal=contract["field"].map(_fatal_field).astype("bool")))

    outcomes = None
    if labelled:
        declared_at = shipments["declared_at"]
        outcomes = _outcome_frame(cells, mapping, shipments["shipment_id"], declared_at, issues)
        issues.extend(_outcome_failures(outcomes, declared_at, issues.frame()))

    problems = issues.frame()
    bad = np.zeros(n, dtype=bool)
    bad[problems.loc[problems["fatal"], "pos"].to_numpy()] = True
    repeats = _repeats(shipments, bad, seen_ids)
    problems = pd.concat([problems, repeats], ignore_index=True)
    bad[repeats["pos"].to_numpy()] = True

    in_bad_row = bad[problems["pos"].to_numpy()]
    kept_issues = problems[~in_bad_row]
    good = ~bad
    shipments = _blank(shipments, kept_issues)
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
        quarantine=_quarantine(problems[in_bad_row & problems["fatal"].to_numpy()], chunk, rows),
        blanked=_blanked(kept_issues, rows),
        rows=n,
        rejected=int(bad.sum()),
        labelled=labelled,
    )


def _empty_frame(kinds: dict[str, Kind]) -> pd.DataFrame:
    return pd.DataFrame({name: _empty(kind, 0) for name, kind in kinds.items()})


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


def reason_counts(issues: pd.DataFrame) -> pd.Series:
    """How many source rows failed (quarantine) or were blanked (blanked) for each
    ``field: reason`` (a row may count under several)."""
    if issues.empty:
        return pd.Series(dtype="int64")
    keys = issues["field"].astype("str") + ": " + issues["reason"].astype("str")
    per_row = pd.DataFrame({"key": keys, "row": issues["source_row"]}).drop_duplicates()
    return per_row["key"].value_counts()
