"""``cargorisk retrain`` end to end against a real ``mlflow server`` and the running service
(``cargorisk serve`` -> ``bentoml serve``): the service starts on a seeded store with no model
yet; retrain exports the store, trains, passes the gate as the registry's first model,
promotes it and the service loads it (ready). A second retrain whose gate no candidate can
pass is refused, says why, exits 1 and the champion keeps serving."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from mlflow import MlflowClient

from cargorisk.cli import main
from features import registry_contract as rc
from tests.processes import mlflow_server, wait_http
from tests.serving.helpers import scoring_service, service_env
from tests.training.world import write_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = (
    "num_boost_round: 60\nearly_stopping_rounds: 15\nshap_sample: 100\nwaterfalls: 1\n"
    "num_threads: 1\n"
)


def _status(url: str, key: str) -> dict:
    r = httpx.get(f"{url}/admin/status", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def _wait(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.5)


def test_retrain_promotes_and_reloads_and_a_refused_gate_leaves_the_champion_serving(
    home, tmp_path, monkeypatch, capsys
):
    data = write_world(tmp_path / "world", days=40, per_day=150)
    fast = tmp_path / "fast.yaml"
    fast.write_text(FAST)
    strict = tmp_path / "strict.yaml"
    # judged on point estimates (min_seizures 0) and asked for an impossible gain
    strict.write_text(FAST + "gate:\n  min_gain: 0.99\n  min_seizures: 0\n")
    with mlflow_server(tmp_path / "server") as tracking:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
        env = service_env(home, tracking, serve_seed_data=data)
        assert main(["keys", "create", "--role", "admin", "--name", "retrain job"]) == 0
        admin = capsys.readouterr().out.strip()
        with scoring_service(home, env, ready=False) as (url, _proc):
            _wait(lambda: _status(url, admin)["online_aggregates"])  # the store is seeded
            assert _status(url, admin)["model"] is None
            monkeypatch.setenv("CARGORISK_ADMIN_KEY", admin)

            args = ["retrain", "--test-days", "10", "--service", url]
            assert main([*args, "--config", str(fast)]) == 0
            out = capsys.readouterr().out
            assert "exported       " in out and "from sqlite:///" in out
            assert "promoted       version 1 to @champion" in out
            assert f"reloaded       {url} serves version 1" in out
            wait_http(f"{url}/readyz", timeout=60)
            assert _status(url, admin)["model"]["version"] == "1"

            # the run says which data it was trained on and where that came from
            client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
            version = client.get_model_version("cargorisk-risk", "1")
            tags = client.get_run(version.run_id).data.tags
            assert tags[rc.TAG_RETRAIN] == "true"
            assert tags[rc.TAG_DATA_STORE] == f"sqlite:///{home / 'cargorisk.db'}"
            window = json.loads(tags[rc.TAG_DATA_WINDOW])
            assert window["since"] is None and window["from"] < window["to"]

            # a gate no candidate passes: refused, said why, the champion keeps serving
            assert main([*args, "--config", str(strict)]) == 1
            out = capsys.readouterr().out
            assert "gate           " in out and "does not beat champion" in out
            assert "version 2 NOT promoted; version 1 stays champion" in out
            assert "reloaded" not in out
            assert _status(url, admin)["model"]["version"] == "1"
            champion = client.get_model_version_by_alias("cargorisk-risk", "champion")
            assert champion.version == "1"
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200

    # without a key the command refuses before doing anything
    monkeypatch.delenv("CARGORISK_ADMIN_KEY")
    assert main(["retrain", "--service", "http://127.0.0.1:9"]) == 2
    assert "--admin-key-env: CARGORISK_ADMIN_KEY is not set" in capsys.readouterr().err
