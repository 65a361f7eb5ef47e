"""The simulated world as a real customs export holds it (``SimConfig(messy=True)``).

Real import-declaration exports are not the tidy tables the simulator writes by default. A
customs service's export (the Korea Customs Service's public synthetic import-declaration data
is the model here) has:

* **blank seller ids** (about 10 % of rows): private senders abroad have no registered seller
  code, and some declarations simply leave the field empty;
* **six transport modes**: besides sea and air, *post* (EMS items arrive through the postal
  channel, with no courier id), *road* (Chinese cargo on ro-ro trucks over the Yellow Sea
  ferries to Incheon and Pyeongtaek), *rail* (Trans-Siberian intermodal bills from Russia and
  some European LCL), *other* (a few air consignments declared as hand-carried or mixed);
  express courier parcels are air or sea (ferry) shipments with a courier id;
* **odd but real weights**: the declared mass is the *net* mass in kg with one decimal, so the
  lightest parcels round to 0 kg (about 0.7 % of rows), and bulk importers of soybeans, steel
  and pulp declare whole vessel loads above 1,000 t (about 0.3 %);
* **free-of-charge gifts** declared with a value of 0;
* **6-digit HS codes** and **calendar dates** (the Korean date of declaration, booking,
  departure and arrival, no time of day); a direct route is an empty field, as blank as an
  undeclared one;
* the service's **own attributes** (customs office, process type, import type and use, duty
  payment type, tax rate and type, origin certificate, manifest amendments, bonded warehouse,
  declaration channel). Some carry risk signal because they are correlated with the hidden
  schemes (:data:`SIGNAL_ATTRIBUTES`); the others are derived from fields the shipment already
  has or are pure noise.

:func:`make_messy` turns the rendered shipments into that world: the contract columns as the
export states them, then one ``attr.<name>`` column per attribute of :data:`ATTRIBUTES`. This
frame is exactly what ``cargorisk ingest`` makes of the export (:mod:`simulator.export`), so the
messy world's ``--out`` tables are the answer key of its ``--export``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, DatasetInfo, LabelMeaning
from simulator import catalog as cat
from simulator.world import World

KST: Final = pd.Timedelta(hours=9)
"""Korea Standard Time is UTC+9 all year: the export's dates are Korean calendar days."""

EXPORT_MODES: Final = {"sea": "10", "rail": "20", "road": "30", "air": "40", "post": "50"}
OTHER_MODE: Final = "90"
"""The export's Mode of Transport codes; express parcels carry the code of their vehicle (air
40, or sea 10 on the China ferries) and are told apart by their courier id."""

POST_COURIER: Final = "EMS"
"""Express Mail Service items travel through the postal channel: mode post, no courier id."""
ROAD_PORTS: Final = ("KRINC", "KRPTK")
ROAD_SHARE: Final = 0.8
"""Share of China-Incheon/Pyeongtaek sea trade lanes (shipper, consignee) on ro-ro trucks."""
RAIL_FROM: Final = {"RU": 0.8}
RAIL_EUROPE: Final = ("DE", "NL", "FR", "IT", "ES", "GB", "NO")
RAIL_EUROPE_LCL_SHARE: Final = 0.3
OTHER_AIR_SHARE: Final = 0.015
BULK_HEADINGS: Final = ("1201", "7210", "4703")
"""Soybeans, flat-rolled steel and wood pulp: some importers bring them as vessel loads."""
BULK_IMPORTER_SHARE: Final = 0.15
BULK_T: Final = (1_500.0, 60_000.0)
BLANK_SELLER_SHARE: Final = 0.045
"""Share of the other declarations that leave the seller id empty."""
FREE_GIFT_SHARE: Final = 0.35
"""Share of private senders' gifts and personal effects declared free of charge (value 0)."""
FREE_WORDS: Final = ("GIFT", "PERSONAL EFFECTS", "SAMPLE", "DOCUMENTS")
CARGO_NET: Final = (0.86, 0.97)
PARCEL_PACKING_KG: Final = (0.04, 0.10)

FTA_PARTNERS: Final = frozenset(
    ("CL", "SG", "PE", "US", "IN", "AU", "CA", "CN", "NZ", "VN", "CO", "GB", "DE", "NL", "ES",
     "FR", "IT", "NO", "CH", "TH", "ID", "MY", "PH", "TW")
)  # fmt: skip
"""Origins with which Korea has a trade agreement (preferential duty with a certificate)."""
BASE_TAX_RATE: Final = {
    "02": 40.0, "03": 10.0, "06": 25.0, "08": 30.0, "09": 2.0, "12": 3.0, "18": 5.0,
    "20": 30.0, "22": 15.0, "33": 6.5, "39": 6.5, "44": 5.0, "47": 0.0, "61": 13.0, "62": 13.0,
    "64": 13.0, "69": 8.0, "72": 0.0, "84": 8.0, "85": 8.0, "87": 8.0, "94": 8.0,
}  # fmt: skip
"""Basic duty rate (%) by HS chapter; 8 % for chapters not listed."""
PARCEL_TAX_RATE: Final = 20.0
"""Simplified list rate (%) for parcels above the duty-free threshold."""

OFFICES: Final = {
    "020": "Incheon", "030": "Busan", "040": "Incheon Airport", "041": "Gimhae Airport",
    "042": "Incheon Express Center", "043": "International Mail Center", "160": "Pyeongtaek",
    "622": "Gwangyang", "810": "Ulsan",
}  # fmt: skip
"""Customs offices: the export's Office ID code and the office's name (the attribute value)."""
_PORT_OFFICE: Final = {
    "KRPUS": "030", "KRINC": "020", "KRKAN": "622", "KRUSN": "810", "KRPTK": "160",
    "ICN": "040", "PUS": "041",
}  # fmt: skip

ATTRIBUTES: Final = {
    "office": AttributeSpec(
        kind="categorical", label="customs office", description="office the goods are cleared at"
    ),
    "process_type": AttributeSpec(
        kind="categorical",
        label="process type",
        description="A before arrival, B after arrival, C after entry into a bonded warehouse",
    ),
    "import_type": AttributeSpec(
        kind="categorical",
        label="import type",
        description="11 general, 21 bonded factory, 87 parcel list clearance, 88 parcel "
        "general clearance, 91 postal",
    ),
    "import_use": AttributeSpec(
        kind="categorical",
        label="import use",
        description="10 resale, 20 own use, 30 processing, 40 personal use",
    ),
    "duty_payment": AttributeSpec(
        kind="categorical",
        label="duty payment type",
        description="11 paid before release, 43 monthly on credit, 13 paid by the courier or post",
    ),
    "tax_rate": AttributeSpec(kind="numeric", label="tax rate", description="duty rate in %"),
    "tax_type": AttributeSpec(
        kind="categorical",
        label="tax type",
        description="A basic, C WTO concession, F trade-agreement preference, S parcel "
        "simplified rate, X duty-free parcel",
    ),
    "origin_certificate": AttributeSpec(
        kind="categorical",
        label="origin certificate",
        description="Y a certificate of origin was presented, N none (cargo only)",
    ),
    "amendments": AttributeSpec(
        kind="numeric", label="manifest amendments", description="corrections of the manifest"
    ),
    "warehouse": AttributeSpec(
        kind="categorical", label="bonded warehouse", description="where the goods wait"
    ),
    "channel": AttributeSpec(
        kind="categorical", label="declaration channel", description="EDI, WEB or API"
    ),
}
"""The export's own fields, in the order of the frame's ``attr.*`` columns."""

SIGNAL_ATTRIBUTES: Final = ("duty_payment", "origin_certificate", "amendments")
"""Attributes correlated with the hidden schemes: organisations' new importers never have
monthly duty credit and a hijacked identity rarely can use it; smugglers' cargo seldom comes
with a certificate of origin; their manifests are corrected more often. The rest carry no
signal of their own: ``office``, ``import_type`` and ``tax_*`` follow from port, mode, value,
HS code and origin; ``import_use`` is a trait of the importer; ``process_type``, ``warehouse``
and ``channel`` are pure noise."""

DATASET_INFO: Final = DatasetInfo(label=LabelMeaning(), attributes=ATTRIBUTES)

CRITICAL_KG: Final = 5.0
"""A seizure of at least this many kilograms is *critical* (a wholesale load): the export's
second label."""


def make_messy(
    world: World,
    shipments: pd.DataFrame,
    truth: pd.DataFrame,
    parties: dict[str, np.ndarray],
    first_scheme_party: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The messy world's shipments: ``shipments`` (contract columns, declaration order) changed
    as the export states them, then the ``attr.*`` columns of :data:`ATTRIBUTES`.

    ``parties`` holds the party row of each shipment's ``shipper`` and ``consignee`` (same
    order); parties from ``first_scheme_party`` on were created by the smuggling schemes.
    """
    s = shipments.copy()
    n = len(s)
    illicit = truth["illicit"].to_numpy()
    scheme = truth["scheme"].to_numpy()
    # traits of a trade relationship (shipper, consignee), of an importer, and of one row
    n_parties = len(world.parties)
    shipper_u, consignee_u = rng.random((3, n_parties)), rng.random((3, n_parties))
    pair_u = (shipper_u[:, parties["shipper"]] + consignee_u[:, parties["consignee"]]) % 1
    importer_u = rng.random((4, n_parties))[:, parties["consignee"]]
    row_u = rng.random((6, n))

    mode = s["mode"].to_numpy(dtype=object).copy()
    express = mode == "express"
    post = express & (s["carrier_id"].to_numpy(dtype=object) == POST_COURIER)
    departure = s["departure_country"].to_numpy(dtype=object)
    sea = mode == "sea"
    road = sea & (departure == "CN") & s["discharge_port"].isin(ROAD_PORTS).to_numpy()
    road &= pair_u[0] < ROAD_SHARE
    rail_share = pd.Series(departure).map(RAIL_FROM).fillna(0.0).to_numpy()
    lcl = s["load_type"].to_numpy(dtype=object) == "lcl"
    rail_share = np.where(np.isin(departure, RAIL_EUROPE) & lcl, RAIL_EUROPE_LCL_SHARE, rail_share)
    rail = sea & ~road & (pair_u[0] < rail_share)
    other = (mode == "air") & (row_u[0] < OTHER_AIR_SHARE)
    mode[post], mode[road], mode[rail], mode[other] = "post", "road", "rail", "other"
    s["mode"] = mode
    s["carrier_id"] = s["carrier_id"].where(~post, None)

    private = np.isin(parties["shipper"], world.express.sender[world.express.private_senders])
    s["shipper_id"] = s["shipper_id"].where(~(private | (row_u[1] < BLANK_SELLER_SHARE)), None)

    hs = s["hs_code"].astype("str")
    bulk = (mode == "sea") & hs.str[:4].isin(BULK_HEADINGS).to_numpy()
    bulk &= importer_u[0] < BULK_IMPORTER_SHARE
    _bulk(s, bulk, rng)
    _net_weight(s, np.isin(mode, ["express", "post"]), bulk, rng)
    free = private & s["goods_description"].isin(FREE_WORDS).to_numpy()
    free &= row_u[2] < FREE_GIFT_SHARE
    for col in ("declared_value", "declared_value_usd"):
        s[col] = s[col].where(~free, 0.0)
    s["hs_code"] = hs.str[:6]
    # a direct route is an empty field in a CSV, which reads as "not declared"
    s["transshipment_ports"] = s["transshipment_ports"].mask(s["transshipment_ports"] == "")
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        s[col] = (s[col] + KST).dt.floor("D")

    new_party = parties["consignee"] >= first_scheme_party
    attrs = _attributes(s, illicit, scheme, new_party, pair_u, importer_u, row_u, rng)
    for name in ATTRIBUTES:
        s["attr." + name] = attrs[name]
    return s


def _bulk(s: pd.DataFrame, bulk: np.ndarray, rng: np.random.Generator) -> None:
    """Whole vessel loads: weight and value scaled up together, no container, no packages."""
    tonnes = np.exp(rng.uniform(np.log(BULK_T[0]), np.log(BULK_T[1]), len(s)))
    factor = np.where(bulk, tonnes * 1000 / s["gross_weight_kg"].to_numpy(), 1.0)
    s["gross_weight_kg"] = np.where(bulk, np.round(tonnes * 1000), s["gross_weight_kg"])
    whole = s["currency"].isin(["JPY", "KRW", "VND", "IDR", "CLP", "COP", "LAK", "XOF"])
    value = s["declared_value"].to_numpy() * factor
    value = np.where(whole, np.round(value), np.round(value, 2))
    s["declared_value"] = np.where(bulk, value, s["declared_value"])
    usd = np.round(s["declared_value_usd"].to_numpy() * factor, 2)
    s["declared_value_usd"] = np.where(bulk, usd, s["declared_value_usd"])
    for col in ("container_id", "container_type", "load_type"):
        s[col] = s[col].where(~bulk, None)
    s["packages"] = s["packages"].astype("Int64").mask(bulk)


def _net_weight(
    s: pd.DataFrame, parcel: np.ndarray, bulk: np.ndarray, rng: np.random.Generator
) -> None:
    """The export states the net mass, in kg with one decimal: cargo without its packing, a
    parcel without its box (the lightest items round to 0 kg)."""
    gross = s["gross_weight_kg"].to_numpy()
    cargo = gross * rng.uniform(*CARGO_NET, len(s))
    parcel_net = np.maximum(gross - rng.uniform(*PARCEL_PACKING_KG, len(s)), 0.0)
    net = np.where(parcel, parcel_net, cargo)
    s["gross_weight_kg"] = np.where(bulk, gross, np.round(net, 1))


def _attributes(
    s: pd.DataFrame,
    illicit: np.ndarray,
    scheme: np.ndarray,
    new_party: np.ndarray,
    pair_u: np.ndarray,
    importer_u: np.ndarray,
    row_u: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The attribute values of every row (see :data:`ATTRIBUTES` and
    :data:`SIGNAL_ATTRIBUTES`); ``new_party`` marks consignees the schemes created."""
    n = len(s)
    # smugglers' own cargo (rip-on/rip-off loads travel in honest exporters' containers)
    schemed_cargo = illicit & (scheme != "rip_on_rip_off")
    mode = s["mode"].to_numpy(dtype=object)
    parcel = np.isin(mode, ["express", "post"])
    cargo = ~parcel
    postal = mode == "post"
    origin = s["origin_country"].to_numpy(dtype=object)
    value = s["declared_value_usd"].to_numpy()
    threshold = np.where(origin == "US", cat.DE_MINIMIS_USD_FROM_US, cat.DE_MINIMIS_USD)
    duty_free = parcel & (value <= threshold)

    port = s["discharge_port"].to_numpy(dtype=object)
    office = pd.Series(port).map(_PORT_OFFICE).fillna("030").to_numpy(dtype=object)
    office = np.where(mode == "express", np.where(port == "ICN", "042", office), office)
    office = np.where(postal, "043", office)

    process = np.where(
        cargo,
        np.where(row_u[3] < 0.7, "A", np.where(row_u[3] < 0.9, "B", "C")),
        np.where(row_u[3] < 0.9, "B", "A"),
    )
    import_type = np.where(
        cargo,
        np.where(importer_u[1] < 0.05, "21", "11"),
        np.where(postal, "91", np.where(duty_free, "87", "88")),
    )
    import_use = np.where(
        cargo,
        np.where(importer_u[2] < 0.5, "10", np.where(importer_u[2] < 0.7, "20", "30")),
        np.where(row_u[4] < 0.95, "40", "10"),
    )
    # monthly duty on credit needs a track record: the schemes' new importers never have it,
    # a hijacked identity can rarely use the victim's
    credit = (importer_u[3] < 0.7) & ~new_party
    credit &= ~((scheme == "hijacked_identity") & (row_u[5] < 0.8))
    duty_payment = np.where(parcel, "13", np.where(credit, "43", "11"))

    fta = np.isin(origin, list(FTA_PARTNERS))
    cert_u = np.where(schemed_cargo, rng.random(n), pair_u[1])
    certificate = np.where(schemed_cargo, cert_u < 0.2, cert_u < 0.75) & fta
    origin_certificate = np.where(  # type: ignore[call-overload]  # stubs refuse None
        parcel, None, np.where(certificate, "Y", "N")
    )
    concession = ~certificate & (pair_u[2] < 0.2)
    tax_type = np.where(
        parcel,
        np.where(duty_free, "X", "S"),
        np.where(certificate, "F", np.where(concession, "C", "A")),
    )
    base = s["hs_code"].str[:2].map(BASE_TAX_RATE).fillna(8.0).to_numpy()
    preference = np.where(rng.random(n) < 0.6, 0.0, 0.5)
    tax_rate = np.select(
        [duty_free, parcel, certificate, concession],
        [0.0, PARCEL_TAX_RATE, base * preference, base * 0.8],
        base,
    )
    rate = np.select([cargo & schemed_cargo, cargo, illicit], [0.6, 0.1, 0.1], 0.02)
    amendments = rng.poisson(rate).astype("float64")
    warehouse = np.char.add(office.astype(str), np.char.zfill(rng.integers(1, 7, n).astype(str), 2))
    channel = np.array(["EDI", "WEB", "API"], dtype=object)[
        np.searchsorted([0.7, 0.95], rng.random(n), side="right")
    ]
    return {
        "office": pd.Series(office).map(OFFICES).to_numpy(dtype=object),
        "process_type": process.astype(object),
        "import_type": import_type.astype(object),
        "import_use": import_use.astype(object),
        "duty_payment": duty_payment.astype(object),
        "tax_rate": np.round(tax_rate, 2),
        "tax_type": tax_type.astype(object),
        "origin_certificate": origin_certificate,
        "amendments": amendments,
        "warehouse": warehouse.astype(object),
        "channel": channel,
    }
