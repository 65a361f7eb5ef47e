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


# -- blank and odd values: information, never an error ---------------------------------------
def test_odd_weights_and_values_are_flagged_by_hand():
    shipments = make_shipments(
        {"day": 0, "gross_weight_kg": 0.0, "declared_value_usd": 500.0, "packages": 2},
        {"day": 1, "gross_weight_kg": 2_500_000.0, "declared_value_usd": 1e6, "packages": 1},
        {"day": 2, "gross_weight_kg": 1_000_000.0},  # exactly 1,000 t: not above it
        {"day": 3, "gross_weight_kg": None, "packages": 0},
        {"day": 4, "declared_value": 0.0, "declared_value_usd": 0.0},
        {"day": 5, "declared_value": None, "declared_value_usd": 0.0},  # only the USD value
        {"day": 6, "declared_value": None, "declared_value_usd": None},
    )
    f = both_ways(shipments, make_outcomes())
    s1, s2, s3, s4, s5, s6, s7 = (f.loc[f"S{i}"] for i in range(1, 8))
    assert (s1["weight_zero"], s1["weight_bulk"]) == (1, 0)
    assert math.isnan(s1["value_per_kg"])  # not infinite: the 0-kg flag carries it
    assert s1["weight_per_package"] == 0 and s1["value_per_package"] == pytest.approx(250.0)
    assert (s2["weight_zero"], s2["weight_bulk"]) == (0, 1)
    assert s2["value_per_kg"] == pytest.approx(0.4)
    assert s3["weight_bulk"] == 0
    assert math.isnan(s4["weight_zero"]) and math.isnan(s4["weight_bulk"])  # not declared
    assert math.isnan(s4["value_per_kg"])
    assert math.isnan(s4["value_per_package"]) and math.isnan(s4["weight_per_package"])
    assert s1["value_zero"] == 0 and s5["value_zero"] == 1 and s6["value_zero"] == 1
    assert s5["value_per_kg"] == 0
    assert math.isnan(s7["value_zero"])


def test_value_per_kg_of_a_weightless_shipment_is_not_a_heading_norm():
    shipments = make_shipments(
        {"day": 0, "gross_weight_kg": 0.0, "declared_value_usd": 500.0},
        {"day": 1, "gross_weight_kg": 100.0, "declared_value_usd": 100.0},
        {"day": 2, "gross_weight_kg": 100.0, "declared_value_usd": 300.0},
    )
    f = both_ways(shipments, make_outcomes())
    assert math.isnan(f.loc["S1", "value_per_kg_vs_heading"])
    assert math.isnan(f.loc["S2", "value_per_kg_vs_heading"])  # S1 weighs 0: no norm yet
    assert f.loc["S3", "value_per_kg_vs_heading"] == pytest.approx(math.log1p(3) - math.log1p(1))


def test_blank_parties_and_fields_are_counted_by_hand():
    shipments = make_shipments(
        {"day": 0},
        {"day": 1, "shipper_id": None, "consignee_id": "   ", "hs_code": None,
         "goods_description": "  "},
        {"day": 2, "shipper_id": None, "consignee_id": None, "origin_country": None,
         "departure_country": None, "hs_code": None, "goods_description": None,
         "packages": None, "gross_weight_kg": None, "declared_value": None,
         "declared_value_usd": None},
        {"day": 3, "declared_value": None},  # the USD value is still declared
    )  # fmt: skip
    f = both_ways(shipments, make_outcomes())
    assert (f.loc["S1", "shipper_not_declared"], f.loc["S1", "consignee_not_declared"]) == (0, 0)
    assert f.loc["S1", "undeclared_share"] == 0
    assert (f.loc["S2", "shipper_not_declared"], f.loc["S2", "consignee_not_declared"]) == (1, 1)
    assert f.loc["S2", "undeclared_share"] == pytest.approx(4 / 9)
    assert f.loc["S3", "undeclared_share"] == 1
    assert f.loc["S4", "undeclared_share"] == 0
    # a blank party has no history (not an error, not a party called "")
    for role in ("shipper", "consignee"):
        assert math.isnan(f.loc["S2", f"{role}_shipments_total"])
        assert math.isnan(f.loc["S2", f"{role}_seizure_rate"])
    assert math.isnan(f.loc["S2", "shipper_consignee_new_pair"])
    assert f.loc["S4", "consignee_shipments_total"] == 1  # S1 only: blanks are nobody
    assert f.loc["S4", "shipper_shipments_total"] == 1


def test_de_minimis_applies_to_the_express_stream():
    rows = [
        {"day": i, "mode": mode, "container_type": None, "declared_value": 140.0,
         "currency": "EUR", "declared_value_usd": 150.0, "gross_weight_kg": 0.5}
        for i, mode in enumerate(("express", "post", "air", "rail", "road", "other"))
    ]  # fmt: skip
    f = both_ways(make_shipments(*rows), make_outcomes())
    for sid in ("S1", "S2"):  # express courier and post: small parcels
        assert f.loc[sid, "de_minimis_margin"] == pytest.approx(10 / 150)
        assert f.loc[sid, "near_de_minimis"] == 1
    for sid in ("S3", "S4", "S5", "S6"):
        assert math.isnan(f.loc[sid, "de_minimis_margin"])
        assert math.isnan(f.loc[sid, "near_de_minimis"])
    assert de_minimis_margin(100.0, 100.0, "USD", "post") == pytest.approx(0.875)


def test_raw_fields_as_given():
    shipments = make_shipments(
        {"day": 0, "hs_code": "080390", "shipper_id": "EX-42", "consignee_id": " Acme  Ltd ",
         "discharge_port": "BEANR", "carrier_id": "MSCU", "currency": "EUR", "packages": 3,
         "gross_weight_kg": 0.0, "declared_value": 10.5, "declared_value_usd": 11.0,
         "mode": "rail", "container_type": None},
        {"day": 1, "shipper_id": None, "packages": None, "gross_weight_kg": None,
         "declared_value": None, "currency": None, "discharge_port": None},
    )  # fmt: skip
    f = both_ways(shipments, make_outcomes())
    s1, s2 = f.loc["S1"], f.loc["S2"]
    assert (s1["raw_hs_code"], s1["raw_shipper_id"], s1["raw_consignee_id"]) == (
        "080390", "ex-42", "acme ltd"
    )  # fmt: skip
    assert (s1["raw_discharge_port"], s1["raw_carrier_id"], s1["raw_currency"]) == (
        "beanr", "mscu", "eur"
    )  # fmt: skip
    assert (s1["raw_mode"], s1["raw_origin_country"], s1["raw_loading_port"]) == (
        "rail", "nl", "nlrtm"
    )  # fmt: skip
    assert pd.isna(s1["raw_container_type"]) and pd.isna(s1["raw_forwarder_id"])
    assert (s1["raw_packages"], s1["raw_gross_weight_kg"]) == (3.0, 0.0)
    assert (s1["raw_declared_value"], s1["raw_declared_value_usd"]) == (10.5, 11.0)
    assert pd.isna(s2["raw_shipper_id"]) and pd.isna(s2["raw_currency"])
    assert pd.isna(s2["raw_discharge_port"])
    for col in ("raw_packages", "raw_gross_weight_kg", "raw_declared_value"):
        assert math.isnan(s2[col]), col
