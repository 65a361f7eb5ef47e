"""Entity history, place/commodity history and change features on hand-made frames, with
values computed by hand (and checked both offline and online)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.history import (
    PRIOR_INSPECTIONS,
    PRIOR_SEIZURES,
    SMOOTHING,
    relative_rate,
    window_exit,
    window_start,
)
from features.manifest import NS_PER_DAY
from tests.features.helpers import both_ways, make_outcomes, make_shipments


def rate(seized, inspected, g_seized, g_inspected):
    """The key's smoothed seizure rate over the overall rate known at the time."""
    prior = (g_seized + PRIOR_SEIZURES) / (g_inspected + PRIOR_INSPECTIONS)
    return (seized + SMOOTHING * prior) / (inspected + SMOOTHING) / prior


@pytest.fixture(scope="module")
def consignee_story():
    shipments = make_shipments(
        {"day": 0, "shipper_id": "A", "origin_country": "EC", "loading_port": "ECGYE",
         "forwarder_id": "F1", "consignee_phone": "+1 555 0101", "consignee_address": "1 Quay"},
        {"day": 10, "shipper_id": "A", "origin_country": "CO", "forwarder_id": "F1",
         "consignee_phone": "+1 555 0101", "consignee_address": "1 Quay"},
        {"day": 10, "shipper_id": "B", "origin_country": "EC", "forwarder_id": "F1",
         "consignee_phone": "+1-555-0101", "consignee_address": "1, QUAY"},
        {"day": 40, "shipper_id": "A", "origin_country": "NL", "loading_port": "ECGYE",
         "forwarder_id": "F2", "consignee_phone": "+1 555 9999", "consignee_address": "1 Quay"},
        {"day": 400, "shipper_id": "N", "origin_country": "EC", "loading_port": "ECGYE",
         "consignee_id": "c1"},
    )  # fmt: skip
    outcomes = make_outcomes(("S1", 1, 12, "seized"), ("S2", 11, 11.5, "clean"))
    return both_ways(shipments, outcomes)


def test_counts_windows_and_first_seen(consignee_story):
    f = consignee_story
    # first shipment: no history at all
    assert f.loc["S1", "consignee_shipments_total"] == 0
    assert math.isnan(f.loc["S1", "consignee_days_since_first"])
    assert math.isnan(f.loc["S1", "consignee_growth_30d"])
    # S2 and S3 are declared at the same instant: neither sees the other
    assert f.loc["S2", "consignee_shipments_total"] == 1
    assert f.loc["S3", "consignee_shipments_total"] == 1
    # day 40: S1, S2, S3 before; S2/S3 exactly 30 days before are inside the 30-day window
    s4 = f.loc["S4"]
    assert (s4["consignee_shipments_total"], s4["consignee_shipments_7d"]) == (3, 0)
    assert (s4["consignee_shipments_30d"], s4["consignee_shipments_365d"]) == (2, 3)
    assert s4["consignee_days_since_first"] == pytest.approx(40)
    assert s4["consignee_growth_30d"] == pytest.approx(2 / (1 * 30 / 335))
    # day 400: "c1" is the same consignee as "C1"; only S4 is within 365 days
    s5 = f.loc["S5"]
    assert (s5["consignee_shipments_total"], s5["consignee_shipments_365d"]) == (4, 1)
    assert s5["consignee_days_since_first"] == pytest.approx(400)


def test_distinct_values(consignee_story):
    f = consignee_story
    assert f.loc["S4", "consignee_distinct_origins"] == 2  # EC, CO
    assert f.loc["S5", "consignee_distinct_origins"] == 3  # + NL
    assert f.loc["S4", "consignee_distinct_counterparties"] == 2  # shippers A, B
    assert f.loc["S4", "shipper_distinct_counterparties"] == 1  # A shipped only to C1
    assert f.loc["S4", "forwarder_distinct_counterparties"] == 0  # F2 is new


def test_outcomes_count_only_once_known(consignee_story):
    f = consignee_story
    # S1's seizure is known on day 12: not for S2/S3 (day 10), yes for S4
    assert f.loc["S2", "consignee_seizures"] == 0
    assert f.loc["S2", "consignee_seizure_rate"] == 1.0  # never inspected: exactly 1
    assert f.loc["S4", "consignee_seizures"] == 1
    assert f.loc["S4", "consignee_inspected_share"] == pytest.approx(2 / 3)
    # 1 seizure in 2 inspections, the overall rate (1 + 1) / (2 + 100):
    # (1 / (2 / 102) + 10) / (2 + 10) = 61 / 12
    assert f.loc["S4", "consignee_seizure_rate"] == pytest.approx(rate(1, 2, 1, 2))
    assert f.loc["S4", "consignee_seizure_rate"] == pytest.approx(61 / 12)
    assert f.loc["S4", "shipper_seizures"] == 1  # shipper A's S1


def test_missing_and_unseen_parties(consignee_story):
    f = consignee_story
    # no forwarder declared on S5: every forwarder feature is missing
    assert math.isnan(f.loc["S5", "forwarder_shipments_total"])
    assert math.isnan(f.loc["S5", "forwarder_seizure_rate"])
    # forwarder F2 is declared but never seen: zero counts, no first-seen date
    assert f.loc["S4", "forwarder_shipments_total"] == 0
    assert math.isnan(f.loc["S4", "forwarder_days_since_first"])
    assert f.loc["S4", "forwarder_seizure_rate"] == 1.0  # the overall rate, whatever it is
    # no recipient code anywhere
    assert f["recipient_shipments_total"].isna().all()


def test_places_and_commodities_learned_from_outcomes(consignee_story):
    f = consignee_story
    assert f.loc["S1", "origin_risk"] == 1.0
    # S5 from EC: S1 (EC) inspected and seized, S3 (EC) not inspected
    assert f.loc["S5", "origin_risk"] == pytest.approx(rate(1, 1, 1, 2))
    assert f.loc["S5", "origin_risk"] == pytest.approx(61 / 11)
    # S4 from NL: never inspected -> as risky as traffic overall, exactly 1
    assert f.loc["S4", "origin_risk"] == 1.0
    # ECGYE seizure known on day 12: within 90 days of day 40, not of day 400
    assert f.loc["S4", "loading_port_seizures_90d"] == 1
    assert f.loc["S5", "loading_port_seizures_90d"] == 0
    assert f.loc["S4", "loading_port_risk"] == pytest.approx(rate(1, 1, 1, 2))
    # same HS code declared three times before S4
    assert f.loc["S4", "hs_code_shipments"] == 3
    assert f.loc["S1", "hs_code_shipments"] == 0


def test_change_features(consignee_story):
    f = consignee_story
    # S2: same phone (after normalisation), same address, same forwarder, known pair
    assert (f.loc["S2", "consignee_phone_new"], f.loc["S2", "consignee_address_new"]) == (0, 0)
    assert f.loc["S2", "consignee_forwarder_new"] == 0
    assert f.loc["S2", "shipper_consignee_new_pair"] == 0
    # S3 writes phone and address differently: still the same after normalisation
    assert (f.loc["S3", "consignee_phone_new"], f.loc["S3", "consignee_address_new"]) == (0, 0)
    assert f.loc["S3", "shipper_consignee_new_pair"] == 1  # B -> C1 first time
    # S4: new phone and forwarder for an established consignee
    s4 = f.loc["S4"]
    assert (s4["consignee_phone_new"], s4["consignee_address_new"]) == (1, 0)
    assert s4["consignee_forwarder_new"] == 1
    assert s4["consignee_forwarder_share"] == 0
    assert s4["shipper_consignee_shipments"] == 2  # S1, S2
    # S1 has no history to compare with; S5 declares no phone
    assert math.isnan(f.loc["S1", "consignee_phone_new"])
    assert math.isnan(f.loc["S5", "consignee_phone_new"])
    assert math.isnan(f.loc["S5", "consignee_forwarder_share"])


def test_value_per_kg_against_earlier_heading():
    shipments = make_shipments(
        {"day": 0, "declared_value_usd": 1000.0, "declared_value": 1000.0},  # 1 USD/kg
        {"day": 1, "declared_value_usd": 3000.0, "declared_value": 3000.0},  # 3 USD/kg
        {"day": 2, "declared_value_usd": 100.0, "declared_value": 100.0, "origin_country": "EC"},
        {"day": 3, "hs_code": "0901"},
    )
    f = both_ways(shipments, make_outcomes())
    assert math.isnan(f.loc["S1", "value_per_kg_vs_heading"])
    assert f.loc["S2", "value_per_kg_vs_heading"] == pytest.approx(math.log1p(3) - math.log1p(1))
    mean = (math.log1p(1) + math.log1p(3)) / 2
    assert f.loc["S3", "value_per_kg_vs_heading"] == pytest.approx(math.log1p(0.1) - mean)
    assert math.isnan(f.loc["S3", "value_per_kg_vs_heading_origin"])  # first from EC
    assert math.isnan(f.loc["S4", "value_per_kg_vs_heading"])  # unseen heading


def test_transshipment_risk_is_the_riskiest_port():
    shipments = make_shipments(
        {"day": 0, "transshipment_ports": "PAPTY"},
        {"day": 1, "transshipment_ports": "ESALG"},
        {"day": 10, "transshipment_ports": "ESALG|PAPTY"},
        {"day": 11},
    )
    outcomes = make_outcomes(("S1", 0.5, 2, "seized"), ("S2", 1.5, 3, "clean"))
    f = both_ways(shipments, outcomes)
    assert f.loc["S3", "transshipment_risk"] == pytest.approx(rate(1, 1, 1, 2))
    assert f.loc["S3", "n_transshipments"] == 2
    assert math.isnan(f.loc["S4", "transshipment_risk"])
    assert f.loc["S4", "n_transshipments"] == 0


# -- windows on the UTC-day grid ----------------------------------------------------------------
def at(stamp: str) -> pd.Timestamp:
    return pd.Timestamp(stamp)


def boundary_world():
    """Events at 23:59:59 and 00:00:00 of the days where 7-day shipment windows and 90-day
    seizure windows start, and shipments asking exactly there."""
    shipments = make_shipments(
        # consignee W: 7-day windows of the shipments on 2026-01-20/21 start on 01-13/14
        {"id": "E1", "consignee_id": "W", "declared_at": at("2026-01-12 23:59:59")},
        {"id": "E2", "consignee_id": "W", "declared_at": at("2026-01-13 00:00:00")},
        {"id": "E3", "consignee_id": "W", "declared_at": at("2026-01-13 09:00:00")},
        {"id": "E4", "consignee_id": "W", "declared_at": at("2026-01-13 11:00:00")},
        {"id": "Q1", "consignee_id": "W", "declared_at": at("2026-01-20 10:00:00")},
        {"id": "Q3", "consignee_id": "W", "declared_at": at("2026-01-20 23:59:59")},
        {"id": "Q2", "consignee_id": "W", "declared_at": at("2026-01-21 00:00:00")},
        # loading port BRSSZ: two seizures known at 01-05 23:59:59 and 01-06 00:00:00
        {"id": "X1", "consignee_id": "X", "loading_port": "BRSSZ",
         "declared_at": at("2026-01-01 10:00")},
        {"id": "X2", "consignee_id": "X", "loading_port": "BRSSZ",
         "declared_at": at("2026-01-02 10:00")},
        *({"id": f"P{i}", "consignee_id": "Y", "loading_port": "BRSSZ", "declared_at": at(t)}
          for i, t in enumerate(("2026-01-06 00:00:00", "2026-04-05 23:59:59",
                                 "2026-04-06 00:00:00", "2026-04-06 23:59:59",
                                 "2026-04-07 00:00:00"))),
    )  # fmt: skip
    outcomes = make_outcomes(
        ("X1", at("2026-01-02"), at("2026-01-05 23:59:59"), "seized"),
        ("X2", at("2026-01-03"), at("2026-01-06 00:00:00"), "seized"),
    )
    return shipments, outcomes


def test_window_start_and_exit_are_the_utc_day_grid():
    day = NS_PER_DAY
    t = np.array([40 * day, 40 * day + 1, 41 * day - 1, 41 * day], dtype="int64")
    assert window_start(t, 30).tolist() == [10 * day, 10 * day, 10 * day, 11 * day]
    assert window_start(int(t[1]), 0) == 40 * day  # a 0-day window: the day so far
    assert window_exit(10 * day, 30) == window_exit(11 * day - 1, 30) == 41 * day
    # e is in the window as of t exactly when e < t < window_exit(e): the two definitions agree
    rng = np.random.default_rng(0)
    e = rng.integers(1_000 * day, 1_010 * day, 5_000)
    q = e + rng.integers(-2 * day, 40 * day, 5_000)
    for w in (7, 30):
        inside = (window_start(q, w) <= e) & (e < q)
        assert (inside == ((e < q) & (q < window_exit(e, w)))).all()
        assert inside.any() and not inside.all()


def test_windows_start_at_midnight_utc_of_the_days_before():
    f = both_ways(*boundary_world())  # numpy, online state and DuckDB agree
    # Q1 on 01-20 10:00: the window is 01-13 00:00 to Q1 - E2 (00:00:00) to E4, not E1
    # (23:59:59 the day before); a sliding window from 01-13 10:00 would hold E4 alone
    assert f.loc["Q1", "consignee_shipments_total"] == 4
    assert f.loc["Q1", "consignee_shipments_7d"] == 3
    # Q3 at 01-20 23:59:59: the same start, and Q1 of its own day
    assert f.loc["Q3", "consignee_shipments_7d"] == 4
    # Q2 at 01-21 00:00:00: the window moved to 01-14 00:00, Q2's day holds nothing yet
    assert f.loc["Q2", "consignee_shipments_total"] == 6
    assert f.loc["Q2", "consignee_shipments_7d"] == 2
    assert f.loc["Q2", "consignee_shipments_30d"] == 6
    # seizures at BRSSZ known at 01-05 23:59:59 (X1) and 01-06 00:00:00 (X2)
    seized = f.loc[[f"P{i}" for i in range(5)], "loading_port_seizures_90d"].tolist()
    # P0 at 01-06 00:00:00: X2 is known at that very instant, not before it
    # P1 at 04-05 23:59:59: the window starts 01-05 00:00, both in
    # P2 at 04-06 00:00:00 and P3 at 04-06 23:59:59: it starts 01-06 00:00, X1 out, X2 in
    # P4 at 04-07 00:00:00: it starts 01-07 00:00, both out
    assert seized == [1, 2, 1, 1, 0]
    assert f.loc["P4", "loading_port_seizures_90d"] == f.loc["P4", "departure_seizures_90d"]


def test_a_key_without_seizures_holds_still_while_the_overall_rate_moves():
    """The relative rate of a key never seized does not depend on the day's overall rate: a
    key never inspected is exactly 1, one inspected 3 times without a seizure exactly 10 / 13
    - so the served day's mass stays on the values the model was trained on."""
    priors = np.array([0.01, 0.0209, 0.02293, 0.02335, 0.0240, 0.5])
    zeros = np.zeros(len(priors))
    assert (relative_rate(zeros, zeros, priors) == 1.0).all()
    assert (relative_rate(zeros, zeros + 3.0, priors) == SMOOTHING / (3.0 + SMOOTHING)).all()
    # a seizure is weighed against the overall rate: rarer seizures overall, higher ratio
    one = relative_rate(zeros + 1.0, zeros + 3.0, priors)
    assert (np.diff(one) < 0).all()
    assert one[0] == pytest.approx((1 / 0.01 + SMOOTHING) / (3 + SMOOTHING))
    assert math.isnan(relative_rate(np.nan, np.nan, 0.02))  # a missing key stays missing
