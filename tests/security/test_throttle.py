"""Finding 3 - sign-in throttling. A successful sign-in cleared the failure count of its address,
so an insider with one account guessed another's password without limit; uvicorn believed
X-Forwarded-For from loopback, so rotating it gave 50 x 401 and no 429, and the audit recorded
the spoofed address. Now failures are counted in the store per address and per account, only
age out, and forwarded headers count only from proxies named in ``trusted_proxies``."""

from __future__ import annotations

import ipaddress
import json
import re

import httpx
import pytest

from serving.edge import EdgePolicy, client_address
from serving.store import Store, sign_in_failures
from tests.security.conftest import PASSWORD, csrf_of, in_process

WRONG = {"method": "password", "username": "kim", "password": "not the password"}


@pytest.fixture(scope="module")
def proxied(registry, tmp_path_factory):
    """The service behind a reverse proxy at 10.1.1.1 (the test client's address), named in
    ``trusted_proxies``: X-Forwarded-For says who the client is."""
    home = tmp_path_factory.mktemp("proxied")
    with in_process(home, registry, trusted_proxies="10.1.1.1") as (http, store):
        store.create_user("kim", PASSWORD)
        store.create_user("mallory", PASSWORD)
        yield http, store


def _attempt(http, form: dict, address: str):
    headers = {"X-Forwarded-For": address}
    http.cookies.clear()
    page = http.get("/ui/login", headers=headers)
    r = http.post(
        "/ui/login",
        data={"csrf": csrf_of(page.text), **form},
        headers=headers,
        follow_redirects=False,
    )
    http.cookies.clear()
    return r.status_code


def test_an_insiders_own_sign_in_does_not_reset_the_count_of_their_guesses(proxied):
    http, store = proxied
    insider = "192.0.2.7"
    for _ in range(9):
        assert _attempt(http, WRONG, insider) == 401
    mine = {"method": "password", "username": "mallory", "password": PASSWORD}
    assert _attempt(http, mine, insider) == 303  # their own account: fine
    assert _attempt(http, {**WRONG, "username": "kim2"}, insider) == 401  # the 10th failure
    assert _attempt(http, WRONG, insider) == 429
    assert _attempt(http, mine, insider) == 429  # the address is refused, whoever it claims
    refused = [e for e in store.audit_events(5) if e["action"] == "ui_sign_in_refused"]
    assert json.loads(refused[0]["detail"])["reason"] == "throttled"
    assert json.loads(refused[0]["detail"])["client"] == insider


def test_guessing_one_account_from_many_addresses_is_refused(proxied):
    http, _ = proxied
    target = {**WRONG, "username": "mallory"}
    for i in range(10):
        assert _attempt(http, target, f"198.51.100.{i + 1}") == 401
    assert _attempt(http, target, "198.51.100.200") == 429
    right = {"method": "password", "username": "mallory", "password": PASSWORD}
    assert _attempt(http, right, "198.51.100.201") == 429  # locked for the window
    # another account from a fresh address is unaffected
    kim = {"method": "password", "username": "kim", "password": PASSWORD}
    assert _attempt(http, kim, "203.0.113.9") == 303


def test_forwarded_headers_count_only_from_named_proxies():
    scope = {
        "client": ("127.0.0.1", 5000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")],
    }
    assert client_address(EdgePolicy(), scope) == (("127.0.0.1", 5000), None)  # default: none
    proxy = EdgePolicy(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    assert client_address(proxy, scope) == (("6.6.6.6", 0), "https")
    # a client behind the proxy prepending its own "address": the proxy appended the real one
    chain = {**scope, "headers": [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.5")]}
    assert client_address(proxy, chain)[0] == ("203.0.113.5", 0)
    # two proxies in a row (a load balancer in 10/8 before the one on loopback)
    two = EdgePolicy(
        trusted_proxies=(
            ipaddress.ip_network("127.0.0.1/32"),
            ipaddress.ip_network("10.0.0.0/8"),
        )
    )
    hops = {**scope, "headers": [(b"x-forwarded-for", b"203.0.113.5, 10.2.3.4")]}
    assert client_address(two, hops)[0] == ("203.0.113.5", 0)
    junk = {**scope, "headers": [(b"x-forwarded-for", b"not-an-address")]}
    assert client_address(proxy, junk)[0] == ("127.0.0.1", 5000)


@pytest.mark.integration
@pytest.mark.slow
def test_rotating_x_forwarded_for_on_a_real_service_is_throttled_and_audited_truly(live):
    """The finding's attack on a real ``bentoml serve``: the client on loopback rotates
    X-Forwarded-For; uvicorn must not believe it (FORWARDED_ALLOW_IPS), so the 11th guess is
    refused and the audit records 127.0.0.1."""
    url = live["url"]
    codes = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(15):
            headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
            http.cookies.clear()
            page = http.get("/ui/login", headers=headers)
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            r = http.post("/ui/login", data={"csrf": token, **WRONG}, headers=headers)
            codes.append(r.status_code)
    store = Store(f"sqlite:///{live['home'] / 'cargorisk.db'}")
    try:
        refused = [e for e in store.audit_events(100) if e["action"] == "ui_sign_in_refused"]
        clients = {json.loads(e["detail"])["client"] for e in refused}
    finally:  # the other tests on this service sign in from loopback too
        with store.engine.begin() as conn:
            conn.execute(sign_in_failures.delete())
        store.close()
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    assert clients == {"127.0.0.1"}
