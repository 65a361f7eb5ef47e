"""Finding 8 - an admin key was refused ``GET /shipments`` and ``POST /outcomes`` by the API but
signed in to ``/ui`` and recorded outcomes. Now one table (:data:`serving.auth.PERMISSIONS`)
decides for both surfaces, and every role is tried on both against it."""

from __future__ import annotations

import pytest

from serving.auth import PERMISSIONS, RULES, may
from tests.security.conftest import ROLES, bearer, csrf_of, sign_in_with_key
from tests.serving.conftest import make_outcome, make_shipment

SHIPMENT = "H000020"  # a seeded shipment, declared 2026-01-02


def _outcome(minute: int) -> dict:
    return make_outcome(
        SHIPMENT,
        "clean",
        inspected_at=f"2026-01-25T10:{minute:02d}:00",
        result_at="2026-01-25T12:00:00",
    )


API_CALLS = {
    "score": ("POST", "/score", {"shipment": make_shipment(7, shipment_id="AUTH-1")}),
    "read_shipments": ("GET", f"/shipments/{SHIPMENT}", None),
    "record_outcomes": ("POST", "/outcomes", None),  # body made per role
    "operate": ("GET", "/admin/status", None),
    "view_model": ("GET", "/performance", None),
    "manage_watchlist": ("GET", "/watchlist", None),
}
"""One call per API action (``read_metrics`` is tried on the real service: BentoML's /metrics
does not answer in-process)."""
UI_PAGES = {
    "read_shipments": [
        f"/ui/shipments/{SHIPMENT}",
        "/ui/worklist",
        f"/ui/search?q={SHIPMENT}",
        f"/ui/parties/shipment/{SHIPMENT}",
        f"/ui/parties/shipment/{SHIPMENT}/export.csv",
    ],
    "view_model": ["/ui/model"],
    "manage_watchlist": ["/ui/watchlist"],
}
WATCH = {"kind": "container", "value": "AUTH1234567", "reason": "authority test",
         "expires_at": "2099-01-01"}  # fmt: skip


def test_the_table_states_the_rule():
    """Separation of duties: who operates the service neither reads shipments nor reports
    inspections; machines (system, monitor) do not sign in to the worklist."""
    assert not may("admin", "record_outcomes") and not may("admin", "read_shipments")
    assert PERMISSIONS["sign_in_to_worklist"] == {"officer", "admin"}
    assert {rule.action for rule in RULES} == {*API_CALLS, "read_metrics"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(API_CALLS))
def test_the_api_follows_the_table(service, role, action):
    method, path, body = API_CALLS[action]
    if action == "record_outcomes":
        body = {"outcomes": [_outcome(ROLES.index(role))]}
    r = service["http"].request(method, path, json=body, headers=bearer(service["keys"][role]))
    if may(role, action):
        assert r.status_code == 200, (role, action, r.text[:300])
    else:
        assert r.status_code == 403, (role, action, r.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_the_search_api_follows_the_table(service, role):
    """``GET /search`` performs ``read_shipments`` (issue 17: officers' keys only)."""
    r = service["http"].get(f"/search?q={SHIPMENT}", headers=bearer(service["keys"][role]))
    if may(role, "read_shipments"):
        assert r.status_code == 200 and r.json()["results"][0]["kind"] == "shipment"
    else:
        assert r.status_code == 403, (role, r.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_the_watchlist_api_follows_the_table(service, role):
    """Adding, changing and removing watchlist entries perform ``manage_watchlist`` (issue 17:
    officers' keys; a system key may not flag what the worklist marks)."""
    http, store, key = service["http"], service["store"], service["keys"][role]
    officer = bearer(service["keys"]["officer"])
    r = http.post("/watchlist", json=WATCH, headers=bearer(key))
    entry = r.json()["entry"] if r.status_code == 201 else None
    if entry is None:  # refused: made by an officer, so change and remove can be tried
        entry = http.post("/watchlist", json=WATCH, headers=officer).json()["entry"]
    change = {"action": "change", "reason": "still", "expires_at": "2099-02-01"}
    changed = http.post(f"/watchlist/{entry}", json=change, headers=bearer(key))
    removed = http.post(
        f"/watchlist/{entry}", json={"action": "remove", "reason": "done"}, headers=bearer(key)
    )
    codes = (r.status_code, changed.status_code, removed.status_code)
    if may(role, "manage_watchlist"):
        assert codes == (201, 200, 200), (role, r.text[:300])
        assert store.watch_entry(entry).removed
    else:
        assert codes == (403, 403, 403), (role, codes)
        assert not store.watch_entry(entry).removed
        http.post(f"/watchlist/{entry}", json={"action": "remove", "reason": "x"}, headers=officer)


@pytest.mark.parametrize("role", ROLES)
def test_the_worklist_follows_the_same_table(service, role):
    http, store = service["http"], service["store"]
    http.cookies.clear()
    page = http.get("/ui/login")
    r = http.post(
        "/ui/login",
        data={"csrf": csrf_of(page.text), "method": "key", "api_key": service["keys"][role]},
        follow_redirects=False,
    )
    if not may(role, "sign_in_to_worklist"):
        assert r.status_code == 401, role
        return
    assert r.status_code == 303
    for action, paths in UI_PAGES.items():
        for path in paths:
            r = http.get(path, follow_redirects=False)
            assert r.status_code == (200 if may(role, action) else 403), (role, path)
    # record an outcome through the form, with a CSRF token of the role's own session
    token = csrf_of(http.get("/ui/model").text)
    before = store.outcomes_for(SHIPMENT)
    form = {
        "csrf": token,
        "result": "clean",
        "method": "document",
        "selected_by": "officer",
        "inspected_at": f"2026-01-26T10:{ROLES.index(role):02d}",
        "result_at": "2026-01-26T12:00",
    }
    r = http.post(f"/ui/shipments/{SHIPMENT}/outcome", data=form, follow_redirects=False)
    if may(role, "record_outcomes"):
        assert r.status_code == 303 and len(store.outcomes_for(SHIPMENT)) == len(before) + 1
    else:
        assert r.status_code == 403 and store.outcomes_for(SHIPMENT) == before
    http.cookies.clear()


def test_an_admin_key_records_nothing_through_the_worklist(service):
    """The finding's attack, step by step."""
    http, store = service["http"], service["store"]
    admin = service["keys"]["admin"]
    assert (
        service["http"]
        .post("/outcomes", json={"outcomes": [_outcome(59)]}, headers=bearer(admin))
        .status_code
        == 403
    )
    http.cookies.clear()
    sign_in_with_key(http, admin)
    assert http.get("/ui/", follow_redirects=False).headers["location"] == "/ui/model"
    model = http.get("/ui/model").text
    assert 'href="/ui/worklist"' not in model  # no way in shown
    r = http.post(
        f"/ui/shipments/{SHIPMENT}/outcome",
        data={"csrf": csrf_of(model), "result": "seized", "drug": "cocaine"},
    )
    assert r.status_code == 403 and "record inspection outcomes" in r.text
    assert all(o["result"] != "seized" for o in store.outcomes_for(SHIPMENT))
    http.cookies.clear()
