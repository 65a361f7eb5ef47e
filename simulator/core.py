"""Build one world end to end: population, trade, schemes, rendering, inspections."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contracts import DatasetInfo
from simulator.config import SimConfig
from simulator.inspection import inspect
from simulator.messy import DATASET_INFO, make_messy
from simulator.output import render, validate_world
from simulator.random_history import randomise_parties
from simulator.schemes import add_schemes
from simulator.trade import legit_shipments
from simulator.world import build_world


@dataclass(frozen=True)
class SimulatedWorld:
    """The tables of one simulated period.

    ``shipments`` and ``outcomes`` follow the contract (validated); ``truth`` holds the hidden
    answer for every shipment (``illicit``, ``drug``, ``scheme``), including those never
    inspected. ``facts`` keeps the inspection bookkeeping for the report (rule scores, which
    shipments were selected and whether their result is known by the end). ``info`` is what
    travels with the data (``dataset.json``): the attribute schema of the ``attr.*`` columns a
    messy world's shipments carry after the contract columns, and the label's meaning.
    """

    config: SimConfig
    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    truth: pd.DataFrame
    facts: dict
    info: DatasetInfo = field(default_factory=DatasetInfo)


def simulate(config: SimConfig) -> SimulatedWorld:
    """Simulate the period described by ``config``; same config and seed, same tables."""
    # children 0-4 are the default world's streams; later ones only change optional worlds
    seeds = np.random.SeedSequence(config.seed).spawn(7)
    world_rng, trade_rng, scheme_rng, render_rng, inspect_rng, party_rng, messy_rng = (
        np.random.default_rng(s) for s in seeds
    )
    world = build_world(config, world_rng)
    draft = legit_shipments(world, trade_rng)
    first_scheme_party = len(world.parties)
    draft = add_schemes(world, scheme_rng, draft)
    if config.party_history == "random":
        draft = randomise_parties(world, party_rng, draft)
    shipments, truth = render(world, draft, render_rng)
    order = np.argsort(draft["declared"], kind="stable")
    quantity = draft["quantity"][order]
    outcomes, facts = inspect(shipments, truth, quantity, config, inspect_rng)
    if not config.messy:
        shipments, outcomes = validate_world(shipments, outcomes)
        return SimulatedWorld(config, shipments, outcomes, truth, facts)
    parties = {"shipper": draft["shipper"][order], "consignee": draft["consignee"][order]}
    shipments = make_messy(world, shipments, truth, parties, first_scheme_party, messy_rng)
    shipments, outcomes = validate_world(shipments, outcomes, DATASET_INFO)
    return SimulatedWorld(config, shipments, outcomes, truth, facts, DATASET_INFO)
