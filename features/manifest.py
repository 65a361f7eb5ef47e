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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from features.contracts import BULK_KG, PORT_SEPARATOR, STREAM_OF_MODE, normal_text
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

SMALL_PARCEL_MODES: Final = tuple(m for m, s in STREAM_OF_MODE.items() if s == "express")
"""Modes of the express stream (express courier and post): the small parcels de-minimis
thresholds apply to."""

CORE_FIELDS: Final = (
    "shipper",
    "consignee",
    "origin",
    "departure",
    "hs",
    "goods_description",
    "packages",
    "gross_weight_kg",
    "value",
)
"""The core optional fields of a declaration whose blank share is a feature
(``undeclared_share``): the two parties, origin and departure country, HS code, goods
description, packages, gross weight and declared value (in any currency)."""

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
    """An identifier or name as a key: the house's text normalisation
    (:func:`features.contracts.normal_text`: NFKC, no zero-width or bidi characters), then
    case-folded, whitespace collapsed; empty -> missing: "ＣＮＳ１" and "CNS\u200b1" are the
    party "CNS1"."""
    if not isinstance(value, str) and is_missing(value):
        return None
    text = " ".join(normal_text(str(value)).split()).casefold()
    return text or None


def norm_phone(value: Any) -> str | None:
    """A phone number as a key: its digits only (spaces, dashes, brackets and '+' dropped)."""
    if not isinstance(value, str) and is_missing(value):
        return None
    digits = "".join(ch for ch in normal_text(str(value)) if ch.isdigit())
    return digits or None


def norm_address(value: Any) -> str | None:
    """An address as a key: case-folded, punctuation dropped, whitespace collapsed."""
    if not isinstance(value, str) and is_missing(value):
        return None
    text = _NON_ALNUM.sub(" ", normal_text(str(value)).casefold()).strip()
    return " ".join(text.split()) or None


def description_tokens(value: Any) -> tuple[str, ...]:
    """The first meaningful words of a goods description (lower case, letters only)."""
    if not isinstance(value, str) and is_missing(value):
        return ()
    text = normal_text(str(value)).casefold()
    words = [w for w in _TOKEN.findall(text) if len(w) >= 3 and w not in _STOP]
    return tuple(dict.fromkeys(words[:MAX_TOKENS]))


def port_list(value: Any) -> tuple[str, ...]:
    """Transshipment ports of a route as normalised codes, in travel order, without repeats."""
    if not isinstance(value, str) and is_missing(value):
        return ()
    ports = (norm_text(p) for p in str(value).split(PORT_SEPARATOR))
    return tuple(dict.fromkeys(p for p in ports if p))


def join_key(*parts: str | None) -> tuple | None:
    """A combination key (e.g. origin x HS chapter) as a tuple; missing when any part is."""
    if any(p is None for p in parts):
        return None
    return parts


def route_key(mode: str | None, container: str | None, departure: str | None, port: str | None):
    """Mode, container type, departure country and loading port as one route key; a missing
    container type or loading port (air, express) is part of the route, not a missing key."""
    if mode is None or departure is None:
        return None
    return (mode, container, departure, port)


# -- the keys, declared once (the offline, online and SQL paths all build them from these) ---
KEY_FIELDS: Final[tuple[tuple[str, str, Callable[[Any], str | None]], ...]] = (
    ("shipper", "shipper_id", norm_text),
    ("consignee", "consignee_id", norm_text),
    ("forwarder", "forwarder_id", norm_text),
    ("declarant", "declarant_id", norm_text),
    ("recipient", "recipient_customs_code", norm_text),
    ("origin", "origin_country", norm_text),
    ("departure", "departure_country", norm_text),
    ("loading_port", "loading_port", norm_text),
    ("hs", "hs_code", norm_text),
    ("mode", "mode", norm_text),
    ("container_type", "container_type", norm_text),
    ("load_type", "load_type", norm_text),
    ("freight_terms", "freight_terms", norm_text),
    ("payment_method", "payment_method", norm_text),
    ("platform", "platform", norm_text),
    ("discharge_port", "discharge_port", norm_text),
    ("carrier", "carrier_id", norm_text),
    ("phone", "consignee_phone", norm_phone),
    ("address", "consignee_address", norm_address),
)
"""Single keys: (key, contract column, normaliser)."""

HS_PREFIXES: Final = (2, 4, 6)
"""HS prefixes keyed on (``hs2``, ``hs4``, ``hs6``), cut from the normalised HS code."""

COMBINED_KEYS: Final = {
    "origin_hs2": ("origin", "hs2"),
    "origin_hs6": ("origin", "hs6"),
    "hs4_origin": ("hs4", "origin"),
    "shipper_consignee": ("shipper", "consignee"),
    "consignee_phone": ("consignee", "phone"),
    "consignee_address": ("consignee", "address"),
    "consignee_forwarder": ("consignee", "forwarder"),
    "consignee_recipient": ("consignee", "recipient"),
}
"""Combination keys: missing when any part is missing."""

ROUTE_PARTS: Final = (
    ("mode", False),
    ("container_type", True),
    ("departure", False),
    ("loading_port", True),
)
"""The route key's parts and whether each is optional (its absence is part of the route)."""

GIVEN_KEYS: Final = {
    "consignee_if_phone": ("consignee", "phone"),
    "consignee_if_address": ("consignee", "address"),
    "consignee_if_forwarder": ("consignee", "forwarder"),
}
"""Keys present only when another field is declared: (key, the field it needs)."""


# -- vectorised application ---------------------------------------------------------------
def map_distinct(values: Any, fn: Callable[[Any], Any]) -> np.ndarray:
    """Apply a scalar normaliser to each *distinct* value of a column (fast on repetitive
    columns) and return an object array aligned with ``values``."""
    return map_coded(values, fn)[0]


def map_coded(values: Any, fn: Callable[[Any], Any]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`map_distinct` plus the integer codes of the normalised values (-1 for missing),
    computed on the distinct values only: the offline aggregates group by these codes."""
    series = pd.Series(values, copy=False)
    raw_codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [fn(u) for u in uniques.tolist()]  # plain values: iterating is slow
    mapped[-1] = fn(None)
    hashable = all(v is None or isinstance(v, str) for v in mapped)
    if not hashable:
        return mapped[raw_codes], np.full(len(raw_codes), -1, dtype="int64")
    norm_codes, _ = pd.factorize(pd.Series(mapped, dtype=object), use_na_sentinel=True)
    # code -1 indexes the trailing slot (the missing value)
    return mapped[raw_codes], norm_codes.astype("int64")[raw_codes]


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def join_keys(*arrays: Iterable[Any]) -> np.ndarray:
    """Element-wise :func:`join_key` over aligned object arrays (few rows: tuple keys)."""
    # ``None in parts`` is join_key's test done in C (keys are str or None)
    return _object_array([None if None in parts else parts for parts in zip(*arrays, strict=True)])


def key_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of a key column (-1 for missing); integer arrays are codes already."""
    if values.dtype.kind in "iu":
        return values.astype("int64")
    codes, _ = pd.factorize(pd.Series(values, dtype="object"), use_na_sentinel=True)
    return codes.astype("int64")


def combine_codes(*arrays: np.ndarray, optional: tuple[bool, ...] | None = None) -> np.ndarray:
    """Codes of the combination of several key columns, the vectorised equivalent of
    :func:`join_key` (many rows): two rows share a code exactly when every part is equal.
    Missing when a required part is missing; an ``optional`` part's absence is a value."""
    optional = optional or (False,) * len(arrays)
    out = np.zeros(len(arrays[0]), dtype="int64")
    missing = np.zeros(len(arrays[0]), dtype=bool)
    for values, opt in zip(arrays, optional, strict=True):
        codes = key_codes(values)
        if opt:
            codes = codes + 1  # missing (-1) becomes its own value 0
        else:
            missing |= codes < 0
        width = int(codes.max()) + 2 if len(codes) else 1
        out, _ = pd.factorize(out * width + codes + 1)
        out = out.astype("int64")
    out[missing] = -1
    return out


def hs_cut(h: Any, digits: int) -> str | None:
    """HS chapter (2), heading (4) or subheading (6) of one normalised HS code; missing when
    the declared code is shorter than that."""
    return h[:digits] if isinstance(h, str) and len(h) >= digits else None


def hs_prefix(hs: np.ndarray, digits: int) -> np.ndarray:
    """HS chapter (2), heading (4) or subheading (6) of normalised HS codes; missing when the
    declared code is shorter than that."""

    def cut(h: Any) -> str | None:
        return hs_cut(h, digits)

    if len(hs) > SMALL:
        return map_distinct(hs, cut)
    return _object_array([cut(h) for h in hs])


def _hs_prefix_coded(p: dict[str, np.ndarray], digits: int) -> np.ndarray:
    """HS prefix of many rows through the distinct HS codes, keeping its codes in ``p``."""
    hs = p["hs"]
    out, codes = map_coded(hs, lambda h: hs_cut(h, digits))
    p[f"codes:hs{digits}"] = codes
    return out


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

    def __init__(self, frame: pd.DataFrame | Mapping[str, Any]):
        if isinstance(frame, Mapping):
            self.values = dict(frame)
        else:
            self.values = dict(zip(frame.columns, frame.iloc[0].tolist(), strict=True))
        self.columns = self.values

    def __len__(self) -> int:
        return 1

    def get(self, col: str) -> list:
        return [self.values.get(col)]


def _apply(
    values: list | pd.Series, fn: Callable[[Any], Any], p: dict | None = None, key: str = ""
) -> np.ndarray:
    """Normalise a column; on many rows also keep its codes as ``p["codes:<key>"]``."""
    if isinstance(values, list):
        out = np.empty(len(values), dtype=object)
        out[:] = [fn(v) for v in values]
        return out
    out, codes = map_coded(values, fn)
    if p is not None:
        p[f"codes:{key}"] = codes
    return out


def codes_of(p: dict[str, np.ndarray], key: str) -> np.ndarray:
    """Integer codes of a prepared key (-1 for missing), cached on many rows."""
    cached = p.get(f"codes:{key}")
    return cached if cached is not None else key_codes(p[key])


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


def prepare(
    shipments: pd.DataFrame | Mapping[str, Any], *, tuple_keys: bool = False
) -> dict[str, np.ndarray]:
    """The normalised keys and raw numbers of each shipment, as aligned numpy arrays.

    Keys are strings or None (missing); they are what history, change and network features
    group by. ``t`` is the declaration time (int64 ns), the shipment's own "now". Optional
    contract columns absent from the frame count as not declared. A single shipment may also
    be given as a mapping of contract field names to values (the serving fast path).
    Combination keys are tuples for few rows or when ``tuple_keys`` (the online state keys its
    dicts by them), else integer codes (:func:`derive_keys`).
    """
    one = isinstance(shipments, Mapping) or len(shipments) == 1
    s = _OneRow(shipments) if one else shipments
    p: dict[str, np.ndarray] = {}
    p["t"] = declared_ns(_values(s, "declared_at"))
    ids = _values(s, "shipment_id")
    p["shipment_id"] = (
        np.array(ids, dtype=object) if isinstance(ids, list) else ids.to_numpy(dtype=object)
    )
    for col in ("booked_at", "departed_at", "arrival_at"):
        p[col] = _times_ns(_values(s, col))
    for col in (
        "declared_value",
        "declared_value_usd",
        "gross_weight_kg",
        "packages",
        "amendments_after_score",
    ):
        p[col] = _numbers(_values(s, col))
    for key, col, normalise in KEY_FIELDS:
        p[key] = _apply(_values(s, col), normalise, p, key)
    currency = _values(s, "currency")
    p["currency"] = _apply(currency, _upper)
    p["raw_currency"] = _apply(currency, norm_text)
    p["ports"] = _apply(_values(s, "transshipment_ports"), port_list)
    p["n_ports"] = np.array([len(x) for x in p["ports"]], dtype="float64")
    description = _values(s, "goods_description")
    p["tokens"] = _apply(description, description_tokens)
    p["generic"] = _apply(description, generic_description).astype("float64")
    p["description_blank"] = _apply(description, _blank).astype("float64")
    derive_keys(p, tuple_keys=tuple_keys)
    return p


def _is_none(values: np.ndarray) -> np.ndarray:
    """Which values of an object array are None (element-wise, in C)."""
    return np.equal(values, None)  # type: ignore[call-overload]  # stubs refuse None


def derive_keys(p: dict[str, np.ndarray], *, tuple_keys: bool = False) -> None:
    """Add the combination keys to prepared columns (in place on the dict, not on any frame).

    Few rows (online): tuple keys. Many rows (offline): integer codes of the same combinations
    (:func:`combine_codes`), which is what the offline aggregates group by anyway."""
    hs = p["hs"]
    n = len(hs)
    tuples = tuple_keys or n <= SMALL
    for digits in HS_PREFIXES:
        p[f"hs{digits}"] = hs_prefix(hs, digits) if n <= SMALL else _hs_prefix_coded(p, digits)
    combine: Callable[..., np.ndarray] = join_keys if tuples else combine_codes

    if tuples:

        def part(key: str) -> np.ndarray:
            return p[key]
    else:

        def part(key: str) -> np.ndarray:
            return codes_of(p, key)

    for name, parts in COMBINED_KEYS.items():
        p[name] = combine(*(part(key) for key in parts))
    route = tuple(part(key) for key, _ in ROUTE_PARTS)
    if tuples:
        p["route"] = _object_array([route_key(*parts) for parts in zip(*route, strict=True)])
    else:
        p["route"] = combine_codes(*route, optional=tuple(opt for _, opt in ROUTE_PARTS))
    for name, (key, given) in GIVEN_KEYS.items():
        if tuples:
            p[name] = np.where(  # type: ignore[call-overload]
                pd.notna(p[given]), p[key], None
            )  # numpy's stubs refuse None; an object array takes it
        else:
            p[name] = np.where(codes_of(p, given) >= 0, codes_of(p, key), -1)
    p["global"] = np.full(n, "all", dtype=object) if tuples else np.zeros(n, dtype="int64")
    p["log_value_per_kg"] = np.log1p(_ratio(p["declared_value_usd"], p["gross_weight_kg"]))


# -- row-only manifest features -------------------------------------------------------------
def _blank(value: Any) -> float:
    """1 for a text field left blank (missing, empty or only spaces), else 0."""
    return float(norm_text(value) is None)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0 or missing: a declared
    weight or package count of 0 is real (and flagged on its own), but not a divisor."""
    out = np.full(len(numerator), np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def small_parcel(mode: np.ndarray) -> np.ndarray:
    """Whether each (normalised) mode is in the express stream (express courier or post)."""
    mode = np.asarray(mode, dtype=object)
    out = np.zeros(len(mode), dtype=bool)
    for m in SMALL_PARCEL_MODES:
        out |= mode == m
    return out


def de_minimis_margins(value, value_usd, currency, mode) -> np.ndarray:
    """Relative distance below the nearest de-minimis threshold at or above the declared value
    (0 = right at it), for aligned arrays; NaN outside the express stream (express courier and
    post) or for values above every threshold. The declaration currency's own thresholds apply
    when it has any, else the USD value is judged against :data:`DE_MINIMIS_USD`."""
    return _margins(value, value_usd, currency, small_parcel(mode))


def _margins(value, value_usd, currency, parcel: np.ndarray) -> np.ndarray:
    """:func:`de_minimis_margins` with the express-stream mask already known."""
    value = np.asarray(value, dtype="float64")
    value_usd = np.asarray(value_usd, dtype="float64")
    currency = np.asarray(currency, dtype=object)
    best = np.full(len(value), np.inf)
    own = np.zeros(len(value), dtype=bool)
    for code, limits in DE_MINIMIS.items():
        mask = currency == code
        if not mask.any():
            continue
        own |= mask
        for limit in limits:
            ok = mask & (value <= limit)
            best[ok] = np.minimum(best[ok], (limit - value[ok]) / limit)
    for limit in DE_MINIMIS_USD:
        ok = ~own & (value_usd <= limit)
        best[ok] = np.minimum(best[ok], (limit - value_usd[ok]) / limit)
    best[np.isinf(best) | ~parcel] = np.nan
    return best


def de_minimis_margin(value: float, value_usd: float, currency: str | None, mode: str | None):
    """:func:`de_minimis_margins` of one shipment."""
    return float(de_minimis_margins([value], [value_usd], [currency], [mode])[0])


def _flag(condition: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """1 / 0, NaN where the field it judges was not declared (``blank``)."""
    out = condition.astype("float64")
    out[blank] = np.nan
    return out


def row_features(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Manifest features that need only the shipment itself, vectorised over prepared rows.

    A blank field is information, never an error: ratios are NaN when a part is missing (or
    a divisor is 0), flags of a value are NaN when the value is not declared, and the blank
    fields themselves are flagged (``shipper_not_declared``...) and counted
    (``undeclared_share``)."""
    value = p["declared_value_usd"]
    weight = p["gross_weight_kg"]
    packages = p["packages"]
    out = {
        "value_per_kg": _ratio(value, weight),
        "value_per_package": _ratio(value, packages),
        "weight_per_package": _ratio(weight, packages),
    }
    out["n_transshipments"] = p["n_ports"]
    out["booking_to_departure_days"] = (p["departed_at"] - p["booked_at"]) / NS_PER_DAY
    out["transit_days"] = (p["arrival_at"] - p["departed_at"]) / NS_PER_DAY
    out["declaration_lead_days"] = (p["arrival_at"] - p["t"]) / NS_PER_DAY
    out["generic_description"] = p["generic"]
    parcel = small_parcel(p["mode"])
    margins = _margins(p["declared_value"], value, p["currency"], parcel)
    out["de_minimis_margin"] = margins
    near = (margins <= NEAR_DE_MINIMIS).astype("float64")
    near[~parcel] = np.nan
    out["near_de_minimis"] = near

    blank_weight = np.isnan(weight)
    out["weight_zero"] = _flag(weight == 0, blank_weight)
    out["weight_bulk"] = _flag(weight > BULK_KG, blank_weight)
    # the value in the declaration currency, else in USD when only that was given
    declared = p["declared_value"]
    blank_value = np.isnan(declared)
    if blank_value.any():
        declared = np.where(blank_value, value, declared)
        blank_value = np.isnan(declared)
    out["value_zero"] = _flag(declared == 0, blank_value)
    no_shipper = _is_none(p["shipper"])
    no_consignee = _is_none(p["consignee"])
    out["shipper_not_declared"] = no_shipper.astype("float64")
    out["consignee_not_declared"] = no_consignee.astype("float64")
    blanks = (  # the CORE_FIELDS
        no_shipper.astype("float64")
        + no_consignee
        + _is_none(p["origin"])
        + _is_none(p["departure"])
        + _is_none(p["hs"])
        + p["description_blank"]
        + np.isnan(packages)
        + blank_weight
        + blank_value
    )
    out["undeclared_share"] = blanks / len(CORE_FIELDS)
    return out


RAW_KEYS: Final = {
    "mode": "mode",
    "origin_country": "origin",
    "departure_country": "departure",
    "loading_port": "loading_port",
    "discharge_port": "discharge_port",
    "hs_code": "hs",
    "currency": "raw_currency",
    "freight_terms": "freight_terms",
    "payment_method": "payment_method",
    "container_type": "container_type",
    "load_type": "load_type",
    "platform": "platform",
    "shipper_id": "shipper",
    "consignee_id": "consignee",
    "forwarder_id": "forwarder",
    "declarant_id": "declarant",
    "carrier_id": "carrier",
}
"""The prepared key (normalised with :func:`norm_text`) of each categorical raw field."""

RAW_NUMBERS: Final = ("packages", "gross_weight_kg", "declared_value", "declared_value_usd")


def raw_features(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mapped fields as given (``raw_<field>``): categorical fields as normalised strings
    (None when blank), numbers as declared (NaN when blank) - the raw-columns challenger's
    view of a declaration, with no history and no rates."""
    out = {f"raw_{field}": p[key] for field, key in RAW_KEYS.items()}
    out.update({f"raw_{field}": p[field] for field in RAW_NUMBERS})
    return out


def generic_description(value: Any) -> float:
    """1 when at least half the words of a goods description are vague (:data:`GENERIC_WORDS`),
    0 otherwise, NaN without a description."""
    tokens = description_tokens(value)
    if not tokens:
        return math.nan
    vague = sum(t in GENERIC_WORDS for t in tokens)
    return float(2 * vague >= len(tokens))
