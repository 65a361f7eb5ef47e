"""The attacks' targets: the service in-process (``CargoRisk.to_asgi()`` under a test client) and
as a real ``bentoml serve`` process, both on a tiny world whose model sits in a real ``mlflow
server``; keys of every role and worklist accounts."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.serving.helpers import (
    mlflow_server,
    register_model,
    scoring_service,
    service_app,
    service_env,
    tiny_history,
    train_tiny_model,
)

MODEL = "cargorisk-risk"
PASSWORD = "correct horse battery staple"
ROLES = ("system", "officer", "admin", "monitor")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A tiny world, its model registered as champion in a real ``mlflow server``, and the
    seed history: (tracking URI, seed directory, world)."""
    ships, outs = tiny_history(n=400)
    model = train_tiny_model(ships, outs)
    root = tmp_path_factory.mktemp("security")
    seed = root / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    with mlflow_server(root / "mlflow") as tracking:
        register_model(model, tracking, MODEL, root / "v1")
        yield tracking, seed, (ships, outs, model)


def settings_env(home: Path, registry, **settings) -> dict[str, str]:
    tracking, seed, _ = registry
    return service_env(home, tracking, serve_seed_data=seed, **settings)


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """``os.environ`` set to ``env`` for the block (an in-process service reads its settings
    from the environment when it starts)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def in_process(home: Path, registry, client=("10.1.1.1", 40000), **settings):
    """The whole service (API, edge, worklist) in this process, ready; yields (test client,
    store). Settings as keyword arguments (``max_body_mb=1``); the environment is put back
    once the service is ready (it has read its settings and loaded the model).

    One at a time: BentoML keeps the running service in a process-wide variable, which the
    edge, the key check and the worklist resolve on every request."""
    from serving.service import current_service

    env = settings_env(home, registry, **settings)
    with contextlib.ExitStack() as stack:
        with environment(env):
            http = stack.enter_context(TestClient(service_app(), client=client))
            deadline = time.monotonic() + 120
            while http.get("/readyz").status_code != 200:
                if time.monotonic() > deadline:
                    raise TimeoutError("the in-process service did not become ready")
                time.sleep(0.2)
        yield http, current_service().engine.store


@pytest.fixture(scope="module")
def service(registry, tmp_path_factory):
    """The service in-process with keys of every role and two worklist accounts: a dict with
    the client, store, keys and accounts."""
    home = tmp_path_factory.mktemp("inproc")
    with in_process(home, registry) as (http, store):
        keys = {role: store.create_key(f"{role}-sec", role) for role in ROLES}
        store.create_user("kim", PASSWORD, "officer")
        store.create_user("lee", PASSWORD, "admin")
        yield {"http": http, "store": store, "keys": keys, "home": home}


@pytest.fixture(scope="session")
def live(registry, tmp_path_factory):
    """A real ``cargorisk serve`` (``bentoml serve``) with a small body limit (2 MiB), a low
    concurrency limit (4), the API explorer on and keys of every role."""
    import subprocess

    from tests.serving.helpers import BIN

    home = tmp_path_factory.mktemp("live-sec") / "home"
    env = settings_env(
        home, registry, max_body_mb=2, max_concurrent_requests=4, api_explorer="true"
    )
    keys = {}
    for role in ROLES:
        out = subprocess.run(
            [str(BIN / "cargorisk"), "keys", "create", "--role", role, "--name", f"{role}-live"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        keys[role] = out.stdout.strip().splitlines()[-1]
    subprocess.run(
        [str(BIN / "cargorisk"), "users", "create", "--username", "kim", "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        check=True,
        capture_output=True,
        text=True,
    )
    with scoring_service(home, env) as (url, proc):
        yield {"url": url, "keys": keys, "home": home, "env": env, "proc": proc}


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(http, form: dict, **kwargs):
    """Sign in as a browser does: load the sign-in page, post its form with its token."""
    page = http.get("/ui/login")
    return http.post("/ui/login", data={"csrf": csrf_of(page.text), **form}, **kwargs)


def sign_in_with_key(http, key: str):
    r = sign_in(http, {"method": "key", "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    return r


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
