"""A served world for the browser tests and the documentation screenshots.

Everything goes through the real commands, as an operator would: ``cargorisk simulate`` a
small period of sea, air-cargo and express traffic, ``cargorisk train`` and ``cargorisk
promote``; the service (``cargorisk serve`` -> ``bentoml serve``) starts on the history before
the last day, and an inspection system then scores the last day's manifests through
``POST /score/batch`` - so the worklist shows a real, fully scored day.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from tests.serving.helpers import BIN, scoring_service, service_env

END = "2026-11-24"
SIMULATE = ["--days", "60", "--shipments-per-day", "800", "--prevalence", "0.01", "--end", END]
PASSWORD = "kim-correct-horse"


@dataclass
class World:
    """A home with a trained champion, seed history and the last day's manifest."""

    home: Path
    seed: Path
    today: list[dict]
    tracking_uri: str

    def env(self, **settings) -> dict:
        return service_env(self.home, self.tracking_uri, serve_seed_data=self.seed, **settings)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [str(BIN / "cargorisk"), *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode != 0:
            raise RuntimeError(f"cargorisk {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout.strip()


def build_world(root: Path) -> World:
    """Simulate, train and promote in ``root`` (about a minute on two cores)."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    world = World(home, root / "seed", [], f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    data = root / "world"
    world.cli("simulate", "--out", str(data), *SIMULATE)
    world.cli("train", "--data", str(data), "--test-days", "14")
    world.cli("promote")
    ships = pd.read_parquet(data / "shipments.parquet")
    outs = pd.read_parquet(data / "outcomes.parquet")
    last_day = ships["declared_at"].max().normalize()
    history = ships[ships["declared_at"] < last_day]
    world.seed.mkdir(exist_ok=True)
    history.to_parquet(world.seed / "shipments.parquet", index=False)
    known = outs["shipment_id"].isin(history["shipment_id"]) & (outs["result_at"] < last_day)
    outs[known].to_parquet(world.seed / "outcomes.parquet", index=False)
    today = ships[ships["declared_at"] >= last_day]
    world.today = json.loads(today.to_json(orient="records", date_format="iso"))
    for record in world.today:
        for key, value in record.items():
            if key.endswith("_at") and isinstance(value, str):
                record[key] = value.removesuffix("Z")
    return world


@contextlib.contextmanager
def served(world: World):
    """The service on a free port with the last day scored; yields (url, officer key)."""
    system_key = world.cli("keys", "create", "--role", "system", "--name", "gate-1")
    officer_key = world.cli("keys", "create", "--role", "officer", "--name", "Officer Kim")
    with contextlib.suppress(RuntimeError):  # exists already on a second run
        world.cli("users", "create", "--username", "kim", "--password-stdin", stdin=PASSWORD)
    with scoring_service(world.home, world.env()) as (url, _proc):
        headers = {"Authorization": f"Bearer {system_key}"}
        for mode in ("sea", "air", "express"):  # one manifest per stream, as gates send them
            batch = [r for r in world.today if r["mode"] == mode]
            if not batch:
                continue
            r = httpx.post(
                f"{url}/score/batch", json={"shipments": batch}, headers=headers, timeout=300
            )
            r.raise_for_status()
        yield url, officer_key


CHROMIUM = os.environ.get("CARGORISK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
