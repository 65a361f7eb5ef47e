"""The legacy rules baseline flags what it says it flags."""

from __future__ import annotations

import pandas as pd
import pytest

from training.baselines import RULES, random_score, rule_flags, rules_score


def _shipments(**overrides) -> pd.DataFrame:
    base = {
        "shipment_id": ["a", "b", "c", "d"],
        "declared_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]),
        "consignee_id": ["C1", "C1", "C2", "C1"],
        "origin_country": ["DE", "EC", "DE", "DE"],
        "departure_country": ["DE", "EC", "DE", "DE"],
        "loading_port": ["DEHAM", "ECGYE", "NLRTM", "DEHAM"],
        "transshipment_ports": [None, "PAPTY", "", "COCTG"],
        "container_type": ["dry", "reefer", None, "dry"],
        "hs_code": ["8471300000", "0803901000", "0901", "6204"],
        "payment_method": ["bank_transfer", "cash", None, "bank_transfer"],
        "goods_description": ["laptops", "fresh bananas", "Free GIFTS", "dresses"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_flags_by_hand():
    flags = rule_flags(_shipments())
    assert flags["high_risk_origin"].tolist() == [False, True, False, False]
    assert flags["high_risk_route"].tolist() == [False, True, False, True]
    assert flags["reefer"].tolist() == [False, True, False, False]
    assert flags["cover_commodity"].tolist() == [False, True, True, False]
    assert flags["cash_payment"].tolist() == [False, True, False, False]
    # C1 first seen in a, then b (1 prior), d (2 prior); C2 new in c
    assert flags["new_consignee"].tolist() == [True, False, True, False]
    assert flags["few_prior_shipments"].tolist() == [False, True, False, True]
    assert flags["generic_description"].tolist() == [False, False, True, False]


def test_score_is_weighted_sum():
    score = rules_score(_shipments())
    w = RULES
    assert score[0] == pytest.approx(w["new_consignee"])
    assert score[1] == pytest.approx(
        w["high_risk_origin"]
        + w["high_risk_route"]
        + w["reefer"]
        + w["cover_commodity"]
        + w["cash_payment"]
        + w["few_prior_shipments"]
    )


def test_new_consignee_is_point_in_time_whatever_the_row_order():
    shuffled = _shipments().iloc[[3, 1, 0, 2]]
    assert rule_flags(shuffled)["new_consignee"].to_dict() == {3: False, 1: False, 0: True, 2: True}


def test_random_baseline_is_constant():
    assert (random_score(5) == 0).all()
