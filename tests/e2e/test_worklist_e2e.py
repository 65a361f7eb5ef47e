"""The worklist in a real headless Chromium against a real ``bentoml serve`` process.

An officer signs in, opens the day's worklist, opens the riskiest shipment, reads why it
scored high, records what the inspection found, and sees the shipment marked inspected; the
store holds the outcome and the audit entry under the officer's name. Wrong credentials are
refused and pages without a session send the browser to the sign-in page.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote, urlsplit

import pytest

from serving.store import Store
from tests.e2e.world import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]


def _store(world) -> Store:
    return Store(f"sqlite:///{world.home / 'cargorisk.db'}")


def sign_in_with_password(page, url, username="kim", password=PASSWORD):
    page.goto(f"{url}/ui/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_officer_works_the_top_shipment_end_to_end(page, service, world):
    url, _ = service
    sign_in_with_password(page, url)
    page.wait_for_url(f"{url}/ui/worklist")
    assert "Signed in as kim" in page.locator("header .who").inner_text()
    # the world's day, named: other tests of the session may declare shipments on later days
    # (the worklist opens on the latest day)
    day = world.today[0]["declared_at"][:10]
    page.goto(f"{url}/ui/worklist?day={day}")

    # the worklist: today's shipments ranked, the cut line, the random picks explained
    rows = page.locator("table.worklist tbody tr[data-shipment]")
    assert rows.count() > 50
    assert "Inspect down to here" in page.locator("tr.cutline").text_content()
    assert page.locator("tr.random").count() >= 1
    assert page.get_by_role("heading", name="Why some inspections are random").is_visible()
    first = page.locator("tr.model").first
    top_id = first.get_attribute("data-shipment")
    assert first.locator("td.num").first.inner_text() == "1"
    store = _store(world)
    assert store.outcomes_for(top_id) == []

    # the top shipment: score, band and its reasons as bars
    first.get_by_role("link", name=top_id).click()
    page.wait_for_url(re.compile(rf".*/ui/shipments/{re.escape(top_id)}\?pick=model$"))
    assert page.get_by_role("heading", name=f"Shipment {top_id}").is_visible()
    reasons = page.locator("#reasons li")
    assert reasons.count() >= 3
    stored = store.latest_score(top_id)["reasons"]
    assert reasons.first.locator(".text").inner_text() == stored[0]["text"]
    assert page.locator("#reasons svg.bar rect").count() == reasons.count()
    assert page.locator("#inspection-status").inner_text() == "not inspected"

    # record the inspection result
    page.get_by_label("Narcotics seized").check()
    page.get_by_label("Drug").select_option("cocaine")
    page.get_by_label("Quantity (kg)").fill("18.4")
    page.get_by_label("Method").select_option("x-ray")
    assert page.get_by_label("Selected by").input_value() == "model"
    # after the declaration (shipments of the last day are declared up to 23:59) and not
    # in the future
    page.get_by_label("Inspected at (UTC)").fill("2026-11-24T23:59")
    page.get_by_label("Result known at (UTC)").fill("2026-11-25T14:00")
    page.get_by_role("button", name="Record result").click()
    page.wait_for_url(re.compile(r".*\?recorded=1$"))
    assert page.locator("#inspection-status").inner_text() == "inspected · seized"
    assert page.get_by_role("status").inner_text().startswith("Inspection result recorded")
    assert "cocaine" in page.locator("#inspections").inner_text()

    # the worklist shows it inspected
    page.goto(f"{url}/ui/worklist?day={day}")
    row = page.locator(f'tr[data-shipment="{top_id}"]')
    assert "done" in row.get_attribute("class")
    assert row.locator("td.status").inner_text() == "seized"

    # the store has the outcome and the audit trail names the officer
    [outcome] = store.outcomes_for(top_id)
    assert (outcome["result"], outcome["drug"], outcome["quantity_kg"]) == (
        "seized",
        "cocaine",
        18.4,
    )
    assert (outcome["method"], outcome["selected_by"]) == ("x-ray", "model")
    events = store.audit_events(50)
    recorded = [e for e in events if e["action"] == "outcomes" and top_id in (e["detail"] or "")]
    assert recorded and recorded[0]["caller"] == "officer:kim"
    actions = {(e["action"], e["caller"]) for e in events}
    assert ("ui_sign_in", "officer:kim") in actions
    assert ("ui_shipment_viewed", "officer:kim") in actions
    store.close()


def test_wrong_password_and_wrong_key_are_refused(page, service, world):
    url, _ = service
    sign_in_with_password(page, url, password="not-the-password")
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    assert page.url.startswith(f"{url}/ui/login")
    page.get_by_label(re.compile(r"^API key")).fill("crk_" + "x" * 43)
    page.get_by_role("button", name="Sign in with key").click()
    assert "Unknown or revoked API key" in page.get_by_role("alert").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "cargorisk_session"]
    page.goto(f"{url}/ui/worklist")
    assert page.url.startswith(f"{url}/ui/login")


def test_pages_without_a_session_redirect_to_sign_in_and_back(page, service, world):
    url, key = service
    target = "/ui/model"
    page.goto(f"{url}{target}")
    assert page.url == f"{url}/ui/login?next={quote(target, safe='')}"
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.get_by_label(re.compile(r"^API key")).fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    page.wait_for_url(f"{url}{target}")
    assert page.get_by_role("heading", name="Model in service").is_visible()
    assert page.locator("table.metrics").is_visible()
    assert page.locator("img.curve").evaluate("img => img.naturalWidth") > 100

    # signing out ends the session
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("status").inner_text() == "You are signed out."
    page.goto(f"{url}/ui/worklist")
    assert page.url.startswith(f"{url}/ui/login")


def test_health_page_shows_the_drift_of_the_scored_day(page, service, world):
    """The service measured drift on its own after the day was scored (the background
    thread, woken by the manifests); the page draws it as heat tables and plots, all from the
    service's own origin, and keeps the place of the outcome figures."""
    url, key = service
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(f"{url}/ui/login")
    page.get_by_label(re.compile(r"^API key")).fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    page.wait_for_url(re.compile(r".*/ui/worklist.*"))
    deadline = time.monotonic() + 240
    while True:
        page.get_by_role("link", name="Health").click()
        page.wait_for_url(f"{url}/ui/health")
        if page.locator("table.heat").count() or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert page.get_by_role("heading", name="Model health").is_visible()
    assert page.locator("nav a[aria-current=page]").inner_text() == "Health"
    served = int(page.locator("#served-count").inner_text().replace(",", ""))
    assert served == len(world.today)
    for stream in ("sea", "air", "express"):
        table = page.locator(f"#heat-{stream}")
        assert table.is_visible()
        assert table.locator("tbody th").first.inner_text() == "score"
        assert table.locator("tbody tr").count() >= 5
        assert table.locator("td.heat").first.get_attribute("title").endswith(")")
    plots = page.locator("img.plot")
    assert plots.count() == 3
    for i in range(3):
        plots.nth(i).scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 100", arg=plots.nth(i).element_handle()
        )
    assert page.locator("#alerts-title").is_visible()
    assert page.locator("#recall-estimate").is_visible()
    assert page.locator("#outcome-table").is_visible()
    origin = urlsplit(url).netloc
    assert not [
        u for u in requests if urlsplit(u).scheme != "data" and urlsplit(u).netloc != origin
    ]

    # the same measurement as gauges in /metrics (BentoML's multiprocess registry)
    import httpx

    monitor = world.cli("keys", "create", "--role", "monitor", "--name", "prometheus-e2e")
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {monitor}"}).text
    assert re.search(r'cargorisk_drift_psi\{feature="score",stream="express"\} [0-9.e+-]+', text)
    assert re.search(r'cargorisk_drift_level\{feature="origin_country",stream="sea"\}', text)
