"""``cargorisk retrain``: the learning loop in one command - export -> train -> gate -> promote
-> reload, against the configured store, registry and service.

Every step is the one the separate commands run: :func:`cargorisk.cli_serve.export_tables`
(``cargorisk export``), :func:`training.jobs.train.train_job` (``cargorisk train``),
:func:`training.jobs.promote.promote_job` (``cargorisk promote``: the quality gate) and the
service's ``POST /admin/reload``. A candidate the gate refuses is not promoted, the service is
not asked to reload (the champion keeps serving) and the command exits 1 saying why.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import typer

from features.errors import CargoriskError

EXIT_REFUSED = 1
"""The gate refused the candidate: the champion is unchanged and keeps serving."""
EXIT_NOT_RELOADED = 3
"""The candidate was promoted but the service did not load it (it serves the old champion
until ``POST /admin/reload`` or a restart)."""


def _echo(message: str) -> None:
    typer.echo(message)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _store_label(url: str) -> str:
    """The store's URL as recorded: a password in it is hidden."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: record nothing secret
        return url.split("@")[-1]


def _service_url(settings, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def reload_service(url: str, key: str | None, timeout: float = 300.0) -> dict:
    """``POST {url}/admin/reload`` with an admin key; returns the service's answer. Raises
    :class:`CargoriskError` naming what failed (unreachable, refused key, failed load)."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        r = httpx.post(f"{url}/admin/reload", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise CargoriskError(f"service {url}: unreachable ({type(exc).__name__}: {exc})") from None
    try:
        body = r.json()
    except ValueError:
        body = {"error": r.text[:300]}
    if r.status_code in (401, 403):
        raise CargoriskError(
            f"service {url}: the reload was refused ({r.status_code}): set an admin key in the "
            "environment variable named by --admin-key-env"
        )
    if r.status_code != 200 or not body.get("reloaded"):
        raise CargoriskError(
            f"service {url}: the new champion did not load ({r.status_code}): {body}"
        )
    return body


def register(app: typer.Typer) -> None:
    """Add ``retrain`` to ``app``."""

    @app.command()
    def retrain(
        since: str | None = typer.Option(
            None, "--since", help="Train on shipments declared on or after this date."
        ),
        days: int | None = typer.Option(
            None, "--days", help="Train on the last N days of the store (instead of --since)."
        ),
        test_days: int | None = typer.Option(
            None, "--test-days", help="Test = the last N days (validation N); default: shares."
        ),
        config: Path | None = typer.Option(None, "--config", help="Hyper-parameters/gate YAML."),
        work: Path | None = typer.Option(
            None,
            "--work",
            help="Where the exported data is kept (default: <home>/retrain/<UTC time>); the "
            "registered version records it and `cargorisk promote` re-reads it.",
        ),
        service: str | None = typer.Option(
            None,
            "--service",
            help="The scoring service to reload (default: http://127.0.0.1:<setting port>).",
        ),
        admin_key_env: str = typer.Option(
            "CARGORISK_ADMIN_KEY",
            "--admin-key-env",
            help="Environment variable holding an admin API key for /admin/reload (a key on "
            "the command line would show in the process list).",
        ),
        no_reload: bool = typer.Option(
            False, "--no-reload", help="Do not ask the service to reload after promoting."
        ),
    ) -> None:
        """Export the store, train, gate, promote and reload the service in one command.

        Exits 0 when the new champion serves, 1 when the gate refused the candidate (the
        champion keeps serving; the reason is printed), 3 when it was promoted but the service
        did not load it, 2 on an error before that (nothing promoted)."""
        from cargorisk.cli_serve import export_tables, since_date
        from common.settings import load_settings
        from features import registry_contract as rc
        from serving.store import Store
        from training.jobs.promote import promote_job
        from training.jobs.train import train_job

        if since is not None and days is not None:
            raise CargoriskError("--since and --days: give one of them")
        if days is not None and days < 1:
            raise CargoriskError(f"--days: {days} is not a number of days >= 1")
        settings = load_settings()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        start = since_date(since)
        if days is not None:
            start = dt.datetime.combine((now - dt.timedelta(days=days)).date(), dt.time())
        url = _service_url(settings, service)
        key = os.environ.get(admin_key_env) or None
        if not no_reload and key is None and settings.auth_enabled:
            raise CargoriskError(
                f"--admin-key-env: {admin_key_env} is not set; the service's /admin/reload "
                "needs an admin key (or pass --no-reload)"
            )
        data = work or Path(settings.home) / "retrain" / now.strftime("%Y%m%dT%H%M%SZ")

        # 1. export what the service saw and what inspections found
        store = Store(settings.store)
        try:
            exported = export_tables(store, data, start)
        finally:
            store.close()
        store_label = _store_label(settings.store)
        first, last = exported.first_declared.isoformat(), exported.last_declared.isoformat()
        window = {"since": start.date().isoformat() if start else None, "from": first, "to": last}
        _echo(
            f"exported       {exported.shipments:,} shipments, {exported.outcomes:,} outcomes "
            f"declared {first[:10]} .. {last[:10]} from {store_label} to {data}"
        )

        # 2. train (and register the better candidate as a new version)
        result = train_job(
            settings,
            data,
            test_days=test_days,
            config_path=config,
            run_tags={
                rc.TAG_RETRAIN: "true",
                rc.TAG_DATA_STORE: store_label,
                rc.TAG_DATA_WINDOW: json.dumps(window),
            },
            progress=_progress,
        )
        _echo(f"trained        run {result.run_id}, {settings.model_name} version "
              f"{result.model_version}")  # fmt: skip

        # 3. gate and promote
        record = promote_job(
            settings, version=result.model_version, data_dir=data, config_path=config,
            progress=_progress,
        )  # fmt: skip
        _echo(f"gate           {record.get('gate_reason', record.get('reason'))}")
        if not record["promoted"]:
            champion = record.get("champion_before")
            _echo(
                f"refused        version {record['candidate']} NOT promoted; "
                + (f"version {champion} stays champion" if champion else "no champion")
                + " and keeps serving"
            )
            raise typer.Exit(EXIT_REFUSED)
        _echo(f"promoted       version {record['candidate']} to @{settings.champion_alias}")

        # 4. the service loads the new champion
        if no_reload:
            _echo("reload         skipped (--no-reload)")
            return
        try:
            body = reload_service(url, key)
        except CargoriskError as exc:
            _echo(f"reload         FAILED: {exc}")
            raise typer.Exit(EXIT_NOT_RELOADED) from None
        _echo(f"reloaded       {url} serves version {body.get('model_version')}")
