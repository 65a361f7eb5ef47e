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


def test_more_than_one_worker_needs_the_shared_online_state(home, monkeypatch, capsys):
    """With the in-memory feature state each worker would hold its own copy of the history:
    `serve --workers 2` refuses (naming the setting) unless online_state is `store`."""
    started = []

    class Started(Exception):
        pass

    def popen(cmd, env=None, **_):
        started.append(env["BENTOML_CONFIG_OPTIONS"])
        raise Started

    monkeypatch.setattr("subprocess.Popen", popen)
    assert load_settings().online_state == "memory"
    assert main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "online_state" in err and "store" in err
    monkeypatch.setenv("CARGORISK_WORKERS", "3")  # the default from the settings: the same rule
    assert main(["serve"]) == 2 and "online_state" in capsys.readouterr().err
    assert not started
    with pytest.raises(Started):  # one worker is always fine
        main(["serve", "--workers", "1"])
    monkeypatch.setenv("CARGORISK_ONLINE_STATE", "store")
    with pytest.raises(Started):
        main(["serve", "--workers", "2"])
    assert started[-1].endswith("services.cargorisk.workers=2")
    with pytest.raises(CargoriskError, match=r"not in 1\.\.16"):
        check_workers(17, load_settings())
    monkeypatch.setenv("CARGORISK_ONLINE_STATE", "disk")
    with pytest.raises(ValueError, match="online_state"):
        load_settings()
