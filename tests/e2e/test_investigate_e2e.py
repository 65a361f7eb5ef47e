"""Investigations (issue 17) in a real headless Chromium against a real ``bentoml serve`` on a
simulated world: an officer searches a container and a misspelt consignee, reads a party's
seizures in order, draws the network of the simulator's express-network scheme with its
seized parties marked (and nothing loaded from another origin), watches a phone and sees
tomorrow's shipment with that phone marked; a system key may do none of it; every action is
in the audit trail under the officer's name.
"""

from __future__ import annotations

import json
import re

import httpx
import pandas as pd
import pytest

from serving.store import Store
from tests.e2e.world import END

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]


def _sign_in(page, url, key):
    page.goto(f"{url}/ui/login")
    page.get_by_label(re.compile(r"^API key")).fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    page.wait_for_url(f"{url}/ui/worklist")


def _tables(world):
    ships = pd.read_parquet(world.seed / "shipments.parquet")
    outs = pd.read_parquet(world.seed / "outcomes.parquet")
    truth = pd.read_parquet(world.home.parent / "world" / "truth.parquet")
    return ships, outs, truth


def test_search_finds_a_container_and_a_misspelt_consignee(page, service, world):
    url, key = service
    _sign_in(page, url, key)
    today = pd.DataFrame(world.today)
    container = today["container_id"].dropna().iloc[0]
    page.get_by_placeholder(re.compile("Search container")).fill(container.lower())
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/search\?q="))
    row = page.locator('#results tr[data-kind="container"][data-match="exact"]').first
    assert row.locator("a").first.inner_text() == container
    row.locator("a").first.click()
    assert page.get_by_role("heading", name=re.compile(f"Container {container}")).is_visible()
    assert page.locator("#shipments tbody tr").count() >= 1

    names = today["consignee_name"].dropna()
    name = next(n for n in names if len(n) >= 10 and " " in n)
    typo = name[:4] + name[5:]  # one letter dropped
    page.goto(f"{url}/ui/search?q={typo}")
    similar = page.locator('#results tr[data-kind="consignee_name"][data-match="similar"]')
    assert any(name in t for t in similar.all_inner_texts()), (typo, name)


def test_a_party_page_shows_its_seizures_in_order(page, service, world):
    url, key = service
    ships, outs, _ = _tables(world)
    seized = outs[outs["result"] == "seized"].merge(ships[["shipment_id", "consignee_id"]])
    counts = seized.groupby("consignee_id").size()
    party = counts[counts >= 2].index[0]
    expected = seized[seized["consignee_id"] == party].sort_values("inspected_at")["shipment_id"]
    _sign_in(page, url, key)
    page.goto(f"{url}/ui/parties/consignee/{party}")
    listed = page.locator("#seizures li a").all_inner_texts()
    assert listed == expected.tolist()
    assert page.locator("#profile").is_visible()
    assert page.locator("#features tbody tr").count() >= 5
    # the evidence export holds the same seizures
    csv_text = page.request.get(f"{url}/ui/parties/consignee/{party}/export.csv").text()
    assert all(sid in csv_text for sid in expected)


def test_the_network_of_an_express_ring_is_drawn_from_our_own_origin(page, service, world):
    url, key = service
    ships, outs, truth = _tables(world)
    ring = truth.loc[truth["scheme"] == "express_network", "shipment_id"]
    seized = outs.loc[outs["result"] == "seized", "shipment_id"]
    members = ships[ships["shipment_id"].isin(ring) & ships["shipment_id"].isin(seized)]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _sign_in(page, url, key)
    drawn = None
    for consignee in members["consignee_id"].dropna().unique()[:15]:
        page.goto(f"{url}/ui/network/consignee/{consignee}")
        elements = json.loads(page.locator("#graph-data").text_content())
        nodes = [e["data"] for e in elements if "source" not in e["data"]]
        parties = [n for n in nodes if not n.get("hub")]
        if len(parties) >= 3 and sum(n["seizures"] > 0 for n in parties) >= 1:
            drawn = parties
            break
    assert drawn, "no express ring with three or more consignees was drawn"
    page.locator("#graph[data-drawn]").wait_for()
    assert int(page.locator("#graph").get_attribute("data-drawn")) >= len(drawn)
    assert page.locator("#graph canvas").count() >= 1
    seized_rows = page.locator("#network-table tr.seized-row")
    assert seized_rows.count() == sum(n["seizures"] > 0 for n in drawn)
    outside = [u for u in requests if not u.startswith(url) and not u.startswith("data:")]
    assert outside == []


def test_a_watchlisted_phone_marks_tomorrows_shipment(page, service, world):
    url, key = service
    today = [r for r in world.today if r.get("consignee_phone")]
    record = today[0]
    phone = record["consignee_phone"]
    _sign_in(page, url, key)
    page.goto(f"{url}/ui/watchlist")
    page.locator("#w-kind").select_option("phone")
    page.locator("#w-value").fill(phone)
    page.locator("#w-reason").fill("drop phone named by an informant")
    page.locator("#w-expires").fill("2099-12-31")
    page.get_by_role("button", name="Watch").click()
    assert "drop phone named by an informant" in page.locator("#entries").inner_text()

    # tomorrow an inspection system scores a parcel to that phone
    tomorrow = (pd.Timestamp(END) + pd.Timedelta(days=1, hours=9)).isoformat()
    parcel = {**record, "shipment_id": "WATCH-0001", "declared_at": tomorrow}
    for name in ("booked_at", "departed_at", "arrival_at"):
        parcel[name] = None
    system = world.cli("keys", "create", "--role", "system", "--name", "gate-watch")
    r = httpx.post(f"{url}/score", json={"shipment": parcel},
                   headers={"Authorization": f"Bearer {system}"}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    [hit] = r.json()["watchlist"]
    assert hit["kind"] == "phone" and hit["reason"] == "drop phone named by an informant"
    page.goto(f"{url}/ui/worklist?day={tomorrow[:10]}")
    row = page.locator('tr[data-shipment="WATCH-0001"]')
    assert row.locator(".tag.watch").is_visible()
    assert "informant" in row.locator(".watch-why").inner_text()

    # the phone's page, its evidence and its network, as an investigation goes on
    digits = "".join(ch for ch in phone if ch.isdigit())
    page.goto(f"{url}/ui/parties/phone/{digits}")
    assert "drop phone named by an informant" in page.locator("#watch").inner_text()
    assert page.request.get(f"{url}/ui/parties/phone/{digits}/export.csv").ok
    page.goto(f"{url}/ui/network/phone/{digits}")
    assert page.locator("#network-table tbody tr").count() >= 1

    # a system key may neither search nor sign in to the worklist
    assert httpx.get(f"{url}/search", params={"q": phone},
                     headers={"Authorization": f"Bearer {system}"}).status_code == 403  # fmt: skip
    officer = httpx.get(f"{url}/search", params={"q": phone},
                        headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert officer.status_code == 200 and officer.json()["results"][0]["kind"] == "phone"
    page.context.clear_cookies()
    page.goto(f"{url}/ui/login")
    page.get_by_label(re.compile(r"^API key")).fill(system)
    page.get_by_role("button", name="Sign in with key").click()
    assert page.url.startswith(f"{url}/ui/login")

    # every action is audited under the officer's key
    store = Store(f"sqlite:///{world.home / 'cargorisk.db'}")
    events = store.audit_events(2000)
    store.close()
    officer_actions = {e["action"] for e in events if e["caller"] == "officer:Officer Kim"}
    assert {"ui_search", "ui_party_viewed", "ui_party_exported", "ui_network_viewed",
            "watchlist_added", "ui_watchlist_viewed", "search"} <= officer_actions  # fmt: skip
