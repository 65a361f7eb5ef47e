"""`cargorisk keys` / `export` / `serve` command lines (in-process, no server)."""

from __future__ import annotations

import pytest

from cargorisk.cli import main
from cargorisk.cli_serve import SERVICE, bentoml_command, check_workers, serve_env
from common.settings import load_settings
from features.errors import CargoriskError
from serving.store import Store


def test_keys_create_list_revoke(home, capsys):
    assert main(["keys", "create", "--role", "officer", "--name", "j.doe"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("crk_") and len(key) > 40
    store = Store(load_settings().store)
    assert store.lookup_key(key).role == "officer"
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "j.doe" in listing and "officer" in listing and key not in listing
    assert main(["keys", "revoke", "j.doe"]) == 0
    assert store.lookup_key(key) is None
    assert main(["keys", "revoke", "j.doe"]) == 2  # nothing active left
    assert "no active key" in capsys.readouterr().err
    store.close()


def test_keys_create_refuses_unknown_roles(home, capsys):
    assert main(["keys", "create", "--role", "root", "--name", "x"]) == 2
    assert "role" in capsys.readouterr().err


def test_export_of_an_empty_store_is_a_clear_error(home, tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "out")]) == 2
    assert "no shipments" in capsys.readouterr().err
    assert main(["export", "--out", str(tmp_path / "out"), "--since", "soon"]) == 2
    assert "--since" in capsys.readouterr().err


def test_serve_runs_bentoml_serve_on_the_service(monkeypatch):
    cmd = bentoml_command(3123, "127.0.0.1")
    assert cmd[-7:-6] == [SERVICE] and "serve" in cmd
    assert cmd[cmd.index("--port") + 1] == "3123"
    monkeypatch.setenv("BENTOML_CONFIG_OPTIONS", "api_server.http.port=1")
    env = serve_env(3)
    assert env["BENTOML_CONFIG_OPTIONS"].split() == [
        "api_server.http.port=1",
        "services.cargorisk.workers=3",
    ]


def test_any_number_of_workers_share_the_store(home, monkeypatch, capsys):
    """The workers share the store's online aggregates (no history in any process): `serve
    --workers 2` starts two, from the option or the setting; outside 1..16 is refused. The
    former in-memory feature state is refused by name, saying why."""
    started = []

    class Started(Exception):
        pass

    def popen(cmd, env=None, **_):
        started.append(env["BENTOML_CONFIG_OPTIONS"])
        raise Started

    monkeypatch.setattr("subprocess.Popen", popen)
    assert load_settings().online_state == "store"
    with pytest.raises(Started):
        main(["serve", "--workers", "2"])
    assert started[-1].endswith("services.cargorisk.workers=2")
    monkeypatch.setenv("CARGORISK_WORKERS", "3")  # the default from the settings
    with pytest.raises(Started):
        main(["serve"])
    assert started[-1].endswith("services.cargorisk.workers=3")
    with pytest.raises(Started):
        main(["serve", "--workers", "1"])
    assert started[-1].endswith("services.cargorisk.workers=1")
    assert main(["serve", "--workers", "17"]) == 2
    assert "--workers: 17 not in 1..16" in capsys.readouterr().err
    assert len(started) == 3
    with pytest.raises(CargoriskError, match=r"not in 1\.\.16"):
        check_workers(0)
    monkeypatch.setenv("CARGORISK_ONLINE_STATE", "memory")
    with pytest.raises(ValueError, match=r"online_state[\s\S]*'memory' is no longer supported"):
        load_settings()
    monkeypatch.setenv("CARGORISK_ONLINE_STATE", "disk")
    with pytest.raises(ValueError, match="online_state"):
        load_settings()
