"""The population of the simulated world: the parties and the trade lanes that tie them.

Parties are importers (consignees), foreign exporters (shippers), freight forwarders/NVOCCs,
customs brokers (declarants), express senders (mostly platform sellers abroad) and private
express recipients with their personal customs clearance code (PCCC). Each party keeps the same
id, name, phone and address across all its shipments, so histories and networks exist.

A *lane* is a legitimate trade relationship (one shipper, one consignee, one commodity, one
route, one forwarder and broker) with a heavy-tailed activity weight and a first active day;
new lanes, importers, senders and recipients keep appearing during the period.

Everything here is stored as integer indexes into small string pools; the strings are only
materialised once, when the shipments table is written (see :mod:`simulator.output`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator import catalog as cat
from simulator.config import SimConfig

# party kinds (each has its own id format, see ``ID_FORMATS``)
SHIPPER, IMPORTER, FORWARDER, DECLARANT, SENDER, PERSON = range(6)
ID_FORMATS = {
    SHIPPER: ("X", 9),
    IMPORTER: ("KC", 8),
    FORWARDER: ("FW", 6),
    DECLARANT: ("CB", 5),
    SENDER: ("ES", 8),
    PERSON: ("KP", 9),
}
"""Id prefix and number of digits per party kind; numbers are a seeded bijection of the
party's row, so an id says nothing about when or why the party was created."""

NEVER = np.float64(1e9)
"""A change day that never comes."""

PRIVATE_PARCEL_SHARE = 0.08
"""Share of legitimate express parcels sent by private persons abroad (gifts, C2C)."""
AGENT_PARCEL_SHARE = 0.06
"""Share of legitimate express parcels ordered through a Korean purchasing agent, who gives
its own office phone for the client (consignee) - a legitimate phone shared by many people."""
PRIVATE_SENDER_ORIGINS = (
    ("US", 0.35), ("CN", 0.2), ("JP", 0.1), ("CA", 0.08), ("AU", 0.07), ("DE", 0.05),
    ("GB", 0.05), ("VN", 0.05), ("TH", 0.03), ("NL", 0.02),
)  # fmt: skip


class Pool:
    """An append-only list of distinct-by-position strings addressed by integer index.

    A pool is filled either in bulk with :meth:`add` (names, phones, addresses, customs codes:
    millions of strings in a big world, kept as Arrow string chunks, a fraction of the memory of
    Python strings) or one distinct value at a time with :meth:`code` (small vocabularies,
    kept as a Python list); :attr:`values` is then an Arrow string array or that list."""

    def __init__(self) -> None:
        self._list: list[str] = []
        self._chunks: list[pa.Array] = []
        self._size = 0
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> list[str] | pa.Array:
        if not self._chunks:
            return self._list
        if len(self._chunks) > 1:  # combine once; later reads reuse it until the next add
            self._chunks = [pa.concat_arrays(self._chunks)]
        return self._chunks[0]

    def add(self, values) -> np.ndarray:
        """Append ``values`` (duplicates allowed, each gets its own slot); return their indexes."""
        if self._list:
            raise ValueError("a pool filled by code() cannot take add()")
        start = self._size
        strings = np.asarray(values, dtype=object).astype(str).tolist()
        self._chunks.append(pa.array(strings, type=pa.string()))
        self._size += len(strings)
        return np.arange(start, self._size, dtype=np.int64)

    def code(self, value: str) -> int:
        """Index of ``value``, adding it once (for small vocabularies such as ports)."""
        if self._chunks:
            raise ValueError("a pool filled by add() cannot take code()")
        if value not in self._index:
            self._index[value] = len(self._list)
            self._list.append(value)
            self._size += 1
        return self._index[value]

    def codes(self, values) -> np.ndarray:
        return np.array([self.code(v) for v in values], dtype=np.int64)


@dataclass
class Parties:
    """All parties, one row per party; columns are numpy arrays of equal length."""

    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    name: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    country: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    phone: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    phone2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    phone_change: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    address: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    address2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    address_change: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _buffers: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    """Growable storage behind each column (the columns are views of its first rows): schemes
    add parties a ring at a time, thousands of times in a big world, and copying every column
    on each add made building the world quadratic in its size."""

    def __len__(self) -> int:
        return len(self.kind)

    def _append(self, col: str, values: np.ndarray) -> None:
        current = getattr(self, col)
        start, end = len(current), len(current) + len(values)
        buffer = self._buffers.get(col)
        if buffer is None or current.base is not buffer or len(buffer) < end:
            buffer = np.empty(max(end, 2 * start, 1024), dtype=current.dtype)
            buffer[:start] = current
            self._buffers[col] = buffer
        buffer[start:end] = values
        setattr(self, col, buffer[:end])

    def add(self, kind: int, name: np.ndarray, **columns: np.ndarray) -> np.ndarray:
        """Append parties of one kind; missing columns default to "none" (-1 / never)."""
        n = len(name)
        defaults = {
            "country": np.full(n, cat.COUNTRY_INDEX["KR"]),
            "phone": np.full(n, -1),
            "phone2": np.full(n, -1),
            "phone_change": np.full(n, NEVER),
            "address": np.full(n, -1),
            "address2": np.full(n, -1),
            "address_change": np.full(n, NEVER),
            "code": np.full(n, -1),
        }
        defaults.update(columns)
        start = len(self)
        self._append("kind", np.full(n, kind, np.int8))
        self._append("name", np.asarray(name, np.int64))
        for col, values in defaults.items():
            self._append(col, np.asarray(values, getattr(self, col).dtype))
        return np.arange(start, start + n, dtype=np.int64)

    def phone_at(self, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The phone a party declares on ``day`` (after a legitimate change, the new one)."""
        return np.where(day >= self.phone_change[idx], self.phone2[idx], self.phone[idx])

    def address_at(self, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        return np.where(day >= self.address_change[idx], self.address2[idx], self.address[idx])


@dataclass
class Lanes:
    """Legitimate trade relationships of one mode (sea or air cargo)."""

    consignee: np.ndarray
    shipper: np.ndarray
    commodity: np.ndarray
    origin: np.ndarray  # country index (where the goods come from)
    loading: np.ndarray  # port pool index
    route: np.ndarray  # route pool index ("" = direct)
    discharge: np.ndarray  # port pool index
    carrier: np.ndarray  # index into the mode's carrier tuple
    forwarder: np.ndarray  # party index or -1 (direct booking)
    declarant: np.ndarray  # party index
    notify: np.ndarray  # party index or -1
    container: np.ndarray  # contract container type index (sea) or -1
    load: np.ndarray  # 0 fcl, 1 lcl (sea) or -1
    freight: np.ndarray  # 0 prepaid, 1 collect
    payment: np.ndarray  # contract payment method index
    currency: np.ndarray  # currency pool index
    weight_kg: np.ndarray  # typical gross weight of one shipment
    value_factor: np.ndarray  # lane's multiplier on the commodity's value per kg
    flight: np.ndarray  # vocab index of the usual flight number (air) or -1
    start: np.ndarray  # first active day (negative = active before the period)
    activity: np.ndarray  # relative shipment rate

    def __len__(self) -> int:
        return len(self.consignee)


@dataclass
class Express:
    """Express senders and private recipients."""

    sender: np.ndarray  # party index
    sender_country: np.ndarray  # country index
    sender_platform: np.ndarray  # platform pool index (-1 = none)
    sender_category: np.ndarray  # index into EXPRESS_CATEGORY_NAMES
    sender_courier: np.ndarray  # index into COURIERS
    sender_generic: np.ndarray  # probability the sender writes a vague description
    sender_start: np.ndarray
    sender_activity: np.ndarray
    private_senders: np.ndarray  # sender rows of private persons abroad (gifts, C2C)
    agent_phones: np.ndarray  # phone pool indexes of purchasing agents
    agent_activity: np.ndarray
    recipient: np.ndarray  # party index (kind PERSON)
    recipient_start: np.ndarray
    recipient_activity: np.ndarray


@dataclass
class World:
    """Everything legitimate trade is drawn from, plus the string pools of the output."""

    config: SimConfig
    parties: Parties
    names: Pool
    phones: Pool
    addresses: Pool
    codes: Pool  # personal customs clearance codes
    vocab: Pool  # port codes, routes, currencies, platforms, hs codes, wording
    sea: Lanes
    air: Lanes
    express: Express
    forwarders: np.ndarray
    forwarder_weight: np.ndarray
    declarants: np.ndarray
    declarant_weight: np.ndarray
    expected: dict[str, float]

    @property
    def days(self) -> int:
        return self.config.days


# --- helpers ---------------------------------------------------------------------------------


def pick(rng: np.random.Generator, options, n: int, weights=None) -> np.ndarray:
    """``n`` draws from ``options`` (a sequence) with optional weights, as a numpy array."""
    options = np.asarray(options, dtype=object)
    if weights is None:
        return options[rng.integers(0, len(options), n)]
    p = np.asarray(weights, dtype=float)
    return options[rng.choice(len(options), size=n, p=p / p.sum())]


def heavy_tail(rng: np.random.Generator, n: int, sigma: float = 1.3) -> np.ndarray:
    """Activity weights: log-normal, so a few parties dominate and most are occasional."""
    return rng.lognormal(0.0, sigma, n)


def start_days(rng: np.random.Generator, n: int, days: int, new_share: float) -> np.ndarray:
    """First active day: ``new_share`` appear uniformly during the period, the rest before."""
    new = rng.random(n) < new_share
    return np.where(new, rng.uniform(0, days, n), -rng.uniform(1, 2000, n))


def strcat(*parts) -> np.ndarray:
    """Element-wise concatenation of string/number arrays and scalars (vectorised)."""
    n = max(len(p) for p in parts if not isinstance(p, str | int))
    out = pd.Series([""] * n, dtype="str")
    for part in parts:
        if isinstance(part, str | int):
            out = out + str(part)
        else:
            arr = np.asarray(part)
            series = (
                pd.Series(arr).astype("str") if arr.dtype != object else pd.Series(arr, dtype="str")
            )
            out = out + series.to_numpy()
    return out.to_numpy(dtype=object)


def _by_group(codes: np.ndarray, table: list[tuple[str, ...]], r: np.ndarray) -> np.ndarray:
    """For each row, element ``int(r * len(option))`` of ``table[codes]`` (vectorised per
    distinct code)."""
    out = np.empty(len(codes), dtype=object)
    for code in np.unique(codes):
        mask = codes == code
        options = np.asarray(table[code], dtype=object)
        out[mask] = options[(r[mask] * len(options)).astype(np.int64)]
    return out


def company_names(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    n = len(countries)
    a = pick(rng, cat.COMPANY_WORDS_A, n)
    b = pick(rng, cat.COMPANY_WORDS_B, n)
    default = ("Co., Ltd.", "Ltd.", "Trading Co.")
    table = [cat.COMPANY_SUFFIX.get(c, default) for c in cat.COUNTRIES]
    suffix = _by_group(np.asarray(countries, dtype=np.int64), table, rng.random(n))
    return strcat(a, " ", b, " ", suffix)


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    surnames, share = zip(*cat.KOREAN_SURNAMES, strict=True)
    s = pick(rng, surnames, n, share)
    g1 = pick(rng, [x.capitalize() for x in cat.KOREAN_SYLLABLES], n)
    g2 = pick(rng, cat.KOREAN_SYLLABLES, n)
    names = strcat(s, " ", g1, "-", g2)
    upper = rng.random(n) < 0.3
    names[upper] = pd.Series(names[upper], dtype="str").str.upper().to_numpy(dtype=object)
    return names


def korean_addresses(rng: np.random.Generator, n: int, business: bool) -> np.ndarray:
    city_i = rng.choice(len(cat.KOREAN_CITIES), n, p=cat.KOREAN_CITY_SHARE)
    road = pick(rng, cat.ROAD_NAMES, n)
    number = rng.integers(1, 600, n)
    sub = rng.integers(1, 40, n)
    apt = rng.random(n) < (0.15 if business else 0.7)
    block = rng.integers(101, 120, n)
    unit = rng.integers(1, 25, n) * 100 + rng.integers(1, 8, n)
    city = np.array([c for c, _ in cat.KOREAN_CITIES], dtype=object)[city_i]
    district = _by_group(city_i, [d for _, d in cat.KOREAN_CITIES], rng.random(n))
    head = strcat(number, "-", sub, " ", road, ", ", district, ", ", city)
    tail = strcat(", ", unit) if business else strcat(", ", block, "-", unit)
    return np.where(apt, strcat(head, tail), head)


def korean_phones(rng: np.random.Generator, n: int, mobile_share: float) -> np.ndarray:
    mobile = rng.random(n) < mobile_share
    intl = rng.random(n) < 0.5
    a = rng.integers(1000, 10000, n)
    b = rng.integers(1000, 10000, n)
    c = rng.integers(200, 1000, n)
    area = pick(rng, list(cat.AREA_CODES.values()), n)
    prefix = np.where(
        mobile,
        np.where(intl, "+82 10-", "010-"),
        strcat(np.where(intl, "+82 ", "0"), area, "-"),
    )
    middle = np.where(mobile, a, c)
    return strcat(prefix, middle, "-", b)


def new_pcccs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Personal customs clearance codes: ``P`` followed by 12 digits."""
    hi = pd.Series(rng.integers(10**5, 10**6, n)).astype("str")
    lo = pd.Series(rng.integers(0, 10**6, n)).astype("str").str.zfill(6)
    return ("P" + hi + lo).to_numpy(dtype=object)


# --- building --------------------------------------------------------------------------------


def expected_counts(config: SimConfig) -> dict[str, float]:
    total = config.days * config.shipments_per_day
    return {m: total * s for m, s in config.mode_shares().items()}


def add_importers(
    world_parts: tuple[Parties, Pool, Pool, Pool],
    rng: np.random.Generator,
    n: int,
    days: int,
    mobile_share: float = 0.15,
) -> np.ndarray:
    """Korean importing companies; a few change phone or address legitimately mid-period."""
    parties, names, phones, addresses = world_parts
    kr = np.full(n, cat.COUNTRY_INDEX["KR"])
    name = names.add(company_names(rng, kr))
    phone = phones.add(korean_phones(rng, n, mobile_share))
    phone2 = phones.add(korean_phones(rng, n, mobile_share))
    address = addresses.add(korean_addresses(rng, n, business=True))
    address2 = addresses.add(korean_addresses(rng, n, business=True))
    phone_change = np.where(rng.random(n) < 0.04, rng.uniform(0, days, n), NEVER)
    address_change = np.where(rng.random(n) < 0.03, rng.uniform(0, days, n), NEVER)
    return parties.add(
        IMPORTER,
        name,
        phone=phone,
        phone2=phone2,
        phone_change=phone_change,
        address=address,
        address2=address2,
        address_change=address_change,
    )


def add_persons(
    world_parts: tuple[Parties, Pool, Pool, Pool], codes: Pool, rng: np.random.Generator, n: int
) -> np.ndarray:
    """Private express recipients. About a fifth live in a household with another recipient
    and share its address (and often its landline); a few share an office address."""
    parties, names, phones, addresses = world_parts
    name = names.add(person_names(rng, n))
    phone = phones.add(korean_phones(rng, n, mobile_share=0.93))
    address = addresses.add(korean_addresses(rng, n, business=False))
    household = rng.random(n) < 0.2
    partner = rng.integers(0, n, n)
    address = np.where(household, address[partner], address)
    phone = np.where(household & (rng.random(n) < 0.3), phone[partner], phone)
    # second delivery address (office, parents) used for some parcels from a given day
    address2 = addresses.add(korean_addresses(rng, n, business=True))
    office = rng.integers(0, max(1, n // 12), n)
    address2 = np.where(rng.random(n) < 0.3, address2[office], address2)
    address_change = np.where(rng.random(n) < 0.06, rng.uniform(-30, 400, n), NEVER)
    phone2 = phones.add(korean_phones(rng, n, mobile_share=1.0))
    phone_change = np.where(rng.random(n) < 0.03, rng.uniform(0, 400, n), NEVER)
    code = codes.add(new_pcccs(rng, n))
    return parties.add(
        PERSON,
        name,
        phone=phone,
        phone2=phone2,
        phone_change=phone_change,
        address=address,
        address2=address2,
        address_change=address_change,
        code=code,
    )


def add_foreign_companies(
    parties: Parties, names: Pool, rng: np.random.Generator, countries: np.ndarray, kind: int
) -> np.ndarray:
    name = names.add(company_names(rng, countries))
    return parties.add(kind, name, country=countries)


def _loading_ports(rng, ports: Pool, countries: np.ndarray, table: dict) -> np.ndarray:
    out = np.empty(len(countries), dtype=np.int64)
    for c in np.unique(countries):
        mask = countries == c
        options = table.get(cat.COUNTRIES[c]) or table["CN"]
        share = np.linspace(1.0, 0.4, len(options))
        out[mask] = ports.codes(pick(rng, options, int(mask.sum()), share))
    return out


def build_lanes(
    mode: str,
    rng: np.random.Generator,
    parties: Parties,
    pools: tuple[Parties, Pool, Pool, Pool],
    ports: Pool,
    forwarders: np.ndarray,
    forwarder_weight: np.ndarray,
    declarants: np.ndarray,
    declarant_weight: np.ndarray,
    expected: float,
    days: int,
) -> Lanes:
    """Legitimate sea or air-cargo trade lanes and their importers and exporters."""
    names = pools[1]
    n_importers = max(40, int(expected / (14 if mode == "sea" else 12)))
    importers = add_importers(pools, rng, n_importers, days)
    imp_weight = heavy_tail(rng, n_importers, 1.2)
    imp_start = start_days(rng, n_importers, days, new_share=0.12)
    imp_forwarder = forwarders[
        rng.choice(len(forwarders), n_importers, p=forwarder_weight / forwarder_weight.sum())
    ]
    imp_declarant = declarants[
        rng.choice(len(declarants), n_importers, p=declarant_weight / declarant_weight.sum())
    ]

    n_lanes = int(n_importers * 1.8)
    owner = np.concatenate(
        [
            np.arange(n_importers),
            rng.choice(n_importers, n_lanes - n_importers, p=imp_weight / imp_weight.sum()),
        ]
    )
    goods = [c for c in cat.COMMODITIES if c.mode == mode]
    goods_idx = np.array([cat.COMMODITY_INDEX[c.key] for c in goods])
    commodity = goods_idx[
        rng.choice(
            len(goods),
            n_lanes,
            p=np.array([c.volume for c in goods]) / sum(c.volume for c in goods),
        )
    ]
    origin = np.empty(n_lanes, dtype=np.int64)
    for ci in np.unique(commodity):
        mask = commodity == ci
        cs, w = zip(*cat.COMMODITIES[ci].origins, strict=True)
        origin[mask] = [cat.COUNTRY_INDEX[c] for c in pick(rng, cs, int(mask.sum()), w)]

    # exporters: a pool per (commodity, origin) so one exporter serves several importers
    group = commodity * 1000 + origin
    shipper = np.empty(n_lanes, dtype=np.int64)
    for g in np.unique(group):
        mask = group == g
        k = int(mask.sum())
        n_exp = max(1, round(k / 2.2))
        exporters = add_foreign_companies(parties, names, rng, np.full(n_exp, g % 1000), SHIPPER)
        shipper[mask] = exporters[rng.integers(0, n_exp, k)]

    if mode == "sea":
        loading = _loading_ports(rng, ports, origin, cat.SEA_PORTS)
        route = np.empty(n_lanes, dtype=np.int64)
        for c in np.unique(origin):
            mask = origin == c
            region = cat.REGION_OF.get(cat.COUNTRIES[c], "asia")
            hubs, w = zip(*cat.SEA_HUBS[region], strict=True)
            route[mask] = ports.codes(pick(rng, hubs, int(mask.sum()), w))
        discharge = ports.codes(pick(rng, cat.KOREAN_SEA_PORTS, n_lanes, cat.KOREAN_SEA_PORT_SHARE))
        carriers: tuple[cat.Carrier, ...] = cat.SEA_CARRIERS
        container = np.array(
            [_container_index(cat.COMMODITIES[c].container) for c in commodity], dtype=np.int64
        )
        special = (container == 0) & (rng.random(n_lanes) < 0.04)
        container = np.where(special, rng.choice([2, 3], n_lanes), container)
        load = np.where(rng.random(n_lanes) < 0.7 + 0.1 * (imp_weight[owner] > 2), 0, 1)
        load = np.where(container == 1, 0, load)  # reefers travel as full containers
        weight_kg = np.where(
            load == 0, rng.uniform(9_000, 24_000, n_lanes), rng.lognormal(7.3, 0.8, n_lanes)
        )
    else:
        loading = _loading_ports(rng, ports, origin, cat.AIRPORTS)
        far = ~np.isin(origin, [cat.COUNTRY_INDEX[c] for c in cat.NEAR_AIR])
        hub = pick(rng, cat.AIR_HUBS, n_lanes)
        route = ports.codes(np.where(far & (rng.random(n_lanes) < 0.55), hub, ""))
        discharge = ports.codes(pick(rng, cat.KOREAN_AIRPORTS, n_lanes, cat.KOREAN_AIRPORT_SHARE))
        carriers = cat.AIRLINES
        container = np.full(n_lanes, -1)
        load = np.full(n_lanes, -1)
        weight_kg = rng.lognormal(5.0, 1.0, n_lanes) + 5
    carrier = rng.choice(
        len(carriers),
        n_lanes,
        p=np.array([c.weight for c in carriers]) / sum(c.weight for c in carriers),
    )
    if mode == "sea":
        flight = np.full(n_lanes, -1)
    else:
        numbers = rng.integers(1, 999, n_lanes)
        flight = ports.codes(
            [f"{carriers[c].code}{num:03d}" for c, num in zip(carrier, numbers, strict=True)]
        )
    direct = rng.random(n_lanes) < (0.12 if mode == "sea" else 0.05)
    other_fw = forwarders[
        rng.choice(len(forwarders), n_lanes, p=forwarder_weight / forwarder_weight.sum())
    ]
    forwarder = np.where(rng.random(n_lanes) < 0.85, imp_forwarder[owner], other_fw)
    forwarder = np.where(direct, -1, forwarder)
    declarant = imp_declarant[owner]
    notify_is_consignee = rng.random(n_lanes) < 0.6
    notify = np.where(notify_is_consignee, importers[owner], -1)
    notify = np.where(rng.random(n_lanes) < 0.25, declarant, notify)
    freight = (rng.random(n_lanes) < 0.45).astype(np.int64)  # 1 = collect
    payment = rng.choice(
        [0, 1, 2, 3], n_lanes, p=[0.47, 0.24, 0.27, 0.02]
    )  # bank_transfer, LC, open_account, cash
    local = rng.random(n_lanes) < 0.3
    currency = np.array(
        [
            ports.code(_invoice_currency(cat.COUNTRIES[o]) if loc else "USD")
            for o, loc in zip(origin, local, strict=True)
        ]
    )
    lane_start = np.maximum(imp_start[owner], start_days(rng, n_lanes, days, new_share=0.08))
    activity = heavy_tail(rng, n_lanes, 1.0) * imp_weight[owner] ** 0.6
    return Lanes(
        consignee=importers[owner],
        shipper=shipper,
        commodity=commodity,
        origin=origin,
        loading=loading,
        route=route,
        discharge=discharge,
        carrier=carrier,
        forwarder=forwarder,
        declarant=declarant,
        notify=notify,
        container=container,
        load=load,
        freight=freight,
        payment=payment,
        currency=currency,
        weight_kg=weight_kg,
        value_factor=rng.lognormal(0, 0.2, n_lanes),
        flight=flight,
        start=lane_start,
        activity=activity,
    )


def _invoice_currency(country: str) -> str:
    """Local currency for invoices, except very small units (VND, IDR...) where trade is
    invoiced in USD."""
    local = cat.CURRENCY_OF[country]
    return local if cat.USD_PER_UNIT[local] >= 0.005 else "USD"


def _container_index(kind: str) -> int:
    return {"dry": 0, "reefer": 1, "open_top": 2, "flat_rack": 3, "tank": 4}.get(kind, -1)


def build_express(
    rng: np.random.Generator,
    parties: Parties,
    pools: tuple[Parties, Pool, Pool, Pool],
    codes: Pool,
    ports: Pool,
    expected: float,
    days: int,
) -> Express:
    """Platform sellers abroad and private recipients in Korea."""
    names = pools[1]
    n_senders = max(60, int(expected / 40))
    countries, w = zip(*cat.EXPRESS_ORIGINS, strict=True)
    country = np.array([cat.COUNTRY_INDEX[c] for c in pick(rng, countries, n_senders, w)])
    senders = add_foreign_companies(parties, names, rng, country, SENDER)
    platform = np.empty(n_senders, dtype=np.int64)
    for c in np.unique(country):
        mask = country == c
        options, pw = zip(*cat.PLATFORMS.get(cat.COUNTRIES[c], cat.OTHER_PLATFORMS), strict=True)
        chosen = pick(rng, options, int(mask.sum()), pw)
        platform[mask] = [ports.code(p) if p else -1 for p in chosen]
    category = rng.choice(
        len(cat.EXPRESS_CATEGORY_NAMES),
        n_senders,
        p=np.array([0.24, 0.17, 0.14, 0.12, 0.07, 0.06, 0.09, 0.03, 0.08]),
    )
    courier = rng.choice(
        len(cat.COURIERS),
        n_senders,
        p=np.array([c.weight for c in cat.COURIERS]) / sum(c.weight for c in cat.COURIERS),
    )
    generic = np.where(rng.random(n_senders) < 0.12, rng.uniform(0.2, 0.9, n_senders), 0.01)
    # private persons abroad (family, friends): one or two parcels each, no platform, often
    # described as gifts or personal effects
    n_private = max(50, int(expected * PRIVATE_PARCEL_SHARE / 1.4))
    pcountries, pw = zip(*PRIVATE_SENDER_ORIGINS, strict=True)
    pcountry = np.array([cat.COUNTRY_INDEX[c] for c in pick(rng, pcountries, n_private, pw)])
    private = parties.add(SENDER, names.add(person_names(rng, n_private)), country=pcountry)
    n_all = n_senders + n_private
    n_agents = max(5, int(expected * AGENT_PARCEL_SHARE / 150))
    recipients_n = max(300, int(expected / 2.2))
    recipients = add_persons(pools, codes, rng, recipients_n)
    return Express(
        sender=np.concatenate([senders, private]),
        sender_country=np.concatenate([country, pcountry]),
        sender_platform=np.concatenate([platform, np.full(n_private, -1)]),
        sender_category=np.concatenate(
            [category, rng.choice([0, 2, 3, 6], n_private, p=[0.35, 0.2, 0.2, 0.25])]
        ),
        sender_courier=np.concatenate(
            [courier, rng.choice([0, 1, 2, 3], n_private, p=[0.2, 0.15, 0.15, 0.5])]
        ),
        sender_generic=np.concatenate([generic, rng.uniform(0.3, 0.7, n_private)]),
        sender_start=np.concatenate(
            [start_days(rng, n_senders, days, new_share=0.15), np.full(n_private, NEVER)]
        ),
        sender_activity=np.concatenate([heavy_tail(rng, n_senders, 1.6), np.zeros(n_private)]),
        private_senders=np.arange(n_senders, n_all),
        agent_phones=vocab_phones(pools, rng, n_agents),
        agent_activity=heavy_tail(rng, n_agents, 1.2),
        recipient=recipients,
        recipient_start=start_days(rng, recipients_n, days, new_share=0.2),
        recipient_activity=heavy_tail(rng, recipients_n, 1.1),
    )


def vocab_phones(pools: tuple[Parties, Pool, Pool, Pool], rng, n: int) -> np.ndarray:
    """Office phones of Korean purchasing agents (mostly landlines)."""
    return pools[2].add(korean_phones(rng, n, mobile_share=0.3))


def build_world(config: SimConfig, rng: np.random.Generator) -> World:
    """The legitimate population for ``config``, sized to the expected shipment counts."""
    parties, names, phones, addresses = Parties(), Pool(), Pool(), Pool()
    codes, vocab = Pool(), Pool()
    pools = (parties, names, phones, addresses)
    expected = expected_counts(config)
    cargo = expected["sea"] + expected["air"]
    n_fw = int(np.clip(cargo / 150, 30, 900))
    fw_country = np.where(
        rng.random(n_fw) < 0.6,
        cat.COUNTRY_INDEX["KR"],
        rng.choice([cat.COUNTRY_INDEX[c] for c in ("CN", "US", "DE", "NL", "SG", "HK")], n_fw),
    )
    forwarders = add_foreign_companies(parties, names, rng, fw_country, FORWARDER)
    forwarder_weight = heavy_tail(rng, n_fw, 1.4)
    n_decl = int(np.clip(cargo / 250, 20, 500))
    declarants = parties.add(
        DECLARANT,
        names.add(company_names(rng, np.full(n_decl, cat.COUNTRY_INDEX["KR"]))),
        phone=phones.add(korean_phones(rng, n_decl, mobile_share=0.1)),
    )
    declarant_weight = heavy_tail(rng, n_decl, 1.2)
    sea = build_lanes(
        "sea", rng, parties, pools, vocab, forwarders, forwarder_weight, declarants,
        declarant_weight, expected["sea"], config.days,
    )  # fmt: skip
    air = build_lanes(
        "air", rng, parties, pools, vocab, forwarders, forwarder_weight, declarants,
        declarant_weight, expected["air"], config.days,
    )  # fmt: skip
    express = build_express(rng, parties, pools, codes, vocab, expected["express"], config.days)
    return World(
        config=config,
        parties=parties,
        names=names,
        phones=phones,
        addresses=addresses,
        codes=codes,
        vocab=vocab,
        sea=sea,
        air=air,
        express=express,
        forwarders=forwarders,
        forwarder_weight=forwarder_weight,
        declarants=declarants,
        declarant_weight=declarant_weight,
        expected=expected,
    )
