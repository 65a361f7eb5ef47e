"""``cargorisk features snapshot`` / ``materialize``: the aggregates as of now per key, written
by the offline engine and bulk-loaded into the serving store.

Heavy libraries (DuckDB, Spark) are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path

import typer

from features.errors import CargoriskError


def parquet_paths(data: Path, table: str, *, required: bool) -> str | None:
    """What the engine reads for ``table`` of a data directory: ``<table>.parquet`` or the
    month partitions' glob (None for an absent optional table)."""
    from features.tables import PARTITION_GLOB, table_path

    path = table_path(data, table)
    if path is None:
        if required:
            raise CargoriskError(
                f"--data {data}: no {table} table ({table}.parquet or {table}/{PARTITION_GLOB})"
            )
        return None
    if path.is_dir():
        return str(path / PARTITION_GLOB)
    if path.suffix.lower() != ".parquet":
        raise CargoriskError(
            f"--data {data}: {path.name}: the engine reads Parquet; convert it with "
            "`cargorisk ingest` first"
        )
    return str(path)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (a ``features`` group)."""
    group = typer.Typer(
        name="features",
        help="The offline feature engine's outputs for serving.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="features")

    @group.command()
    def snapshot(
        data: Path = typer.Option(..., "--data", help="Directory of contract tables (Parquet)."),
        out: Path = typer.Option(..., "--out", help="New or empty directory for the snapshot."),
        as_of: str | None = typer.Option(
            None,
            "--as-of",
            help="Instant the aggregates describe (ISO time, UTC unless an offset is given); "
            "default: the midnight after the latest declaration or known result.",
        ),
        engine: str | None = typer.Option(
            None, "--engine", help="duckdb (default) or spark: both run the same SQL."
        ),
        spark_master: str | None = typer.Option(
            None, "--spark-master", help="Spark master for --engine spark (default: setting)."
        ),
    ) -> None:
        """Write the aggregates of every key as of --as-of (shipments, first seen, day
        buckets, value sums, known inspections and seizures, distinct partners, link-graph
        components) as Parquet partitioned by key dimension."""
        from datetime import UTC, datetime

        from common.settings import load_settings
        from features.snapshot import parse_as_of, write_snapshot
        from training.dataset import engine_options

        name = engine or "duckdb"
        if name not in ("duckdb", "spark"):
            raise typer.BadParameter("must be duckdb or spark", param_hint="--engine")
        settings = load_settings(**({"spark_master": spark_master} if spark_master else {}))
        engine_settings = engine_options(settings)["engine_settings"]
        result = write_snapshot(
            parquet_paths(data, "shipments", required=True),
            parquet_paths(data, "outcomes", required=False),
            out,
            as_of=parse_as_of(as_of),
            engine_name=name,
            settings=engine_settings,
        )
        when = datetime.fromtimestamp(result.as_of / 1e9, UTC).isoformat()
        typer.echo(f"snapshot   {result.out}  (as of {when}, {result.engine})")
        for table, rows in result.rows.items():
            typer.echo(f"  {table:11} {rows:>12,} rows")

    @group.command()
    def materialize(
        snapshot_dir: Path = typer.Option(
            ..., "--snapshot", help="Directory written by `cargorisk features snapshot`."
        ),
        store: str | None = typer.Option(
            None, "--store", help="SQLAlchemy URL of the store (default: setting store_url)."
        ),
    ) -> None:
        """Replace the store's online aggregates (key_totals, key_days, key_pairs,
        key_components) with a snapshot, in one transaction (PostgreSQL COPY; SQLite batched
        inserts)."""
        import time
        from datetime import UTC, datetime

        from common.settings import load_settings
        from serving.store import Store
        from serving.store import materialize as load

        url = store or load_settings().store
        target = Store(url)
        try:
            started = time.perf_counter()
            result = load(target, snapshot_dir)
            seconds = time.perf_counter() - started
        finally:
            target.close()
        when = datetime.fromtimestamp(result.as_of / 1e9, UTC).isoformat()
        typer.echo(f"materialised  {snapshot_dir}  (as of {when}) in {seconds:.1f} s")
        for table, rows in result.rows.items():
            typer.echo(f"  {table:11} {rows:>12,} rows")
        if result.seconds:
            steps = ", ".join(f"{step} {s:.1f}" for step, s in result.seconds.items())
            typer.echo(f"  seconds: {steps}")
