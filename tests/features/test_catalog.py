"""The catalog is the single list of features: names unique, every entry readable, and the
pipeline produces exactly these columns in this order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features import manifest
from features.catalog import (
    CATEGORICAL_FEATURES,
    DIRECTIONS,
    FAMILIES,
    FEATURE_NAMES,
    FEATURES,
    KINDS,
    RAW_CATEGORICAL,
    RAW_NUMERIC,
    description,
    family_of,
    feature,
    feature_kind,
    reason_text,
)
from features.contracts import AttributeSpec, LabelMeaning
from features.pipeline import build_training_frame
from tests.features.helpers import ATTRIBUTES, random_world

FRAUD = LabelMeaning(name="duty fraud", positive="fraud finding")


def test_names_unique_and_fields_valid():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for f in FEATURES:
        assert f.family in FAMILIES, f.name
        assert f.kind in KINDS, f.name
        assert f.direction in DIRECTIONS, f.name
        assert f.description and f.description[0].isupper(), f.name
        assert f.reason, f.name
    assert set(CATEGORICAL_FEATURES) == {f.name for f in FEATURES if f.kind == "categorical"}
    assert {f.family for f in FEATURES} == set(FAMILIES) - {"attributes"}  # per dataset


def test_every_reason_formats_for_a_number_and_for_missing():
    for f in FEATURES:
        value = "EC" if f.kind == "categorical" else 3.0
        text = reason_text(f.name, value)
        assert "{" not in text and text, f.name
        missing = reason_text(f.name, None)
        assert missing and "{" not in missing, f.name
        assert reason_text(f.name, float("nan")) == missing
        assert reason_text(f.name, np.nan) == missing


def test_reason_examples():
    assert reason_text("consignee_days_since_first", 3.2) == "consignee first seen 3 days ago"
    assert reason_text("consignee_days_since_first", None) == (
        "consignee never seen before (or not declared)"
    )
    assert reason_text("loading_port_seizures_90d", 4) == (
        "loading port with 4 seizure(s) known in the 90 days before this shipment's day and on it"
    )
    assert reason_text("consignee_shipments_7d", 2) == (
        "consignee had 2 shipment(s) in the 7 days before this shipment's day and on it"
    )
    assert reason_text("origin_risk", 3.4) == "origin country seizure rate 3.4x the overall rate"
    assert reason_text("shipper_consignee_new_pair", 1.0) == (
        "first shipment between this shipper and consignee"
    )
    assert reason_text("container_type", "reefer") == "container type reefer"
    assert not math.isnan(len(reason_text("shipper_consignee_new_pair", 0.0)))


def test_unknown_feature_is_named():
    with pytest.raises(KeyError, match="no_such_feature"):
        feature("no_such_feature")


def test_pipeline_columns_follow_catalog_order():
    shipments, outcomes = random_world(200, seed=3)
    frame = build_training_frame(shipments, outcomes)
    assert list(frame.columns) == ["shipment_id", "declared_at", *FEATURE_NAMES]
    assert len(frame) == len(shipments)
    assert list(frame["shipment_id"]) == list(shipments["shipment_id"])
    for name in FEATURE_NAMES:
        if name in CATEGORICAL_FEATURES:
            assert pd.api.types.is_string_dtype(frame[name].dtype) or frame[name].dtype == object
            assert all(isinstance(v, str) for v in frame[name].dropna()), name
        else:
            assert frame[name].dtype == "float64", name


def test_every_feature_has_a_family_and_families_are_grouped():
    for f in FEATURES:
        assert family_of(f.name) == f.family in FAMILIES, f.name
    order = [FAMILIES.index(f.family) for f in FEATURES]
    assert order == sorted(order)  # FEATURE_NAMES go family by family
    assert family_of("attr.import_type") == "attributes"
    assert family_of("attr.anything") == "attributes"  # no schema needed for the family
    with pytest.raises(KeyError, match="no_such_feature"):
        family_of("no_such_feature")
    rates = {f.name for f in FEATURES if f.family == "rates"}
    assert {"origin_risk", "route_risk", "loading_port_seizures_90d", "hs_code_shipments",
            "value_per_kg_vs_heading", "description_novelty"} <= rates  # fmt: skip
    assert not any(f.name.endswith("_risk") for f in FEATURES if f.family == "manifest")
    assert feature("weight_zero").family == "manifest"
    assert feature("shipper_seizures").family == "history"


def test_raw_family_carries_the_mapped_fields():
    raw = {f.name: f.kind for f in FEATURES if f.family == "raw"}
    assert raw == {
        **{f"raw_{n}": "categorical" for n in RAW_CATEGORICAL},
        **{f"raw_{n}": "numeric" for n in RAW_NUMERIC},
    }
    assert set(RAW_CATEGORICAL) == set(manifest.RAW_KEYS)
    assert set(RAW_NUMERIC) == set(manifest.RAW_NUMBERS)
    assert reason_text("raw_hs_code", "080390") == "declared HS code 080390"
    assert reason_text("raw_shipper_id", "ex-42") == "shipper EX-42"
    assert reason_text("raw_mode", "rail") == "transport mode rail"
    assert reason_text("raw_gross_weight_kg", 0.0) == "declared gross weight 0.0 kg"
    assert reason_text("raw_shipper_id", None) == "shipper not declared"


def test_new_manifest_reasons():
    assert reason_text("weight_zero", 1.0) == "declared weight 0 kg"
    assert reason_text("weight_bulk", 1.0) == "declared weight above 1,000 t (bulk cargo)"
    assert reason_text("weight_bulk", 0.0) == "declared weight up to 1,000 t"
    assert reason_text("weight_zero", None) == "gross weight not declared"
    assert reason_text("value_zero", 1.0) == "declared value 0"
    assert reason_text("shipper_not_declared", 1.0) == "no shipper declared"
    assert reason_text("consignee_not_declared", 0.0) == "consignee declared"
    assert reason_text("undeclared_share", 4 / 9) == "44% of the core declaration fields left blank"
    assert reason_text("shipper_consignee_new_pair", None) == "shipper or consignee not declared"


def test_kinds_of_catalog_and_attribute_features():
    assert feature_kind("origin_country") == "categorical"
    assert feature_kind("weight_zero") == "flag"
    assert feature_kind("raw_packages") == "numeric"
    assert feature_kind("attr.import_type", ATTRIBUTES) == "categorical"
    assert feature_kind("attr.tax_rate", ATTRIBUTES) == "numeric"
    with pytest.raises(KeyError, match="vat_code"):
        feature_kind("attr.vat_code", ATTRIBUTES)
    with pytest.raises(KeyError, match="tax_rate"):
        feature_kind("attr.tax_rate")


def test_attribute_reasons():
    schema = {**ATTRIBUTES, "origin_certificate": AttributeSpec(kind="categorical")}
    assert reason_text("attr.import_type", "B2", attributes=schema) == "import type B2"
    assert reason_text("attr.tax_rate", 8.0, attributes=schema) == "tax rate 8"
    assert reason_text("attr.tax_rate", 13.5, attributes=schema) == "tax rate 13.5"
    assert reason_text("attr.office", None, attributes=schema) == "customs office not declared"
    assert reason_text("attr.tax_rate", float("nan"), attributes=schema) == (
        "tax rate not declared"
    )
    assert reason_text("attr.origin_certificate", "Y", attributes=schema) == (
        "origin certificate Y"
    )
    # a value a categorical attribute declares as a number stays as declared
    assert reason_text("attr.import_type", "11", attributes=schema) == "import type 11"
    assert reason_text("attr.unknown_one", "X") == "unknown one X"  # no schema: its name
    assert description("attr.import_type", attributes=schema) == "import type"


def test_reasons_speak_of_the_label():
    """Every sentence that says "seizure" for the default narcotics label says the label's
    positive noun for another label; the default sentences are unchanged."""
    said = 0
    for f in FEATURES:
        value = "EC" if f.kind == "categorical" else 2.0
        for v in (value, None, 0.0):
            if f.kind == "categorical" and v == 0.0:
                continue
            default = reason_text(f.name, v)
            assert reason_text(f.name, v, label=LabelMeaning()) == default, f.name
            fraud = reason_text(f.name, v, label=FRAUD)
            assert "seizure" not in fraud.casefold(), (f.name, fraud)
            if "seizure" in default:
                said += 1
                assert "fraud finding" in fraud, (f.name, fraud)
            else:
                assert fraud == default, f.name
        assert "seizure" not in description(f.name, label=FRAUD).casefold(), f.name
    assert said > 20
    assert reason_text("consignee_seizures", 2, label=FRAUD) == (
        "consignee had 2 earlier fraud finding(s)"
    )
    assert reason_text("origin_risk", 3.4, label=FRAUD) == (
        "origin country fraud finding rate 3.4x the overall rate"
    )
    assert description("shipper_seizures", label=FRAUD).startswith("Fraud findings on")


def test_pipeline_columns_with_attributes():
    shipments, outcomes = random_world(150, seed=5, attributes=True)
    frame = build_training_frame(shipments, outcomes, attributes=ATTRIBUTES)
    assert list(frame.columns) == [
        "shipment_id", "declared_at", *FEATURE_NAMES, "attr.import_type", "attr.tax_rate",
        "attr.office",
    ]  # fmt: skip
    assert frame["attr.tax_rate"].dtype == "float64"
    assert frame["attr.import_type"].dtype == object
    assert all(isinstance(v, str) for v in frame["attr.office"].dropna())
