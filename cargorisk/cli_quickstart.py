"""``cargorisk quickstart``: from nothing to a served model and an officer's worklist.

The README's main command. Each step is skipped when its result already exists under the home
directory, so a second run reuses the world, the champion model and the officer key instead of
starting over:

1. simulate a customs world ending today (``data/world``), split into the history the service
   starts from (``data/history``: everything declared before today) and today's arrivals
   (``data/today``), which the inspection system will send for scoring;
2. train on the history, register the model in MLflow and promote it to ``champion``;
3. create an officer API key (printed, and kept in ``quickstart-keys.json`` under the home with
   mode 0600 so a second run can print it again) and a system key for the loader;
4. start ``bentoml serve``, wait until it is ready, send today's arrivals to ``/score/batch`` as
   an inspection system would (once), print the worklist URL and the key, and keep serving until
   Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import typer

from features.errors import CargoriskError


def _step(message: str) -> None:
    typer.secho(f"==> {message}", fg=typer.colors.CYAN, err=True)


def _run_cli(app: typer.Typer, args: list[str]) -> None:
    """Run another command of the same CLI (``app``, the one ``quickstart`` is registered on)
    in this process; its errors propagate, a non-zero exit becomes a :class:`CargoriskError`."""
    status = app(args=args, prog_name="cargorisk", standalone_mode=False)
    if isinstance(status, int) and status != 0:
        raise CargoriskError(f"'cargorisk {' '.join(args)}' failed (exit {status})")


def _split_world(world: Path, history: Path, today: Path) -> int:
    """History = declared before the last day; today = declared on the last day (each a
    contract directory, with the world's ``dataset.json`` when it has one; today's outcomes are
    empty). The simulator's hidden truth follows the history (training reads it only to
    measure true recall; the service never sees it)."""
    from features.tables import find_table, read_frame, read_info, write_contract_dir

    shipments = read_frame(find_table(world, "shipments"))
    outcomes = read_frame(find_table(world, "outcomes"))
    info = read_info(world)
    last_day = shipments["declared_at"].max().normalize()
    past = shipments["declared_at"] < last_day
    known = outcomes["shipment_id"].isin(shipments.loc[past, "shipment_id"])
    write_contract_dir(history, shipments[past], outcomes[known], info)
    write_contract_dir(today, shipments[~past], outcomes.iloc[:0], info)
    truth_file = world / "truth.parquet"
    if truth_file.exists():  # evaluation only: lets training report true recall
        truth = read_frame(truth_file)
        truth[truth["shipment_id"].isin(shipments.loc[past, "shipment_id"])].to_parquet(
            history / "truth.parquet", index=False
        )
    return int((~past).sum())


def _champion_problem(settings) -> str | None:
    """None when the registry has a champion this code can serve; else why not (none yet, or
    one trained on other feature definitions - an older quickstart's - which the service
    would refuse)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training import registry

    mlflow.set_tracking_uri(settings.tracking_uri)
    try:
        mlflow.MlflowClient().get_model_version_by_alias(
            settings.model_name, settings.champion_alias
        )
    except MlflowException:
        return "no champion yet"
    return registry.load_scoring_model(settings.model_uri).definitions_problem()


def _keys(settings) -> dict[str, str]:
    """The quickstart's officer and system keys, created once and remembered (0600)."""
    from serving.store import Store

    path = settings.home / "quickstart-keys.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    store = Store(settings.store)
    keys = {
        "officer": store.create_key("quickstart-officer", "officer"),
        "system": store.create_key("quickstart-loader", "system"),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keys, fh)
    return keys


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CargoriskError(f"the service exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise CargoriskError(f"the service was not ready within {timeout:.0f} s")


def _send_today(url: str, key: str, today: Path, chunk: int) -> int:
    """POST today's arrivals to /score/batch in manifests of ``chunk`` shipments."""
    import httpx

    from features.tables import find_table, read_frame

    frame = read_frame(find_table(today, "shipments"))
    sent = 0
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start : start + chunk]
            body = json.loads(part.to_json(orient="records", date_format="iso"))
            response = client.post(f"{url}/score/batch", json={"shipments": body})
            if response.status_code != 200:
                raise CargoriskError(
                    f"/score/batch refused today's arrivals: {response.status_code} "
                    f"{response.text[:300]}"
                )
            sent += len(part)
    return sent


def register(app: typer.Typer) -> None:
    """Add the ``quickstart`` command to ``app``."""

    @app.command()
    def quickstart(
        days: int = typer.Option(120, help="Days of simulated history."),
        shipments_per_day: int = typer.Option(3000, help="Simulated shipments per day."),
        seed: int = typer.Option(7, help="Seed of the simulated world."),
        prevalence: float = typer.Option(
            None, help="Share of shipments carrying drugs (default: the simulator's)."
        ),
        port: int = typer.Option(None, "--port", "-p", help="Port (default: settings.port)."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the service."),
    ) -> None:
        """Simulate a world, train and promote a model, create an officer key and serve the
        API and the worklist. A second run reuses what exists."""
        from cargorisk.cli_serve import bentoml_command, serve_env
        from common.settings import load_settings

        settings = load_settings()
        settings.ensure_home()
        data = settings.home / "data"
        world, history, today = data / "world", data / "history", data / "today"

        if (world / "shipments.parquet").exists():
            _step(f"reusing the simulated world in {world}")
        else:
            _step(f"simulating {days} days x {shipments_per_day:,} shipments/day into {world}")
            args = ["simulate", "--out", str(world), "--days", str(days)]
            args += ["--shipments-per-day", str(shipments_per_day), "--seed", str(seed)]
            if prevalence is not None:
                args += ["--prevalence", str(prevalence)]
            _run_cli(app, args)
        if not (today / "shipments.parquet").exists():
            count = _split_world(world, history, today)
            _step(f"history in {history}; {count:,} arrivals declared today in {today}")

        problem = _champion_problem(settings)
        if problem is None:
            _step(f"reusing the champion {settings.model_uri}")
        else:
            if problem != "no champion yet":
                _step(f"the champion {settings.model_uri} cannot serve this code: {problem}")
            _step("training on the history (features, LightGBM, MLflow)")
            _run_cli(app, ["train", "--data", str(history)])
            _step("promoting the new version to champion")
            _run_cli(app, ["promote"])

        keys = _keys(settings)
        port = port or settings.port
        url = f"http://127.0.0.1:{port}"
        if not serve:
            typer.echo(f"officer key: {keys['officer']}")
            return

        _step(f"starting the service on {url}")
        env = serve_env(settings.workers)
        env["CARGORISK_SERVE_SEED_DATA"] = str(history)
        proc = subprocess.Popen(bentoml_command(port, "127.0.0.1"), env=env)
        signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum))
        try:
            _wait_ready(url, proc)
            marker = settings.home / "data" / ".today-scored"
            if not marker.exists():
                sent = _send_today(url, keys["system"], today, chunk=min(settings.max_batch, 5000))
                marker.write_text(str(sent), encoding="utf-8")
                _step(f"scored today's {sent:,} arrivals through /score/batch")
            typer.echo("")
            typer.secho(f"  worklist   {url}/ui", bold=True)
            typer.secho(f"  API        {url}/ (OpenAPI at {url}/docs.json)", bold=True)
            typer.secho(f"  officer key (sign in with it)  {keys['officer']}", bold=True)
            typer.echo("  Ctrl-C stops the service.")
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            code = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait(timeout=30)
            raise
        raise typer.Exit(code)
