"""``cargorisk simulate``: write a simulated customs world (shipments, outcomes, truth), and
optionally the same world as a messy customs export (CSV + mapping)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from features.errors import CargoriskError


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command()
    def simulate(
        out: Path | None = typer.Option(
            None, "--out", help="Directory to write the contract Parquet files to."
        ),
        export: Path | None = typer.Option(
            None,
            "--export",
            help="Directory to write a messy customs export to (declarations.csv, "
            "mapping.yaml, mapping_critical.yaml, truth.parquet). With --out too, --out gets "
            "the same messy world as contract tables (what ingest makes of the export).",
        ),
        days: int = typer.Option(120, "--days", help="Length of the period in days."),
        seed: int = typer.Option(42, "--seed", help="Random seed; same seed, same files."),
        shipments_per_day: int = typer.Option(
            3000, "--shipments-per-day", help="Average shipments declared per day."
        ),
        end: str | None = typer.Option(
            None,
            "--end",
            help="Date (YYYY-MM-DD, UTC) on which the period ends; default today.",
        ),
        prevalence: float = typer.Option(
            0.004, "--prevalence", help="Share of shipments that carry drugs (overall)."
        ),
        scheme_mix: str | None = typer.Option(
            None,
            "--scheme-mix",
            help="Relative shares per scheme, e.g. 'express_network=0.4,rip_on_rip_off=0'; "
            "schemes not named keep their default.",
        ),
        mode_mix: str | None = typer.Option(
            None, "--mode-mix", help="Shares by mode, e.g. 'express=0.7,sea=0.18,air=0.12'."
        ),
        drift: bool = typer.Option(
            True, "--drift/--no-drift", help="Let route displacement move ports mid-period."
        ),
        inspection_capacity: float = typer.Option(
            0.03, "--inspection-capacity", help="Share of each day's arrivals inspected."
        ),
        random_share: float = typer.Option(
            0.10, "--random-share", help="Share of the capacity used for random inspections."
        ),
        party_history: str = typer.Option(
            "scheme",
            "--party-history",
            help="'scheme': smugglers use their schemes' own parties (history is a signal); "
            "'random': illicit shipments use parties drawn like legitimate ones (no party is "
            "persistently riskier).",
        ),
        report: bool = typer.Option(
            False, "--report", help="Print prevalence and the legacy/random hit rates."
        ),
        by_month: bool = typer.Option(
            False,
            "--by-month",
            help="Make the world one calendar month at a time (peak memory set by a month, "
            "not the period) and write <table>/month=YYYY-MM/part-0.parquet; its own random "
            "streams, so a different draw of the same world (docs/simulator.md).",
        ),
    ) -> None:
        """Simulate a period of sea, air-cargo and express imports into Korea, with smuggling
        schemes and a legacy inspection policy, and write shipments, outcomes and truth."""
        import time

        import pandas as pd

        from simulator.config import SimConfig, default_end, parse_mode_mix, parse_scheme_mix
        from simulator.core import simulate as run
        from simulator.output import check_out_dir, write_world
        from simulator.report import format_report, summarise

        if out is None and export is None:
            raise CargoriskError("out: give --out DIR, --export DIR or both")
        if end is None:
            end_ts = default_end()
        else:
            try:
                end_ts = pd.Timestamp(dt.date.fromisoformat(end))
            except ValueError:
                raise CargoriskError(f"end: expected a date YYYY-MM-DD, got {end!r}") from None
        config = SimConfig(
            days=days,
            shipments_per_day=shipments_per_day,
            seed=seed,
            end=end_ts,
            prevalence=prevalence,
            scheme_mix=parse_scheme_mix(scheme_mix),
            mode_mix=parse_mode_mix(mode_mix),
            drift=drift,
            inspection_capacity=inspection_capacity,
            random_share=random_share,
            party_history=party_history,
            messy=export is not None,
        )
        if by_month:
            if export is not None or out is None or report:
                raise CargoriskError(
                    "by_month: give --out only (no --export, no --report: a world made by "
                    "month is written as it is made, never held whole)"
                )
            _simulate_by_month(config, out)
            return
        for directory in (out, export):
            if directory is not None:
                check_out_dir(directory)
        started = time.perf_counter()
        world = run(config)
        paths = {}
        if out is not None:
            info = world.info if config.messy else None
            paths.update(write_world(out, world.shipments, world.outcomes, world.truth, info))
        if export is not None:
            from simulator.export import write_export

            written = write_export(export, world)
            paths.update({f"export {name}": path for name, path in written.items()})
        elapsed = time.perf_counter() - started
        typer.echo(
            f"simulated {len(world.shipments):,} shipments, {len(world.outcomes):,} known "
            f"inspection results ({(world.outcomes['result'] == 'seized').sum():,} seizures), "
            f"{config.start.date()} .. {config.end.date()} in {elapsed:.1f} s"
        )
        for name, path in paths.items():
            typer.echo(f"  {name:24} {path}")
        if report:
            typer.echo("")
            typer.echo(format_report(summarise(world)))


def _simulate_by_month(config, out: Path) -> None:
    import time

    from simulator.monthly import simulate_by_month

    started = time.perf_counter()
    summary = simulate_by_month(config, out)
    elapsed = time.perf_counter() - started
    typer.echo(
        f"simulated {summary.shipments:,} shipments, {summary.outcomes:,} known inspection "
        f"results ({summary.seizures:,} seizures), {config.start.date()} .. "
        f"{config.end.date()} in {elapsed:.1f} s, by month ({len(summary.months)} months)"
    )
    for table in ("shipments", "outcomes", "truth"):
        typer.echo(f"  {table:24} {out / table}/month=*/part-0.parquet")
