"""The two baselines every model is measured against, on the same rows.

* **Random selection** - what an officer gets by opening shipments at random: precision equals
  the base rate and recall equals the capacity. Represented by a constant score, which the
  tie-aware metrics in :mod:`training.metrics` turn into exactly that expectation (no seed, no
  sampling noise).
* **Rules** - a weighted red-flag rule set of the kind legacy targeting systems use: a fixed
  list of high-risk source and transit countries, reefer containers, cover commodities, cash
  payment, generic goods descriptions and a consignee with little or no history. Each flag adds
  its weight; the shipment's rule score is the sum. The lists come from public customs
  guidance (see ``docs/training.md``), not from the data, so the baseline learns nothing.

The rules read the shipments table only; "new consignee" is counted point in time (earlier
shipments of the same consignee in the same data).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

HIGH_RISK_COUNTRIES: Final = frozenset(
    {
        # cocaine production and its main departure countries
        "CO", "EC", "PE", "BO", "BR", "VE",
        # Caribbean and Central-American transit
        "PA", "DO", "JM", "HT", "TT", "GY", "SR", "CR", "GT", "HN", "MX",
        # West-African transit
        "NG", "GH", "GN", "GW", "SN", "CI", "BJ", "TG", "SL",
        # heroin and methamphetamine source regions
        "AF", "PK", "IR", "MM", "LA",
    }
)  # fmt: skip
"""Countries a legacy rule set flags as narcotics source or transit (ISO 3166 alpha-2)."""

COVER_HS_CHAPTERS: Final = frozenset({"03", "06", "08", "09", "20", "44", "94"})
"""Fish, cut flowers, fresh fruit (bananas), coffee, fruit preparations, charcoal and wood,
furniture: goods that have often hidden cocaine loads."""

GENERIC_WORDS: Final = ("gift", "sample", "parts", "cosmetic", "personal effects", "documents")
"""Vague goods descriptions typical of concealment in express parcels."""

RULES: Final = {
    "high_risk_origin": 3.0,
    "high_risk_route": 2.0,
    "reefer": 1.5,
    "cover_commodity": 1.5,
    "cash_payment": 1.0,
    "new_consignee": 2.0,
    "few_prior_shipments": 1.0,
    "generic_description": 1.0,
}
"""Weight of each red flag; a shipment's rule score is the sum of its flags' weights."""


def _country_of_port(ports: pd.Series) -> pd.Series:
    """Country of a UN/LOCODE port (``ECGYE`` -> ``EC``); empty for 3-letter airport codes,
    which do not name their country."""
    codes = ports.fillna("").astype(str)
    return codes.str[:2].where(codes.str.len() == 5, "")


def rule_flags(shipments: pd.DataFrame, consignee_prior: np.ndarray | None = None) -> pd.DataFrame:
    """Each red flag of :data:`RULES` as a boolean column, one row per shipment (same index).

    ``consignee_prior``: each shipment's earlier shipments of its consignee (as declared, NaN
    when blank) counted over a longer history than ``shipments`` - the whole history when
    training reads only the rows it needs; default: counted within ``shipments``."""
    s = shipments
    origin = s["origin_country"].astype(str).isin(HIGH_RISK_COUNTRIES)
    departure = s["departure_country"].astype(str).isin(HIGH_RISK_COUNTRIES)
    loading = _country_of_port(s.get("loading_port", pd.Series("", index=s.index)))
    transship = s.get("transshipment_ports", pd.Series("", index=s.index)).fillna("").astype(str)
    via_risky = transship.str.split("|").map(
        lambda ports: any(len(p) == 5 and p[:2] in HIGH_RISK_COUNTRIES for p in ports)
    )
    # consignee history inside this data, strictly before each shipment (ties: earlier id)
    if consignee_prior is None:
        order = s.sort_values(["declared_at", "shipment_id"], kind="stable")
        prior = order.groupby("consignee_id", sort=False).cumcount().reindex(s.index)
    else:
        prior = pd.Series(np.asarray(consignee_prior, dtype="float64"), index=s.index)
    description = s["goods_description"].fillna("").astype(str).str.lower()
    generic = np.zeros(len(s), dtype=bool)
    for word in GENERIC_WORDS:
        generic |= description.str.contains(word, regex=False).to_numpy()
    return pd.DataFrame(
        {
            "high_risk_origin": (origin | departure).to_numpy(),
            "high_risk_route": (
                (loading.isin(HIGH_RISK_COUNTRIES) & ~(origin | departure)) | via_risky
            ).to_numpy(),
            "reefer": (s["container_type"] == "reefer").fillna(False).to_numpy(dtype=bool),
            "cover_commodity": s["hs_code"].astype(str).str[:2].isin(COVER_HS_CHAPTERS).to_numpy(),
            "cash_payment": (s["payment_method"] == "cash").fillna(False).to_numpy(dtype=bool),
            "new_consignee": (prior == 0).to_numpy(),
            "few_prior_shipments": ((prior > 0) & (prior < 3)).to_numpy(),
            "generic_description": generic,
        },
        index=s.index,
    )


def rules_score(shipments: pd.DataFrame, consignee_prior: np.ndarray | None = None) -> np.ndarray:
    """The legacy rule score of each shipment (sum of the weights of its red flags);
    ``consignee_prior`` as :func:`rule_flags` takes it."""
    flags = rule_flags(shipments, consignee_prior)
    weights = np.array([RULES[name] for name in flags.columns])
    return flags.to_numpy(dtype=float) @ weights


def random_score(n: int) -> np.ndarray:
    """A constant score: under tie-aware metrics, exactly random selection's expectation."""
    return np.zeros(n, dtype=float)
