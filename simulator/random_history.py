"""A world in which party history carries no signal (``SimConfig(party_history="random")``).

In the default world each scheme brings its own parties: new front companies, hijacked
importers with a new phone, rings of fresh senders and recipients sharing drop phones. A
party's history (its age, its earlier seizures, its links) is then a strong risk signal. Here
every illicit shipment keeps what its scheme does to the *goods and the route* (cover loads from
source countries, vague wording, values under the threshold, prices far below the usual per
kg, the displaced ports, the contaminated reefers) but its parties are re-drawn **exactly like
those of a legitimate shipment** of the same mode declared the same day:

* sea and air cargo: a legitimate trade lane of the same mode (of the same origin country when
  there is one), chosen among the lanes active that day in proportion to their activity, gives
  the shipper, consignee, notify party, forwarder and declarant; the consignee's own name,
  phone and address as of that day (4 % the broker's office phone), as in
  :func:`simulator.trade.cargo_shipments`;
* express: a platform seller of the same origin country active that day (8 % a private sender
  of that country), with its courier, flight and platform, to a recipient drawn like every
  other recipient, with her own name, customs code, phone and address (7 % an office address,
  6 % a purchasing agent's phone), as in :func:`simulator.trade.express_shipments`.

So an illicit shipment's parties are a random draw from the same distribution as legitimate
ones: no party is persistently riskier than another, and a party's earlier seizures, age,
phone changes and network links say nothing about its next shipment. Rip-on/rip-off loads
already travel with legitimate parties and are left as they are; the clean shipments a scheme
makes (a front company's test loads, an organisation's clean cover loads) keep their parties.
"""

from __future__ import annotations

import numpy as np

from simulator.schemes import SCHEME_CODE
from simulator.trade import (
    AIR,
    BROKER_PHONE_SHARE,
    CARRIER_OFFSET,
    EXPRESS,
    SEA,
    express_flights,
    sample_active,
)
from simulator.world import AGENT_PARCEL_SHARE, NEVER, PRIVATE_PARCEL_SHARE, World


def randomise_parties(world: World, rng: np.random.Generator, draft: dict) -> dict:
    """Re-draw the parties of every illicit shipment of ``draft`` like a legitimate one's
    (in place; returns ``draft``)."""
    illicit = draft["illicit"] & (draft["scheme"] != SCHEME_CODE["rip_on_rip_off"])
    for mode, lanes in ((SEA, world.sea), (AIR, world.air)):
        rows = np.flatnonzero(illicit & (draft["mode"] == mode))
        if len(rows):
            _cargo_parties(world, rng, draft, rows, lanes)
    rows = np.flatnonzero(illicit & (draft["mode"] == EXPRESS))
    if len(rows):
        _express_parties(world, rng, draft, rows)
    return draft


def _draw(
    rng: np.random.Generator,
    keys: np.ndarray,
    candidate_keys: np.ndarray,
    start: np.ndarray,
    activity: np.ndarray,
    day: np.ndarray,
) -> np.ndarray:
    """For each row, a candidate with the row's key (any candidate when none has it), among
    those active on the row's day, in proportion to its activity."""
    out = np.empty(len(keys), np.int64)
    every = np.arange(len(candidate_keys))
    for key in np.unique(keys):
        mask = keys == key
        pool = np.flatnonzero(candidate_keys == key)
        if not len(pool):
            pool = every
        out[mask] = pool[sample_active(rng, start[pool], activity[pool], day[mask])]
    return out


def _cargo_parties(
    world: World, rng: np.random.Generator, d: dict, rows: np.ndarray, lanes
) -> None:
    p = world.parties
    day = d["declared"][rows]
    lane = _draw(rng, d["origin"][rows], lanes.origin, lanes.start, lanes.activity, day)
    for col in ("shipper", "consignee", "notify", "forwarder", "declarant"):
        d[col][rows] = getattr(lanes, col)[lane]
    consignee, declarant = d["consignee"][rows], d["declarant"][rows]
    phone = p.phone_at(consignee, day)
    broker = (rng.random(len(rows)) < BROKER_PHONE_SHARE) & (p.phone[declarant] >= 0)
    d["phone"][rows] = np.where(broker, p.phone[declarant], phone)
    d["address"][rows] = p.address_at(consignee, day)
    d["name"][rows] = p.name[consignee]
    d["code"][rows] = -1


def _express_parties(world: World, rng: np.random.Generator, d: dict, rows: np.ndarray) -> None:
    ex, p = world.express, world.parties
    n = len(rows)
    day = d["declared"][rows]
    origin = d["origin"][rows]
    # platform sellers of the legitimate world (scheme senders and private persons never start)
    sellers = np.flatnonzero(ex.sender_start < NEVER / 2)
    sender = sellers[
        _draw(
            rng,
            origin,
            ex.sender_country[sellers],
            ex.sender_start[sellers],
            ex.sender_activity[sellers],
            day,
        )
    ]
    private = rng.random(n) < PRIVATE_PARCEL_SHARE
    if private.any():
        persons = ex.private_senders
        flat = np.zeros(len(persons))
        pick = _draw(
            rng, origin[private], ex.sender_country[persons], flat, flat + 1.0, day[private]
        )
        sender[private] = persons[pick]
    d["shipper"][rows] = ex.sender[sender]
    d["carrier"][rows] = ex.sender_courier[sender] + CARRIER_OFFSET[EXPRESS]
    d["platform"][rows] = ex.sender_platform[sender]
    d["has_order"][rows] = d["platform"][rows] >= 0
    ferry = d["vessel"][rows] >= 0
    flights = express_flights(world, rng, d["carrier"][rows], origin)
    d["flight"][rows] = np.where(ferry, -1, flights)
    platform = d["platform"][rows] >= 0
    u = rng.random(n)
    d["payment"][rows] = np.where(
        platform, np.where(u < 0.62, 4, 5), np.where(u < 0.5, 4, -1)
    )  # as for legitimate parcels: card or e-wallet on platforms, often nothing otherwise

    recipient = ex.recipient[sample_active(rng, ex.recipient_start, ex.recipient_activity, day)]
    d["consignee"][rows] = recipient
    d["name"][rows] = p.name[recipient]
    d["code"][rows] = p.code[recipient]
    d["phone"][rows] = p.phone_at(recipient, day)
    office = (rng.random(n) < 0.07) & (p.address2[recipient] >= 0)
    d["address"][rows] = np.where(office, p.address2[recipient], p.address_at(recipient, day))
    agent = (rng.random(n) < AGENT_PARCEL_SHARE) & ~private
    weights = ex.agent_activity / ex.agent_activity.sum()
    agent_phone = ex.agent_phones[rng.choice(len(weights), n, p=weights)]
    d["phone"][rows] = np.where(agent, agent_phone, d["phone"][rows])
