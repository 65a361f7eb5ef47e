"""Manifest features: normalised keys and what a shipment's own declaration says."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.manifest import (
    de_minimis_margin,
    description_tokens,
    norm_address,
    norm_phone,
    norm_text,
    port_list,
    prepare,
)
from tests.features.helpers import both_ways, make_outcomes, make_shipments, random_world


def test_normalisers():
    assert norm_text("  Acme   Trading  LTD ") == "acme trading ltd"
    assert norm_text("ACME") == norm_text("acme")
    assert norm_text("   ") is None
    assert norm_text(None) is None and norm_text(float("nan")) is None and norm_text(pd.NA) is None
    assert norm_phone("+1 (555) 010-1") == norm_phone("15550101") == "15550101"
    assert norm_phone("--") is None
    assert norm_address("12, Harbour ROAD.") == norm_address("12 harbour road") == "12 harbour road"
    assert port_list("PAPTY|esalg||PAPTY") == ("papty", "esalg")
    assert port_list("") == () and port_list(None) == ()
    assert description_tokens("Gifts and SAMPLES of the 2 toys") == ("gifts", "samples", "toys")
    assert description_tokens(None) == ()


def test_small_and_large_frames_give_the_same_keys():
    """The online path normalises value by value, the offline path by distinct values."""
    shipments, _ = random_world(300, seed=9)
    big = prepare(shipments, tuple_keys=True)
    coded = prepare(shipments)
    for key, values in big.items():
        if key.startswith("codes:"):  # offline-only cache of codes
            continue
        if coded[key].dtype.kind == "i":  # combination keys as codes: same partition of rows
            tuples = pd.Series(values, dtype=object).map(lambda v: v if v is None else str(v))
            pairs = pd.DataFrame({"t": tuples, "c": coded[key]})
            assert ((pairs["c"] == -1) == pairs["t"].isna()).all(), key
            assert pairs.dropna().drop_duplicates().groupby("t")["c"].nunique().max() == 1, key
            assert pairs.dropna().drop_duplicates().groupby("c")["t"].nunique().max() == 1, key
    for i in (0, 17, 299):
        one = prepare(shipments.iloc[[i]])
        few = prepare(shipments.iloc[i : i + 3])
        for key, values in big.items():
            if key.startswith("codes:"):
                continue
            if values.dtype == object:
                assert one[key][0] == values[i], key
                assert few[key][0] == values[i], key
            else:
                np.testing.assert_equal(one[key][0], values[i], err_msg=key)


def test_de_minimis_margin():
    assert de_minimis_margin(140.0, 160.0, "EUR", "express") == pytest.approx(10 / 150)
    assert de_minimis_margin(100.0, 100.0, "USD", "express") == pytest.approx(0.875)
    # a currency without its own threshold is judged on the USD value against 150 and 800
    assert de_minimis_margin(130_000.0, 140.0, "KRW", "express") == pytest.approx(10 / 150)
    assert math.isnan(de_minimis_margin(900.0, 900.0, "USD", "express"))  # above every one
    assert math.isnan(de_minimis_margin(100.0, 100.0, "USD", "sea"))


def test_row_features_by_hand():
    t = pd.Timestamp("2026-01-01 08:00")
    shipments = make_shipments(
        {"day": 0, "packages": 4, "gross_weight_kg": 200.0, "declared_value_usd": 1000.0,
         "booked_at": t - pd.Timedelta(days=12), "departed_at": t - pd.Timedelta(days=10),
         "arrival_at": t + pd.Timedelta(days=2, hours=12), "freight_terms": "collect",
         "payment_method": "cash", "goods_description": "Gifts, samples"},
        {"day": 1, "mode": "express", "container_type": None, "declared_value": 140.0,
         "currency": "EUR", "declared_value_usd": 150.0, "gross_weight_kg": 0.5,
         "packages": 1, "platform": "  ShopA ", "goods_description": "auto parts",
         "hs_code": "870829"},
        {"day": 2, "mode": "air", "container_type": None, "goods_description": None},
    )  # fmt: skip
    f = both_ways(shipments, make_outcomes())
    s1, s2, s3 = f.loc["S1"], f.loc["S2"], f.loc["S3"]
    assert s1["value_per_kg"] == pytest.approx(5.0)
    assert s1["value_per_package"] == pytest.approx(250.0)
    assert s1["weight_per_package"] == pytest.approx(50.0)
    assert s1["booking_to_departure_days"] == pytest.approx(2.0)
    assert s1["transit_days"] == pytest.approx(12.5)
    assert s1["declaration_lead_days"] == pytest.approx(2.5)
    assert s1["generic_description"] == 1
    assert (s1["freight_terms"], s1["payment_method"], s1["mode"]) == ("collect", "cash", "sea")
    assert s1["origin_country"] == "NL" and s1["hs_chapter"] == "08"
    assert math.isnan(s1["de_minimis_margin"]) and math.isnan(s1["near_de_minimis"])
    assert s2["platform"] == "shopa"
    assert s2["de_minimis_margin"] == pytest.approx(10 / 150)
    assert s2["near_de_minimis"] == 1
    assert s2["generic_description"] == 1  # "auto parts": half the words are vague
    assert s2["hs_chapter"] == "87"
    assert pd.isna(s2["container_type"])
    assert math.isnan(s2["booking_to_departure_days"])
    assert math.isnan(s3["generic_description"])  # no description at all
    assert math.isnan(s3["description_novelty"])


def test_description_novelty_against_the_hs_chapter():
    shipments = make_shipments(
        {"day": 0, "goods_description": "bananas fresh"},
        {"day": 1, "goods_description": "fresh bananas"},
        {"day": 2, "goods_description": "bananas gifts"},
        {"day": 3, "goods_description": "bananas", "hs_code": "950300"},
    )
    f = both_ways(shipments, make_outcomes())
    assert math.isnan(f.loc["S1", "description_novelty"])  # chapter never seen before
    assert f.loc["S2", "description_novelty"] == 0.0
    assert f.loc["S3", "description_novelty"] == pytest.approx(0.5)
    assert math.isnan(f.loc["S4", "description_novelty"])  # chapter 95 never seen


def test_unseen_categories_pass_through_as_strings():
    shipments = make_shipments(
        {"day": 0, "origin_country": "ZZ", "payment_method": "e_wallet", "freight_terms": None},
    )
    f = both_ways(shipments, make_outcomes())
    assert f.loc["S1", "origin_country"] == "ZZ"
    assert f.loc["S1", "payment_method"] == "e_wallet"
    assert pd.isna(f.loc["S1", "freight_terms"])
