"""A world in which party history carries no signal (``--party-history random``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import SimConfig, simulate
from simulator.config import SimConfigError

from .conftest import END

SIZE = {"days": 40, "shipments_per_day": 1200, "seed": 3, "end": END}
GOODS_AND_ROUTE = (
    "shipment_id", "mode", "declared_at", "origin_country", "departure_country",
    "loading_port", "transshipment_ports", "discharge_port", "hs_code", "goods_description",
    "packages", "gross_weight_kg", "declared_value_usd", "container_type", "vessel",
)  # fmt: skip
PARTY_KEYS = ("consignee_id", "shipper_id", "consignee_phone", "consignee_address")


@pytest.fixture(scope="module")
def worlds():
    return {h: simulate(SimConfig(**SIZE, party_history=h)) for h in ("scheme", "random")}


def excess_after_a_party_seizure(world, key: str) -> float:
    """Illicit shipments among those whose ``key`` (a party, phone, address) already had an
    illicit shipment, over what the shipments' mode and origin alone predict (1 = no more
    than the trade they belong to; > 1 = the party itself is riskier)."""
    s = world.shipments
    illicit = world.truth["illicit"].to_numpy().astype(float)
    stratum = (s["mode"].astype(str) + s["origin_country"].astype(str)).to_numpy()
    expected = pd.Series(illicit).groupby(stratum).transform("mean").to_numpy()
    frame = pd.DataFrame({"key": s[key], "illicit": illicit}).dropna()
    before = frame.groupby("key")["illicit"].cumsum() - frame["illicit"]
    repeat = (before > 0).reindex(s.index, fill_value=False).to_numpy()
    return illicit[repeat].sum() / expected[repeat].sum()


@pytest.mark.parametrize("key", PARTY_KEYS)
def test_parties_are_riskier_only_when_schemes_choose_them(worlds, key):
    assert excess_after_a_party_seizure(worlds["scheme"], key) > 2.0
    assert excess_after_a_party_seizure(worlds["random"], key) < 1.5


def test_goods_and_routes_of_smuggling_are_the_same(worlds):
    """Only who ships changes: every shipment's goods, route, value and truth stay."""
    a, b = worlds["scheme"], worlds["random"]
    pd.testing.assert_frame_equal(a.truth, b.truth)
    cols = list(GOODS_AND_ROUTE)
    pd.testing.assert_frame_equal(a.shipments[cols], b.shipments[cols])
    illicit = a.truth["illicit"].to_numpy()
    assert not a.shipments.loc[illicit, "consignee_id"].equals(
        b.shipments.loc[illicit, "consignee_id"]
    )
    legit = ~illicit
    for col in ("consignee_id", "shipper_id", "consignee_phone"):
        pd.testing.assert_series_equal(a.shipments.loc[legit, col], b.shipments.loc[legit, col])


def test_illicit_parties_are_parties_of_legitimate_trade(worlds):
    s, truth = worlds["random"].shipments, worlds["random"].truth
    illicit = truth["illicit"].to_numpy()
    rip = (truth["scheme"] == "rip_on_rip_off").to_numpy()
    legit_parties = set(s.loc[~illicit, "consignee_id"]) | set(s.loc[~illicit, "shipper_id"])
    for col in ("consignee_id", "shipper_id"):
        assert s.loc[illicit & ~rip, col].isin(legit_parties).mean() > 0.95, col
    # a courier's flight code always belongs to that courier
    express = s[s["mode"] == "express"].dropna(subset=["flight"])
    prefix = {"DHL": "D0", "FDX": "FX", "UPS": "5X", "EMS": "KE", "CJL": "OZ", "CNO": "CK",
              "HJN": "KE", "LTG": "OZ"}  # fmt: skip
    expected = express["carrier_id"].map(prefix)
    assert (express["flight"].str[:2] == expected).all()


def test_random_history_is_deterministic():
    a = simulate(SimConfig(days=10, shipments_per_day=500, seed=9, end=END, party_history="random"))
    b = simulate(SimConfig(days=10, shipments_per_day=500, seed=9, end=END, party_history="random"))
    pd.testing.assert_frame_equal(a.shipments, b.shipments)
    assert np.array_equal(a.truth["illicit"], b.truth["illicit"])


def test_unknown_party_history_names_the_field():
    with pytest.raises(SimConfigError, match="party_history"):
        SimConfig(party_history="forgotten")
