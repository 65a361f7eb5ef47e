"""The simulated world: shape, statistics, schemes, end of period and absence of leaks."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.contracts import (
    OUTCOME_COLUMNS,
    SHIPMENT_COLUMNS,
    validate_outcomes,
    validate_shipments,
)
from simulator import SCHEMES, SimConfig, simulate
from simulator.config import DEFAULT_SCHEME_MIX, SimConfigError, parse_scheme_mix
from simulator.report import format_report, summarise

from .conftest import END

# -- shape ------------------------------------------------------------------------------------


def test_tables_follow_the_contract_exactly(small_world):
    s, o, t = small_world.shipments, small_world.outcomes, small_world.truth
    assert tuple(s.columns) == SHIPMENT_COLUMNS
    assert tuple(o.columns) == OUTCOME_COLUMNS
    # validating again changes nothing: names, dtypes and values are already the contract's
    pd.testing.assert_frame_equal(validate_shipments(s), s)
    pd.testing.assert_frame_equal(validate_outcomes(o), o)
    assert list(t.columns) == ["shipment_id", "illicit", "drug", "scheme"]
    assert t["shipment_id"].tolist() == s["shipment_id"].tolist()
    assert set(o["selected_by"]) == {"rule", "random"}
    assert set(o["method"]) == {"document", "x-ray", "physical"}


def test_codes_look_real(small_world):
    s = small_world.shipments
    assert (
        s["discharge_port"].isin(["KRPUS", "KRINC", "KRKAN", "KRUSN", "KRPTK", "ICN", "PUS"]).all()
    )
    express = s[s["mode"] == "express"]
    assert express["recipient_customs_code"].str.fullmatch(r"P[0-9]{12}").all()
    assert express["bill_of_lading"].isna().all() and express["air_waybill"].notna().all()
    sea = s[s["mode"] == "sea"]
    assert sea["container_id"].str.fullmatch(r"[A-Z]{3}U[0-9]{7}").all()
    assert sea["loading_port"].str.fullmatch(r"[A-Z]{5}").all()
    air = s[s["mode"] == "air"]
    assert air["air_waybill"].str.fullmatch(r"[0-9]{3}-[0-9]{8}").all()
    assert air["flight"].notna().all() and air["container_id"].isna().all()
    assert s["declared_value_usd"].gt(0).all()


def test_parties_have_histories(small_world):
    s = small_world.shipments
    per_consignee = s.groupby("consignee_id").size()
    assert per_consignee.max() >= 20  # heavy tail: some importers are very active
    assert (per_consignee == 1).mean() > 0.2  # and many appear once
    # one party id, one name (except identities borrowed by the borrowed-code scheme)
    names = s[s["mode"] != "express"].groupby("shipper_id")["shipper_name"].nunique()
    assert (names == 1).all()


# -- statistics --------------------------------------------------------------------------------


def test_mode_mix_prevalence_and_inspection_rates(small_world, small_config):
    s, o, t = small_world.shipments, small_world.outcomes, small_world.truth
    share = s["mode"].value_counts(normalize=True)
    for mode, expected in small_config.mode_shares().items():
        assert abs(share[mode] - expected) < 0.03, mode
    assert 0.002 <= t["illicit"].mean() <= 0.0045  # configured 0.3 %
    by_mode = t["illicit"].groupby(s["mode"]).mean()
    assert by_mode["sea"] > by_mode["air"] > by_mode["express"] > 0
    assert by_mode["sea"] < 0.02

    arrived = (s["arrival_at"] < END).sum()
    selected = (small_world.facts["chosen"] > 0).sum()
    assert 0.027 <= selected / arrived <= 0.033  # capacity 3 %
    random_share = (o["selected_by"] == "random").mean()
    assert 0.07 <= random_share <= 0.13  # 10 % of the capacity

    seized = o["result"] == "seized"
    rule_hit = seized[o["selected_by"] == "rule"].mean()
    random_hit = seized[o["selected_by"] == "random"].mean()
    assert 0.01 <= rule_hit <= 0.08
    assert random_hit < rule_hit


def test_labels_are_noisy_and_late(small_world):
    o, t = small_world.outcomes, small_world.truth
    truth = o.merge(t, on="shipment_id")
    # drugs are sometimes missed: an illicit shipment inspected with a clean result
    assert ((truth["result"] == "clean") & truth["illicit"]).any()
    # a seizure is never invented
    assert truth.loc[truth["result"] == "seized", "illicit"].all()
    seized = truth[truth["result"] == "seized"]
    assert (seized["drug_x"] == seized["drug_y"]).all()
    delay = (o["result_at"] - o["inspected_at"]).dt.total_seconds() / 86_400
    assert delay.min() >= 0 and delay.median() > 0.3
    assert delay[o["result"] == "seized"].median() > 1.5
    assert (o["inspected_at"] >= small_world.shipments.set_index("shipment_id").loc[
        o["shipment_id"], "arrival_at"].to_numpy()).all()  # fmt: skip


def test_detection_depends_on_method(small_world):
    o, t = small_world.outcomes, small_world.truth
    m = o.merge(t, on="shipment_id")
    found = m[m["illicit"]].groupby("method")["result"].apply(lambda r: (r == "seized").mean())
    assert found.get("physical", 1) >= found.get("document", 0)


# -- schemes ------------------------------------------------------------------------------------


def test_every_scheme_present_at_defaults(small_world):
    counts = small_world.truth["scheme"].value_counts()
    total = counts.sum()
    for scheme in SCHEMES:
        assert counts.get(scheme, 0) > 0, scheme
        share = counts[scheme] / total
        assert share == pytest.approx(DEFAULT_SCHEME_MIX[scheme], abs=0.08), scheme
    t = small_world.truth
    assert (t["scheme"].notna() == t["illicit"]).all()
    assert (t["drug"].notna() == t["illicit"]).all()


def test_schemes_leave_their_signatures(small_world):
    s, t = small_world.shipments, small_world.truth
    scheme = t["scheme"]
    phones_per = s.groupby("consignee_phone")["consignee_id"].nunique()
    net = s[scheme == "express_network"]
    legit_express = s[(s["mode"] == "express") & ~t["illicit"]]
    # (purchasing agents' office phones are shared too, so compare typical parcels)
    assert phones_per.loc[net["consignee_phone"]].median() > 2 * phones_per.loc[
        legit_express["consignee_phone"]].median()  # fmt: skip
    # borrowed codes: one customs code, several phones
    code_phones = s.groupby("recipient_customs_code")["consignee_phone"].nunique()
    borrowed = s[scheme == "borrowed_code"]
    assert code_phones.loc[borrowed["recipient_customs_code"]].mean() > code_phones.loc[
        legit_express["recipient_customs_code"]].mean()  # fmt: skip
    # rip-on/rip-off: reefers from high-risk ports, parties that also ship clean cargo
    rip = s[scheme == "rip_on_rip_off"]
    assert (rip["container_type"] == "reefer").all()
    assert rip["shipper_id"].isin(s.loc[~t["illicit"], "shipper_id"]).mean() > 0.9
    # value anomalies: value per kg far below the same HS code's legitimate median
    vpk = s["declared_value_usd"] / s["gross_weight_kg"]
    legit_median = vpk[~t["illicit"]].groupby(s["hs_code"]).median()
    va = s[scheme == "value_anomaly"]
    ratio = vpk[va.index] / legit_median.reindex(va["hs_code"]).to_numpy()
    assert ratio.median() < 0.4


def test_route_displacement_moves_ports_only_with_drift():
    days = 40
    common = dict(days=days, shipments_per_day=600, seed=3, end=END, prevalence=0.01)
    for drift in (True, False):
        w = simulate(SimConfig(drift=drift, **common))
        rd = w.shipments[w.truth["scheme"] == "route_displacement"]
        late = rd["declared_at"] >= END - pd.Timedelta(days=days * 0.5)  # drift_at = 0.5
        before_ports = {"ECGYE", "COTRB"}
        assert set(rd.loc[~late, "loading_port"]) <= before_ports
        if drift:
            assert not set(rd.loc[late, "loading_port"]) & before_ports
        else:
            assert set(rd.loc[late, "loading_port"]) <= before_ports


def test_scheme_mix_switches_schemes_off():
    mix = parse_scheme_mix("express_network=1,rip_on_rip_off=0")
    assert mix["rip_on_rip_off"] == 0 and mix["express_network"] == 1
    w = simulate(SimConfig(days=14, shipments_per_day=500, seed=1, end=END, scheme_mix=mix))
    assert "rip_on_rip_off" not in set(w.truth["scheme"].dropna())
    w = simulate(SimConfig(days=14, shipments_per_day=500, seed=1, end=END, prevalence=0))
    assert not w.truth["illicit"].any()
    assert (w.outcomes["result"] == "clean").all()


# -- end of period -------------------------------------------------------------------------------


def test_end_of_period_holds_unknowns(small_world):
    s, o, t, f = (small_world.shipments, small_world.outcomes, small_world.truth,
                  small_world.facts)  # fmt: skip
    assert s["declared_at"].max() < END
    assert s["declared_at"].min() >= END - pd.Timedelta(days=28)
    assert o["result_at"].max() < END and o["inspected_at"].max() < END
    not_arrived = s["arrival_at"] >= END
    assert not_arrived.sum() > 0
    assert not s.loc[not_arrived, "shipment_id"].isin(o["shipment_id"]).any()
    # selected shipments whose result is not known yet: no outcome row, but truth has them
    pending = np.setdiff1d(f["selected"], np.flatnonzero(s["shipment_id"].isin(o["shipment_id"])))
    assert len(pending) > 0
    assert len(t) == len(s)
    # the last day still has fresh, uninspected work
    last_day = s["declared_at"] >= END - pd.Timedelta(days=1)
    assert last_day.sum() > 0
    assert s.loc[last_day, "shipment_id"].isin(o["shipment_id"]).mean() < 0.01


# -- no leakage -----------------------------------------------------------------------------------


def test_truth_never_leaks_into_shipments_or_outcomes(small_world):
    s, o = small_world.shipments, small_world.outcomes
    for frame in (s, o):
        assert not {"illicit", "scheme"} & set(frame.columns)
    words = [*SCHEMES, "illicit", "scheme", "smuggl"]
    for col in s.columns:
        if s[col].dtype == "str":
            text = s[col].dropna().str.lower()
            for word in words:
                assert not text.str.contains(word.replace("_", " "), regex=False).any(), col
                assert not text.str.contains(word, regex=False).any(), col
    # outcomes name a drug only for seizures (found), never for uninspected truth
    assert o.loc[o["result"] == "clean", "drug"].isna().all()


def _shape(value: str) -> str:
    return re.sub(r"[0-9]", "9", value)


@pytest.mark.parametrize(
    "column",
    ["shipment_id", "shipper_id", "consignee_id", "forwarder_id", "bill_of_lading",
     "container_id", "air_waybill", "order_ref", "recipient_customs_code"],
)  # fmt: skip
def test_identifiers_carry_no_shortcut(small_world, column):
    """Ids and references of illicit shipments have the same format as legitimate ones and
    their numbers do not separate them (AUC of the number close to 0.5 within each mode)."""
    s, t = small_world.shipments, small_world.truth
    values = s[column]
    present = values.notna()
    illicit = t["illicit"].to_numpy()
    legit_shapes = set(values[present & ~illicit].map(_shape))
    assert set(values[present & illicit].map(_shape)) <= legit_shapes
    digits = values[present].str.replace(r"[^0-9]", "", regex=True).str[-9:].astype(float)
    for mode in ("sea", "air", "express"):
        rows = (s.loc[present, "mode"] == mode).to_numpy()
        y = illicit[present.to_numpy()][rows]
        if y.sum() < 5 or (~y).sum() < 5:
            continue
        ranks = digits[rows].rank().to_numpy()
        auc = (ranks[y].mean() - (y.sum() + 1) / 2) / (~y).sum()
        assert abs(auc - 0.5) < 0.2, (column, mode, auc)


def test_categorical_values_of_illicit_shipments_also_occur_in_legitimate_ones(small_world):
    """No value of a low-cardinality field is used only by smugglers (a scheme tag in
    disguise); values seen on at least three illicit shipments must appear in legitimate
    trade too."""
    s, t = small_world.shipments, small_world.truth
    illicit = t["illicit"].to_numpy()
    for col in ["carrier_id", "origin_country", "departure_country", "loading_port",
                "transshipment_ports", "discharge_port", "hs_code", "goods_description",
                "currency", "freight_terms", "payment_method", "container_type", "load_type",
                "platform", "flight", "vessel"]:  # fmt: skip
        counts = s.loc[illicit, col].value_counts()
        frequent = counts[counts >= 3].index
        legit_values = set(s.loc[~illicit, col].dropna())
        only_illicit = [v for v in frequent if v not in legit_values]
        assert not only_illicit, (col, only_illicit)


# -- config and report ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": 0}, "days"),
        ({"shipments_per_day": 10}, "shipments_per_day"),
        ({"prevalence": 0.5}, "prevalence"),
        ({"inspection_capacity": 0}, "inspection_capacity"),
        ({"random_share": 1.5}, "random_share"),
        ({"scheme_mix": {"smuggling": 1.0}}, "scheme_mix"),
        ({"scheme_mix": {"front_company": -1.0}}, "scheme_mix"),
        ({"end": pd.Timestamp("1900-01-01")}, "end"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(SimConfigError, match=field):
        SimConfig(**kwargs)


def test_report_shows_baselines(small_world):
    summary = summarise(small_world)
    assert summary["observed"]["rule"]["inspections"] > summary["observed"]["random"]["inspections"]
    assert set(summary["by_scheme"]) == set(SCHEMES)
    text = format_report(summary)
    for needle in ("| rule |", "| random |", "| express |", "| rip_on_rip_off |", "| 1% |"):
        assert needle in text
