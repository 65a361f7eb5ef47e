"""Reading a shipment's own declaration: normalised keys and the manifest features of one row.

Everything that history, change and network features key on (party ids, phones, addresses,
places, commodity codes and their combinations) is normalised here, once, by small scalar
functions. The offline pipeline applies them to the *distinct* values of a column and the online
state to single values, so both paths produce the very same keys: letter case, surrounding or
repeated whitespace and phone punctuation never split one party into two.

The features computed here need nothing but the shipment itself (value per kg, dwell times,
de-minimis margin, generic wording...). Features that compare the shipment with earlier traffic
(risk of its origin, rarity of its HS code...) are point-in-time aggregates computed by
:mod:`features.history` over the keys prepared here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

import numpy as np
import pandas as pd

from features.contracts import PORT_SEPARATOR
from features.errors import ContractError

NS_PER_DAY: Final = 86_400 * 10**9

GENERIC_WORDS: Final = frozenset(
    {
        "gift",
        "gifts",
        "sample",
        "samples",
        "part",
        "parts",
        "spare",
        "accessories",
        "accessory",
        "goods",
        "general",
        "merchandise",
        "misc",
        "miscellaneous",
        "various",
        "personal",
        "effects",
        "items",
        "stuff",
        "products",
        "cosmetics",
        "documents",
        "stc",
        "fak",
    }
)
"""Words of vague goods descriptions used as cover ("gifts", "samples", "auto parts", "said to
contain", "freight all kinds"). A description is *generic* when at least half of its words are
in this set - a wording signal, not a list of risky commodities."""

DE_MINIMIS: Final = {
    "EUR": (150.0,),
    "GBP": (135.0,),
    "USD": (800.0,),
    "CAD": (150.0,),
    "AUD": (1000.0,),
    "CHF": (150.0,),
    "JPY": (10000.0,),
}
"""Customs de-minimis thresholds (value below which express parcels enter without duty or with
simplified declaration) by declaration currency; these are published legal values, not risk
lists. Values just below a threshold are a known splitting/undervaluation signal."""

DE_MINIMIS_USD: Final = (150.0, 800.0)
"""Thresholds checked on the USD value when the declaration currency has none of its own."""

NEAR_DE_MINIMIS: Final = 0.15
"""A declared value within this share below a threshold counts as *near* it."""

_TOKEN = re.compile(r"[a-z]+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_STOP: Final = frozenset({"and", "the", "for", "with", "of", "in", "on", "to", "from", "new"})
MAX_TOKENS: Final = 6
"""Only the first words of a goods description are compared with its HS chapter."""

KEY_SEPARATOR: Final = "|"


# -- scalar normalisation (shared by the offline and the online path) -------------------------
def is_missing(value: Any) -> bool:
    """True for None, NaN, NA and NaT - the ways a frame spells "not declared"."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def norm_text(value: Any) -> str | None:
    """An identifier or name as a key: case-folded, whitespace collapsed; empty -> missing."""
    if is_missing(value):
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def norm_phone(value: Any) -> str | None:
    """A phone number as a key: its digits only (spaces, dashes, brackets and '+' dropped)."""
    if is_missing(value):
        return None
    digits = "".join(ch for ch in str(value) if ch.isdigit())
    return digits or None


def norm_address(value: Any) -> str | None:
    """An address as a key: case-folded, punctuation dropped, whitespace collapsed."""
    if is_missing(value):
        return None
    text = _NON_ALNUM.sub(" ", str(value).casefold()).strip()
    return " ".join(text.split()) or None


def description_tokens(value: Any) -> tuple[str, ...]:
    """The first meaningful words of a goods description (lower case, letters only)."""
    if is_missing(value):
        return ()
    words = [w for w in _TOKEN.findall(str(value).casefold()) if len(w) >= 3 and w not in _STOP]
    return tuple(dict.fromkeys(words[:MAX_TOKENS]))


def port_list(value: Any) -> tuple[str, ...]:
    """Transshipment ports of a route as normalised codes, in travel order, without repeats."""
    if is_missing(value):
        return ()
    ports = (norm_text(p) for p in str(value).split(PORT_SEPARATOR))
    return tuple(dict.fromkeys(p for p in ports if p))


def join_key(*parts: str | None) -> str | None:
    """A combination key (e.g. origin x HS chapter); missing when any part is missing."""
    if any(p is None for p in parts):
        return None
    return KEY_SEPARATOR.join(parts)  # type: ignore[arg-type]


def route_key(mode: str | None, container: str | None, departure: str | None, port: str | None):
    """Mode, container type, departure country and loading port as one route key; missing
    container type or port (air, express) are spelled '-' so the route still exists."""
    if mode is None or departure is None:
        return None
    return KEY_SEPARATOR.join((mode, container or "-", departure, port or "-"))


# -- vectorised application ---------------------------------------------------------------
def map_distinct(values: Any, fn: Callable[[Any], Any]) -> np.ndarray:
    """Apply a scalar normaliser to each *distinct* value of a column (fast on repetitive
    columns) and return an object array aligned with ``values``."""
    series = pd.Series(values, copy=False)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques]
    mapped[-1] = fn(None)
    return mapped[codes]  # code -1 indexes the trailing slot (the missing value)


def join_keys(*arrays: Iterable[Any]) -> np.ndarray:
    """Element-wise :func:`join_key` over aligned object arrays."""
    return np.array([join_key(*parts) for parts in zip(*arrays, strict=True)], dtype=object)


def hs_prefix(hs: np.ndarray, digits: int) -> np.ndarray:
    """HS chapter (2), heading (4) or subheading (6) of normalised HS codes; missing when the
    declared code is shorter than that."""
    return np.array(
        [h[:digits] if h is not None and len(h) >= digits else None for h in hs], dtype=object
    )


SMALL: Final = 64
"""Frames up to this many rows are normalised value by value (the online path: a single
shipment); larger ones through their distinct values. Both apply the same scalar functions."""


def _values(s: pd.DataFrame | _OneRow, col: str) -> list | pd.Series:
    if isinstance(s, _OneRow):
        return s.get(col)
    if col not in s.columns:
        return [None] * len(s)
    return s[col].tolist() if len(s) <= SMALL else s[col]


class _OneRow:
    """A one-row frame read as plain values once (pandas column access costs more than the
    whole feature computation for a single shipment)."""

    def __init__(self, frame: pd.DataFrame):
        self.values = dict(zip(frame.columns, frame.iloc[0].tolist(), strict=True))
        self.columns = self.values

    def __len__(self) -> int:
        return 1

    def get(self, col: str) -> list:
        return [self.values.get(col)]


def _apply(values: list | pd.Series, fn: Callable[[Any], Any]) -> np.ndarray:
    if isinstance(values, list):
        out = np.empty(len(values), dtype=object)
        out[:] = [fn(v) for v in values]
        return out
    return map_distinct(values, fn)


def _times_ns(values: list | pd.Series) -> np.ndarray:
    """Timestamps as float nanoseconds (NaN for missing)."""
    if isinstance(values, list):
        return np.array(
            [math.nan if is_missing(v) else float(pd.Timestamp(v).value) for v in values],
            dtype="float64",
        )
    ts = pd.to_datetime(values)
    out = ts.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
    out[ts.isna().to_numpy()] = np.nan
    return out


def declared_ns(values: list | pd.Series) -> np.ndarray:
    """Declaration times as exact int64 nanoseconds (they are never missing)."""
    if isinstance(values, list):
        if any(is_missing(v) for v in values):
            raise ContractError("shipments: declared_at is missing on some rows")
        return np.array([pd.Timestamp(v).value for v in values], dtype="int64")
    times = pd.to_datetime(values)
    if times.isna().any():
        raise ContractError("shipments: declared_at is missing on some rows")
    return times.to_numpy(dtype="datetime64[ns]").astype("int64")


def _numbers(values: list | pd.Series) -> np.ndarray:
    if isinstance(values, list):
        return np.array([math.nan if is_missing(v) else float(v) for v in values], dtype="float64")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _upper(value: Any) -> str | None:
    return None if is_missing(value) else str(value).strip().upper() or None


def prepare(shipments: pd.DataFrame) -> dict[str, np.ndarray]:
    """The normalised keys and raw numbers of each shipment, as aligned numpy arrays.

    Keys are strings or None (missing); they are what history, change and network features
    group by. ``t`` is the declaration time (int64 ns), the shipment's own "now". Optional
    contract columns absent from the frame count as not declared.
    """
    s = _OneRow(shipments) if len(shipments) == 1 else shipments
    p: dict[str, np.ndarray] = {}
    p["t"] = declared_ns(_values(s, "declared_at"))
    ids = _values(s, "shipment_id")
    p["shipment_id"] = (
        np.array(ids, dtype=object) if isinstance(ids, list) else ids.to_numpy(dtype=object)
    )
    for col in ("booked_at", "departed_at", "arrival_at"):
        p[col] = _times_ns(_values(s, col))
    for col in ("declared_value", "declared_value_usd", "gross_weight_kg", "packages"):
        p[col] = _numbers(_values(s, col))
    for key, col in (
        ("shipper", "shipper_id"),
        ("consignee", "consignee_id"),
        ("forwarder", "forwarder_id"),
        ("declarant", "declarant_id"),
        ("recipient", "recipient_customs_code"),
        ("origin", "origin_country"),
        ("departure", "departure_country"),
        ("loading_port", "loading_port"),
        ("hs", "hs_code"),
        ("mode", "mode"),
        ("container_type", "container_type"),
        ("load_type", "load_type"),
        ("freight_terms", "freight_terms"),
        ("payment_method", "payment_method"),
        ("platform", "platform"),
    ):
        p[key] = _apply(_values(s, col), norm_text)
    p["currency"] = _apply(_values(s, "currency"), _upper)
    p["phone"] = _apply(_values(s, "consignee_phone"), norm_phone)
    p["address"] = _apply(_values(s, "consignee_address"), norm_address)
    p["ports"] = _apply(_values(s, "transshipment_ports"), port_list)
    p["tokens"] = _apply(_values(s, "goods_description"), description_tokens)
    derive_keys(p)
    return p


def derive_keys(p: dict[str, np.ndarray]) -> None:
    """Add the combination keys to prepared columns (in place on the dict, not on any frame)."""
    hs = p["hs"]
    p["hs2"] = hs_prefix(hs, 2)
    p["hs4"] = hs_prefix(hs, 4)
    p["hs6"] = hs_prefix(hs, 6)
    p["origin_hs2"] = join_keys(p["origin"], p["hs2"])
    p["origin_hs6"] = join_keys(p["origin"], p["hs6"])
    p["hs4_origin"] = join_keys(p["hs4"], p["origin"])
    p["route"] = np.array(
        [
            route_key(*parts)
            for parts in zip(
                p["mode"], p["container_type"], p["departure"], p["loading_port"], strict=True
            )
        ],
        dtype=object,
    )
    p["shipper_consignee"] = join_keys(p["shipper"], p["consignee"])
    p["consignee_phone"] = join_keys(p["consignee"], p["phone"])
    p["consignee_address"] = join_keys(p["consignee"], p["address"])
    p["consignee_forwarder"] = join_keys(p["consignee"], p["forwarder"])
    p["consignee_recipient"] = join_keys(p["consignee"], p["recipient"])
    p["consignee_if_phone"] = np.where(_present(p["phone"]), p["consignee"], None)
    p["consignee_if_address"] = np.where(_present(p["address"]), p["consignee"], None)
    p["consignee_if_forwarder"] = np.where(_present(p["forwarder"]), p["consignee"], None)
    p["global"] = np.full(len(hs), "all", dtype=object)
    with np.errstate(divide="ignore", invalid="ignore"):
        vpk = p["declared_value_usd"] / p["gross_weight_kg"]
    p["log_value_per_kg"] = np.log1p(vpk)


def _present(values: np.ndarray) -> np.ndarray:
    return np.array([v is not None for v in values], dtype=bool)


# -- row-only manifest features -------------------------------------------------------------
def de_minimis_margin(value: float, value_usd: float, currency: str | None, mode: str | None):
    """Relative distance below the nearest de-minimis threshold at or above the declared value
    (0 = right at it); NaN for non-express shipments or values above every threshold."""
    if mode != "express":
        return math.nan
    best = math.nan
    thresholds = DE_MINIMIS.get(currency or "")
    checks = [(value, thresholds)] if thresholds else [(value_usd, DE_MINIMIS_USD)]
    for v, limits in checks:
        if v is None or math.isnan(v):
            continue
        for limit in limits:
            if v <= limit:
                margin = (limit - v) / limit
                best = margin if math.isnan(best) else min(best, margin)
    return best


def row_features(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Manifest features that need only the shipment itself, vectorised over prepared rows."""
    value = p["declared_value_usd"]
    weight = p["gross_weight_kg"]
    packages = p["packages"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "value_per_kg": value / weight,
            "value_per_package": value / packages,
            "weight_per_package": weight / packages,
        }
    out["n_transshipments"] = np.array([len(x) for x in p["ports"]], dtype="float64")
    out["booking_to_departure_days"] = (p["departed_at"] - p["booked_at"]) / NS_PER_DAY
    out["transit_days"] = (p["arrival_at"] - p["departed_at"]) / NS_PER_DAY
    out["declaration_lead_days"] = (p["arrival_at"] - p["t"]) / NS_PER_DAY
    out["generic_description"] = np.array(
        [_generic(tokens) for tokens in p["tokens"]], dtype="float64"
    )
    margins = np.array(
        [
            de_minimis_margin(v, u, c, m)
            for v, u, c, m in zip(p["declared_value"], value, p["currency"], p["mode"], strict=True)
        ],
        dtype="float64",
    )
    out["de_minimis_margin"] = margins
    near = (margins <= NEAR_DE_MINIMIS).astype("float64")
    near[np.isnan(margins) & (p["mode"] == "express")] = 0.0
    near[p["mode"] != "express"] = np.nan
    out["near_de_minimis"] = near
    return out


def _generic(tokens: tuple[str, ...]) -> float:
    if not tokens:
        return math.nan
    vague = sum(t in GENERIC_WORDS for t in tokens)
    return float(2 * vague >= len(tokens))
