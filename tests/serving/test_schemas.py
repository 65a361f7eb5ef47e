"""The API bodies are the contract: same fields, same rules, same verdicts."""

from __future__ import annotations

import datetime as dt
import typing

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from features.contracts import (
    DECLARED_SHIPMENT_COLUMNS,
    OUTCOME_COLUMNS,
    Outcomes,
    Shipments,
    frame_rule_errors,
    validate_outcomes,
    validate_shipments,
)
from serving.schemas import (
    OutcomeIn,
    ShipmentIn,
    outcomes_frame,
    shipments_frame,
)
from tests.serving.conftest import make_outcome, make_shipment


@pytest.mark.parametrize(
    ("model", "schema", "columns"),
    [(ShipmentIn, Shipments, DECLARED_SHIPMENT_COLUMNS), (OutcomeIn, Outcomes, OUTCOME_COLUMNS)],
)
def test_fields_agree_with_contract_one_by_one(model, schema, columns):
    # what the store records about a declaration (its amendment count) is not declared
    contract = {n: c for n, c in schema.to_schema().columns.items() if n in columns}
    # every contract field, in contract order; a shipment also carries its service's own
    # attributes (checked against the served model's schema, see test_attributes.py), an
    # outcome the reason when it corrects an earlier report (tests/security/test_corrections.py)
    extra = ("attributes", "amendments_after_score") if model is ShipmentIn else ("correction",)
    assert tuple(model.model_fields) == (*columns, *extra)
    for name, column in contract.items():
        field = model.model_fields[name]
        assert field.is_required() == (not column.nullable), name
        checks = {c.name: c.statistics for c in column.checks}
        meta = {type(m).__name__: m for m in field.metadata}
        if "str_matches" in checks:
            pattern = next(m.pattern for m in field.metadata if hasattr(m, "pattern"))
            assert pattern == checks["str_matches"]["pattern"], name
        if "isin" in checks:
            args = typing.get_args(field.annotation)
            literal = (
                next(a for a in args if typing.get_origin(a) is typing.Literal)
                if args and typing.get_origin(field.annotation) is not typing.Literal
                else field.annotation
            )
            assert set(typing.get_args(literal)) == set(checks["isin"]["allowed_values"]), name
        if "str_length" in checks:
            assert meta["MaxLen"].max_length == checks["str_length"]["max_value"], name
        for check, attr, cls in (
            ("greater_than_or_equal_to", "ge", "Ge"),
            ("less_than_or_equal_to", "le", "Le"),
            ("greater_than", "gt", "Gt"),
        ):
            if check in checks:
                bound = getattr(meta[cls], attr)
                key = "min_value" if check != "less_than_or_equal_to" else "max_value"
                assert (
                    pd.Timestamp(bound) == pd.Timestamp(checks[check][key])
                    if isinstance(bound, dt.datetime)
                    else bound == checks[check][key]
                ), name


def test_valid_shipment_frame_passes_the_contract_unchanged():
    frame = shipments_frame([ShipmentIn(**make_shipment(i)) for i in range(3)])
    validated = validate_shipments(frame)
    pd.testing.assert_frame_equal(frame, validated)
    outs = outcomes_frame([OutcomeIn(**make_outcome("S0000001", "seized"))])
    pd.testing.assert_frame_equal(outs, validate_outcomes(outs))


def test_offsets_are_converted_to_naive_utc():
    s = ShipmentIn(**make_shipment(1, declared_at="2026-03-01T10:00:00+02:00"))
    assert s.declared_at == dt.datetime(2026, 3, 1, 8, 0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mode": "truck"}, "mode"),
        ({"packages": -1}, "packages"),
        ({"packages": "many"}, "packages"),
        ({"gross_weight_kg": -1}, "gross_weight_kg"),
        ({"origin_country": "Ecuador"}, "origin_country"),
        ({"consignee_name": "x" * 1_000_000}, "consignee_name"),
        ({"shipper_id": "ab\x00cd"}, "shipper_id"),
        ({"goods_description": "bananas\x07"}, "goods_description"),
        ({"declared_at": "yesterday"}, "declared_at"),
        ({"declared_at": "1900-01-01T00:00:00"}, "declared_at"),
        # found by the fuzz test: outside pandas' nanosecond range it used to wrap to 2089
        # in the frame and crash the one-shipment path
        ({"booked_at": "0335-08-23T15:41:34.3+16:38"}, "booked_at"),
        ({"arrival_at": "9999-01-01T00:00:00"}, "arrival_at"),
        ({"container_type": "igloo"}, "container_type"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_fields_are_refused_by_name(overrides, field):
    with pytest.raises(ValidationError) as info:
        ShipmentIn(**make_shipment(1, **overrides))
    assert field in {str(loc) for e in info.value.errors() for loc in e["loc"]}


def test_missing_required_field_is_named():
    record = make_shipment(1)
    del record["mode"]
    with pytest.raises(ValidationError) as info:
        ShipmentIn(**record)
    assert info.value.errors()[0]["loc"] == ("mode",)
    del record["consignee_id"]  # optional: a blank party is information, not an error
    ShipmentIn(**{**record, "mode": "rail"})


def test_frame_rules_of_the_contract_name_the_shipment():
    bad = make_shipment(7, departed_at="2026-03-05T00:00:00", arrival_at="2026-03-04T00:00:00")
    frame = shipments_frame([ShipmentIn(**bad), ShipmentIn(**make_shipment(8))])
    errors = frame_rule_errors("shipments", frame)
    assert errors == ["shipment S0000007: departed_at must not be after arrival_at"]


_values = st.one_of(
    st.none(),
    st.integers(-10, 2_000_000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e11, max_value=1e11),
    st.text(max_size=12),
    st.sampled_from(
        ["sea", "reefer", "EC", "NLRTM", "0803", "+31 10 555", "prepaid", "ABCD1234567"]
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from([c for c in DECLARED_SHIPMENT_COLUMNS if not c.endswith("_at")]),
    value=_values,
)
def test_api_and_contract_give_the_same_verdict(field, value):
    """Change one field to an arbitrary value: the API accepts it iff the contract does.
    (Timestamps are covered by the explicit cases above: the API wants ISO 8601 text.)"""
    record = make_shipment(3, **{field: value})
    try:
        frame = shipments_frame([ShipmentIn(**record)])
        api_ok = not frame_rule_errors("shipments", frame)
    except (ValidationError, ValueError, TypeError):
        api_ok = False
    raw = pd.DataFrame([record])
    for name in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        raw[name] = pd.to_datetime(raw[name], errors="coerce")
    try:
        validate_shipments(raw)
        contract_ok = True
    except Exception:
        contract_ok = False
    if api_ok:
        assert contract_ok, f"API accepted {field}={value!r} the contract refuses"
    elif contract_ok:
        # pandera coerces (3 -> "3" for text, 1.0 -> 1 for packages); the API is stricter
        # about JSON types on purpose. Everything else must agree.
        stricter = isinstance(value, (int, float)) and not isinstance(value, bool)
        # counts only as JSON integers: pandera reads the text "0" as a count, the API not
        count_as_text = field == "packages" and isinstance(value, str)
        assert stricter or count_as_text, (field, value)


def test_small_and_large_frames_are_built_alike():
    """One shipment takes the numpy path, a manifest the pandas path: same frame."""
    records = [
        ShipmentIn(**make_shipment(i, booked_at=None if i % 3 else "2026-02-01T00:00:00"))
        for i in range(130)
    ]
    large = shipments_frame(records)
    small = pd.concat([shipments_frame(records[i : i + 1]) for i in range(130)], ignore_index=True)
    pd.testing.assert_frame_equal(small, large)
    pd.testing.assert_frame_equal(large, validate_shipments(large))
