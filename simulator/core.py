"""Build one world end to end: population, trade, schemes, rendering, inspections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.config import SimConfig
from simulator.inspection import inspect
from simulator.output import render, validate_world
from simulator.schemes import add_schemes
from simulator.trade import legit_shipments
from simulator.world import build_world


@dataclass(frozen=True)
class SimulatedWorld:
    """The tables of one simulated period.

    ``shipments`` and ``outcomes`` follow the contract (validated); ``truth`` holds the hidden
    answer for every shipment (``illicit``, ``drug``, ``scheme``), including those never
    inspected. ``facts`` keeps the inspection bookkeeping for the report (rule scores, which
    shipments were selected and whether their result is known by the end).
    """

    config: SimConfig
    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    truth: pd.DataFrame
    facts: dict


def simulate(config: SimConfig) -> SimulatedWorld:
    """Simulate the period described by ``config``; same config and seed, same tables."""
    seeds = np.random.SeedSequence(config.seed).spawn(5)
    world_rng, trade_rng, scheme_rng, render_rng, inspect_rng = (
        np.random.default_rng(s) for s in seeds
    )
    world = build_world(config, world_rng)
    draft = legit_shipments(world, trade_rng)
    draft = add_schemes(world, scheme_rng, draft)
    shipments, truth = render(world, draft, render_rng)
    quantity = draft["quantity"][np.argsort(draft["declared"], kind="stable")]
    outcomes, facts = inspect(shipments, truth, quantity, config, inspect_rng)
    shipments, outcomes = validate_world(shipments, outcomes)
    return SimulatedWorld(config, shipments, outcomes, truth, facts)
