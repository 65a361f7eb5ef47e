"""train + register + promote + models against a real ``mlflow server`` process reached over
HTTP through ``MLFLOW_TRACKING_URI``: one with a SQLite backend, one with a PostgreSQL backend
(a fresh database created for the test; skipped only when PostgreSQL is unreachable)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from cargorisk.cli import main
from cargorisk.settings import load_settings
from training import registry

from .world import write_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MLFLOW = Path(sys.executable).with_name("mlflow")
FAST = "num_boost_round: 60\nearly_stopping_rounds: 15\nshap_sample: 100\nwaterfalls: 1\n"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(root: Path, backend_uri: str):
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--backend-store-uri",
            backend_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not become healthy in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _train_register_promote(home: Path, url: str, data: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    config = home / "fast.yaml"
    config.write_text(FAST)
    assert main(["train", "--data", str(data), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"tracking       {url}" in out and "version 1" in out
    assert main(["promote"]) == 0
    assert "promoted version 1" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "champion" in capsys.readouterr().out
    # nothing was written to the embedded store: everything went to the server
    assert not (home / "mlruns").exists()
    settings = load_settings()
    registry.configure(settings)
    assert settings.tracking_uri == url
    model = registry.load_scoring_model(settings.model_uri)
    assert model.metadata["test_metrics"]["test_precision_at_5pct"] >= 0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("world") / "data", days=40, per_day=150)


def test_against_mlflow_server_with_sqlite(home, tmp_path, data, monkeypatch, capsys):
    with mlflow_server(
        tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}"
    ) as url:
        _train_register_promote(home, url, data, monkeypatch, capsys)


@pytest.fixture
def postgres_db():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=3, **PG)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable on 127.0.0.1:5432: {exc}")
    name = f"cargorisk_mlflow_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_against_mlflow_server_with_postgresql(
    home, tmp_path, data, postgres_db, monkeypatch, capsys
):
    with mlflow_server(tmp_path / "server", postgres_db) as url:
        _train_register_promote(home, url, data, monkeypatch, capsys)
