"""train + register + promote + models against a real ``mlflow server`` process reached over
HTTP through ``MLFLOW_TRACKING_URI``: one with a SQLite backend, one with a PostgreSQL backend
(a fresh database created for the test; skipped only when PostgreSQL is unreachable)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cargorisk.cli import main
from common.settings import load_settings
from tests.processes import mlflow_server
from training import registry

from .world import write_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = "num_boost_round: 60\nearly_stopping_rounds: 15\nshap_sample: 100\nwaterfalls: 1\n"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


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
