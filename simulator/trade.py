"""Legitimate trade: how many shipments arrive each day and what each one looks like.

Shipments are built as a *draft*: a dict of equal-length numpy arrays holding integer indexes
into the world's string pools, numbers and times in days since the start of the period. The
smuggling schemes build their shipments with the same functions (so an illicit shipment is
shaped exactly like a legitimate one except where its scheme says otherwise), and
:mod:`simulator.output` turns the combined draft into the contract's tables.
"""

from __future__ import annotations

import numpy as np

from simulator import catalog as cat
from simulator.world import AGENT_PARCEL_SHARE, PRIVATE_PARCEL_SHARE, Lanes, World

SEA, AIR, EXPRESS = 0, 1, 2
ALL_CARRIERS = cat.SEA_CARRIERS + cat.AIRLINES + cat.COURIERS
CARRIER_OFFSET = {
    SEA: 0,
    AIR: len(cat.SEA_CARRIERS),
    EXPRESS: len(cat.SEA_CARRIERS) + len(cat.AIRLINES),
}
VESSELS_PER_CARRIER = 8
BROKER_PHONE_SHARE = 0.04
"""Share of cargo declarations whose consignee phone is the customs broker's office."""
UNDERVALUED_SHARE = 0.06
"""Share of legitimate cargo shipments under-declared (duty fraud, not drugs)."""
NEAR_THRESHOLD_SHARE = 0.06
"""Share of legitimate platform parcels whose order is filled up to just under the duty-free
threshold."""
"""Share of legitimate cargo shipments under-declared (duty fraud, not drugs)."""

INT_COLUMNS = (
    "mode", "shipper", "consignee", "notify", "forwarder", "declarant", "carrier", "phone",
    "address", "code", "name", "origin", "departure", "loading", "route", "discharge", "hs",
    "description", "packages", "currency", "freight", "payment", "container", "load", "vessel",
    "flight", "platform", "drug", "scheme",
)  # fmt: skip
FLOAT_COLUMNS = ("declared", "booked", "departed", "arrival", "weight", "value_usd", "quantity")
BOOL_COLUMNS = ("illicit", "has_order")
"""Columns of a draft. ``name`` is the consignee's name index; ``illicit``, ``drug``, ``scheme``
and ``quantity`` are the hidden truth and never reach the shipments table."""

PACKAGE_KG = {
    "bananas": 18.14, "avocados": 11.0, "grapes": 8.2, "shrimp": 20.0, "squid": 22.0,
    "pollock": 25.0, "beef": 27.0, "pork": 25.0, "orange_juice": 250.0, "coffee": 60.0,
    "cocoa": 62.5, "charcoal": 10.0, "furniture": 35.0, "tiles": 30.0, "steel": 2500.0,
    "resin": 25.0, "soybeans": 1000.0, "pulp": 250.0, "wine": 9.0, "walnuts": 22.7,
    "frozen_fish": 20.0, "flowers": 12.0, "salmon": 22.0, "machine_parts": 120.0,
    "valves": 18.0, "spare_parts_air": 15.0,
}  # fmt: skip
"""Typical weight of one package (carton, bag, drum, coil) per commodity; default 15 kg."""

SEA_TRANSIT_DAYS = {
    "south_america_west": (27, 38), "south_america_east": (36, 46), "caribbean": (30, 40),
    "asia": (2, 8), "europe": (30, 40), "north_america": (12, 18), "oceania": (12, 18),
    "africa": (35, 45), "middle_east": (18, 26),
}  # fmt: skip


def empty_draft(n: int) -> dict[str, np.ndarray]:
    """A draft of ``n`` rows with every index missing (-1) and every number NaN."""
    draft: dict[str, np.ndarray] = {c: np.full(n, -1, np.int64) for c in INT_COLUMNS}
    draft.update({c: np.full(n, np.nan) for c in FLOAT_COLUMNS})
    draft.update({c: np.zeros(n, bool) for c in BOOL_COLUMNS})
    return draft


def concat_drafts(drafts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {c: np.concatenate([d[c] for d in drafts]) for c in drafts[0]}


def take(draft: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {c: v[idx] for c, v in draft.items()}


# --- volumes ---------------------------------------------------------------------------------


def daily_rates(world: World, mode: int) -> np.ndarray:
    """Expected shipments per day of the period for a mode: weekday pattern and seasonality
    (the November-December e-commerce peak for express), scaled to the configured volume."""
    cfg = world.config
    dates = cfg.start + np.arange(cfg.days) * np.timedelta64(1, "D")
    dates = np.asarray(dates, dtype="datetime64[D]")
    weekday = (dates.view("int64") + 3) % 7  # 0 = Monday
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    if mode == EXPRESS:
        week = np.array([1.08, 1.1, 1.08, 1.05, 1.02, 0.92, 0.75])[weekday]
        season = (
            1
            + 0.35 * np.exp(-(((doy - 325) / 14.0) ** 2))
            + 0.08 * np.cos(2 * np.pi * (doy - 350) / 365)
        )
    else:
        week = np.array([1.15, 1.12, 1.1, 1.1, 1.08, 0.75, 0.5])[weekday]
        season = 1 + 0.1 * np.sin(2 * np.pi * (doy - 80) / 365)
    shape = week * season
    name = ("sea", "air", "express")[mode]
    return shape / shape.mean() * world.expected[name] / cfg.days


def draw_days(
    world: World, rng: np.random.Generator, mode: int, window: tuple[int, int] | None = None
) -> np.ndarray:
    """Declaration time (days since start) of every legitimate shipment of a mode, sorted;
    with ``window`` = (first day, end day), only the shipments of those days of the period."""
    lo, hi = (0, world.config.days) if window is None else window
    counts = rng.poisson(daily_rates(world, mode)[lo:hi])
    day = np.repeat(np.arange(lo, hi), counts).astype(float)
    if mode == EXPRESS:
        hour = rng.beta(2.2, 2.0, len(day)) * 24
    else:
        hour = np.clip(rng.normal(13, 3.2, len(day)), 0, 23.99)
    return day + hour / 24


def sample_active(
    rng: np.random.Generator, start: np.ndarray, activity: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """For each ``day`` pick an entity whose ``start`` is not after it, with probability
    proportional to ``activity`` (entities not yet active are never picked)."""
    order = np.argsort(start, kind="stable")
    sorted_start = start[order]
    cum = np.cumsum(activity[order])
    active = np.searchsorted(sorted_start, day, side="right")
    active = np.maximum(active, 1)
    u = rng.random(len(day)) * cum[active - 1]
    pos = np.minimum(np.searchsorted(cum, u, side="right"), active - 1)
    return order[pos]


# --- cargo (sea and air) -----------------------------------------------------------------------


def cargo_shipments(
    world: World, rng: np.random.Generator, mode: int, lanes: Lanes, lane: np.ndarray,
    declared: np.ndarray,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Sea or air-cargo shipments on ``lanes[lane]`` declared at ``declared`` (days)."""
    n = len(lane)
    d = empty_draft(n)
    p = world.parties
    d["mode"][:] = mode
    d["declared"] = declared
    for col in ("shipper", "consignee", "notify", "forwarder", "declarant", "origin"):
        d[col] = getattr(lanes, col)[lane]
    d["carrier"] = lanes.carrier[lane] + CARRIER_OFFSET[mode]
    d["phone"] = p.phone_at(d["consignee"], declared)
    # some declarations give the customs broker's office phone as the contact
    broker_phone = (rng.random(n) < BROKER_PHONE_SHARE) & (p.phone[d["declarant"]] >= 0)
    d["phone"] = np.where(broker_phone, p.phone[d["declarant"]], d["phone"])
    d["address"] = p.address_at(d["consignee"], declared)
    d["name"] = p.name[d["consignee"]]
    d["loading"] = lanes.loading[lane]
    d["route"] = lanes.route[lane]
    d["discharge"] = lanes.discharge[lane]
    d["departure"] = departure_countries(world, d["loading"])
    commodity = lanes.commodity[lane]
    d["hs"], d["description"] = hs_and_description(world, rng, commodity)
    d["currency"] = lanes.currency[lane]
    d["freight"] = lanes.freight[lane]
    d["payment"] = lanes.payment[lane]
    if mode == SEA:
        d["container"] = lanes.container[lane]
        d["load"] = lanes.load[lane]
        spread = np.where(d["load"] == 0, 0.12, 0.5)
        weight = np.clip(lanes.weight_kg[lane] * rng.lognormal(0, spread), 50, 29_500)
        transit_range = np.array(
            [SEA_TRANSIT_DAYS[cat.REGION_OF.get(c, "asia")] for c in cat.COUNTRIES], dtype=float
        )[d["origin"]]
        transit = rng.uniform(transit_range[:, 0], transit_range[:, 1])
        arrival = declared + rng.uniform(0.3, 4.0, n)
        departed = arrival - transit
        booked = departed - np.clip(rng.lognormal(np.log(9), 0.5, n), 1, 60)
        d["vessel"], _ = vessels(world, d["carrier"], d["loading"], departed)
    else:
        weight = np.clip(lanes.weight_kg[lane] * rng.lognormal(0, 0.4, n), 1, 20_000)
        arrival = declared + rng.uniform(1, 14, n) / 24
        far = d["route"] != world.vocab.code("")
        departed = arrival - np.where(far, rng.uniform(14, 34, n), rng.uniform(2, 6, n)) / 24
        booked = departed - rng.uniform(0.3, 4, n)
        d["flight"] = lanes.flight[lane]
    d["arrival"], d["departed"], d["booked"] = arrival, departed, booked
    usd_per_kg = np.array([c.usd_per_kg for c in cat.COMMODITIES])[commodity]
    d["weight"] = np.round(weight, 1)
    value = weight * usd_per_kg * lanes.value_factor[lane] * rng.lognormal(0, 0.15, n)
    # ordinary customs fraud: some importers under-declare to pay less duty
    under = rng.random(n) < UNDERVALUED_SHARE
    d["value_usd"] = np.where(under, value * rng.uniform(0.1, 0.6, n), value)
    pkg_kg = np.array([PACKAGE_KG.get(c.key, 15.0) for c in cat.COMMODITIES])[commodity]
    d["packages"] = np.maximum(1, np.round(weight / pkg_kg * rng.uniform(0.9, 1.1, n))).astype(
        np.int64
    )
    return d


def departure_countries(world: World, loading: np.ndarray) -> np.ndarray:
    """Country of the loading port/airport: the first two letters of a UN/LOCODE, or the
    airport's country for a 3-letter IATA code."""
    airport_country = {a: c for c, codes in cat.AIRPORTS.items() for a in codes}
    codes, inverse = np.unique(loading, return_inverse=True)
    country = [
        value[:2] if len(value) == 5 else airport_country.get(value, "CN")
        for value in (world.vocab.values[c] for c in codes)
    ]
    return world.vocab.codes(country)[inverse] if len(loading) else loading


def hs_and_description(
    world: World, rng: np.random.Generator, commodity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tariff code and one of the commodity's usual wordings, as vocab indexes."""
    hs = np.array([world.vocab.code(c.hs) for c in cat.COMMODITIES])[commodity]
    desc = np.empty(len(commodity), dtype=np.int64)
    for ci in np.unique(commodity):
        mask = commodity == ci
        options = world.vocab.codes(cat.COMMODITIES[ci].descriptions)
        desc[mask] = options[rng.integers(0, len(options), int(mask.sum()))]
    return hs, desc


def vessels(
    world: World, carrier: np.ndarray, loading: np.ndarray, departed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The vessel of a sailing: one per carrier, loading port and departure week."""
    week = np.floor(departed / 7).astype(np.int64)
    slot = (week * 7 + loading * 3) % VESSELS_PER_CARRIER
    names = [
        world.vocab.code(f"{c.name} {cat.VESSEL_WORDS[(i * 5 + k) % len(cat.VESSEL_WORDS)]}")
        for i, c in enumerate(cat.SEA_CARRIERS)
        for k in range(VESSELS_PER_CARRIER)
    ]
    return np.asarray(names)[carrier * VESSELS_PER_CARRIER + slot], week


# --- express -----------------------------------------------------------------------------------


def express_shipments(
    world: World,
    rng: np.random.Generator,
    sender: np.ndarray,
    recipient: np.ndarray,
    declared: np.ndarray,
) -> dict[str, np.ndarray]:
    """Express parcels from ``world.express`` sender rows to recipient *party* indexes."""
    ex = world.express
    p = world.parties
    n = len(sender)
    d = empty_draft(n)
    d["mode"][:] = EXPRESS
    d["declared"] = declared
    d["shipper"] = ex.sender[sender]
    d["consignee"] = recipient
    d["name"] = p.name[recipient]
    d["code"] = p.code[recipient]
    d["phone"] = p.phone_at(recipient, declared)
    office = (rng.random(n) < 0.07) & (p.address2[recipient] >= 0)
    d["address"] = np.where(office, p.address2[recipient], p.address_at(recipient, declared))
    country = ex.sender_country[sender]
    d["origin"] = country
    d["carrier"] = ex.sender_courier[sender] + CARRIER_OFFSET[EXPRESS]
    d["platform"] = ex.sender_platform[sender]
    d["has_order"] = d["platform"] >= 0
    item_hs, item_desc, item_usd, item_kg = express_items(world, rng, ex.sender_category[sender])
    d["hs"] = item_hs
    generic = rng.random(n) < ex.sender_generic[sender]
    d["description"] = np.where(
        generic, world.vocab.codes(cat.GENERIC_DESCRIPTIONS)[rng.integers(0, 7, n)], item_desc
    )
    items = rng.geometric(0.55, n)
    value = item_usd * items * rng.lognormal(0, 0.45, n)
    # shoppers fill their order up to the duty-free threshold
    threshold = np.where(
        country == cat.COUNTRY_INDEX["US"], cat.DE_MINIMIS_USD_FROM_US, cat.DE_MINIMIS_USD
    )
    near = (rng.random(n) < NEAR_THRESHOLD_SHARE) & (d["platform"] >= 0)
    value = np.where(near, threshold * rng.uniform(0.8, 0.995, n), value)
    d["value_usd"] = np.round(value, 2)
    d["weight"] = np.round(np.clip(item_kg * items * rng.lognormal(0, 0.35, n) + 0.05, 0.05, 60), 2)
    d["packages"] = np.where(rng.random(n) < 0.93, 1, 2)
    fill_express_transport(world, rng, d)
    return d


def express_items(world: World, rng: np.random.Generator, category: np.ndarray):
    """One typical item per parcel from the sender's category: hs, wording, USD, kg."""
    n = len(category)
    hs = np.empty(n, np.int64)
    desc = np.empty(n, np.int64)
    usd = np.empty(n)
    kg = np.empty(n)
    for ci in np.unique(category):
        mask = category == ci
        items = cat.EXPRESS_CATEGORIES[cat.EXPRESS_CATEGORY_NAMES[ci]]
        pick_i = rng.integers(0, len(items), int(mask.sum()))
        hs[mask] = world.vocab.codes([it.hs for it in items])[pick_i]
        desc[mask] = world.vocab.codes([it.description for it in items])[pick_i]
        usd[mask] = np.array([it.usd for it in items])[pick_i]
        kg[mask] = np.array([it.kg for it in items])[pick_i]
    return hs, desc, usd, kg


def express_flights(
    world: World, rng: np.random.Generator, carrier: np.ndarray, origin: np.ndarray
) -> np.ndarray:
    """The courier's flight of each parcel (vocab index): the courier's flight prefix and one of
    three flight numbers per origin country, so a flight code always matches its courier."""
    courier = carrier - CARRIER_OFFSET[EXPRESS]
    prefix_of = [cat.COURIER_FLIGHT_PREFIX[c.code] for c in cat.COURIERS]
    number = origin * 37 % 900 + 100 + rng.integers(0, 3, len(carrier))
    combos, inverse = np.unique(courier * 10_000 + number, return_inverse=True)
    # one code per courier and flight number, not per parcel
    return world.vocab.codes([f"{prefix_of[c // 10_000]}{c % 10_000}" for c in combos])[inverse]


def fill_express_transport(world: World, rng: np.random.Generator, d: dict) -> None:
    """Route, times, currency and payment of express parcels (in place, on a fresh draft)."""
    n = len(d["mode"])
    v = world.vocab
    origin = d["origin"]
    cn = origin == cat.COUNTRY_INDEX["CN"]
    ferry = cn & (rng.random(n) < 0.22)
    loading = np.empty(n, np.int64)
    for c in np.unique(origin):
        mask = origin == c
        options = cat.AIRPORTS.get(cat.COUNTRIES[c], ("HKG",))
        loading[mask] = v.codes(options)[rng.integers(0, len(options), int(mask.sum()))]
    ferry_ports = v.codes(("CNWEI", "CNTAO", "CNDLC"))
    loading = np.where(ferry, ferry_ports[rng.integers(0, 3, n)], loading)
    d["loading"] = loading
    d["departure"] = departure_countries(world, loading)
    d["route"] = np.full(n, -1)
    d["discharge"] = np.where(
        ferry,
        v.codes(cat.EXPRESS_FERRY_PORTS)[rng.integers(0, 2, n)],
        np.where(rng.random(n) < 0.95, v.code("ICN"), v.code("PUS")),
    )
    ferries = v.codes(cat.FERRY_NAMES)
    d["vessel"] = np.where(ferry, ferries[rng.integers(0, len(ferries), n)], -1)
    flights = express_flights(world, rng, d["carrier"], origin)
    d["flight"] = np.where(ferry, -1, flights)
    declared = d["declared"]
    d["arrival"] = declared + rng.uniform(2, 20, n) / 24
    d["departed"] = (
        d["arrival"] - np.where(ferry, rng.uniform(16, 26, n), rng.uniform(3, 16, n)) / 24
    )
    d["booked"] = d["departed"] - rng.uniform(1, 6, n)
    usd = v.code("USD")
    local = np.array([v.code(cat.CURRENCY_OF.get(c, "USD")) for c in cat.COUNTRIES])[origin]
    d["currency"] = np.where(rng.random(n) < 0.25, local, usd)
    d["freight"] = np.zeros(n, np.int64)  # express is prepaid by the sender
    platform = d["platform"] >= 0
    d["payment"] = np.where(
        platform, np.where(rng.random(n) < 0.62, 4, 5), np.where(rng.random(n) < 0.5, 4, -1)
    )


def legit_shipments(
    world: World, rng: np.random.Generator, window: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """All legitimate shipments of the period (of the days ``window`` = (first, end) only,
    when given: one month of a world made by month)."""
    parts = []
    for mode, lanes in ((SEA, world.sea), (AIR, world.air)):
        day = draw_days(world, rng, mode, window)
        lane = sample_active(rng, lanes.start, lanes.activity, day)
        parts.append(cargo_shipments(world, rng, mode, lanes, lane, day))
    day = draw_days(world, rng, EXPRESS, window)
    ex = world.express
    sender = sample_active(rng, ex.sender_start, ex.sender_activity, day)
    private = rng.random(len(day)) < PRIVATE_PARCEL_SHARE
    sender = np.where(
        private, ex.private_senders[rng.integers(0, len(ex.private_senders), len(day))], sender
    )
    rec = sample_active(rng, ex.recipient_start, ex.recipient_activity, day)
    parcels = express_shipments(world, rng, sender, ex.recipient[rec], day)
    agent = (rng.random(len(day)) < AGENT_PARCEL_SHARE) & ~private
    p = ex.agent_activity / ex.agent_activity.sum()
    agent_phone = ex.agent_phones[rng.choice(len(p), len(day), p=p)]
    parcels["phone"] = np.where(agent, agent_phone, parcels["phone"])
    parts.append(parcels)
    return concat_drafts(parts)
