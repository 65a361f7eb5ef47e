"""The mapping file: which source column (or derivation) each contract field comes from.

A mapping (YAML, validated by :class:`Mapping`) says, for each contract field, where its
value comes from and how to read it: a source column, the first non-blank of several
(``coalesce``), a constant, a derivation from other columns (``when``), a ``default`` for
blanks; and it declares the service's own extra columns as **attributes** and what a positive
label means. Values written in the mapping itself are checked against the contract when it
is read; :func:`read_mapping` turns every problem into one line naming the option.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd
import pandera.errors
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
    MAX_ATTRIBUTES,
    OUTCOME_KINDS,
    REQUIRED_OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_KINDS,
    AttributeSpec,
    DatasetInfo,
    Kind,
    LabelMeaning,
    Outcomes,
    Shipments,
    check_attribute_value,
)
from features.errors import CargoriskError, ContractError
from features.ingest.issues import check_reason

_REQUIRED_OUTCOME: Final = tuple(n for n in REQUIRED_OUTCOME_COLUMNS if n != "shipment_id")
_SHIPMENTS_SCHEMA: Final = Shipments.to_schema()
_OUTCOMES_SCHEMA: Final = Outcomes.to_schema()
_ATTRIBUTE_NAME_RE: Final = re.compile(ATTRIBUTE_NAME)


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


class ValueSpec(BaseModel):
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
    def _one_source(self) -> ValueSpec:
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


class FieldMap(ValueSpec):
    """Where one contract field comes from, and how to read it.

    Besides the shared options (:class:`ValueSpec`), a timestamp may come from
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


class AttributeMap(ValueSpec):
    """One attribute of the source (a customs service's own field): where its value comes from
    (the shared options of :class:`ValueSpec`), its ``kind`` and how an officer reads it."""

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
        return f"{value!r} {check_reason(str(exc.failure_cases['check'].iloc[0]))}"
    except pandera.errors.SchemaError as exc:
        return f"{value!r} {check_reason(str(exc.check))}"
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
    def _shipment_specs(self) -> list[ValueSpec]:
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
