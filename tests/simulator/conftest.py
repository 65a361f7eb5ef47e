"""A small simulated world shared by the simulator tests (a few weeks, ~2,000 shipments/day)."""

from __future__ import annotations

import pandas as pd
import pytest

from simulator import SimConfig, simulate

END = pd.Timestamp("2026-11-25")


@pytest.fixture(scope="session")
def small_config() -> SimConfig:
    return SimConfig(days=28, shipments_per_day=2000, seed=7, end=END)


@pytest.fixture(scope="session")
def small_world(small_config):
    """Default behaviour (prevalence, scheme mix, capacity), smaller and shorter."""
    return simulate(small_config)
