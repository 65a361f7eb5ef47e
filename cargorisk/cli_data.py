"""Data commands: ``cargorisk ingest`` turns a customs export into contract files."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command()
    def ingest(
        source: Path = typer.Argument(..., help="CSV or Parquet export, in its own column names."),
        mapping: Path = typer.Option(
            ..., "--mapping", "-m", help="Mapping YAML: source columns -> contract fields."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the output files."),
        max_reject_share: float = typer.Option(
            0.05,
            "--max-reject-share",
            min=0.0,
            max=1.0,
            help="Exit with status 1 when a larger share of rows is quarantined.",
        ),
        delimiter: str = typer.Option(",", "--delimiter", help="CSV field delimiter."),
        encoding: str = typer.Option("utf-8", "--encoding", help="CSV text encoding."),
    ) -> None:
        """Ingest a manifest/declaration file: scorable rows to shipments.parquet (with the
        mapping's attributes), inspection results to outcomes.parquet when the file holds the
        label column, the attribute schema and label meaning to dataset.json, rows that cannot
        be scored to quarantine.csv and optional values left blank to blanked.csv, each with
        its reason."""
        from cargorisk.ingestion import delimiter_option, run_ingest
        from features.ingest.mapping import read_mapping

        summary = run_ingest(
            source,
            read_mapping(mapping),
            out,
            delimiter=delimiter_option(delimiter),
            encoding=encoding,
        )
        for line in summary.lines():
            typer.echo(line)
        if summary.reject_share > max_reject_share:
            typer.secho(
                f"error: {summary.reject_share:.2%} of rows were quarantined, more than the "
                f"allowed {max_reject_share:.2%} (--max-reject-share); accepted rows were "
                "written, see quarantine.csv",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(1)
