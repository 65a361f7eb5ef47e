"""Random but contract-valid shipments and outcomes for feature tests and benchmarks.

Not a world model (that is the simulator's job): just enough repetition of parties, phones,
addresses, places and HS codes, missing optional values, ties in declaration time and late
inspection results to exercise every point-in-time path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, validate_outcomes, validate_shipments

ATTRIBUTES = {
    "import_type": AttributeSpec(kind="categorical", label="import type"),
    "tax_rate": AttributeSpec(kind="numeric"),
    "office": AttributeSpec(kind="categorical", label="customs office"),
}
"""The attribute schema of :func:`random_world` with ``attributes=True``."""


def random_world(
    n: int,
    *,
    days: int = 30,
    seed: int = 0,
    start: str = "2026-01-01",
    validate: bool = True,
    messy: bool = False,
    attributes: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` shipments over ``days`` days and outcomes for ~20 % of them.

    ``messy``: what real exports hold - every transport mode (rail, road, post...), blank
    shipper and consignee ids, blank origin, HS code, description, packages, weight and value,
    0-kg and bulk (> 1,000 t) weights, values of 0. ``attributes``: the ``attr.*`` columns of
    :data:`ATTRIBUTES` (with blanks and stray spaces)."""
    rng = np.random.default_rng(seed)
    n_parties = max(5, n // 8)

    def pick(prefix: str, k: int, size: int = n) -> np.ndarray:
        ids = rng.zipf(1.6, size) % k
        return np.array([f"{prefix}{i}" for i in ids], dtype=object)

    def maybe(values: np.ndarray, p_missing: float) -> np.ndarray:
        out = values.astype(object)
        out[rng.random(len(out)) < p_missing] = None
        return out

    # seconds resolution with deliberate ties
    seconds = np.sort(rng.integers(0, days * 86_400 // 600, n) * 600)
    declared = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    mode = rng.choice(["sea", "air", "express"], n, p=[0.4, 0.2, 0.4])
    consignee = pick("C", n_parties)
    # letter case and spacing vary for the same party
    consignee = np.array(
        [c.lower() if r < 0.2 else (f" {c} " if r < 0.3 else c) for c, r in
         zip(consignee, rng.random(n), strict=True)],
        dtype=object,
    )  # fmt: skip
    phones = np.array([f"+1 555-{i:04d}" for i in rng.integers(0, n_parties, n)], dtype=object)
    addresses = np.array(
        [f"{i} Harbour Road, Town" for i in rng.integers(0, n_parties, n)], dtype=object
    )
    sea = mode == "sea"
    express = mode == "express"
    departed = declared - pd.to_timedelta(rng.integers(1, 20, n), unit="D")
    booked = departed - pd.to_timedelta(rng.integers(0, 10, n), unit="D")
    arrival = departed + pd.to_timedelta(rng.integers(1, 30, n), unit="D")
    hs = np.array(
        [
            str(rng.choice(["080390", "0603", "030389", "440290", "950300", "33", "8708291000"]))
            for _ in range(n)
        ],
        dtype=object,
    )
    desc_words = np.array(
        ["bananas fresh", "cut flowers", "frozen fish", "charcoal", "gifts", "auto parts",
         "samples", "cosmetics and gifts", "toys"], dtype=object
    )  # fmt: skip
    value = np.round(rng.lognormal(5, 1.5, n), 2)
    currency = rng.choice(["USD", "EUR", "GBP"], n)
    ports = np.array(
        [
            "|".join(rng.choice(["PAPTY", "ESALG", "NLRTM", "MAPTM"], k, replace=False))
            for k in rng.integers(0, 3, n)
        ],
        dtype=object,
    )
    ship = pd.DataFrame(
        {
            "shipment_id": [f"S{i:07d}" for i in range(n)],
            "mode": mode,
            "declared_at": declared,
            "booked_at": maybe(booked.to_numpy(), 0.3),
            "departed_at": maybe(departed.to_numpy(), 0.1),
            "arrival_at": arrival,
            "shipper_id": pick("SH", n_parties),
            "consignee_id": consignee,
            "notify_party_id": None,
            "forwarder_id": maybe(pick("F", 20), 0.3),
            "declarant_id": maybe(pick("D", 10), 0.2),
            "carrier_id": None,
            "shipper_name": "Exporter Ltd",
            "consignee_name": "Importer",
            "consignee_address": maybe(addresses, 0.1),
            "consignee_phone": maybe(phones, 0.2),
            "origin_country": rng.choice(["EC", "CO", "NL", "CN", "US"], n),
            "departure_country": rng.choice(["EC", "PA", "NL", "CN"], n),
            "loading_port": maybe(rng.choice(["ECGYE", "COCTG", "NLRTM", "CNSHA"], n), 0.2),
            "transshipment_ports": maybe(ports, 0.1),
            "discharge_port": "BEANR",
            "hs_code": hs,
            "goods_description": maybe(rng.choice(desc_words, n), 0.05),
            "packages": rng.integers(1, 100, n),
            "gross_weight_kg": np.round(rng.lognormal(3, 1.5, n), 2) + 0.1,
            "declared_value": value,
            "currency": currency,
            "declared_value_usd": value,
            "freight_terms": maybe(rng.choice(["prepaid", "collect"], n), 0.1),
            "payment_method": maybe(rng.choice(["cash", "bank_transfer", "card"], n), 0.1),
            "container_type": np.where(sea, rng.choice(["dry", "reefer"], n), None),
            "load_type": np.where(sea, "fcl", None),
            "vessel": None,
            "platform": np.where(express, rng.choice(["ShopA", "shopa ", "MarketB"], n), None),
            "recipient_customs_code": np.where(
                express & (rng.random(n) < 0.7),
                np.array([f"P{i:07d}" for i in rng.integers(0, n_parties // 2 + 1, n)]),
                None,
            ),
        }
    )
    # a few declarations amended after scoring, some unknown (not drawn from rng: the other
    # columns stay as they were)
    ship["amendments_after_score"] = pd.array(
        [None if i % 5 == 0 else int(i % 11 == 3) + int(i % 23 == 5) for i in range(n)],
        dtype="Int64",
    )
    inspected = rng.random(n) < 0.2
    idx = np.flatnonzero(inspected)
    insp_at = declared[idx] + pd.to_timedelta(rng.integers(0, 3 * 86_400, len(idx)), unit="s")
    result_at = insp_at + pd.to_timedelta(rng.integers(0, 10 * 86_400, len(idx)), unit="s")
    seized = rng.random(len(idx)) < 0.15
    out = pd.DataFrame(
        {
            "shipment_id": ship["shipment_id"].to_numpy()[idx],
            "inspected_at": insp_at,
            "result_at": result_at,
            "result": np.where(seized, "seized", "clean"),
            "drug": np.where(seized, "cocaine", None),
            "quantity_kg": np.where(seized, 10.0, np.nan),
            "method": "physical",
            "selected_by": "rule",
        }
    )
    if messy:
        ship = _messy(ship, rng)
    if attributes:
        ship = ship.assign(
            **{
                "attr.import_type": _blanks(rng.choice(["B2", "A1", " C3 ", "b2"], n), rng, 0.1),
                "attr.tax_rate": np.where(
                    rng.random(n) < 0.15, np.nan, rng.choice([0.0, 8.0, 13.5], n)
                ),
                "attr.office": _blanks(rng.choice(["Busan", "Incheon", "Seoul"], n), rng, 0.3),
            }
        )
    if validate:
        ship = validate_shipments(ship, attributes=ATTRIBUTES if attributes else None)
        out = validate_outcomes(out)
    return ship.reset_index(drop=True), out.reset_index(drop=True)


def _blanks(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(len(out)) < share] = None
    return out


def _messy(ship: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The blanks, modes and odd values of a real export (see :func:`random_world`)."""
    n = len(ship)
    out = ship.copy()
    modes = np.array(["sea", "rail", "road", "air", "post", "express", "inland_waterway",
                      "fixed_installation", "other"], dtype=object)  # fmt: skip
    out["mode"] = rng.choice(modes, n, p=[0.25, 0.08, 0.1, 0.12, 0.15, 0.2, 0.03, 0.02, 0.05])
    for col, share in (
        ("shipper_id", 0.1),
        ("consignee_id", 0.08),
        ("origin_country", 0.05),
        ("hs_code", 0.05),
        ("declared_value", 0.05),
        ("forwarder_id", 0.2),
    ):
        out[col] = _blanks(out[col].to_numpy(), rng, share)  # fmt: skip
    out.loc[rng.random(n) < 0.05, "goods_description"] = "   "
    out.loc[rng.random(n) < 0.02, "consignee_id"] = "  "  # spaces only: blank as well
    out.loc[rng.random(n) < 0.03, "declared_value_usd"] = np.nan
    weight = out["gross_weight_kg"].to_numpy().copy()
    r = rng.random(n)
    weight[r < 0.05] = 0.0
    weight[(r >= 0.05) & (r < 0.08)] = rng.uniform(1.2e6, 5e7, ((r >= 0.05) & (r < 0.08)).sum())
    weight[(r >= 0.08) & (r < 0.12)] = np.nan
    out["gross_weight_kg"] = weight
    zero = rng.random(n) < 0.03
    out.loc[zero, ["declared_value", "declared_value_usd"]] = 0.0
    packages = out["packages"].astype("Int64")
    packages[rng.random(n) < 0.05] = pd.NA
    packages[rng.random(n) < 0.02] = 0
    out["packages"] = packages
    return out


def replay_online(shipments: pd.DataFrame, outcomes: pd.DataFrame, state=None, attributes=None):
    """Feed the online aggregates as the service does (:func:`features.online.replay.replay`):
    shipments in declaration order, each instant's scored before they are counted, reports
    counted once known. Returns the online feature rows (in the order and index of
    ``shipments``) and the :class:`~features.online.replay.OnlineReplay` (a new one with the
    ``attributes`` schema unless ``state`` is given)."""
    from features.online.replay import replay

    return replay(shipments, outcomes, start=state, attributes=attributes)


def canonical_tables(tables: dict, as_of: int) -> dict[str, pd.DataFrame]:
    """Aggregate tables comparable across a fresh snapshot and rows kept up to date event by
    event: the day buckets a window as of ``as_of`` reaches and not all zero (rows kept up to
    date keep older ones; a bucket whose seizure was taken back holds a zero), totals not all
    zero (a key whose only inspection an amendment moved away), numbers as float, components
    named by their members (a snapshot numbers them, deltas hash new ones)."""
    from features import engine, history, snapshot

    spans = {d.name: max(snapshot.spans(d)) for d in engine.dimensions()}
    out = {}
    for table, frame in tables.items():
        frame = frame.copy()
        if table == "key_components":
            members = frame["dim"] + ":" + frame["key"]
            names = members.groupby(frame["component"].astype("int64")).agg(
                lambda m: "|".join(sorted(m))
            )
            frame["component"] = frame["component"].astype("int64").map(names)
        for column, kind in snapshot.TABLE_COLUMNS[table]:
            if kind in ("BIGINT", "DOUBLE") and column != "component":
                frame[column] = pd.to_numeric(frame[column]).astype("float64")
        if table == "key_days":
            since = frame["dim"].map(lambda d: history.window_start(as_of, spans[d]))
            frame = frame[frame["day_start"] >= since]
            frame = frame[(frame[["shipments", "seizures"]].fillna(0) != 0).any(axis=1)]
        if table == "key_totals":  # a row of zeros (counts moved away by an amendment): absent
            numbers = [c for c, kind in snapshot.TABLE_COLUMNS[table] if kind != "VARCHAR"]
            frame = frame[(frame[numbers].fillna(0) != 0).any(axis=1)]
        keys = list(snapshot.TABLE_KEYS[table])
        out[table] = frame.sort_values(keys).reset_index(drop=True)
    return out


def assert_same_tables(expected: dict, got: dict, as_of: int, skip: tuple[str, ...] = ()) -> None:
    """:func:`canonical_tables` of both equal (numbers to float tolerance), but for the
    ``skip`` columns (``"table.column"``)."""
    a, b = canonical_tables(expected, as_of), canonical_tables(got, as_of)
    for table in a:
        left, right = a[table], b[table]
        dropped = [c for c in left.columns if f"{table}.{c}" in skip]
        pd.testing.assert_frame_equal(
            left.drop(columns=dropped),
            right.drop(columns=dropped),
            check_dtype=False,
            obj=table,
            rtol=1e-9,
            atol=1e-9,
        )


def assert_same_features(offline: pd.DataFrame, online: pd.DataFrame, *, rtol=1e-9, atol=1e-9):
    """Every feature (catalog and attributes) of every shipment equal (numbers to float
    tolerance, text exactly)."""
    from features.pipeline import KEY_COLUMNS

    assert list(offline.columns) == list(online.columns)
    assert offline["shipment_id"].tolist() == online["shipment_id"].tolist()
    problems = []
    for name in offline.columns[len(KEY_COLUMNS) :]:
        a, b = offline[name], online[name]
        assert (a.dtype == object) == (b.dtype == object), name
        if a.dtype == object:
            left = a.astype(object).where(a.notna(), None).tolist()
            right = b.astype(object).where(b.notna(), None).tolist()
            if left != right:
                problems.append(name)
        else:
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            ok = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                problems.append(f"{name} ({(~ok).sum()} rows, e.g. {x[i]!r} vs {y[i]!r})")
    assert not problems, "features differ: " + "; ".join(problems)


T0 = pd.Timestamp("2026-01-01 08:00")

_DEFAULT = {
    "mode": "sea",
    "shipper_id": "SH1",
    "consignee_id": "C1",
    "shipper_name": "Exporter",
    "consignee_name": "Importer",
    "consignee_address": None,
    "consignee_phone": None,
    "origin_country": "NL",
    "departure_country": "NL",
    "loading_port": "NLRTM",
    "transshipment_ports": None,
    "discharge_port": "BEANR",
    "hs_code": "080390",
    "goods_description": "bananas fresh",
    "packages": 10,
    "gross_weight_kg": 1000.0,
    "declared_value": 2000.0,
    "currency": "USD",
    "declared_value_usd": 2000.0,
    "container_type": "reefer",
}


def make_shipments(*rows: dict) -> pd.DataFrame:
    """A tiny contract-valid shipments table; ``day`` (float) sets ``declared_at`` to that many
    days after :data:`T0`, ``id`` the shipment id; anything else overrides a default."""
    records = []
    for i, row in enumerate(rows):
        row = dict(row)
        day = row.pop("day", i)
        sid = row.pop("id", f"S{i + 1}")
        records.append(
            {**_DEFAULT, "shipment_id": sid, "declared_at": T0 + pd.Timedelta(days=day), **row}
        )
    return validate_shipments(pd.DataFrame(records))


def _at(day) -> pd.Timestamp:
    """A time given as days after :data:`T0` or as a timestamp (exact to the nanosecond)."""
    return day if isinstance(day, pd.Timestamp) else T0 + pd.Timedelta(days=day)


def make_outcomes(*rows: tuple) -> pd.DataFrame:
    """Outcomes from ``(shipment_id, inspected_day, result_day, result)`` tuples (a day is a
    number of days after :data:`T0` or a timestamp)."""
    records = [
        {
            "shipment_id": sid,
            "inspected_at": _at(inspected),
            "result_at": _at(known),
            "result": result,
            "drug": "cocaine" if result == "seized" else None,
            "quantity_kg": 1.0 if result == "seized" else None,
            "method": "physical",
            "selected_by": "rule",
        }
        for sid, inspected, known, result in rows
    ]
    columns = ["shipment_id", "inspected_at", "result_at", "result", "drug", "quantity_kg",
               "method", "selected_by"]  # fmt: skip
    return validate_outcomes(pd.DataFrame(records, columns=columns))


def both_ways(shipments: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Offline features, after checking that the online replay and the DuckDB engine give
    the same numbers."""
    from features.pipeline import build_training_frame

    offline = build_training_frame(shipments, outcomes)
    online, _ = replay_online(shipments, outcomes)
    assert_same_features(offline, online)
    assert_same_features(offline, build_training_frame(shipments, outcomes, engine="duckdb"))
    return offline.set_index("shipment_id")
