"""Every rule of the shipments/outcomes contract, each with an example that must fail it."""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pytest

from features.contracts import (
    MODES,
    OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    STREAMS,
    AttributeSpec,
    DatasetInfo,
    Outcomes,
    Shipments,
    check_attributes,
    conform,
    split_ports,
    stream_of,
    validate_outcomes,
    validate_shipments,
)
from features.errors import ContractError


def shipment(**overrides) -> dict:
    """A valid sea shipment: bananas in a reefer from Guayaquil to Antwerp via Panama."""
    row = {
        "shipment_id": "BL-2026-0001",
        "mode": "sea",
        "declared_at": pd.Timestamp("2026-03-10 08:00"),
        "booked_at": pd.Timestamp("2026-02-20"),
        "departed_at": pd.Timestamp("2026-02-25"),
        "arrival_at": pd.Timestamp("2026-03-09"),
        "shipper_id": "EX-EC-42",
        "consignee_id": "IM-BE-7",
        "notify_party_id": "NP-1",
        "forwarder_id": "FW-3",
        "declarant_id": "BR-9",
        "carrier_id": "MAEU",
        "shipper_name": "Frutas del Pacifico SA",
        "consignee_name": "Antwerp Fruit NV",
        "consignee_address": "Haven 10, Antwerpen",
        "consignee_phone": "+32 3 555 01 01",
        "origin_country": "EC",
        "departure_country": "EC",
        "loading_port": "ECGYE",
        "transshipment_ports": "PAPTY|ESALG",
        "discharge_port": "BEANR",
        "hs_code": "080390",
        "goods_description": "fresh bananas",
        "packages": 1200,
        "gross_weight_kg": 21_600.0,
        "declared_value": 18_500.0,
        "currency": "USD",
        "declared_value_usd": 18_500.0,
        "freight_terms": "prepaid",
        "payment_method": "bank_transfer",
        "bill_of_lading": "MAEU240011",
        "container_id": "MSKU1234567",
        "container_type": "reefer",
        "load_type": "fcl",
        "vessel": "MAERSK ANNA",
        "voyage": "412W",
        "air_waybill": None,
        "flight": None,
        "platform": None,
        "order_ref": None,
        "recipient_customs_code": None,
    }
    row.update(overrides)
    return row


def outcome(**overrides) -> dict:
    row = {
        "shipment_id": "BL-2026-0001",
        "inspected_at": pd.Timestamp("2026-03-11"),
        "result_at": pd.Timestamp("2026-03-15"),
        "result": "seized",
        "drug": "cocaine",
        "quantity_kg": 42.5,
        "method": "physical",
        "selected_by": "model",
    }
    row.update(overrides)
    return row


def failing_checks(validate, rows: list[dict]) -> set[tuple[str | None, str]]:
    with pytest.raises(pandera.errors.SchemaErrors) as info:
        validate(pd.DataFrame(rows))
    cases = info.value.failure_cases
    return set(zip(cases["column"], cases["check"], strict=True))


def test_valid_rows_pass_and_keep_contract_columns():
    ships = validate_shipments(pd.DataFrame([shipment()]))
    assert tuple(ships.columns) == SHIPMENT_COLUMNS
    outs = validate_outcomes(pd.DataFrame([outcome()]))
    assert tuple(outs.columns) == OUTCOME_COLUMNS


def test_an_air_and_an_express_shipment_without_sea_fields_pass():
    sea_only = dict.fromkeys(
        ["bill_of_lading", "container_id", "container_type", "load_type", "vessel", "voyage"]
    )
    air = shipment(mode="air", air_waybill="180-12345675", flight="KE0912", **sea_only)
    express = shipment(
        shipment_id="EXP-1",
        mode="express",
        platform="ShopA",
        order_ref="ORD-77",
        recipient_customs_code="P123456789012",
        transshipment_ports="",
        **sea_only,
    )
    assert len(validate_shipments(pd.DataFrame([air, express]))) == 2


@pytest.mark.parametrize("field", REQUIRED_SHIPMENT_COLUMNS)
def test_each_required_shipment_field_must_be_present(field):
    assert (field, "not_nullable") in failing_checks(
        validate_shipments, [shipment(**{field: None})]
    )


def test_only_id_time_and_mode_are_required():
    assert REQUIRED_SHIPMENT_COLUMNS == ("shipment_id", "mode", "declared_at")
    bare = {
        "shipment_id": "D-1",
        "mode": "rail",
        "declared_at": pd.Timestamp("2026-03-10"),
    }
    out = validate_shipments(pd.DataFrame([bare]))
    assert out.loc[0, "shipper_id"] is None or pd.isna(out.loc[0, "shipper_id"])
    assert pd.isna(out.loc[0, "packages"]) and pd.isna(out.loc[0, "gross_weight_kg"])


@pytest.mark.parametrize("mode", MODES)
def test_every_customs_transport_mode_is_accepted_and_has_a_stream(mode):
    assert len(validate_shipments(pd.DataFrame([shipment(mode=mode)]))) == 1
    assert stream_of(mode) in STREAMS
    assert stream_of("truck") is None


@pytest.mark.parametrize(
    "odd",
    [
        {"gross_weight_kg": 0.0},
        {"gross_weight_kg": 2_500_000.0},
        {"declared_value": 0.0, "declared_value_usd": 0.0},
        {"packages": 0},
    ],
)
def test_odd_but_real_physical_values_are_accepted(odd):
    assert len(validate_shipments(pd.DataFrame([shipment(**odd)]))) == 1


def test_attribute_columns_are_kept_and_checked_against_their_schema():
    schema = {
        "import_type": AttributeSpec(kind="categorical", label="import type"),
        "tax_rate": AttributeSpec(kind="numeric"),
    }
    rows = pd.DataFrame(
        [
            shipment(**{"attr.import_type": " B2 ", "attr.tax_rate": "8.0"}),
            shipment(shipment_id="X"),
        ]
    )
    out = validate_shipments(rows, attributes=schema)
    assert list(out.columns) == [*SHIPMENT_COLUMNS, "attr.import_type", "attr.tax_rate"]
    assert out["attr.import_type"].tolist() == ["B2", None]
    assert out["attr.tax_rate"].iloc[0] == 8.0 and pd.isna(out["attr.tax_rate"].iloc[1])
    with pytest.raises(ContractError, match=r"attr\.office"):
        validate_shipments(rows.assign(**{"attr.office": "30"}), attributes=schema)
    with pytest.raises(ContractError, match=r"attr\.tax_rate"):
        validate_shipments(rows.assign(**{"attr.tax_rate": "high"}), attributes=schema)


def test_one_shipments_attributes_name_the_unknown_or_ill_typed_one():
    schema = {
        "import_type": AttributeSpec(kind="categorical"),
        "tax_rate": AttributeSpec(kind="numeric"),
    }
    assert check_attributes({"tax_rate": 8}, schema) == {"import_type": None, "tax_rate": 8.0}
    with pytest.raises(ContractError, match=r"attributes\.office: not an attribute"):
        check_attributes({"office": "30"}, schema)
    with pytest.raises(ContractError, match=r"attributes\.tax_rate: must be a number"):
        check_attributes({"tax_rate": "8"}, schema)
    with pytest.raises(ContractError, match=r"attributes\.import_type: must be text"):
        check_attributes({"import_type": True}, schema)
    with pytest.raises(ContractError, match=r"attributes\.import_type"):
        check_attributes({"import_type": "a\x00b"}, schema)


def test_dataset_info_names_attributes_plainly_and_defaults_to_narcotics():
    info = DatasetInfo()
    assert info.label.name == "narcotics seizure" and info.label.positive == "seizure"
    with pytest.raises(ValueError, match="Import Type"):
        DatasetInfo(attributes={"Import Type": {"kind": "categorical"}})
    spec = DatasetInfo(attributes={"import_use": {"kind": "categorical"}}).attributes["import_use"]
    assert spec.wording("import_use") == "import use"


SHIPMENT_VIOLATIONS = [
    # (field, bad value, pandera check that must fail)
    ("shipment_id", "BL\x01", "str_matches"),
    ("shipment_id", "X" * 65, "str_matches"),
    ("mode", "truck", "isin"),
    ("declared_at", pd.Timestamp("1989-12-31"), "greater_than_or_equal_to"),
    ("declared_at", pd.Timestamp("2100-01-02"), "less_than_or_equal_to"),
    ("booked_at", pd.Timestamp("1989-12-31"), "greater_than_or_equal_to"),
    ("departed_at", pd.Timestamp("2200-01-01"), "less_than_or_equal_to"),
    ("arrival_at", pd.Timestamp("1700-01-01"), "greater_than_or_equal_to"),
    ("shipper_id", "EX\n42", "str_matches"),
    ("consignee_id", "", "str_matches"),
    ("notify_party_id", "NP\x00", "str_matches"),
    ("forwarder_id", "F" * 65, "str_matches"),
    ("declarant_id", "BR\t9", "str_matches"),
    ("carrier_id", "M\x7f", "str_matches"),
    ("shipper_name", "x" * 2001, "str_length"),
    ("consignee_name", "bad\x07bell", "str_matches"),
    ("consignee_address", "a" * 2001, "str_length"),
    ("consignee_phone", "call me", "str_matches"),
    ("origin_country", "Ecuador", "str_matches"),
    ("departure_country", "ec", "str_matches"),
    ("loading_port", "GUAYAQUIL", "str_matches"),
    ("transshipment_ports", "PAPTY,ESALG", "str_matches"),
    ("transshipment_ports", "PAPTY|", "str_matches"),
    ("discharge_port", "BE", "str_matches"),
    ("hs_code", "8", "str_matches"),
    ("hs_code", "12345678901", "str_matches"),
    ("hs_code", "08.03", "str_matches"),
    ("goods_description", "g" * 2001, "str_length"),
    ("packages", -1, "greater_than_or_equal_to"),
    ("packages", 10_000_001, "less_than_or_equal_to"),
    ("gross_weight_kg", -0.5, "greater_than_or_equal_to"),
    ("gross_weight_kg", 1.1e9, "less_than_or_equal_to"),
    ("declared_value", -1.0, "greater_than_or_equal_to"),
    ("declared_value", 2e13, "less_than_or_equal_to"),
    ("currency", "usd", "str_matches"),
    ("currency", "US", "str_matches"),
    ("declared_value_usd", -0.01, "greater_than_or_equal_to"),
    ("declared_value_usd", 2e13, "less_than_or_equal_to"),
    ("freight_terms", "cod", "isin"),
    ("payment_method", "crypto", "isin"),
    ("bill_of_lading", "B" * 65, "str_matches"),
    ("container_id", "MSKU123456", "str_matches"),
    ("container_id", "msku1234567", "str_matches"),
    ("container_type", "box", "isin"),
    ("load_type", "bulk", "isin"),
    ("vessel", "v" * 2001, "str_length"),
    ("voyage", "4\x0012", "str_matches"),
    ("air_waybill", "A" * 65, "str_matches"),
    ("flight", "KE 912", "str_matches"),
    ("platform", "p" * 2001, "str_length"),
    ("order_ref", "O" * 65, "str_matches"),
    ("recipient_customs_code", "p12", "str_matches"),
]


@pytest.mark.parametrize(("field", "value", "check"), SHIPMENT_VIOLATIONS)
def test_each_shipment_rule_rejects_a_bad_value(field, value, check):
    failed = failing_checks(validate_shipments, [shipment(**{field: value})])
    assert any(col == field and name.startswith(check) for col, name in failed), failed


def test_text_may_not_be_coerced_into_numbers():
    failed = failing_checks(validate_shipments, [shipment(packages="many")])
    assert any(col == "packages" and "dtype" in name for col, name in failed)


def test_shipment_id_is_unique():
    failed = failing_checks(validate_shipments, [shipment(), shipment()])
    assert ("shipment_id", "field_uniqueness") in failed


def test_departure_must_not_follow_arrival():
    row = shipment(departed_at=pd.Timestamp("2026-03-10"), arrival_at=pd.Timestamp("2026-03-01"))
    failed = {check for _, check in failing_checks(validate_shipments, [row])}
    assert "departed_at must not be after arrival_at" in failed


def test_booking_must_not_follow_departure():
    row = shipment(booked_at=pd.Timestamp("2026-02-26"), departed_at=pd.Timestamp("2026-02-25"))
    failed = {check for _, check in failing_checks(validate_shipments, [row])}
    assert "booked_at must not be after departed_at" in failed


def test_the_schemas_are_strict_about_unknown_columns():
    # validate_* first conform() the frame to the contract's columns; the schema itself is strict
    with pytest.raises(pandera.errors.SchemaErrors):
        Shipments.validate(pd.DataFrame([shipment(risk_score=0.9)]), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors):
        Outcomes.validate(pd.DataFrame([outcome(officer="J. Doe")]), lazy=True)


def test_conform_adds_missing_optional_columns_and_never_invents_required_ones():
    partial = pd.DataFrame([{"shipment_id": "S1", "mode": "air"}])
    out = conform(partial, SHIPMENT_COLUMNS)
    assert tuple(out.columns) == SHIPMENT_COLUMNS
    assert out["hs_code"].isna().all()
    assert list(partial.columns) == ["shipment_id", "mode"]  # input untouched


def test_split_ports():
    assert split_ports("PAPTY|ESALG") == ["PAPTY", "ESALG"]
    assert split_ports("") == []
    assert split_ports(None) == []


# -- outcomes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field", ["shipment_id", "inspected_at", "result_at", "result", "method", "selected_by"]
)
def test_each_required_outcome_field_must_be_present(field):
    assert (field, "not_nullable") in failing_checks(validate_outcomes, [outcome(**{field: None})])


OUTCOME_VIOLATIONS = [
    ("shipment_id", "S\x01", "str_matches"),
    ("inspected_at", pd.Timestamp("1980-01-01"), "greater_than_or_equal_to"),
    ("result_at", pd.Timestamp("2101-01-01"), "less_than_or_equal_to"),
    ("result", "suspicious", "isin"),
    ("drug", "sugar", "isin"),
    ("quantity_kg", -1.0, "greater_than_or_equal_to"),
    ("quantity_kg", 2e6, "less_than_or_equal_to"),
    ("method", "dog", "isin"),
    ("selected_by", "anonymous tip", "isin"),
]


@pytest.mark.parametrize(("field", "value", "check"), OUTCOME_VIOLATIONS)
def test_each_outcome_rule_rejects_a_bad_value(field, value, check):
    failed = failing_checks(validate_outcomes, [outcome(**{field: value})])
    assert any(col == field and name.startswith(check) for col, name in failed), failed


def test_result_is_not_known_before_the_inspection():
    row = outcome(inspected_at=pd.Timestamp("2026-03-11"), result_at=pd.Timestamp("2026-03-10"))
    failed = {check for _, check in failing_checks(validate_outcomes, [row])}
    assert "result_at must not be before inspected_at" in failed


@pytest.mark.parametrize(
    "overrides", [{"drug": "heroin", "quantity_kg": None}, {"drug": None, "quantity_kg": 3.0}]
)
def test_a_clean_result_names_no_drug_and_no_quantity(overrides):
    row = outcome(result="clean", **overrides)
    failed = {check for _, check in failing_checks(validate_outcomes, [row])}
    assert "a clean result cannot name a drug or a quantity" in failed


def test_a_clean_result_with_nothing_found_passes_and_one_shipment_may_be_inspected_twice():
    rows = [outcome(), outcome(result="clean", drug=None, quantity_kg=None, method="x-ray")]
    assert len(validate_outcomes(pd.DataFrame(rows))) == 2


def test_invisible_characters_are_exactly_the_control_format_and_separator_ones():
    """The class of characters refused in identifiers (contract pattern, API, ingest) is every
    Cc, Cf, Cs, Zl and Zp character of the Unicode version Python ships."""
    import re
    import sys
    import unicodedata

    from features.contracts import INVISIBLE

    pattern = re.compile(f"[{INVISIBLE}]")
    refused = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    wrong = [
        cp
        for cp in range(sys.maxunicode + 1)
        if bool(pattern.match(chr(cp))) != (unicodedata.category(chr(cp)) in refused)
    ]
    assert not wrong, [f"U+{cp:04X}" for cp in wrong[:5]]
