"""Finding 1 - forgeable sessions. A key file shorter than 32 bytes (an empty one is what a crash
between create and write left) was used as it was: a cookie signed with HMAC(b"", ...) signed
in as an admin. Now the secret is created atomically (0600), a short one stops the service with
the reason, and ``CARGORISK_UI_SECRET`` may supply it."""

from __future__ import annotations

import base64
import secrets
import stat
import threading

import pytest
from starlette.testclient import TestClient

from cargorisk.cli import main
from serving.ui.session import SECRET_FILE, SecretError, decode_secret, load_secret
from tests.security.conftest import environment, settings_env
from tests.serving.helpers import service_app


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_a_short_key_file_is_refused_and_says_why(tmp_path, size):
    (tmp_path / SECRET_FILE).write_bytes(b"k" * size)
    with pytest.raises(SecretError) as err:
        load_secret(tmp_path)
    message = str(err.value)
    assert f"{size} bytes" in message and "at least 32" in message
    assert str(tmp_path / SECRET_FILE) in message and "CARGORISK_UI_SECRET" in message


def test_the_secret_is_created_once_atomically_private_and_shared_by_racing_workers(tmp_path):
    home = tmp_path / "fresh" / "home"
    found: list[bytes] = []
    threads = [threading.Thread(target=lambda: found.append(load_secret(home))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and len(found[0]) == 32
    path = home / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700  # created by us: private
    assert [p.name for p in home.iterdir()] == [SECRET_FILE]  # no temporary file left
    assert load_secret(home) == found[0]  # read back, not re-created


def test_the_secret_can_come_from_the_environment():
    raw = secrets.token_bytes(32)
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert decode_secret(text) == raw
        assert load_secret(None, text) == raw
    with pytest.raises(SecretError, match="16 bytes"):
        load_secret(None, base64.b64encode(b"x" * 16).decode())
    with pytest.raises(SecretError, match="not base64"):
        load_secret(None, "this is not base64 at all!")


def test_the_service_does_not_start_on_a_short_secret(tmp_path, registry):
    """The attack of the finding: an empty key file, a cookie signed with HMAC(b"", ...). The
    service refuses to start, so there is nothing to forge a cookie for."""
    home = tmp_path / "home"
    home.mkdir()
    (home / SECRET_FILE).write_bytes(b"")
    with (
        environment(settings_env(home, registry)),
        pytest.raises(SecretError, match="0 bytes"),
        TestClient(service_app()),
    ):
        pass
    env = settings_env(home, registry, ui_secret=base64.b64encode(b"s" * 20).decode())
    (home / SECRET_FILE).unlink()
    with (
        environment(env),
        pytest.raises(SecretError, match="CARGORISK_UI_SECRET"),
        TestClient(service_app()),
    ):
        pass


def test_cargorisk_serve_refuses_before_starting_bentoml(tmp_path, monkeypatch, capsys):
    (tmp_path / SECRET_FILE).write_bytes(b"")
    monkeypatch.setenv("CARGORISK_HOME", str(tmp_path))
    started = []
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: started.append(a))
    assert main(["serve"]) == 2
    assert "0 bytes" in capsys.readouterr().err and not started
