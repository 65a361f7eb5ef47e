"""Reference data of the simulated world: countries, ports and airports, carriers, commodities.

Codes look like the real thing: ISO 3166 alpha-2 countries, UN/LOCODE seaports (``ECGYE``),
IATA airports (``ICN``), ISO 4217 currencies, Korean 10-digit HSK tariff codes. The importing
country is the Republic of Korea. Volumes and unit values are plausible orders of magnitude,
not statistics of any real year.
"""

from __future__ import annotations

from typing import Final, NamedTuple

# --- countries -------------------------------------------------------------------------------

COUNTRIES: Final = (
    "KR", "CN", "JP", "US", "VN", "DE", "AU", "CL", "EC", "CO", "PE", "BR", "PH", "TH", "ID",
    "MY", "IN", "NL", "ES", "MX", "GH", "TG", "NG", "CI", "FR", "IT", "GB", "CA", "NZ", "RU",
    "AR", "UY", "GT", "ET", "KE", "NO", "TW", "HK", "SG", "CH", "SA", "BD", "LA", "AE", "PA",
)  # fmt: skip
COUNTRY_INDEX: Final = {c: i for i, c in enumerate(COUNTRIES)}

CURRENCY_OF: Final = {
    "KR": "KRW", "CN": "CNY", "JP": "JPY", "US": "USD", "VN": "VND", "DE": "EUR", "AU": "AUD",
    "CL": "CLP", "EC": "USD", "CO": "COP", "PE": "PEN", "BR": "BRL", "PH": "PHP", "TH": "THB",
    "ID": "IDR", "MY": "MYR", "IN": "INR", "NL": "EUR", "ES": "EUR", "MX": "MXN", "GH": "GHS",
    "TG": "XOF", "NG": "NGN", "CI": "XOF", "FR": "EUR", "IT": "EUR", "GB": "GBP", "CA": "CAD",
    "NZ": "NZD", "RU": "RUB", "AR": "ARS", "UY": "UYU", "GT": "GTQ", "ET": "ETB", "KE": "KES",
    "NO": "NOK", "TW": "TWD", "HK": "HKD", "SG": "SGD", "CH": "CHF", "SA": "SAR", "BD": "BDT",
    "LA": "LAK", "AE": "AED", "PA": "USD",
}  # fmt: skip

USD_PER_UNIT: Final = {
    "USD": 1.0, "KRW": 1 / 1380, "CNY": 0.139, "JPY": 0.0067, "VND": 0.0000395, "EUR": 1.08,
    "AUD": 0.66, "CLP": 0.00107, "COP": 0.000245, "PEN": 0.267, "BRL": 0.18, "PHP": 0.0172,
    "THB": 0.0286, "IDR": 0.0000625, "MYR": 0.221, "INR": 0.012, "MXN": 0.055, "GHS": 0.066,
    "XOF": 0.00165, "NGN": 0.00064, "GBP": 1.27, "CAD": 0.73, "NZD": 0.6, "RUB": 0.011,
    "ARS": 0.001, "UYU": 0.025, "GTQ": 0.129, "ETB": 0.0081, "KES": 0.0078, "NOK": 0.093,
    "TWD": 0.031, "HKD": 0.128, "SGD": 0.745, "CHF": 1.13, "SAR": 0.267, "BDT": 0.0084,
    "LAK": 0.000046, "AED": 0.272,
}  # fmt: skip
"""Fixed conversion rates used for ``declared_value_usd`` (one rate for the whole period)."""

CURRENCIES: Final = tuple(sorted(USD_PER_UNIT))

# --- ports and airports ----------------------------------------------------------------------

SEA_PORTS: Final = {
    "CN": ("CNSHA", "CNNGB", "CNTAO", "CNYTN", "CNTXG"),
    "JP": ("JPTYO", "JPYOK", "JPUKB", "JPOSA"),
    "US": ("USLAX", "USLGB", "USOAK", "USSEA"),
    "VN": ("VNSGN", "VNHPH"),
    "DE": ("DEHAM", "DEBRV"),
    "AU": ("AUMEL", "AUSYD", "AUBNE"),
    "CL": ("CLSAI", "CLVAP"),
    "EC": ("ECGYE", "ECPBO", "ECPSJ"),
    "CO": ("COBUN", "COCTG", "COSMR", "COTRB"),
    "PE": ("PECLL", "PEPAI"),
    "BR": ("BRSSZ", "BRPNG", "BRRIG"),
    "PH": ("PHDVO", "PHMNL"),
    "TH": ("THLCH", "THBKK"),
    "ID": ("IDTPP", "IDSUB"),
    "MY": ("MYPKG", "MYTPP"),
    "IN": ("INNSA", "INMAA"),
    "NL": ("NLRTM",),
    "ES": ("ESVLC", "ESALG"),
    "MX": ("MXZLO", "MXLZC"),
    "GH": ("GHTEM",),
    "TG": ("TGLFW",),
    "NG": ("NGAPP",),
    "CI": ("CIABJ",),
    "FR": ("FRLEH",),
    "IT": ("ITGOA",),
    "GB": ("GBFXT",),
    "CA": ("CAVAN",),
    "NZ": ("NZTRG", "NZAKL"),
    "RU": ("RUVVO",),
    "AR": ("ARBUE",),
    "UY": ("UYMVD",),
    "GT": ("GTSTC",),
    "ET": ("DJJIB",),
    "KE": ("KEMBA",),
    "NO": ("NOOSL",),
    "TW": ("TWKHH",),
    "HK": ("HKHKG",),
    "SG": ("SGSIN",),
    "SA": ("SAJED",),
    "BD": ("BDCGP",),
}
AIRPORTS: Final = {
    "CN": ("PVG", "CAN", "PEK", "SZX"),
    "JP": ("NRT", "KIX"),
    "US": ("LAX", "JFK", "ORD", "ANC"),
    "VN": ("SGN", "HAN"),
    "DE": ("FRA",),
    "NL": ("AMS",),
    "TH": ("BKK",),
    "CO": ("BOG",),
    "EC": ("UIO",),
    "PE": ("LIM",),
    "BR": ("GRU",),
    "MX": ("MEX",),
    "CA": ("YVR", "YYZ"),
    "HK": ("HKG",),
    "SG": ("SIN",),
    "IN": ("BOM", "DEL"),
    "NG": ("LOS",),
    "ET": ("ADD",),
    "AE": ("DXB",),
    "FR": ("CDG",),
    "GB": ("LHR",),
    "AU": ("SYD",),
    "CL": ("SCL",),
    "KE": ("NBO",),
    "NO": ("OSL",),
    "TW": ("TPE",),
    "CH": ("ZRH",),
    "IT": ("MXP",),
    "LA": ("VTE",),
    "GH": ("ACC",),
    "ES": ("MAD",),
    "PH": ("MNL",),
    "ID": ("CGK",),
    "MY": ("KUL",),
}
KOREAN_SEA_PORTS: Final = ("KRPUS", "KRINC", "KRKAN", "KRUSN", "KRPTK")
KOREAN_SEA_PORT_SHARE: Final = (0.74, 0.11, 0.08, 0.04, 0.03)
KOREAN_AIRPORTS: Final = ("ICN", "PUS")
KOREAN_AIRPORT_SHARE: Final = (0.92, 0.08)
EXPRESS_FERRY_PORTS: Final = ("KRINC", "KRPTK")
"""Chinese e-commerce parcels often cross the Yellow Sea by ferry to Incheon or Pyeongtaek."""

SEA_HUBS: Final = {
    "south_america_west": (("", 0.35), ("PABLB", 0.25), ("PAMIT", 0.12), ("MXZLO", 0.13),
                           ("PABLB|MXZLO", 0.05), ("CNSHA", 0.10)),
    "south_america_east": (("SGSIN", 0.45), ("ZADUR|SGSIN", 0.2), ("PAMIT", 0.15),
                           ("CNSHA", 0.2)),
    "caribbean": (("PAMIT", 0.45), ("PAONX", 0.25), ("PAMIT|MXZLO", 0.15), ("JMKIN", 0.15)),
    "asia": (("", 0.72), ("CNSHA", 0.10), ("SGSIN", 0.08), ("HKHKG", 0.05), ("TWKHH", 0.05)),
    "europe": (("SGSIN", 0.45), ("LKCMB|SGSIN", 0.2), ("CNSHA", 0.15), ("", 0.2)),
    "north_america": (("", 0.85), ("JPTYO", 0.1), ("CNSHA", 0.05)),
    "oceania": (("", 0.75), ("SGSIN", 0.15), ("CNSHA", 0.1)),
    "africa": (("SGSIN", 0.45), ("MYPKG", 0.2), ("ESALG|SGSIN", 0.15), ("MAPTM|SGSIN", 0.2)),
    "middle_east": (("", 0.4), ("SGSIN", 0.35), ("LKCMB", 0.25)),
}  # fmt: skip
"""Transshipment patterns per origin region: ``|``-joined hubs in travel order, "" = direct."""

REGION_OF: Final = {
    "EC": "south_america_west", "CO": "south_america_west", "PE": "south_america_west",
    "CL": "south_america_west", "MX": "north_america", "GT": "caribbean",
    "BR": "south_america_east", "AR": "south_america_east", "UY": "south_america_east",
    "US": "north_america", "CA": "north_america", "AU": "oceania", "NZ": "oceania",
    "DE": "europe", "NL": "europe", "ES": "europe", "FR": "europe", "IT": "europe",
    "GB": "europe", "NO": "europe", "RU": "asia", "GH": "africa", "TG": "africa", "NG": "africa",
    "CI": "africa", "KE": "africa", "ET": "africa", "SA": "middle_east", "AE": "middle_east",
    "IN": "middle_east", "BD": "asia",
}  # fmt: skip
AIR_HUBS: Final = ("DXB", "DOH", "IST", "AMS", "FRA", "ANC", "HKG", "SIN", "ADD", "CDG")
NEAR_AIR: Final = frozenset({"CN", "JP", "HK", "TW", "VN", "TH", "PH", "SG", "MY", "ID"})

# --- carriers --------------------------------------------------------------------------------


class Carrier(NamedTuple):
    code: str  # carrier_id: SCAC for shipping lines, IATA code for airlines and couriers
    mode: str
    container_prefix: str  # BIC owner code + equipment category "U" (sea only)
    name: str
    weight: float


SEA_CARRIERS: Final = (
    Carrier("MSCU", "sea", "MSCU", "MSC", 1.6),
    Carrier("MAEU", "sea", "MRKU", "MAERSK", 1.3),
    Carrier("HDMU", "sea", "HMMU", "HMM", 1.5),
    Carrier("CMDU", "sea", "CMAU", "CMA CGM", 1.0),
    Carrier("COSU", "sea", "CSNU", "COSCO", 1.1),
    Carrier("ONEY", "sea", "ONEU", "ONE", 1.0),
    Carrier("EGLV", "sea", "EGHU", "EVERGREEN", 0.8),
    Carrier("HLCU", "sea", "HLXU", "HAPAG-LLOYD", 0.7),
    Carrier("ZIMU", "sea", "ZCSU", "ZIM", 0.4),
    Carrier("YMLU", "sea", "YMMU", "YANG MING", 0.5),
    Carrier("SMLM", "sea", "SMCU", "SM LINE", 0.5),
    Carrier("SNKO", "sea", "SNKU", "SINOKOR", 0.5),
)
VESSEL_WORDS: Final = (
    "ANNA", "ALGECIRAS", "GRACE", "HARMONY", "PIONEER", "AURORA", "BUSAN", "SANTOS", "ORION",
    "PACIFIC", "ATLANTIC", "HOPE", "VICTORY", "EMERALD", "OSAKA", "CALLAO", "VALPARAISO", "LOTUS",
    "NEPTUNE", "TRITON", "SEOUL", "DREAM", "SPIRIT", "FORTUNE", "MERIDIAN", "HORIZON", "BRAVO",
)  # fmt: skip
AIRLINES: Final = (
    Carrier("KE", "air", "", "KOREAN AIR", 2.0),
    Carrier("OZ", "air", "", "ASIANA", 1.2),
    Carrier("CX", "air", "", "CATHAY", 0.6),
    Carrier("SQ", "air", "", "SINGAPORE AIRLINES", 0.4),
    Carrier("EK", "air", "", "EMIRATES", 0.5),
    Carrier("QR", "air", "", "QATAR AIRWAYS", 0.5),
    Carrier("TK", "air", "", "TURKISH", 0.4),
    Carrier("LH", "air", "", "LUFTHANSA", 0.4),
    Carrier("CA", "air", "", "AIR CHINA", 0.5),
    Carrier("MU", "air", "", "CHINA EASTERN", 0.5),
    Carrier("ET", "air", "", "ETHIOPIAN", 0.2),
    Carrier("LA", "air", "", "LATAM CARGO", 0.2),
    Carrier("PO", "air", "", "POLAR", 0.3),
)
COURIERS: Final = (
    Carrier("DHL", "express", "", "DHL EXPRESS", 1.0),
    Carrier("FDX", "express", "", "FEDEX", 0.8),
    Carrier("UPS", "express", "", "UPS", 0.7),
    Carrier("EMS", "express", "", "EMS", 0.9),
    Carrier("CJL", "express", "", "CJ LOGISTICS", 1.2),
    Carrier("CNO", "express", "", "CAINIAO", 1.4),
    Carrier("HJN", "express", "", "HANJIN", 0.6),
    Carrier("LTG", "express", "", "LOTTE GLOBAL", 0.4),
)
COURIER_FLIGHT_PREFIX: Final = {
    "DHL": "D0", "FDX": "FX", "UPS": "5X", "EMS": "KE", "CJL": "OZ", "CNO": "CK", "HJN": "KE",
    "LTG": "OZ",
}  # fmt: skip
FERRY_NAMES: Final = ("NEW GOLDEN BRIDGE", "HUADONG PEARL", "WEIDONG", "NEW BLUE OCEAN")

# --- commodities -----------------------------------------------------------------------------


class Commodity(NamedTuple):
    """One traded good: tariff code, wording seen on manifests, unit value and where it comes
    from. ``usd_per_kg`` is the median declared value per kg; ``origins`` weights the source
    countries of legitimate trade."""

    key: str
    hs: str
    mode: str  # "sea" or "air"
    container: str  # contract container type for sea; "" for air
    usd_per_kg: float
    descriptions: tuple[str, ...]
    origins: tuple[tuple[str, float], ...]
    volume: float  # relative share of the mode's lanes


COMMODITIES: Final = (
    Commodity("bananas", "0803901000", "sea", "reefer", 0.9,
              ("FRESH BANANAS", "FRESH CAVENDISH BANANAS", "BANANAS FRESH 18.14KG CARTONS"),
              (("PH", 0.55), ("EC", 0.2), ("CO", 0.08), ("GT", 0.07), ("MX", 0.05), ("PE", 0.05)),
              4.0),
    Commodity("avocados", "0804400000", "sea", "reefer", 2.6,
              ("FRESH HASS AVOCADOS", "FRESH AVOCADOS"),
              (("PE", 0.4), ("MX", 0.3), ("CO", 0.1), ("CL", 0.1), ("NZ", 0.1)), 1.2),
    Commodity("grapes", "0806100000", "sea", "reefer", 2.8, ("FRESH TABLE GRAPES",),
              (("CL", 0.5), ("PE", 0.3), ("US", 0.2)), 0.9),
    Commodity("shrimp", "0306171000", "sea", "reefer", 8.0,
              ("FROZEN VANNAMEI SHRIMP", "FROZEN SHRIMP HEADLESS SHELL-ON"),
              (("EC", 0.45), ("VN", 0.3), ("IN", 0.15), ("TH", 0.1)), 1.4),
    Commodity("squid", "0307430000", "sea", "reefer", 3.0, ("FROZEN GIANT SQUID", "FROZEN SQUID"),
              (("PE", 0.4), ("AR", 0.2), ("CL", 0.2), ("CN", 0.2)), 0.8),
    Commodity("pollock", "0303670000", "sea", "reefer", 2.2, ("FROZEN ALASKA POLLOCK",),
              (("RU", 0.6), ("US", 0.4)), 1.0),
    Commodity("beef", "0202300000", "sea", "reefer", 6.5, ("FROZEN BONELESS BEEF",),
              (("AU", 0.5), ("US", 0.4), ("NZ", 0.1)), 1.6),
    Commodity("pork", "0203290000", "sea", "reefer", 3.4, ("FROZEN PORK BELLY", "FROZEN PORK"),
              (("US", 0.3), ("ES", 0.25), ("DE", 0.15), ("CL", 0.15), ("BR", 0.15)), 1.4),
    Commodity("orange_juice", "2009110000", "sea", "reefer", 1.6, ("FROZEN ORANGE JUICE",),
              (("BR", 0.8), ("MX", 0.2)), 0.4),
    Commodity("coffee", "0901110000", "sea", "dry", 4.2,
              ("GREEN COFFEE BEANS", "RAW COFFEE BEANS IN JUTE BAGS"),
              (("BR", 0.35), ("CO", 0.25), ("VN", 0.2), ("ET", 0.1), ("PE", 0.1)), 0.9),
    Commodity("cocoa", "1801000000", "sea", "dry", 3.0, ("COCOA BEANS",),
              (("GH", 0.45), ("CI", 0.4), ("EC", 0.15)), 0.4),
    Commodity("charcoal", "4402900000", "sea", "dry", 0.5,
              ("HARDWOOD CHARCOAL", "BBQ CHARCOAL BRIQUETTES"),
              (("ID", 0.5), ("VN", 0.25), ("CO", 0.1), ("NG", 0.15)), 0.5),
    Commodity("furniture", "9403600000", "sea", "dry", 4.0,
              ("WOODEN FURNITURE", "WOODEN DINING TABLES AND CHAIRS"),
              (("CN", 0.5), ("VN", 0.3), ("ID", 0.1), ("MY", 0.1)), 1.4),
    Commodity("tiles", "6907220000", "sea", "dry", 0.6, ("CERAMIC FLOOR TILES",),
              (("CN", 0.5), ("ES", 0.3), ("IT", 0.2)), 0.8),
    Commodity("plastics", "3926909000", "sea", "dry", 4.5,
              ("PLASTIC ARTICLES", "PLASTIC HOUSEHOLD CONTAINERS"),
              (("CN", 0.7), ("VN", 0.1), ("DE", 0.1), ("US", 0.1)), 2.5),
    Commodity("machine_parts", "8483400000", "sea", "dry", 15.0,
              ("GEAR BOXES AND PARTS", "TRANSMISSION PARTS"),
              (("DE", 0.3), ("JP", 0.3), ("CN", 0.3), ("US", 0.1)), 1.6),
    Commodity("auto_parts", "8708299000", "sea", "dry", 8.0,
              ("AUTO PARTS", "MOTOR VEHICLE BODY PARTS"),
              (("JP", 0.3), ("DE", 0.3), ("US", 0.2), ("MX", 0.1), ("CN", 0.1)), 2.0),
    Commodity("tshirts", "6109100000", "sea", "dry", 18.0, ("COTTON T-SHIRTS", "KNITTED T-SHIRTS"),
              (("CN", 0.4), ("VN", 0.4), ("BD", 0.2)), 1.8),
    Commodity("footwear", "6404110000", "sea", "dry", 20.0, ("SPORTS FOOTWEAR", "SNEAKERS"),
              (("VN", 0.6), ("CN", 0.3), ("ID", 0.1)), 1.0),
    Commodity("steel", "7210490000", "sea", "dry", 0.9, ("GALVANIZED STEEL SHEETS",),
              (("CN", 0.5), ("JP", 0.4), ("VN", 0.1)), 1.6),
    Commodity("resin", "3901100000", "sea", "dry", 1.2, ("POLYETHYLENE RESIN LDPE",),
              (("US", 0.3), ("SA", 0.4), ("SG", 0.3)), 1.2),
    Commodity("wine", "2204210000", "sea", "dry", 6.0, ("RED WINE", "WINE IN BOTTLES"),
              (("FR", 0.35), ("CL", 0.3), ("IT", 0.2), ("US", 0.15)), 1.0),
    Commodity("soybeans", "1201900000", "sea", "dry", 0.45, ("SOYBEANS",),
              (("US", 0.5), ("BR", 0.4), ("CA", 0.1)), 0.6),
    Commodity("pulp", "4703210000", "sea", "dry", 0.7, ("BLEACHED WOOD PULP",),
              (("BR", 0.4), ("CL", 0.3), ("US", 0.2), ("CA", 0.1)), 0.6),
    Commodity("walnuts", "0802320000", "sea", "dry", 7.0, ("SHELLED WALNUTS",),
              (("US", 0.7), ("CL", 0.3)), 0.4),
    Commodity("milk_powder", "0402210000", "sea", "dry", 3.8, ("WHOLE MILK POWDER",),
              (("NL", 0.4), ("NZ", 0.3), ("AU", 0.2), ("DE", 0.1)), 0.5),
    Commodity("frozen_fish", "0303890000", "sea", "reefer", 2.5, ("FROZEN FISH", "FROZEN HAKE"),
              (("AR", 0.35), ("UY", 0.25), ("CL", 0.2), ("NG", 0.2)), 0.6),
    Commodity("flowers", "0603110000", "air", "", 8.0, ("FRESH CUT ROSES", "FRESH CUT FLOWERS"),
              (("CO", 0.5), ("EC", 0.4), ("KE", 0.1)), 1.0),
    Commodity("salmon", "0302140000", "air", "", 11.0, ("FRESH ATLANTIC SALMON",),
              (("NO", 0.9), ("CL", 0.1)), 1.4),
    Commodity("phones", "8517130000", "air", "", 300.0, ("SMARTPHONES", "MOBILE PHONES"),
              (("CN", 0.5), ("VN", 0.4), ("US", 0.1)), 1.6),
    Commodity("chips", "8542310000", "air", "", 2000.0, ("INTEGRATED CIRCUITS", "PROCESSORS"),
              (("US", 0.3), ("TW", 0.35), ("JP", 0.2), ("CN", 0.15)), 1.6),
    Commodity("pharma", "3004900000", "air", "", 80.0, ("MEDICAMENTS", "PHARMACEUTICAL TABLETS"),
              (("DE", 0.3), ("US", 0.3), ("CH", 0.2), ("IN", 0.2)), 1.2),
    Commodity("apparel_air", "6204620000", "air", "", 30.0, ("WOMEN'S TROUSERS", "GARMENTS"),
              (("IT", 0.3), ("FR", 0.25), ("ES", 0.1), ("CN", 0.2), ("VN", 0.15)), 1.0),
    Commodity("cosmetics_air", "3304990000", "air", "", 40.0, ("COSMETICS", "SKIN CARE PRODUCTS"),
              (("FR", 0.4), ("US", 0.3), ("JP", 0.3)), 0.8),
    Commodity("valves", "8481809000", "air", "", 40.0, ("VALVES", "INDUSTRIAL VALVES AND PARTS"),
              (("DE", 0.35), ("US", 0.3), ("JP", 0.25), ("NL", 0.1)), 1.0),
    Commodity("spare_parts_air", "8409999000", "air", "", 35.0, ("ENGINE PARTS", "SPARE PARTS"),
              (("US", 0.4), ("DE", 0.2), ("MX", 0.15), ("TH", 0.15), ("IN", 0.1)), 0.9),
    Commodity("ceramics_air", "6912000000", "air", "", 12.0, ("CERAMIC TABLEWARE",),
              (("TH", 0.4), ("CN", 0.3), ("IN", 0.3)), 0.5),
    Commodity("asparagus", "0709200000", "air", "", 4.5, ("FRESH GREEN ASPARAGUS",),
              (("PE", 0.8), ("MX", 0.2)), 0.5),
    Commodity("food_air", "2106909099", "air", "", 15.0, ("FOOD SUPPLEMENTS", "HEALTH FOOD"),
              (("US", 0.5), ("AU", 0.2), ("NZ", 0.1), ("CA", 0.2)), 0.7),
)  # fmt: skip
COMMODITY_INDEX: Final = {c.key: i for i, c in enumerate(COMMODITIES)}


class ExpressItem(NamedTuple):
    hs: str
    description: str
    usd: float  # median declared value in USD
    kg: float  # median gross weight


EXPRESS_CATEGORIES: Final = {
    "apparel": (ExpressItem("6109100000", "T-SHIRT", 18, 0.3),
                ExpressItem("6110200000", "KNIT SWEATER", 32, 0.6),
                ExpressItem("6402990000", "SNEAKERS", 55, 1.1),
                ExpressItem("6204620000", "WOMEN'S TROUSERS", 28, 0.5)),
    "electronics": (ExpressItem("8518300000", "BLUETOOTH EARPHONES", 35, 0.2),
                    ExpressItem("3926909000", "PHONE CASE", 9, 0.1),
                    ExpressItem("8544420000", "USB CABLE", 7, 0.1),
                    ExpressItem("8504409000", "CHARGER", 20, 0.3)),
    "cosmetics": (ExpressItem("3304990000", "SKIN CARE CREAM", 30, 0.3),
                  ExpressItem("3304200000", "EYE SHADOW PALETTE", 25, 0.2),
                  ExpressItem("3305100000", "SHAMPOO", 18, 0.8)),
    "supplements": (ExpressItem("2106909099", "VITAMIN SUPPLEMENTS", 45, 0.7),
                    ExpressItem("2106909099", "PROTEIN POWDER", 60, 2.4),
                    ExpressItem("2106909099", "OMEGA-3 CAPSULES", 35, 0.5)),
    "toys": (ExpressItem("9503009000", "TOY FIGURE", 25, 0.4),
             ExpressItem("9503009000", "BUILDING BLOCKS", 45, 1.0)),
    "auto": (ExpressItem("8708299000", "AUTO PARTS", 40, 1.5),
             ExpressItem("8512200000", "LED HEADLIGHT", 35, 0.8)),
    "food": (ExpressItem("1905900000", "SNACKS", 20, 1.0),
             ExpressItem("0902300000", "BLACK TEA", 15, 0.4),
             ExpressItem("1806900000", "CHOCOLATE", 22, 0.7)),
    "books": (ExpressItem("4901990000", "BOOKS", 25, 1.2),),
    "household": (ExpressItem("3924100000", "KITCHENWARE", 20, 0.9),
                  ExpressItem("6302600000", "TOWELS", 18, 0.8)),
}  # fmt: skip
EXPRESS_CATEGORY_NAMES: Final = tuple(EXPRESS_CATEGORIES)
GENERIC_DESCRIPTIONS: Final = (
    "GIFT", "SAMPLE", "PARTS", "ACCESSORIES", "PERSONAL EFFECTS", "CLOTHES", "DOCUMENTS",
)  # fmt: skip
"""Vague wording that legacy rules flag; legitimate senders use it too, far less often."""

EXPRESS_ORIGINS: Final = (
    ("CN", 0.58), ("US", 0.18), ("JP", 0.07), ("HK", 0.03), ("DE", 0.03), ("GB", 0.02),
    ("FR", 0.02), ("VN", 0.02), ("TH", 0.01), ("NL", 0.01), ("CA", 0.01), ("AU", 0.01),
    ("TW", 0.01),
)  # fmt: skip
PLATFORMS: Final = {
    "CN": (("AliExpress", 0.35), ("Taobao", 0.25), ("Temu", 0.2), ("Shein", 0.1), ("", 0.1)),
    "US": (("Amazon", 0.4), ("iHerb", 0.25), ("eBay", 0.15), ("Walmart", 0.05), ("", 0.15)),
    "JP": (("Rakuten", 0.35), ("Amazon JP", 0.3), ("Qoo10", 0.15), ("", 0.2)),
}
OTHER_PLATFORMS: Final = (("Amazon", 0.3), ("eBay", 0.25), ("Etsy", 0.1), ("", 0.35))
""""" = no platform: a private or direct shipment (written as a missing value)."""

DE_MINIMIS_USD: Final = 150.0
DE_MINIMIS_USD_FROM_US: Final = 200.0
"""Korean duty-free thresholds for personal imports (USD 200 for goods from the US)."""

# --- names and places ------------------------------------------------------------------------

COMPANY_WORDS_A: Final = (
    "Hanbit", "Daesung", "Samil", "Global", "Pacific", "Orient", "Green", "Sunrise", "Golden",
    "Royal", "Blue Ocean", "Hanul", "Mirae", "Jinyang", "Dongbang", "Seoul", "Busan", "Korea",
    "Star", "Union", "Prime", "Hyundai", "Kumho", "Sejin", "Taeyang", "Woori", "Nara", "Chung",
    "Andes", "Tropical", "Fresh", "Delta", "Alpha", "Summit", "Eastern", "Western", "Crown",
)  # fmt: skip
COMPANY_WORDS_B: Final = (
    "Trading", "Food", "Foods", "Logistics", "Industrial", "Global", "Commerce", "Import",
    "International", "Distribution", "Fresh", "Agro", "Marine", "Fruits", "Supply", "Materials",
    "Tech", "Textile", "Auto", "Home", "Chemical", "Metal", "Partners", "Seafood", "Company",
)  # fmt: skip
COMPANY_SUFFIX: Final = {
    "KR": ("Co., Ltd.", "Corp.", "Inc."), "US": ("Inc.", "LLC", "Corp."),
    "CN": ("Co., Ltd.", "Trading Co., Ltd."), "JP": ("Co., Ltd.", "K.K."),
    "DE": ("GmbH", "AG"), "NL": ("B.V.",), "EC": ("S.A.", "Cia. Ltda."), "CO": ("S.A.S.", "S.A."),
    "PE": ("S.A.C.", "S.A."), "BR": ("Ltda.", "S.A."), "CL": ("SpA", "S.A."),
    "MX": ("S.A. de C.V.",),
    "ES": ("S.L.", "S.A."), "FR": ("SAS", "SARL"), "IT": ("S.r.l.", "S.p.A."), "GB": ("Ltd",),
}  # fmt: skip
KOREAN_SURNAMES: Final = (
    ("Kim", 0.215), ("Lee", 0.147), ("Park", 0.084), ("Choi", 0.047), ("Jung", 0.043),
    ("Kang", 0.023), ("Cho", 0.021), ("Yoon", 0.021), ("Jang", 0.02), ("Lim", 0.018),
    ("Han", 0.015), ("Oh", 0.015), ("Seo", 0.015), ("Shin", 0.015), ("Kwon", 0.014),
    ("Hwang", 0.014), ("Ahn", 0.013), ("Song", 0.013), ("Jeon", 0.011), ("Hong", 0.011),
    ("Yoo", 0.011), ("Ko", 0.009), ("Moon", 0.009), ("Yang", 0.008), ("Son", 0.008),
)  # fmt: skip
KOREAN_SYLLABLES: Final = (
    "min", "ji", "seo", "hyun", "woo", "jun", "yeon", "eun", "soo", "young", "ha", "jae", "hee",
    "sung", "kyung", "dong", "hye", "jin", "na", "ye", "won", "ho", "bin", "yun", "seung", "a",
)  # fmt: skip
KOREAN_CITIES: Final = (
    ("Seoul", ("Gangnam-gu", "Mapo-gu", "Songpa-gu", "Jongno-gu", "Guro-gu", "Nowon-gu",
               "Yeongdeungpo-gu", "Seocho-gu", "Gwanak-gu")),
    ("Busan", ("Haeundae-gu", "Jung-gu", "Saha-gu", "Busanjin-gu")),
    ("Incheon", ("Yeonsu-gu", "Namdong-gu", "Bupyeong-gu")),
    ("Daegu", ("Suseong-gu", "Dalseo-gu")),
    ("Gyeonggi-do", ("Suwon-si", "Seongnam-si", "Goyang-si", "Yongin-si", "Bucheon-si",
                     "Ansan-si", "Hwaseong-si", "Pyeongtaek-si", "Gimpo-si")),
    ("Daejeon", ("Yuseong-gu", "Seo-gu")),
    ("Gwangju", ("Buk-gu", "Gwangsan-gu")),
)  # fmt: skip
KOREAN_CITY_SHARE: Final = (0.36, 0.12, 0.1, 0.07, 0.25, 0.05, 0.05)
ROAD_NAMES: Final = (
    "Teheran-ro", "Gangnam-daero", "Sejong-daero", "Olympic-ro", "Dosan-daero", "Hannam-daero",
    "Jungang-ro", "Haeundae-ro", "Gyeongin-ro", "Worldcup-ro", "Yanghwa-ro", "Songpa-daero",
    "Dongil-ro", "Banpo-daero", "Samil-daero", "Gukhoe-daero", "Namdong-daero", "Suseong-ro",
    "Hakdong-ro", "Bongeunsa-ro", "Eonju-ro", "Nonhyeon-ro", "Siheung-daero", "Gwangpyeong-ro",
)  # fmt: skip
AREA_CODES: Final = {
    "Seoul": "2", "Busan": "51", "Incheon": "32", "Daegu": "53", "Gyeonggi-do": "31",
    "Daejeon": "42", "Gwangju": "62",
}  # fmt: skip
