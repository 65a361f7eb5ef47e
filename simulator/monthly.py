"""Make a world one calendar month at a time, so peak memory is set by a month, not the period.

``cargorisk simulate --by-month`` (see docs/simulator.md). The population (parties, lanes,
express network: :func:`simulator.world.build_world`) is built once for the whole period. So are
the smuggling campaigns that are not tied to one legitimate shipment (front companies, hijacked
identities, express and borrowed-code rings, value anomalies, route displacement): they have
start and end days that run across months, are few (prevalence x volume rows) and add their own
parties, so they are drawn once, their parties' ids fixed once, and each month takes the
campaign shipments declared in it. Each month then draws its own legitimate trade, marks its
share of rip-on/rip-off loads among its own reefers, renders, inspects and is written to
``OUT/<table>/month=YYYY-MM/part-0.parquet`` before the next month starts.

What crosses months and how it is carried:

* parties, lanes, their start days and phone/address changes: the world (built once);
* campaigns with start/end days: the period's campaign draft (built once, sliced by month);
* shipment ids: a running serial number, so ids are unique and ordered across months;
* inspections: the legacy policy reads only the shipment itself and shares each arrival day's
  capacity in proportion to that day's arrivals, so it needs no state but the period's start and
  end: a shipment declared at the end of a month and arriving in the next is inspected with its
  month, against the capacity its own month's share of that arrival day brings; a result after
  the month's end is kept (known by the period's end) and written with its shipment's month.

The in-memory world (:func:`simulator.core.simulate`) is untouched: a by-month world uses its
own random streams (one per month, from ``SeedSequence.spawn``), so it is a different draw of
the same world, with the same statistical character (tested), not the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import CargoriskError
from features.tables import write_partition
from simulator.config import SimConfig
from simulator.inspection import inspect
from simulator.output import (
    FROZEN_POOLS,
    TRUTH_COLUMNS,
    check_out_dir,
    party_ids,
    render,
    validate_world,
)
from simulator.random_history import randomise_parties
from simulator.schemes import SchemeBuilder, scheme_counts
from simulator.trade import concat_drafts, empty_draft, legit_shipments, take
from simulator.world import build_world

TABLES = ("shipments", "outcomes", "truth")


@dataclass(frozen=True)
class Month:
    """One calendar month of the period: its label and its days ``[first, end)`` since the
    period's start (the first and last month may be partial)."""

    label: str
    first: int
    end: int


@dataclass
class MonthlySummary:
    """What was written, counted month by month (the tables themselves are on disk)."""

    months: list[str] = field(default_factory=list)
    shipments: int = 0
    outcomes: int = 0
    seizures: int = 0
    illicit: int = 0
    per_month: dict[str, int] = field(default_factory=dict)


def months_of(config: SimConfig) -> list[Month]:
    """The calendar months the period ``[start, end)`` touches, as day windows."""
    start, end = config.start, config.end
    out = []
    month = start.to_period("M")
    while month.start_time < end:
        lo = max(0, (month.start_time - start).days)
        hi = min(config.days, (month.end_time.normalize() + pd.Timedelta(days=1) - start).days)
        if hi > lo:
            out.append(Month(str(month), lo, hi))
        month += 1
    return out


def simulate_by_month(config: SimConfig, out: str | Path) -> MonthlySummary:
    """Simulate ``config``'s period month by month into ``out``; same config and seed, same
    files. A messy world is made in memory only (its export is written from the whole world)."""
    if config.messy:
        raise CargoriskError("by_month: a messy world (--export) is made in memory only")
    out = check_out_dir(Path(out))
    taken = [
        p.name for t in TABLES for p in (out / t, out / f"{t}.parquet", out / f"{t}.csv")
        if p.exists()
    ]  # fmt: skip
    if taken:
        raise CargoriskError(f"out: {out} already holds a world ({', '.join(taken)}); "
                             "give an empty or new directory")  # fmt: skip
    months = months_of(config)
    # own streams: world, campaigns, rip-on/rip-off split, then one child per month
    world_ss, scheme_ss, party_ss, month_ss = np.random.SeedSequence(config.seed).spawn(4)
    world = build_world(config, np.random.default_rng(world_ss))
    scheme_rng = np.random.default_rng(scheme_ss)
    campaigns, rip_per_month = _campaigns(world, scheme_rng, months)
    if config.party_history == "random":
        campaigns = randomise_parties(world, np.random.default_rng(party_ss), campaigns)
    ids = party_ids(world, config.seed + 7)  # every party exists now: the campaigns added theirs
    # no month adds a name, phone, address or customs code: combine their pools' Arrow chunks
    # once, not in every month's render
    strings = {name: getattr(world, name).values for name in FROZEN_POOLS}
    summary = MonthlySummary()
    serial = 1
    for month, ss, rips in zip(months, month_ss.spawn(len(months)), rip_per_month, strict=True):
        streams = (np.random.default_rng(s) for s in ss.spawn(4))
        trade_rng, rip_rng, render_rng, inspect_rng = streams
        draft = legit_shipments(world, trade_rng, (month.first, month.end))
        if rips:
            SchemeBuilder(world, rip_rng).rip_on_rip_off(draft, rips)
        inside = (campaigns["declared"] >= month.first) & (campaigns["declared"] < month.end)
        draft = concat_drafts([draft, take(campaigns, np.flatnonzero(inside))])
        shipments, truth = render(
            world, draft, render_rng, ids=ids, first_serial=serial, strings=strings
        )
        order = np.argsort(draft["declared"], kind="stable")
        outcomes, _ = inspect(shipments, truth, draft["quantity"][order], config, inspect_rng)
        del draft
        shipments, outcomes = validate_world(shipments, outcomes)
        _write_month(out, month.label, shipments, outcomes, truth.loc[:, list(TRUTH_COLUMNS)])
        serial += len(shipments)
        summary.months.append(month.label)
        summary.per_month[month.label] = len(shipments)
        summary.shipments += len(shipments)
        summary.outcomes += len(outcomes)
        summary.seizures += int((outcomes["result"] == "seized").sum())
        summary.illicit += int(truth["illicit"].sum())
    return summary


def _campaigns(
    world, rng: np.random.Generator, months: list[Month]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The period's campaign shipments (every scheme but rip-on/rip-off, which marks legitimate
    reefers) and how many rip-on/rip-off loads each month gets (in proportion to its days)."""
    counts = scheme_counts(world, rng)
    builder = SchemeBuilder(world, rng)
    cfg = world.config
    builders = {
        "front_company": builder.front_company,
        "hijacked_identity": builder.hijacked_identity,
        "express_network": builder.express_network,
        "borrowed_code": builder.borrowed_code,
        "value_anomaly": builder.value_anomaly,
    }
    drafts = [empty_draft(0)]
    for name, build in builders.items():
        if counts[name]:
            drafts.append(build(counts[name]))
    if counts["route_displacement"]:
        drafts.append(
            builder.route_displacement(
                counts["route_displacement"], cfg.drift, cfg.drift_at * cfg.days
            )
        )
    days = np.array([m.end - m.first for m in months], dtype=float)
    rips = rng.multinomial(counts["rip_on_rip_off"], days / days.sum())
    return concat_drafts(drafts), rips


def _write_month(out: Path, label: str, *frames: pd.DataFrame) -> None:
    """Write one month's tables (:func:`features.tables.write_partition`: each next to its
    target and renamed into place)."""
    for table, frame in zip(TABLES, frames, strict=True):
        write_partition(out, table, label, frame)
