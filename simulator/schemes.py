"""Smuggling schemes: who smuggles, how, and which traces each scheme leaves.

Each scheme builds its shipments with the same functions as legitimate trade
(:mod:`simulator.trade`) and then changes only what its modus operandi changes, so every
signal is partial: legitimate trade produces the same values, less often.

* ``front_company``: a new importer, a few shipments, a cover commodity (fruit, fish, coffee,
  charcoal, cocoa, flowers by air) from a cocaine source country; often a walk-in exporter,
  a small NVOCC, cash, and a phone or address shared with the organisation's other fronts.
* ``hijacked_identity``: an established importer's identity is used for one or two shipments
  with a new phone and often a new address, a forwarder it never used and a new origin.
* ``rip_on_rip_off``: drugs put into a legitimate exporter's reefer at a high-risk port; the
  parties are clean, only port, route and carrier tell.
* ``express_network``: a ring of new senders abroad shipping parcels to many recipients who
  share a few phones and drop addresses; vague or mismatched wording, values under the
  duty-free threshold, no platform.
* ``borrowed_code``: parcels cleared with other people's personal customs codes (and often
  their names) but delivered to the ring's drop phone and address.
* ``value_anomaly``: small air (and LCL sea) consignments declared far below the commodity's
  usual value per kg, often below what the air freight costs.
* ``route_displacement``: an organisation's importers bring cocaine in cover loads from
  Ecuador/Colombia; at the drift day they move to West-African and Southern-Cone ports the
  legacy rules do not watch, keeping the same importers (and their history).
"""

from __future__ import annotations

import numpy as np

from features.contracts import DRUGS
from simulator import catalog as cat
from simulator.config import SCHEMES
from simulator.trade import (
    AIR,
    SEA,
    cargo_shipments,
    concat_drafts,
    express_shipments,
)
from simulator.world import (
    IMPORTER,
    NEVER,
    PERSON,
    SENDER,
    SHIPPER,
    Lanes,
    World,
    company_names,
    korean_addresses,
    korean_phones,
    person_names,
)

SCHEME_CODE = {s: i for i, s in enumerate(SCHEMES)}
DRUG_CODE = {d: i for i, d in enumerate(DRUGS)}
SOURCE_COUNTRIES = ("EC", "CO", "PE", "BR")
RIP_PORT_RISK = {
    "ECGYE": 3.0, "ECPBO": 2.0, "ECPSJ": 1.5, "COBUN": 3.0, "COCTG": 2.0, "COSMR": 2.5,
    "COTRB": 2.0, "PECLL": 1.5, "PEPAI": 2.0, "BRSSZ": 2.5, "BRPNG": 1.5, "BRRIG": 0.8,
    "GTSTC": 1.5, "MXZLO": 1.0, "MXLZC": 1.0,
}  # fmt: skip
"""Relative chance that a reefer loaded at a port is contaminated (legacy rules treat all
high-risk countries alike; a model can learn the port)."""
RIP_CARRIER_RISK = {"ZIMU": 2.0, "SMLM": 1.6, "CMDU": 1.3}
EXPRESS_DRUGS = {
    "US": (("methamphetamine", 0.5), ("cannabis", 0.4), ("fentanyl", 0.03), ("other", 0.07)),
    "CA": (("cannabis", 0.7), ("methamphetamine", 0.3)),
    "NL": (("mdma", 0.6), ("ketamine", 0.2), ("cocaine", 0.2)),
    "DE": (("mdma", 0.6), ("ketamine", 0.2), ("cocaine", 0.2)),
    "GB": (("mdma", 0.5), ("ketamine", 0.3), ("cocaine", 0.2)),
    "FR": (("mdma", 0.5), ("cocaine", 0.3), ("cannabis", 0.2)),
    "TH": (("methamphetamine", 0.8), ("ketamine", 0.2)),
    "VN": (("methamphetamine", 0.7), ("ketamine", 0.3)),
    "MX": (("methamphetamine", 0.8), ("cocaine", 0.2)),
    "CN": (("ketamine", 0.4), ("other", 0.6)),
}
EXPRESS_RING_ORIGINS = (
    ("US", 0.3), ("CA", 0.08), ("NL", 0.1), ("DE", 0.06), ("GB", 0.04), ("FR", 0.04),
    ("TH", 0.1), ("VN", 0.06), ("MX", 0.06), ("CN", 0.16),
)  # fmt: skip


class SchemeBuilder:
    """Shared state while the schemes of one world are generated."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        self.world = world
        self.rng = rng
        self.days = world.config.days
        n_fw = len(world.forwarders)
        # a few small NVOCCs that organisations prefer (also used by honest importers)
        self.complicit_forwarders = world.forwarders[
            np.argsort(world.forwarder_weight)[: max(2, n_fw // 30)]
        ]

    # -- party helpers ----------------------------------------------------------------------

    def new_importers(self, n: int, phone=None, address=None) -> np.ndarray:
        w, rng = self.world, self.rng
        kr = np.full(n, cat.COUNTRY_INDEX["KR"])
        name = w.names.add(company_names(rng, kr))
        if phone is None:
            phone = w.phones.add(korean_phones(rng, n, mobile_share=0.6))
        if address is None:
            address = w.addresses.add(korean_addresses(rng, n, business=True))
        return w.parties.add(IMPORTER, name, phone=phone, address=address)

    def new_exporters(self, countries: np.ndarray) -> np.ndarray:
        w = self.world
        name = w.names.add(company_names(self.rng, countries))
        return w.parties.add(SHIPPER, name, country=countries)

    def new_phones(self, n: int, mobile_share: float = 0.9) -> np.ndarray:
        return self.world.phones.add(korean_phones(self.rng, n, mobile_share))

    def new_addresses(self, n: int, business: bool = False) -> np.ndarray:
        return self.world.addresses.add(korean_addresses(self.rng, n, business))

    def forwarder_choice(self, n: int, complicit_share: float) -> np.ndarray:
        w, rng = self.world, self.rng
        usual = w.forwarders[
            rng.choice(len(w.forwarders), n, p=w.forwarder_weight / w.forwarder_weight.sum())
        ]
        bad = self.complicit_forwarders[rng.integers(0, len(self.complicit_forwarders), n)]
        return np.where(rng.random(n) < complicit_share, bad, usual)

    def declarant_choice(self, n: int) -> np.ndarray:
        w = self.world
        p = w.declarant_weight / w.declarant_weight.sum()
        return w.declarants[self.rng.choice(len(w.declarants), n, p=p)]

    # -- lane helpers ------------------------------------------------------------------------

    def lanes(
        self,
        mode: int,
        consignee: np.ndarray,
        shipper: np.ndarray,
        commodity: np.ndarray,
        origin: np.ndarray,
        loading: np.ndarray | None = None,
        route: np.ndarray | None = None,
        **overrides: np.ndarray,
    ) -> Lanes:
        """Ad-hoc lanes for scheme shipments, with routes drawn like legitimate ones."""
        w, rng = self.world, self.rng
        n = len(consignee)
        if loading is None:
            table = cat.SEA_PORTS if mode == SEA else cat.AIRPORTS
            loading = np.array(
                [
                    w.vocab.code(
                        table.get(cat.COUNTRIES[o], ("CNSHA",))[
                            int(r * len(table.get(cat.COUNTRIES[o], ("CNSHA",))))
                        ]
                    )
                    for o, r in zip(origin, rng.random(n), strict=True)
                ],
                dtype=np.int64,
            )
        if route is None:
            if mode == SEA:
                route = np.empty(n, np.int64)
                for i, o in enumerate(origin):
                    hubs, hw = zip(
                        *cat.SEA_HUBS[cat.REGION_OF.get(cat.COUNTRIES[o], "asia")], strict=True
                    )
                    hw = np.array(hw) / sum(hw)
                    route[i] = w.vocab.code(hubs[rng.choice(len(hubs), p=hw)])
            else:
                far = ~np.isin(origin, [cat.COUNTRY_INDEX[c] for c in cat.NEAR_AIR])
                hub = np.array(cat.AIR_HUBS, dtype=object)[rng.integers(0, len(cat.AIR_HUBS), n)]
                route = w.vocab.codes(np.where(far & (rng.random(n) < 0.55), hub, ""))
        container = np.array(
            [
                {"reefer": 1, "dry": 0}.get(cat.COMMODITIES[c].container, -1) if mode == SEA else -1
                for c in commodity
            ],
            dtype=np.int64,
        )
        carriers = cat.SEA_CARRIERS if mode == SEA else cat.AIRLINES
        cw = np.array([c.weight for c in carriers])
        carrier = rng.choice(len(carriers), n, p=cw / cw.sum())
        numbers = rng.integers(1, 999, n)
        flight = (
            np.full(n, -1)
            if mode == SEA
            else w.vocab.codes(
                [f"{carriers[c].code}{k:03d}" for c, k in zip(carrier, numbers, strict=True)]
            )
        )
        base = {
            "consignee": consignee,
            "shipper": shipper,
            "commodity": commodity,
            "origin": origin,
            "loading": loading,
            "route": route,
            "discharge": w.vocab.codes(
                np.where(
                    rng.random(n) < 0.8,
                    "KRPUS" if mode == SEA else "ICN",
                    "KRINC" if mode == SEA else "PUS",
                )
            ),
            "carrier": carrier,
            "forwarder": self.forwarder_choice(n, 0.25),
            "declarant": self.declarant_choice(n),
            "notify": np.where(rng.random(n) < 0.6, consignee, -1),
            "container": container,
            "load": np.where(container == 1, 0, (rng.random(n) < 0.45).astype(np.int64))
            if mode == SEA
            else np.full(n, -1),
            "freight": (rng.random(n) < 0.25).astype(np.int64),
            "payment": np.where(rng.random(n) < 0.15, 3, 0),
            "currency": np.full(n, w.vocab.code("USD")),
            "weight_kg": rng.uniform(15_000, 22_000, n)
            if mode == SEA
            else rng.lognormal(4.2, 0.7, n) + 10,
            "value_factor": rng.lognormal(-0.25, 0.25, n),
            "flight": flight,
            "start": np.zeros(n),
            "activity": np.ones(n),
        }
        base.update(overrides)
        if mode == SEA and "weight_kg" not in overrides:
            lcl = base["load"] == 1
            base["weight_kg"] = np.where(lcl, rng.lognormal(7.0, 0.7, n), base["weight_kg"])
        return Lanes(**base)

    def mark(self, d: dict, illicit: np.ndarray, scheme: str, drug, quantity) -> dict:
        d["illicit"] = illicit.copy()
        d["scheme"] = np.where(illicit, SCHEME_CODE[scheme], -1)
        d["drug"] = np.where(illicit, drug, -1)
        d["quantity"] = np.where(illicit, quantity, np.nan)
        return d

    def sea_quantity(self, n: int) -> np.ndarray:
        return np.clip(self.rng.lognormal(np.log(60), 0.9, n), 5, 1500)

    def air_quantity(self, n: int) -> np.ndarray:
        return np.clip(self.rng.lognormal(np.log(4), 0.8, n), 0.5, 60)

    def parcel_quantity(self, n: int) -> np.ndarray:
        return np.clip(self.rng.lognormal(np.log(0.25), 0.9, n), 0.01, 3)

    def days_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Uniform declaration times in ``[lo, hi)`` intersected with the period (a window
        running past the end is cut, never piled up on the last day)."""
        lo = np.clip(lo, 0, self.days - 1e-3)
        hi = np.clip(hi, lo + 1e-3, self.days)
        return self.rng.uniform(lo, hi)

    def ring_windows(self, n_rings: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Active windows (20-60 days) of smuggling rings, cut to the period, and how many of
        ``n`` parcels each ships: rings that started before the period or go on after it are
        only partly visible, so parcels spread evenly over the period."""
        window = self.rng.uniform(20, 60, n_rings)
        start = self.rng.uniform(-0.5 * window, self.days - 0.5 * window)
        lo = np.clip(start, 0, self.days)
        hi = np.clip(start + window, 0, self.days)
        visible = np.maximum(hi - lo, 1e-3)
        return lo, hi, self.rng.multinomial(n, visible / visible.sum())

    def express_drugs(self, countries: np.ndarray) -> np.ndarray:
        out = np.empty(len(countries), np.int64)
        for c in np.unique(countries):
            mask = countries == c
            options, w = zip(*EXPRESS_DRUGS.get(cat.COUNTRIES[c], EXPRESS_DRUGS["US"]), strict=True)
            w = np.array(w) / sum(w)
            out[mask] = [DRUG_CODE[o] for o in np.asarray(options)[
                self.rng.choice(len(options), int(mask.sum()), p=w)]]  # fmt: skip
        return out

    def add_senders(self, n: int, countries: np.ndarray, platform_share: float) -> np.ndarray:
        """New express senders; returns their rows in ``world.express`` sender arrays."""
        w, rng, ex = self.world, self.rng, self.world.express
        parties = w.parties.add(
            SENDER, w.names.add(company_names(rng, countries)), country=countries
        )
        fallback = w.vocab.codes(("eBay", "Etsy", "Amazon"))
        platform = np.where(
            rng.random(n) < platform_share, fallback[rng.integers(0, len(fallback), n)], -1
        )
        category = rng.choice([0, 2, 3, 4, 6, 5], n, p=[0.2, 0.2, 0.25, 0.1, 0.15, 0.1])
        courier = rng.choice([0, 1, 2, 3], n, p=[0.3, 0.2, 0.2, 0.3])
        rows = np.arange(len(ex.sender), len(ex.sender) + n)
        ex.sender = np.concatenate([ex.sender, parties])
        ex.sender_country = np.concatenate([ex.sender_country, countries])
        ex.sender_platform = np.concatenate([ex.sender_platform, platform])
        ex.sender_category = np.concatenate([ex.sender_category, category])
        ex.sender_courier = np.concatenate([ex.sender_courier, courier])
        ex.sender_generic = np.concatenate([ex.sender_generic, rng.uniform(0.2, 0.5, n)])
        ex.sender_start = np.concatenate([ex.sender_start, np.full(n, NEVER)])
        ex.sender_activity = np.concatenate([ex.sender_activity, np.zeros(n)])
        return rows

    def new_persons(self, n: int, phone: np.ndarray, address: np.ndarray) -> np.ndarray:
        w = self.world
        name = w.names.add(person_names(self.rng, n))
        code = w.codes.add([f"P{x:012d}" for x in self.rng.integers(10**11, 10**12, n)])
        return w.parties.add(PERSON, name, phone=phone, address=address, code=code)

    def disguise_parcels(self, d: dict, generic: float, mismatch: float, near_threshold: float):
        """Wording and value of illicit parcels: some vague, some inconsistent with the tariff
        code, some valued just under the duty-free threshold; drugs add weight."""
        w, rng = self.world, self.rng
        n = len(d["mode"])
        u = rng.random(n)
        generic_desc = w.vocab.codes(cat.GENERIC_DESCRIPTIONS[:5])[rng.integers(0, 5, n)]
        all_items = [it for items in cat.EXPRESS_CATEGORIES.values() for it in items]
        other_desc = w.vocab.codes([it.description for it in all_items])[
            rng.integers(0, len(all_items), n)
        ]
        d["description"] = np.where(
            u < generic,
            generic_desc,
            np.where(u < generic + mismatch, other_desc, d["description"]),
        )
        us = d["origin"] == cat.COUNTRY_INDEX["US"]
        threshold = np.where(us, cat.DE_MINIMIS_USD_FROM_US, cat.DE_MINIMIS_USD)
        near = rng.random(n) < near_threshold
        d["value_usd"] = np.where(
            near, np.round(threshold * rng.uniform(0.8, 0.995, n), 2), d["value_usd"]
        )
        d["weight"] = np.round(d["weight"] + d["quantity"] * rng.uniform(1.1, 1.6, n), 2)
        d["has_order"] = d["platform"] >= 0

    # -- schemes -----------------------------------------------------------------------------

    def front_company(self, n: int) -> dict:
        rng, w = self.rng, self.world
        n_org = max(1, int(np.ceil(n / 4)))
        per_front = rng.integers(1, 3, size=4 * n_org)  # illicit shipments per front
        fronts = int(np.searchsorted(np.cumsum(per_front), n) + 1)
        per_front = per_front[:fronts]
        per_front[-1] -= per_front.sum() - n
        per_front = np.maximum(per_front, 1)
        org = rng.integers(0, n_org, fronts)
        org_phone = self.new_phones(n_org, mobile_share=0.8)
        org_address = self.new_addresses(n_org, business=True)
        share_phone = rng.random(fronts) < 0.5
        share_addr = rng.random(fronts) < 0.4
        phone = np.where(share_phone, org_phone[org], self.new_phones(fronts, 0.7))
        address = np.where(share_addr, org_address[org], self.new_addresses(fronts, True))
        importers = self.new_importers(fronts, phone=phone, address=address)
        air = rng.random(fronts) < 0.2
        sea_goods = ["bananas", "avocados", "shrimp", "squid", "coffee", "charcoal", "cocoa"]
        commodity = np.where(
            air,
            cat.COMMODITY_INDEX["flowers"],
            np.array([cat.COMMODITY_INDEX[g] for g in sea_goods])[
                rng.integers(0, len(sea_goods), fronts)
            ],
        )
        origin = np.where(
            air,
            np.array([cat.COUNTRY_INDEX[c] for c in ("CO", "EC")])[rng.integers(0, 2, fronts)],
            np.array([cat.COUNTRY_INDEX[c] for c in SOURCE_COUNTRIES])[
                rng.choice(4, fronts, p=[0.35, 0.3, 0.2, 0.15])
            ],
        )
        walk_in = rng.random(fronts) < 0.5
        shipper = np.where(
            walk_in, self.new_exporters(origin), self.legit_exporter(origin, commodity)
        )
        first = rng.uniform(0, self.days - 5, fronts)
        drafts = []
        for mode in (SEA, AIR):
            sel = np.flatnonzero(air == (mode == AIR))
            if not len(sel):
                continue
            lanes = self.lanes(
                mode,
                importers[sel],
                shipper[sel],
                commodity[sel],
                origin[sel],
                forwarder=self.forwarder_choice(len(sel), 0.35),
            )
            tests = rng.integers(0, 4, len(sel))  # clean test shipments before the first load
            total = tests + per_front[sel]
            lane = np.repeat(np.arange(len(sel)), total)
            k = np.arange(len(lane)) - np.repeat(np.cumsum(total) - total, total)
            gap = rng.uniform(4, 12, len(lane))
            room = np.maximum(self.days - 1 - (total - 1) * 12.0, 1.0)
            day = np.minimum(first[sel] * room / self.days, room)[lane] + k * gap
            day = np.clip(day + rng.uniform(0, 1, len(lane)), 0, self.days - 1e-4)
            d = cargo_shipments(w, rng, mode, lanes, lane, day)
            illicit = k >= tests[lane]
            q = self.sea_quantity(len(lane)) if mode == SEA else self.air_quantity(len(lane))
            drafts.append(self.mark(d, illicit, "front_company", DRUG_CODE["cocaine"], q))
        return concat_drafts(drafts)

    def legit_exporter(
        self, origin: np.ndarray, commodity: np.ndarray, lanes: Lanes | None = None
    ) -> np.ndarray:
        """An existing exporter of the same goods and country when there is one."""
        out = np.empty(len(origin), np.int64)
        lanes = self.world.sea if lanes is None else lanes
        for i, (o, c) in enumerate(zip(origin, commodity, strict=True)):
            match = np.flatnonzero((lanes.origin == o) & (lanes.commodity == c))
            if len(match):
                out[i] = lanes.shipper[match[self.rng.integers(0, len(match))]]
            else:
                out[i] = self.new_exporters(np.array([o]))[0]
        return out

    def hijacked_identity(self, n: int) -> dict:
        rng, w = self.rng, self.world
        drafts = []
        n_air = round(n * 0.3)
        for mode, lanes, count in ((SEA, w.sea, n - n_air), (AIR, w.air, n_air)):
            if count <= 0:
                continue
            established = np.flatnonzero(lanes.start < -200)
            p = lanes.activity[established] / lanes.activity[established].sum()
            victim = established[rng.choice(len(established), count, p=p)]
            risky = rng.random(count) < 0.5
            origin = np.where(
                risky,
                np.array([cat.COUNTRY_INDEX[c] for c in ("EC", "CO", "PE", "BR", "MX")])[
                    rng.integers(0, 5, count)
                ],
                np.array([cat.COUNTRY_INDEX[c] for c in ("NL", "ES", "CL", "TH", "IN")])[
                    rng.integers(0, 5, count)
                ],
            )
            same_goods = rng.random(count) < 0.5
            cover = ["bananas", "shrimp", "coffee", "charcoal", "furniture"] if mode == SEA else [
                "flowers", "spare_parts_air", "food_air"]  # fmt: skip
            cover_idx = np.array([cat.COMMODITY_INDEX[g] for g in cover])
            commodity = np.where(
                same_goods, lanes.commodity[victim], cover_idx[rng.integers(0, len(cover), count)]
            )
            consignee = lanes.consignee[victim]
            fw = self.forwarder_choice(count, 0.4)
            fw = np.where(fw == lanes.forwarder[victim], self.complicit_forwarders[0], fw)
            fw = np.where(rng.random(count) < 0.2, lanes.forwarder[victim], fw)
            new_shipper = rng.random(count) < 0.4
            shipper = np.where(new_shipper, self.new_exporters(origin), lanes.shipper[victim])
            hl = self.lanes(
                mode,
                consignee,
                shipper,
                commodity,
                origin,
                forwarder=fw,
                declarant=lanes.declarant[victim],
                payment=np.where(rng.random(count) < 0.2, 3, lanes.payment[victim]),
                weight_kg=lanes.weight_kg[victim] * rng.uniform(0.6, 1.2, count),
            )
            day = self.days_in(np.full(count, 0.15 * self.days), np.full(count, self.days))
            d = cargo_shipments(w, rng, mode, hl, np.arange(count), day)
            new_phone = rng.random(count) < 0.75
            d["phone"] = np.where(new_phone, self.new_phones(count, mobile_share=0.95), d["phone"])
            new_address = rng.random(count) < np.where(new_phone, 0.4, 0.9)
            d["address"] = np.where(new_address, self.new_addresses(count), d["address"])
            drug = np.where(
                origin == cat.COUNTRY_INDEX["MX"], DRUG_CODE["methamphetamine"],
                np.where(np.isin(origin, [cat.COUNTRY_INDEX[c] for c in ("TH", "IN")]),
                         DRUG_CODE["heroin"], DRUG_CODE["cocaine"]),
            )  # fmt: skip
            q = self.sea_quantity(count) if mode == SEA else self.air_quantity(count)
            drafts.append(self.mark(d, np.ones(count, bool), "hijacked_identity", drug, q))
        return concat_drafts(drafts)

    def rip_on_rip_off(self, legit: dict, n: int) -> np.ndarray:
        """Rows of ``legit`` that become rip-on/rip-off loads (marked in place)."""
        w, rng = self.world, self.rng
        ports = np.array(w.vocab.values, dtype=object)
        candidates = np.flatnonzero((legit["mode"] == SEA) & (legit["container"] == 1))
        lp = ports[legit["loading"][candidates]]
        risk = np.array([RIP_PORT_RISK.get(p, 0.0) for p in lp])
        route = ports[legit["route"][candidates]]
        risk *= np.where(np.char.find(route.astype(str), "PA") >= 0, 1.8, 1.0)
        carriers = np.array([c.code for c in cat.SEA_CARRIERS + cat.AIRLINES + cat.COURIERS])
        risk *= np.array(
            [RIP_CARRIER_RISK.get(c, 1.0) for c in carriers[legit["carrier"][candidates]]]
        )
        candidates, risk = candidates[risk > 0], risk[risk > 0]
        n = min(n, len(candidates))
        if n == 0:
            return candidates[:0]
        rows = candidates[rng.choice(len(candidates), n, replace=False, p=risk / risk.sum())]
        legit["illicit"][rows] = True
        legit["scheme"][rows] = SCHEME_CODE["rip_on_rip_off"]
        legit["drug"][rows] = DRUG_CODE["cocaine"]
        legit["quantity"][rows] = self.sea_quantity(n)
        return rows

    def express_network(self, n: int) -> dict:
        w, rng = self.world, self.rng
        n_rings = max(1, round(n / 30))
        countries, cw = zip(*EXPRESS_RING_ORIGINS, strict=True)
        cw = np.array(cw) / sum(cw)
        ring_country = np.array([cat.COUNTRY_INDEX[c] for c in countries])[
            rng.choice(len(countries), n_rings, p=cw)
        ]
        lo, hi, parcels = self.ring_windows(n_rings, n)
        drafts = []
        for r in range(n_rings):
            k = int(parcels[r])
            if k == 0:
                continue
            # offenders rotate sender identities: a new name every few parcels
            n_send = max(1, k // int(rng.integers(1, 4)))
            senders = self.add_senders(n_send, np.full(n_send, ring_country[r]), 0.45)
            n_rec = int(np.clip(k // 2 + rng.integers(2, 8), 3, 40))
            phones = self.new_phones(int(rng.integers(2, 5)), 1.0)
            drops = self.new_addresses(int(rng.integers(1, 4)))
            phone = phones[rng.integers(0, len(phones), n_rec)]
            own_addr = self.new_addresses(n_rec)
            address = np.where(
                rng.random(n_rec) < 0.6, drops[rng.integers(0, len(drops), n_rec)], own_addr
            )
            recipients = self.new_persons(n_rec, phone, address)
            # some mules are ordinary recipients recruited with their own identity
            mules = rng.random(n_rec) < 0.3
            legit_rec = w.express.recipient[rng.integers(0, len(w.express.recipient), n_rec)]
            recipients = np.where(mules, legit_rec, recipients)
            day = self.days_in(np.full(k, lo[r]), np.full(k, hi[r]))
            d = express_shipments(
                w,
                rng,
                senders[rng.integers(0, n_send, k)],
                recipients[rng.integers(0, n_rec, k)],
                day,
            )
            drug = self.express_drugs(np.full(k, ring_country[r]))
            self.mark(d, np.ones(k, bool), "express_network", drug, self.parcel_quantity(k))
            self.disguise_parcels(d, generic=0.3, mismatch=0.15, near_threshold=0.3)
            drafts.append(d)
        return concat_drafts(drafts)

    def borrowed_code(self, n: int) -> dict:
        w, rng = self.world, self.rng
        ex = w.express
        n_rings = max(1, round(n / 20))
        lo, hi, parcels = self.ring_windows(n_rings, n)
        countries, cw = zip(*EXPRESS_RING_ORIGINS, strict=True)
        cw = np.array(cw) / sum(cw)
        # victims are occasional recipients whose code leaked (low activity)
        quiet = np.flatnonzero(ex.recipient_activity < np.quantile(ex.recipient_activity, 0.6))
        drafts = []
        for r in range(n_rings):
            k = int(parcels[r])
            if k == 0:
                continue
            country = cat.COUNTRY_INDEX[countries[rng.choice(len(countries), p=cw)]]
            n_send = max(1, k // int(rng.integers(1, 4)))
            senders = self.add_senders(n_send, np.full(n_send, country), 0.5)
            drop_phone = self.new_phones(int(rng.integers(1, 3)), 1.0)
            drop_addr = self.new_addresses(int(rng.integers(1, 3)))
            n_vict = int(np.clip(k // 2 + 2, 3, 25))
            victims = ex.recipient[quiet[rng.integers(0, len(quiet), n_vict)]]
            day = self.days_in(np.full(k, lo[r]), np.full(k, hi[r]))
            victim = victims[rng.integers(0, n_vict, k)]
            d = express_shipments(w, rng, senders[rng.integers(0, n_send, k)], victim, day)
            d["phone"] = drop_phone[rng.integers(0, len(drop_phone), k)]
            d["address"] = drop_addr[rng.integers(0, len(drop_addr), k)]
            own_name = rng.random(k) < 0.4
            if own_name.any():
                m = int(own_name.sum())
                members = self.new_persons(m, d["phone"][own_name], d["address"][own_name])
                d["consignee"][own_name] = members
                d["name"][own_name] = w.parties.name[members]
                # the code stays the victim's: that is the borrowing
            drug = self.express_drugs(np.full(k, country))
            self.mark(d, np.ones(k, bool), "borrowed_code", drug, self.parcel_quantity(k))
            self.disguise_parcels(d, generic=0.2, mismatch=0.1, near_threshold=0.25)
            drafts.append(d)
        return concat_drafts(drafts)

    def value_anomaly(self, n: int) -> dict:
        w, rng = self.world, self.rng
        air = rng.random(n) < 0.7
        drafts = []
        for mode in (AIR, SEA):
            sel = np.flatnonzero(air == (mode == AIR))
            k = len(sel)
            if not k:
                continue
            goods = (
                ["valves", "spare_parts_air", "ceramics_air", "food_air"]
                if mode == AIR
                else ["machine_parts", "tiles", "plastics", "furniture"]
            )
            commodity = np.array([cat.COMMODITY_INDEX[g] for g in goods])[
                rng.integers(0, len(goods), k)
            ]
            origins = (
                ("MX", "CO", "TH", "IN", "VN", "PE", "NL", "US", "DE", "CN")
                if mode == AIR
                else ("MX", "CO", "PE", "BR", "NG", "IN", "CN", "VN")
            )
            origin = np.array([cat.COUNTRY_INDEX[c] for c in origins])[
                rng.integers(0, len(origins), k)
            ]
            existing = rng.random(k) < 0.5
            lanes_src = w.air if mode == AIR else w.sea
            small = np.flatnonzero(lanes_src.activity < np.quantile(lanes_src.activity, 0.5))
            consignee = np.where(
                existing,
                lanes_src.consignee[small[rng.integers(0, len(small), k)]],
                self.new_importers(k),
            )
            exporter = np.where(
                rng.random(k) < 0.5,
                self.new_exporters(origin),
                self.legit_exporter(origin, commodity, lanes_src),
            )
            lanes = self.lanes(
                mode,
                consignee,
                exporter,
                commodity,
                origin,
                value_factor=rng.uniform(0.08, 0.4, k),
                load=np.ones(k, np.int64) if mode == SEA else np.full(k, -1),
                container=np.zeros(k, np.int64) if mode == SEA else np.full(k, -1),
                weight_kg=rng.lognormal(4.0, 0.6, k) + 15
                if mode == AIR
                else rng.lognormal(6.5, 0.6, k),
            )
            day = self.days_in(np.zeros(k), np.full(k, self.days))
            d = cargo_shipments(w, rng, mode, lanes, np.arange(k), day)
            names = np.array(cat.COUNTRIES)[origin]
            drug = np.select(
                [np.isin(names, ["MX", "LA", "TH", "VN"]), names == "IN", names == "NL"],
                [DRUG_CODE["methamphetamine"], DRUG_CODE["heroin"], DRUG_CODE["mdma"]],
                DRUG_CODE["cocaine"],
            )
            q = self.air_quantity(k) if mode == AIR else self.sea_quantity(k) / 4
            drafts.append(self.mark(d, np.ones(k, bool), "value_anomaly", drug, q))
        return concat_drafts(drafts)

    def route_displacement(self, n: int, drift: bool, drift_day: float) -> dict:
        """One organisation, 3-6 importers sharing a phone or an address, regular cover loads;
        about 40 % of its shipments carry cocaine."""
        w, rng = self.world, self.rng
        n_imp = int(np.clip(n // 6, 3, 6))
        phone = self.new_phones(1, 0.5)[0]
        address = self.new_addresses(1, True)[0]
        share = rng.random(n_imp)
        importers = self.new_importers(
            n_imp,
            phone=np.where(share < 0.5, phone, self.new_phones(n_imp, 0.5)),
            address=np.where(share >= 0.5, address, self.new_addresses(n_imp, True)),
        )
        total = round(n / 0.4)
        day = np.sort(self.days_in(np.zeros(total), np.full(total, self.days)))
        after = drift & (day >= drift_day)
        before_goods = [("bananas", "EC"), ("bananas", "CO"), ("shrimp", "EC"), ("avocados", "CO")]
        after_goods = [("cocoa", "GH"), ("cocoa", "CI"), ("frozen_fish", "UY"), ("grapes", "CL")]
        pick_b = rng.integers(0, 4, total)
        goods = np.where(after[:, None], np.array(after_goods, dtype=object)[pick_b],
                         np.array(before_goods, dtype=object)[pick_b])  # fmt: skip
        commodity = np.array([cat.COMMODITY_INDEX[g] for g in goods[:, 0]])
        origin = np.array([cat.COUNTRY_INDEX[c] for c in goods[:, 1]])
        ports_after = {"GH": "GHTEM", "CI": "CIABJ", "UY": "UYMVD", "CL": "CLSAI"}
        ports_before = {"EC": "ECGYE", "CO": "COTRB"}
        loading = w.vocab.codes([ports_after.get(c) or ports_before[c] for c in goods[:, 1]])
        # the organisation keeps two exporters per route
        exporters = self.new_exporters(origin)
        key = origin * 100 + commodity
        first_of = {k: exporters[np.flatnonzero(key == k)[0]] for k in np.unique(key)}
        shipper = np.array([first_of[k] for k in key])
        consignee = importers[rng.integers(0, n_imp, total)]
        lanes = self.lanes(
            SEA,
            consignee,
            shipper,
            commodity,
            origin,
            loading=loading,
            forwarder=np.where(
                rng.random(total) < 0.5,
                self.complicit_forwarders[-1],
                self.forwarder_choice(total, 0.0),
            ),
            payment=np.where(rng.random(total) < 0.15, 3, 0),
        )
        d = cargo_shipments(w, rng, SEA, lanes, np.arange(total), day)
        illicit = np.zeros(total, bool)
        illicit[rng.choice(total, min(n, total), replace=False)] = True
        return self.mark(
            d, illicit, "route_displacement", DRUG_CODE["cocaine"], self.sea_quantity(total)
        )


def scheme_counts(world: World, rng: np.random.Generator) -> dict[str, int]:
    """Number of illicit shipments per scheme: prevalence x expected volume x scheme share
    (at least one for every scheme with a positive share when prevalence > 0)."""
    cfg = world.config
    total = cfg.days * cfg.shipments_per_day * cfg.prevalence
    out = {}
    for scheme, share in cfg.scheme_shares().items():
        expected = total * share
        k = int(np.floor(expected) + (rng.random() < expected - np.floor(expected)))
        out[scheme] = max(k, 1) if share > 0 and cfg.prevalence > 0 else 0
    return out


def add_schemes(world: World, rng: np.random.Generator, legit: dict) -> dict:
    """Mark rip-on/rip-off loads in ``legit`` and append every other scheme's shipments."""
    cfg = world.config
    counts = scheme_counts(world, rng)
    b = SchemeBuilder(world, rng)
    drafts = [legit]
    if counts["rip_on_rip_off"]:
        b.rip_on_rip_off(legit, counts["rip_on_rip_off"])
    builders = {
        "front_company": b.front_company,
        "hijacked_identity": b.hijacked_identity,
        "express_network": b.express_network,
        "borrowed_code": b.borrowed_code,
        "value_anomaly": b.value_anomaly,
    }
    for name, build in builders.items():
        if counts[name]:
            drafts.append(build(counts[name]))
    if counts["route_displacement"]:
        drafts.append(
            b.route_displacement(counts["route_displacement"], cfg.drift, cfg.drift_at * cfg.days)
        )
    return concat_drafts(drafts)
