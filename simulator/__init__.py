"""A simulated customs world: legitimate trade, smuggling schemes, inspections, hidden truth.

It is a data *source* (like a CSV export): only its CLI command, tests and benchmarks import
it. :func:`simulate` builds the three tables in memory; :func:`simulator.output.write_world`
writes them. See ``docs/simulator.md`` for every mechanism and its parameters.
"""

from __future__ import annotations

from simulator.config import SCHEMES, SimConfig
from simulator.core import SimulatedWorld, simulate

__all__ = ["SCHEMES", "SimConfig", "SimulatedWorld", "simulate"]
