"""The ``cargorisk`` command line: one console script, one typer app.

Each area registers its own commands: ``cli_quickstart``: quickstart; ``cli_data``: ingest;
``cli_simulate``: simulate; ``cli_features``: features snapshot / materialize; ``cli_train``:
train, evaluate, promote, models, score; ``cli_serve``: serve, keys, export; ``cli_retrain``:
retrain; ``cli_shadow``: shadow; ``cli_ui``: users; ``cli_monitor``: monitor. None of them
imports this module (quickstart runs the other commands through the app it is registered on).
Heavy libraries are imported inside the commands so ``cargorisk --help`` stays instant.
"""

from __future__ import annotations

import sys

import typer

from features.errors import CargoriskError


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="cargorisk",
        help="Narcotics risk targeting for sea, air-cargo and express shipments.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """Narcotics risk targeting for sea, air-cargo and express shipments."""

    from cargorisk import (
        cli_data,
        cli_features,
        cli_monitor,
        cli_quickstart,
        cli_retrain,
        cli_serve,
        cli_shadow,
        cli_simulate,
        cli_train,
        cli_ui,
    )

    @app.command()
    def info() -> None:
        """Show the settings in force: home, tracking URI, store, model."""
        from common.settings import load_settings

        settings = load_settings()
        for key, value in {
            "home": settings.home,
            "tracking_uri": settings.tracking_uri,
            "store": settings.store,
            "model": settings.model_uri,
            "capacity": settings.capacity,
        }.items():
            typer.echo(f"{key:14} {value}")

    for module in (
        cli_quickstart,
        cli_data,
        cli_simulate,
        cli_train,
        cli_features,
        cli_serve,
        cli_retrain,
        cli_shadow,
        cli_ui,
        cli_monitor,
    ):
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (tests call this directly)."""
    app = build_app()
    try:
        app(args=argv, prog_name="cargorisk", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CargoriskError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
