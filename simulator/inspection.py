"""The inspection process that turns hidden truth into biased, late, noisy labels.

Each day and mode, officers can inspect ``inspection_capacity`` of the shipments that arrived.
A legacy rules policy (weighted red flags, :data:`LEGACY_RULES`) fills most of that capacity
with the highest-scoring shipments; ``random_share`` of it goes to uniformly random shipments
(exploration). An inspection finds drugs that are there with a probability that depends on the
method (:data:`DETECTION`) and on how well the scheme conceals them; the result becomes known
days later. Inspections or results after the end of the period are not written: at "today"
they are still unknown.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from simulator.config import SimConfig


class Rule(NamedTuple):
    name: str
    weight: int
    meaning: str


HIGH_RISK_COUNTRIES: Final = ("CO", "EC", "PE", "BO", "VE", "BR", "MX", "PY")
TRANSIT_HUBS: Final = ("PABLB", "PAMIT", "PAONX", "JMKIN", "DOCAU")
COVER_CHAPTERS: Final = ("03", "06", "08", "09", "44")
GENERIC_WORDS: Final = (
    "GIFT", "SAMPLE", "PARTS", "ACCESSORIES", "PERSONAL EFFECTS", "CLOTHES", "DOCUMENTS",
)  # fmt: skip
EXPRESS_SOURCE_COUNTRIES: Final = ("US", "CA", "NL", "DE", "TH", "VN", "MX", "LA")

LEGACY_RULES: Final = (
    Rule("high_risk_origin", 3, "sea/air: origin or departure country in " + "/".join(
        HIGH_RISK_COUNTRIES)),
    Rule("transit_hub", 1, "transshipment through " + "/".join(TRANSIT_HUBS)),
    Rule("reefer_high_risk", 1, "reefer container from a high-risk origin"),
    Rule("cover_commodity", 1, "sea/air: HS chapter " + "/".join(COVER_CHAPTERS)
         + " (fish, flowers, fruit, coffee, charcoal/wood)"),
    Rule("cash_payment", 2, "payment method is cash"),
    Rule("generic_description", 1, "goods described only as gift, sample, parts, ..."),
    Rule("near_de_minimis", 1, "express: declared value 80-100 % of the duty-free threshold "
         "(USD 150; USD 200 from the US)"),
    Rule("express_source_country", 2, "express from " + "/".join(EXPRESS_SOURCE_COUNTRIES)),
    Rule("low_value_per_kg", 1, "sea/air: declared value below USD 0.30 per kg"),
    Rule("express_no_platform", 1, "express parcel not bought on a known platform"),
)  # fmt: skip
"""The legacy targeting rules and their exact weights: the rules score is the sum of the
weights of the flags a shipment raises. It reads only the shipment itself (no history, no
network), like the static profiles of older targeting systems."""

MIN_RULE_SCORE: Final = 2
"""Shipments scoring below this are never selected by the rules (only at random)."""

DETECTION: Final = {"document": 0.30, "x-ray": 0.70, "physical": 0.92}
"""Probability that an inspection of a given method finds drugs that are present."""

CONCEALMENT: Final = {"rip_on_rip_off": 0.8, "route_displacement": 0.9}
"""Multiplier on the detection probability for schemes that hide drugs well (others: 1)."""


def rule_flags(shipments: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per legacy rule (True = the shipment raises the flag)."""
    s = shipments
    express = (s["mode"] == "express").to_numpy()
    cargo = ~express
    high_risk = (
        s["origin_country"].isin(HIGH_RISK_COUNTRIES) | s["departure_country"].isin(
            HIGH_RISK_COUNTRIES)
    ).to_numpy()  # fmt: skip
    hubs = s["transshipment_ports"].fillna("")
    transit = np.zeros(len(s), bool)
    for hub in TRANSIT_HUBS:
        transit |= hubs.str.contains(hub, regex=False).to_numpy()
    value = s["declared_value_usd"].to_numpy()
    threshold = np.where(s["origin_country"].to_numpy() == "US", 200.0, 150.0)
    desc = s["goods_description"].fillna("").str.upper()
    flags = {
        "high_risk_origin": cargo & high_risk,
        "transit_hub": transit,
        "reefer_high_risk": (s["container_type"] == "reefer").to_numpy() & high_risk,
        "cover_commodity": cargo & s["hs_code"].str[:2].isin(COVER_CHAPTERS).to_numpy(),
        "cash_payment": (s["payment_method"] == "cash").to_numpy(),
        "generic_description": desc.isin(GENERIC_WORDS).to_numpy(),
        "near_de_minimis": express & (value >= 0.8 * threshold) & (value <= threshold),
        "express_source_country": express
        & s["origin_country"].isin(EXPRESS_SOURCE_COUNTRIES).to_numpy(),
        "low_value_per_kg": cargo & (value < 0.30 * s["gross_weight_kg"].to_numpy()),
        "express_no_platform": express & s["platform"].isna().to_numpy(),
    }
    return pd.DataFrame(flags, index=s.index)


def rule_score(shipments: pd.DataFrame) -> np.ndarray:
    """The legacy rules score of each shipment (sum of the weights of its flags)."""
    flags = rule_flags(shipments)
    weights = np.array([r.weight for r in LEGACY_RULES])
    return flags[[r.name for r in LEGACY_RULES]].to_numpy().astype(np.int64) @ weights


def _stochastic_round(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    base = np.floor(x)
    return (base + (rng.random(len(x)) < (x - base))).astype(np.int64)


def select(
    shipments: pd.DataFrame, score: np.ndarray, config: SimConfig, rng: np.random.Generator
) -> np.ndarray:
    """Which shipments are picked for inspection: 0 = not, 1 = by the rules, 2 = at random.

    Capacity is shared per mode and arrival day in proportion to that day's arrivals; only
    shipments that arrived before the end of the period can be picked.
    """
    n = len(shipments)
    arrival = shipments["arrival_at"].to_numpy()
    eligible = arrival < np.datetime64(config.end)
    day = ((arrival - np.datetime64(config.start)) // np.timedelta64(1, "D")).astype(np.int64)
    mode = shipments["mode"].map({"sea": 0, "air": 1, "express": 2}).to_numpy()
    group = np.where(eligible, (day + 1000) * 3 + mode, -1)
    groups, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    capacity = _stochastic_round(rng, counts * config.inspection_capacity)
    n_random = _stochastic_round(rng, capacity * config.random_share)
    n_rule = capacity - n_random
    chosen = np.zeros(n, np.int8)

    tiebreak = rng.random(n)
    order = np.lexsort((tiebreak, -score, inverse))
    first = np.searchsorted(inverse[order], np.arange(len(groups)))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - first[inverse[order]]
    by_rule = (rank < n_rule[inverse]) & (score >= MIN_RULE_SCORE) & (group >= 0)
    chosen[by_rule] = 1

    key = np.where(by_rule | (group < 0), 2.0, rng.random(n))
    order = np.lexsort((key, inverse))
    rank[order] = np.arange(n) - first[inverse[order]]
    by_random = (rank < n_random[inverse]) & (key < 2.0)
    chosen[by_random] = 2
    return chosen


def inspect(
    shipments: pd.DataFrame,
    truth: pd.DataFrame,
    quantity: np.ndarray,
    config: SimConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict]:
    """Select, inspect and report: the outcomes table as known at the end of the period, plus
    facts for the report (rule scores and every selection, including unknown results)."""
    score = rule_score(shipments)
    chosen = select(shipments, score, config, rng)
    idx = np.flatnonzero(chosen > 0)
    mode = shipments["mode"].to_numpy()[idx]
    by = np.where(chosen[idx] == 1, "rule", "random")
    sc = score[idx]
    m = len(idx)
    u = rng.random(m)
    method = np.where(
        by == "rule",
        np.where(
            mode == "express",
            np.where(sc >= 5, "physical", "x-ray"),
            np.where(sc >= 6, "physical", np.where(sc >= 4, "x-ray", "document")),
        ),
        np.where(
            mode == "express",
            np.where(u < 0.85, "x-ray", "physical"),
            np.where(u < 0.35, "document", np.where(u < 0.8, "x-ray", "physical")),
        ),
    )
    hours = np.where(
        mode == "sea",
        rng.lognormal(np.log(30), 0.5, m),
        np.where(mode == "air", rng.lognormal(np.log(8), 0.5, m), rng.lognormal(np.log(3), 0.6, m)),
    )
    arrival = shipments["arrival_at"].to_numpy()[idx]
    inspected_at = arrival + (hours * 3600).astype("int64").astype("timedelta64[s]")

    illicit = truth["illicit"].to_numpy()[idx]
    scheme = truth["scheme"].to_numpy()[idx]
    conceal = pd.Series(scheme).map(CONCEALMENT).fillna(1.0).to_numpy(dtype=float)
    p_find = pd.Series(method).map(DETECTION).to_numpy(dtype=float) * conceal
    found = illicit & (rng.random(m) < p_find)
    delay_days = np.where(
        found,
        np.clip(rng.lognormal(np.log(3), 0.5, m), 0.5, 20),
        np.where(
            method == "document",
            rng.uniform(0.05, 1, m),
            np.where(method == "x-ray", rng.uniform(0.2, 2, m), rng.uniform(1, 5, m)),
        ),
    )
    result_at = inspected_at + (delay_days * 86_400).astype("int64").astype("timedelta64[s]")
    drug = truth["drug"].to_numpy()[idx]
    outcomes = pd.DataFrame(
        {
            "shipment_id": shipments["shipment_id"].to_numpy()[idx],
            "inspected_at": inspected_at,
            "result_at": result_at,
            "result": np.where(found, "seized", "clean"),
            "drug": np.where(found, drug, None),
            "quantity_kg": np.where(found, np.round(quantity[idx], 3), np.nan),
            "method": method,
            "selected_by": by,
        }
    )
    end = np.datetime64(config.end)
    known = result_at < end
    facts = {
        "score": score,
        "chosen": chosen,
        "selected": idx,
        "known": known,
        "found": found,
        "inspected_by_end": inspected_at < end,
    }
    return outcomes.loc[known].sort_values("result_at").reset_index(drop=True), facts
