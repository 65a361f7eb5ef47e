"""Materialise a draft into the contract's tables and write the world to disk.

This is the only place strings are built for every shipment: ids, names, transport references.
Party ids are a seeded bijection of the party's row number, and transport references are drawn
from the same generators for every shipment, so no field carries the hidden truth.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.contracts import (
    CONTAINER_TYPES,
    DRUGS,
    FREIGHT_TERMS,
    LOAD_TYPES,
    PAYMENT_METHODS,
    DatasetInfo,
    validate_outcomes,
    validate_shipments,
)
from features.errors import CargoriskError
from features.tables import INFO_FILE, write_contract_dir
from simulator import catalog as cat
from simulator.config import SCHEMES
from simulator.trade import ALL_CARRIERS, EXPRESS, SEA
from simulator.world import ID_FORMATS, World

MODES = np.array(["sea", "air", "express"], dtype=object)
AIRLINE_PREFIX = {
    "KE": "180", "OZ": "988", "CX": "160", "SQ": "618", "EK": "176", "QR": "157", "TK": "235",
    "LH": "020", "CA": "999", "MU": "781", "ET": "071", "LA": "045", "PO": "403",
}  # fmt: skip
TRUTH_COLUMNS = ("shipment_id", "illicit", "drug", "scheme")


FROZEN_POOLS = ("names", "addresses", "phones", "codes")
"""The world's string pools a world made by month hands to :func:`render` as Arrow arrays,
once: its months add to none of them (only ``vocab`` still grows)."""


def _take(values, codes: np.ndarray) -> pa.Array:
    """Strings ``values[codes]`` (a sequence, or an Arrow string array) with -1 meaning
    missing."""
    table = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    codes = np.asarray(codes, dtype=np.int64)
    return table.take(pa.array(np.where(codes < 0, 0, codes), mask=codes < 0))


def _digits(rng: np.random.Generator, n: int, width: int) -> pd.Series:
    """``n`` random zero-padded decimal strings of ``width`` digits."""
    if width <= 9:
        return pd.Series(rng.integers(0, 10**width, n)).astype("str").str.zfill(width)
    return _digits(rng, n, width - 9) + _digits(rng, n, 9)


def party_ids(world: World, seed: int) -> np.ndarray:
    """Id string of every party: kind prefix + an affine bijection of the row number within
    its kind, so numbers look random and are unique per kind."""
    parties = world.parties
    out = np.empty(len(parties), dtype=object)
    rng = np.random.default_rng(seed)
    for kind, (prefix, width) in ID_FORMATS.items():
        rows = np.flatnonzero(parties.kind == kind)
        modulus = 10**width
        if len(rows) > modulus // 10:
            raise CargoriskError(f"too many parties of kind {prefix} for {width}-digit ids")
        a = int(rng.integers(1, modulus // 10)) * 10 + int(rng.choice([1, 3, 7, 9]))
        b = int(rng.integers(0, modulus))
        numbers = (np.arange(len(rows), dtype=object) * a + b) % modulus
        digits = pd.Series(numbers.astype(np.int64)).astype("str").str.zfill(width)
        out[rows] = (prefix + digits).to_numpy(dtype=object)
    return out


def render(
    world: World,
    draft: dict[str, np.ndarray],
    rng: np.random.Generator,
    *,
    ids: np.ndarray | None = None,
    first_serial: int = 1,
    strings: dict[str, pa.Array] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn a draft into (shipments, truth), ordered by declaration time. A world made by month
    renders one month at a time: it passes the party ``ids`` it computed once, the serial
    number of the month's first shipment (so shipment ids stay unique across months) and its
    :data:`FROZEN_POOLS` as Arrow ``strings``, converted once instead of every month."""
    pools = strings or {name: getattr(world, name).values for name in FROZEN_POOLS}
    order = np.argsort(draft["declared"], kind="stable")
    d = {k: v[order] for k, v in draft.items()}
    n = len(order)
    cfg = world.config
    start = np.datetime64(cfg.start.to_datetime64(), "s")

    def stamp(days: np.ndarray) -> np.ndarray:
        seconds = np.round(days * 86_400)
        return start + seconds.astype("int64").astype("timedelta64[s]")

    if ids is None:
        ids = party_ids(world, cfg.seed + 7)
    p = world.parties
    v = world.vocab.values
    mode = d["mode"]
    sea, air, express = mode == SEA, mode == 1, mode == EXPRESS
    serial = np.arange(n) + first_serial
    yy = cfg.end.year % 100
    shipment_id = f"KR{yy:02d}" + pd.Series(serial).astype("str").str.zfill(10)

    carrier = d["carrier"]
    carrier_codes = np.array([c.code for c in ALL_CARRIERS], dtype=object)
    carrier_id = carrier_codes[carrier]
    container_prefix = np.array([c.container_prefix for c in ALL_CARRIERS], dtype=object)
    container_id = pd.Series(container_prefix[carrier], dtype="str") + _digits(rng, n, 7)
    bol = pd.Series(carrier_id, dtype="str") + _digits(rng, n, 10)
    air_prefix = np.array([AIRLINE_PREFIX.get(c.code, "000") for c in ALL_CARRIERS], dtype=object)
    awb_air = pd.Series(air_prefix[carrier], dtype="str") + "-" + _digits(rng, n, 8)
    tracking = pd.Series(np.char.add("", np.array(carrier_id, dtype=str)), dtype="str")
    tracking = tracking.str[:1] + _digits(rng, n, 11)
    departed_week = np.floor((d["departed"] + (start.astype("int64") / 86_400)) / 7)
    departed_week = np.nan_to_num(departed_week).astype(np.int64)
    voyage_number = (departed_week + d["vessel"] * 137) % 1000  # each vessel has its own count
    voyage = pd.Series(voyage_number, dtype="int64").astype("str").str.zfill(3) + np.where(
        express, "N", "E"
    )
    order_ref = "ORD" + _digits(rng, n, 12)
    weight = d["weight"]
    currency_values = np.array(v, dtype=object)[d["currency"]]
    rates = np.array([cat.USD_PER_UNIT.get(c, 1.0) for c in v])  # per vocabulary entry
    rate = rates[d["currency"]]
    declared_value = d["value_usd"] / rate
    whole = np.isin(currency_values, ["JPY", "KRW", "VND", "IDR", "CLP", "COP", "LAK", "XOF"])
    declared_value = np.where(whole, np.round(declared_value), np.round(declared_value, 2))

    def nullable(series: pd.Series, mask: np.ndarray) -> pd.Series:
        return series.where(mask)

    columns = {
        "shipment_id": pd.Series(shipment_id, dtype="str"),
        "mode": MODES[mode],
        "declared_at": stamp(d["declared"]),
        "booked_at": stamp(d["booked"]),
        "departed_at": stamp(d["departed"]),
        "arrival_at": stamp(d["arrival"]),
        "shipper_id": ids[d["shipper"]],
        "consignee_id": ids[d["consignee"]],
        "notify_party_id": _objects(ids, d["notify"]),
        "forwarder_id": _objects(ids, d["forwarder"]),
        "declarant_id": _objects(ids, d["declarant"]),
        "carrier_id": carrier_id,
        "shipper_name": _take(pools["names"], p.name[d["shipper"]]),
        "consignee_name": _take(pools["names"], d["name"]),
        "consignee_address": _take(pools["addresses"], d["address"]),
        "consignee_phone": _take(pools["phones"], d["phone"]),
        "origin_country": np.array(cat.COUNTRIES, dtype=object)[d["origin"]],
        "departure_country": _take(v, d["departure"]),
        "loading_port": _take(v, d["loading"]),
        "transshipment_ports": _take(v, d["route"]),
        "discharge_port": _take(v, d["discharge"]),
        "hs_code": _take(v, d["hs"]),
        "goods_description": _take(v, d["description"]),
        "packages": d["packages"],
        "gross_weight_kg": weight,
        "declared_value": declared_value,
        "currency": currency_values,
        "declared_value_usd": np.round(d["value_usd"], 2),
        "freight_terms": _take(FREIGHT_TERMS, d["freight"]),
        "payment_method": _take(PAYMENT_METHODS, d["payment"]),
        "bill_of_lading": nullable(bol, sea),
        "container_id": nullable(container_id, sea),
        "container_type": _take(CONTAINER_TYPES, d["container"]),
        "load_type": _take(LOAD_TYPES, d["load"]),
        "vessel": _take(v, d["vessel"]),
        "voyage": nullable(voyage, d["vessel"] >= 0),
        "air_waybill": nullable(awb_air, air).fillna(nullable(tracking, express)),
        "flight": _take(v, d["flight"]),
        "platform": _take(v, d["platform"]),
        "order_ref": nullable(order_ref, d["has_order"]),
        "recipient_customs_code": _take(pools["codes"], d["code"]),
    }
    frame = pd.DataFrame({k: _series(c) for k, c in columns.items()})
    truth = pd.DataFrame(
        {
            "shipment_id": frame["shipment_id"],
            "illicit": d["illicit"],
            "drug": _series(_take(DRUGS, d["drug"])),
            "scheme": _series(_take(SCHEMES, d["scheme"])),
        }
    )
    return frame, truth


def _objects(ids: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = ids[np.where(idx < 0, 0, idx)].copy()
    out[idx < 0] = None
    return out


def _series(values) -> pd.Series:
    if isinstance(values, pa.Array):
        return pd.Series(values.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)).astype(
            "str"
        )
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    arr = np.asarray(values)
    if arr.dtype == object:
        return pd.Series(arr, dtype="str")
    return pd.Series(arr)


def validate_world(
    shipments: pd.DataFrame, outcomes: pd.DataFrame, info: DatasetInfo | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run both tables through the contract, exactly as ingestion does (the ``attr.*``
    columns against ``info``'s attribute schema when given)."""
    attributes = None if info is None else info.attributes
    return validate_shipments(shipments, attributes=attributes), validate_outcomes(outcomes)


def check_out_dir(out: Path) -> Path:
    """The output directory, created if needed; a clear error if it cannot be one."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CargoriskError(f"out: {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CargoriskError(f"out: cannot create {out}: {exc.strerror}") from None
    return out


def write_world(
    out: Path,
    shipments: pd.DataFrame,
    outcomes: pd.DataFrame,
    truth: pd.DataFrame,
    info: DatasetInfo | None = None,
) -> dict[str, Path]:
    """Write the contract tables (and ``dataset.json`` when ``info`` is given: a world with
    attributes) through :func:`features.tables.write_contract_dir`, and the hidden truth beside
    them. Each file is written next to its target and renamed into place, so an interrupted run
    never leaves a half-written table."""
    out = check_out_dir(out)
    write_contract_dir(out, shipments, outcomes, info)
    paths = {name: out / f"{name}.parquet" for name in ("shipments", "outcomes", "truth")}
    partial = out / ".truth.parquet.partial"
    truth.loc[:, list(TRUTH_COLUMNS)].to_parquet(partial, index=False)
    os.replace(partial, paths["truth"])
    if info is not None:
        paths["dataset"] = out / INFO_FILE
    return paths
