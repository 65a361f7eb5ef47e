"""CLI commands of the serving area: ``serve``, ``keys create|list|revoke`` and ``export``.

``serve`` is a thin wrapper over ``bentoml serve serving.service:CargoRisk`` run as a
subprocess, so ``bentoml serve`` and ``bentoml build`` work the same without this CLI.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from features.errors import CargoriskError

SERVICE = "serving.service:CargoRisk"
SERVICE_NAME = "cargorisk"


def bentoml_command(port: int, host: str) -> list[str]:
    """The ``bentoml serve`` command line for the scoring service."""
    import sys

    exe = Path(sys.executable).parent / "bentoml"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "bentoml"]
    workdir = Path(__file__).resolve().parent.parent
    return [
        *base,
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(workdir),
    ]


def serve_env(workers: int) -> dict[str, str]:
    """The environment of the service process: ours plus the worker count for BentoML."""
    import os

    env = dict(os.environ)
    extra = f"services.{SERVICE_NAME}.workers={workers}"
    env["BENTOML_CONFIG_OPTIONS"] = " ".join(
        filter(None, [env.get("BENTOML_CONFIG_OPTIONS", ""), extra])
    )
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return env


def check_workers(workers: int) -> None:
    """Any number of worker processes in 1..16: they share the store's online aggregates (no
    worker holds history of its own), so every worker gives the same scores."""
    if not 1 <= workers <= 16:
        raise CargoriskError(f"--workers: {workers} not in 1..16")


def _store():
    from common.settings import load_settings
    from serving.store import Store

    return Store(load_settings().store)


def _export_info(ships) -> tuple:
    """What the exported data means (dataset.json): the label and attribute schema of the
    champion that scored it, plus the kind of any stored attribute the champion does not
    know (numbers -> numeric, text -> categorical). Without a reachable champion the label is
    the default and every attribute's kind is read from the data; the caller is told which."""
    import pandas as pd

    from common.settings import load_settings
    from features.contracts import (
        ATTRIBUTE_PREFIX,
        AttributeSpec,
        DatasetInfo,
        attribute_columns,
    )

    settings = load_settings()
    try:
        from serving.model import load_champion

        info = load_champion(settings.tracking_uri, settings.model_name).scoring.dataset
        source = f"from the champion of {settings.model_name}"
    except Exception as exc:  # no registry, no champion: the data alone
        info = DatasetInfo()
        source = f"no champion to read them from ({type(exc).__name__}): kinds read from the data"
    attributes = dict(info.attributes)
    for column in attribute_columns(ships):
        name = column.removeprefix(ATTRIBUTE_PREFIX)
        if name not in attributes:
            numeric = pd.api.types.is_numeric_dtype(ships[column])
            attributes[name] = AttributeSpec(kind="numeric" if numeric else "categorical")
    return info.model_copy(update={"attributes": attributes}), source


@dataclass(frozen=True)
class Exported:
    """What :func:`export_tables` wrote: counts, the declaration window of the shipments, the
    dataset meaning and where it was read from."""

    out: Path
    shipments: int
    outcomes: int
    first_declared: dt.datetime
    last_declared: dt.datetime
    info: Any
    info_source: str


def export_tables(store, out: Path, since: dt.datetime | None = None) -> Exported:
    """Write the stored shipments (declared on or after ``since``) and their outcomes as
    contract tables with dataset.json to ``out``: what ``cargorisk export`` and
    ``cargorisk retrain`` train on."""
    from features.contracts import validate_outcomes, validate_shipments
    from features.tables import write_contract_dir

    ships = store.shipments_frame(since=since)
    if ships.empty:
        raise CargoriskError(
            "export: the store holds no shipments"
            + (f" since {since.date().isoformat()}" if since else "")
        )
    outs = store.outcomes_frame()
    outs = outs[outs["shipment_id"].isin(set(ships["shipment_id"]))].reset_index(drop=True)
    info, source = _export_info(ships)
    ships = validate_shipments(ships, attributes=info.attributes)
    outs = validate_outcomes(outs)
    write_contract_dir(out, ships, outs, info)
    return Exported(
        out=out,
        shipments=len(ships),
        outcomes=len(outs),
        first_declared=ships["declared_at"].min().to_pydatetime(),
        last_declared=ships["declared_at"].max().to_pydatetime(),
        info=info,
        info_source=source,
    )


def since_date(value: str | None) -> dt.datetime | None:
    """The ``--since`` option of ``export`` and ``retrain`` as a datetime (None: from the start)."""
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CargoriskError(f"--since: not a date (YYYY-MM-DD): {value!r}") from exc


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command()
    def serve(
        port: int = typer.Option(None, "--port", "-p", help="Port (default: settings.port)."),
        workers: int = typer.Option(
            None,
            "--workers",
            "-w",
            help="Worker processes (default: settings.workers); they share the store's "
            "online aggregates, so every worker gives the same scores.",
        ),
        host: str = typer.Option(
            None,
            "--host",
            help="Interface to listen on (default: settings.host, 127.0.0.1; in a container "
            "0.0.0.0, so the published port reaches it).",
        ),
    ) -> None:
        """Start the risk-scoring service (bentoml serve serving.service:CargoRisk)."""
        import signal
        import subprocess

        from common.settings import load_settings

        settings = load_settings()
        port = port or settings.port
        workers = workers or settings.workers
        host = host or settings.host
        if not 1 <= port <= 65535:
            raise CargoriskError(f"--port: {port} is not a TCP port")
        check_workers(workers)
        from serving.preflight import preflight

        preflight(settings)  # refuse here, before BentoML starts (and retries) a worker
        cmd = bentoml_command(port, host)
        typer.echo(f"serving {settings.model_uri} on http://{host}:{port} ({workers} worker(s))")
        proc = subprocess.Popen(cmd, env=serve_env(workers))

        def forward(signum, _frame):
            proc.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            code = proc.wait()
        raise typer.Exit(code)

    keys = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def keys_create(
        role: str = typer.Option(..., "--role", help="system, officer or admin."),
        name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    ) -> None:
        """Create an API key and print it (once: only its hash is stored)."""
        key = _store().create_key(name, role)
        typer.echo(key)

    @keys.command("list")
    def keys_list() -> None:
        """List API keys (id, name, role, prefix, created, revoked) - never the keys."""
        rows = _store().list_keys()
        typer.echo(f"{'id':>4}  {'name':24} {'role':8} {'prefix':12} {'created':19}  revoked")
        for r in rows:
            created = r["created_at"].isoformat(sep=" ", timespec="seconds")
            revoked = (
                r["revoked_at"].isoformat(sep=" ", timespec="seconds") if r["revoked_at"] else ""
            )
            typer.echo(
                f"{r['id']:>4}  {r['name'][:24]:24} {r['role']:8} {r['prefix']:12} "
                f"{created:19}  {revoked}"
            )

    @keys.command("revoke")
    def keys_revoke(
        key: str = typer.Argument(..., help="The key's id, name or prefix."),
    ) -> None:
        """Revoke API keys by id, name or prefix (takes effect within seconds)."""
        count = _store().revoke_key(key)
        if not count:
            raise CargoriskError(f"key: no active key with id, name or prefix {key!r}")
        typer.echo(f"revoked {count} key(s)")

    @app.command()
    def export(
        out: Path = typer.Option(..., "--out", help="Directory to write the tables to."),
        since: str = typer.Option(
            None, "--since", help="Only shipments declared on or after this date (YYYY-MM-DD)."
        ),
    ) -> None:
        """Write the stored shipments and their outcomes as contract tables
        (shipments.parquet with the shipments' attributes, outcomes.parquet, dataset.json) for
        `cargorisk train --data DIR`."""
        exported = export_tables(_store(), out, since_date(since))
        typer.echo(
            f"exported {exported.shipments} shipments and {exported.outcomes} outcomes to {out}"
        )
        info, source = exported.info, exported.info_source
        typer.echo(f"label {info.label.name!r}, {len(info.attributes)} attribute(s) ({source})")
