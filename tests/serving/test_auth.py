"""API keys and roles: 401 without a valid key, 403 for the wrong role, probes open, metrics
behind a monitor or admin key (unless the setting says otherwise)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.auth import ApiKeyAuth, AuthMiddleware
from serving.store import ROLES, Store


async def _echo(request):
    caller = request.scope.get("state", {}).get("caller")
    return JSONResponse({"caller": caller.label if caller else None})


ROUTES = [
    Route("/score", _echo, methods=["POST"]),
    Route("/score/batch", _echo, methods=["POST"]),
    Route("/outcomes", _echo, methods=["POST"]),
    Route("/shipments/{sid}", _echo, methods=["GET"]),
    Route("/admin/reload", _echo, methods=["POST"]),
    Route("/admin/status", _echo, methods=["GET"]),
    Route("/performance", _echo, methods=["GET"]),
    Route("/livez", _echo),
    Route("/readyz", _echo),
    Route("/metrics", _echo),
    Route("/docs.json", _echo),
    Route("/schema.json", _echo),
]


@pytest.fixture
def setup(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    auth = ApiKeyAuth(store, ttl=0.0)
    app = Starlette(routes=ROUTES)
    app.add_middleware(AuthMiddleware, resolver=lambda: auth)
    keys = {role: store.create_key(f"{role}-1", role) for role in ROLES}
    yield TestClient(app), keys, store, auth
    store.close()


CALLS = [
    ("POST", "/score"),
    ("POST", "/score/batch"),
    ("POST", "/outcomes"),
    ("GET", "/shipments/S1"),
    ("POST", "/admin/reload"),
    ("GET", "/admin/status"),
    ("GET", "/performance"),
    ("GET", "/metrics"),
]
ALLOWED = {
    "system": {"/score", "/score/batch", "/outcomes"},
    "officer": {"/score", "/score/batch", "/outcomes", "/shipments/S1", "/performance"},
    "admin": {"/admin/reload", "/admin/status", "/performance", "/metrics"},
    "monitor": {"/metrics"},
}


@pytest.mark.parametrize(("method", "path"), CALLS)
def test_every_role_on_every_route(setup, method, path):
    client, keys, _, _ = setup
    assert client.request(method, path).status_code == 401
    bad = client.request(method, path, headers={"Authorization": "Bearer crk_nope"})
    assert bad.status_code == 401 and "invalid" in bad.json()["error"]
    for role, key in keys.items():
        r = client.request(method, path, headers={"Authorization": f"Bearer {key}"})
        if path in ALLOWED[role]:
            assert r.status_code == 200, (role, path)
            assert r.json()["caller"] == f"{role}:{role}-1"
        else:
            assert r.status_code == 403, (role, path)
            assert role in r.json()["error"]


def test_x_api_key_header_works(setup):
    client, keys, _, _ = setup
    r = client.post("/score", headers={"X-API-Key": keys["system"]})
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json", "/schema.json"])
def test_probes_and_docs_stay_open(setup, path):
    client, *_ = setup
    assert client.get(path).status_code == 200


def test_metrics_can_be_opened_by_the_setting(setup):
    client, _, _, auth = setup
    assert client.get("/metrics").status_code == 401
    auth.metrics_require_key = False
    assert client.get("/metrics").status_code == 200


def test_revoked_key_is_refused(setup):
    client, keys, store, _ = setup
    assert client.post("/score", headers={"X-API-Key": keys["system"]}).status_code == 200
    store.revoke_key("system-1")
    assert client.post("/score", headers={"X-API-Key": keys["system"]}).status_code == 401


def test_auth_disabled_lets_everyone_in(setup):
    client, _, _, auth = setup
    auth.enabled = False
    assert client.post("/admin/reload").status_code == 200
