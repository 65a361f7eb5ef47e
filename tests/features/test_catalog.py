"""The catalog is the single list of features: names unique, every entry readable, and the
pipeline produces exactly these columns in this order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.catalog import (
    CATEGORICAL_FEATURES,
    DIRECTIONS,
    FAMILIES,
    FEATURE_NAMES,
    FEATURES,
    KINDS,
    feature,
    reason_text,
)
from features.pipeline import build_training_frame
from tests.features.helpers import random_world


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
    assert (
        reason_text("loading_port_seizures_90d", 4) == "loading port with 4 seizure(s) in 90 days"
    )
    assert reason_text("origin_risk", 0.034) == "origin country seizure rate 3.4%"
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
