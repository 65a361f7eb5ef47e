"""Investigations in the worklist, in-process over a real engine, store and feature state:
the search, party pages with their evidence export, watchlists (marked on the worklist and in
the score response, never in the score) and the network; who may, and that every action is
audited."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from serving.engine import ScoringEngine
from serving.model import LoadedModel
from serving.schemas import ShipmentIn
from serving.store import Caller
from serving.ui.app import create_app
from tests.serving.conftest import make_shipment
from tests.serving.helpers import service_app, tiny_history, train_tiny_model

DAY = dt.date(2026, 2, 5)
GATE = Caller("gate-7", "system", 1)
PHONE = "+82 10-5550-0199"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    ships, outs = tiny_history()
    model = train_tiny_model(ships, outs)
    home = tmp_path_factory.mktemp("investigate-home")
    seed = home / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        serve_seed_data=seed,
    )
    loaded = LoadedModel(
        model, "cargorisk-risk", "3", "models:/cargorisk-risk/3", dt.datetime.now()
    )
    eng = ScoringEngine(settings, model_loader=lambda: loaded)
    eng.start()
    today = [
        ShipmentIn(
            **make_shipment(
                30_000 + i,
                shipment_id=f"T{i:05d}",
                declared_at=(
                    dt.datetime.combine(DAY, dt.time(6)) + dt.timedelta(minutes=i)
                ).isoformat(),
                booked_at=None,
                departed_at=None,
                arrival_at=None,
                consignee_id="NORDIC7" if i < 3 else f"CNS{i}",
                consignee_name="Nordic Fruit Trading AB" if i < 3 else "Fresh Imports BV",
                container_id="TGHU7654321" if i < 3 else "MSKU1234567",
                consignee_phone=PHONE if i < 3 else "+31 10 555 0101",
            )
        )
        for i in range(12)
    ]
    eng.score(today, caller=GATE)
    yield eng
    eng.store.close()


@pytest.fixture
def client(engine):
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: engine))])
    with TestClient(host, base_url="http://testserver") as c:
        yield c


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _sign_in(client, engine, role="officer"):
    key = engine.store.create_key(f"{role} investigator", role)
    page = client.get("/ui/login")
    r = client.post(
        "/ui/login",
        data={"csrf": _csrf(page.text), "method": "key", "api_key": key},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return key


def _actions(engine, n=20) -> list[str]:
    return [e["action"] for e in engine.store.audit_events(n)]


def test_search_finds_a_container_and_a_misspelt_consignee(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/search", params={"q": "tghu 7654321".replace(" ", "")})
    assert page.status_code == 200
    row = re.search(r'<tr data-kind="container" data-match="exact">.*?</tr>', page.text, re.S)
    assert row and "TGHU7654321" in row.group(0) and ">3<" in row.group(0)
    assert "ui_search" in _actions(engine, 3)
    misspelt = client.get("/ui/search", params={"q": "Nordik Fruit Tradin"}).text
    row = re.search(r'<tr data-kind="consignee_name" data-match="similar">.*?</tr>', misspelt, re.S)
    assert row and "Nordic Fruit Trading AB" in html.unescape(row.group(0))
    # the phone written another way; a bad page names the field
    assert (
        'data-kind="phone" data-match="exact"'
        in client.get("/ui/search", params={"q": "82105550 0199"}).text
    )
    bad = client.get("/ui/search", params={"q": "x", "page": "0"})
    assert bad.status_code == 400 and "page:" in bad.text
    long = client.get("/ui/search", params={"q": "x" * 300})
    assert long.status_code == 400 and "q: at most" in long.text


def test_party_page_shows_history_features_seizures_in_order_and_exports(client, engine):
    _sign_in(client, engine)
    # two seizures on the consignee's shipments, recorded out of order
    from serving.schemas import OutcomeIn

    officer = Caller("Officer Lee", "officer", 99)
    for sid, day in (("T00002", 8), ("T00000", 6)):
        engine.record_outcomes(
            [
                OutcomeIn(
                    shipment_id=sid,
                    inspected_at=f"2026-02-0{day}T10:00",
                    result_at=f"2026-02-0{day}T12:00",
                    result="seized",
                    drug="cocaine",
                    quantity_kg=4.0,
                    method="physical",
                    selected_by="officer",
                )
            ],
            caller=officer,
        )
    page = client.get("/ui/parties/consignee/NORDIC7")
    assert page.status_code == 200, page.text
    text = page.text
    seizures = re.search(r'<ol class="seizures" id="seizures">(.*?)</ol>', text, re.S).group(1)
    assert re.findall(r">(T0000\d)</a>", seizures) == ["T00000", "T00002"]
    assert 'id="profile"' in text and "Seizures" in text
    features = re.search(r'id="features">(.*?)</table>', text, re.S).group(1)
    assert "consignee_not_declared" not in features  # about a declaration, not the party
    assert "network_size" in features
    assert "consignee_seizures" in features and "Seizures on the consignee" in html.unescape(
        features
    )
    assert "MSKU1234567" not in text  # another container: not this party's
    assert "ui_party_viewed" in _actions(engine, 3)
    # lower case and spaces find the same party
    assert client.get("/ui/parties/consignee/ nordic7").status_code == 200
    assert client.get("/ui/parties/consignee/NOBODY").status_code == 404
    assert client.get("/ui/parties/planet/X").status_code == 404
    # evidence: CSV with every event, audited; the printable page, audited
    exported = client.get("/ui/parties/consignee/NORDIC7/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    events = [r for r in rows[4:] if r]
    assert {r[1] for r in events} >= {"declared", "scored", "inspected"}
    assert sum(r[1] == "inspected" and r[4].startswith("seized") for r in events) == 2
    assert "exported by officer:officer investigator" in exported.text
    assert "ui_party_exported" in _actions(engine, 3)
    printed = client.get("/ui/parties/consignee/NORDIC7/print")
    assert printed.status_code == 200 and 'id="evidence-note"' in printed.text
    assert "ui_party_printed" in _actions(engine, 3)


def test_a_watchlisted_phone_marks_the_next_shipment_and_its_score(client, engine):
    _sign_in(client, engine)
    party = client.get("/ui/parties/phone/" + PHONE.replace(" ", "%20")).text
    assert 'id="watch-form"' in party
    form = {
        "csrf": _csrf(party),
        "kind": "phone",
        "value": "+82 10 5550 0199",
        "reason": "tip-off from the port police",
        "expires": "2099-12-31",
        "next": "/ui/parties/phone/821055500199",
    }
    r = client.post("/ui/watchlist", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/parties/phone/821055500199"
    [entry] = engine.store.watched("phone", "821055500199")
    assert entry.reason == "tip-off from the port police" and entry.added_by.startswith("officer")
    assert "watchlist_added" in _actions(engine, 3)
    # the next shipment with that phone: its score names the entry, the score does not move
    record = make_shipment(
        31_000,
        shipment_id="N00001",
        consignee_id="OTHER1",
        consignee_phone="010 5550 0199",
        declared_at=dt.datetime.combine(DAY, dt.time(9)).isoformat(),
        booked_at=None,
        departed_at=None,
        arrival_at=None,
    )
    twin = {**record, "shipment_id": "N00002", "consignee_phone": "+31 10 555 0101"}
    _, _, results = engine.score([ShipmentIn(**record), ShipmentIn(**twin)], caller=GATE)
    by_id = {r["shipment_id"]: r for r in results}
    # not the same digits: the phone keys only digits, so "010..." is another number
    assert by_id["N00001"]["watchlist"] is None
    record["shipment_id"], record["consignee_phone"] = "N00003", "+82-10-5550-0199"
    _, _, [hit] = engine.score([ShipmentIn(**record)], caller=GATE)
    assert hit["watchlist"][0]["reason"] == "tip-off from the port police"
    assert hit["watchlist"][0]["kind"] == "phone"
    worklist = client.get("/ui/worklist", params={"day": DAY.isoformat()}).text
    row = re.search(r'<tr class="[^"]*" data-shipment="N00003">.*?</tr>', worklist, re.S).group(0)
    assert "watchlist" in row and "tip-off from the port police" in row
    plain = re.search(r'<tr class="[^"]*" data-shipment="N00002">.*?</tr>', worklist, re.S)
    assert "tag watch" not in plain.group(0)
    # changed, then removed: both audited, the history kept, the marks gone
    listing = client.get("/ui/watchlist").text
    change = {
        "csrf": _csrf(listing),
        "reason": "extended after the seizure",
        "expires": "2099-06-30",
        "action": "change",
    }
    r = client.post(f"/ui/watchlist/{entry.entry}", data=change, follow_redirects=False)
    assert r.status_code == 303
    remove = {"csrf": _csrf(listing), "reason": "case closed", "action": "remove"}
    assert client.post(f"/ui/watchlist/{entry.entry}", data=remove).status_code == 200
    after = engine.store.watch_entry(entry.entry)
    assert after.removed and [h["action"] for h in after.history] == ["added", "changed", "removed"]
    assert _actions(engine, 2)[:2] == ["ui_watchlist_viewed", "watchlist_removed"]
    worklist = client.get("/ui/worklist", params={"day": DAY.isoformat()}).text
    row = re.search(r'<tr class="[^"]*" data-shipment="N00003">.*?</tr>', worklist, re.S).group(0)
    assert "tag watch" not in row


def test_watchlist_errors_name_the_field(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/watchlist").text
    base = {
        "csrf": _csrf(page),
        "kind": "container",
        "value": "MSKU1234567",
        "reason": "seen in a tip",
        "expires": "2099-01-01",
    }
    for change, field in (
        ({"reason": ""}, "reason"),
        ({"expires": ""}, "expires_at"),
        ({"expires": "2001-01-01"}, "expires_at"),
        ({"expires": "tomorrow"}, "expires_at"),
        ({"kind": "planet"}, "kind"),
        ({"value": ""}, "value"),
    ):
        r = client.post("/ui/watchlist", data={**base, **change})
        assert r.status_code == 400 and f"{field}:" in html.unescape(r.text), change
    forged = client.post("/ui/watchlist", data={**base, "csrf": "nope"})
    assert forged.status_code == 403
    assert not engine.store.watched("container", "msku1234567")


def test_network_page_draws_the_component_with_seized_parties_marked(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/network/phone/" + PHONE.replace(" ", "%20"))
    assert page.status_code == 200, page.text
    data = re.search(
        r'<script type="application/json" id="graph-data">(.*?)</script>', page.text, re.S
    )
    elements = json.loads(html.unescape(data.group(1)))
    nodes = {e["data"]["id"]: e["data"] for e in elements if "source" not in e["data"]}
    assert "c:nordic7" in nodes and nodes["c:nordic7"]["seizures"] >= 1
    assert 'src="/ui/static/cytoscape.min.js"' in page.text
    assert 'id="network-table"' in page.text
    assert "ui_network_viewed" in _actions(engine, 3)
    # a broker's phone shared by the forty tiny-history consignees is a hub, not walked
    hub = client.get("/ui/network/consignee/CNS1").text
    elements = json.loads(
        html.unescape(re.search(r'id="graph-data">(.*?)</script>', hub, re.S).group(1))
    )
    assert any(e["data"].get("hub") for e in elements)
    assert client.get("/ui/network/container/MSKU1234567").status_code == 404


def test_network_evidence_export_csv_and_printable_page(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/network/consignee/NORDIC7").text
    assert 'href="/ui/network/consignee/nordic7/export.csv"' in page
    assert 'href="/ui/network/consignee/nordic7/print"' in page
    graph = engine.network("consignee", "nordic7")
    exported = client.get("/ui/network/consignee/NORDIC7/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "cargorisk-network-consignee-nordic7.csv" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["cargorisk evidence export: network of consignee NORDIC7"]
    assert rows[1] == ["exported by officer:officer investigator"]
    nodes_at, edges_at = rows.index(["nodes"]), rows.index(["edges"])
    nodes = [
        dict(zip(rows[nodes_at + 1], r, strict=True)) for r in rows[nodes_at + 2 : edges_at] if r
    ]
    edges = [dict(zip(rows[edges_at + 1], r, strict=True)) for r in rows[edges_at + 2 :] if r]
    consignees = {n["key"]: n for n in nodes if n["kind"] == "consignee"}
    assert set(consignees) == {p["key"] for p in graph["parties"]}
    assert consignees["nordic7"]["links_away"] == "0"
    assert int(consignees["nordic7"]["seizures"]) >= 1
    hubs = [n for n in nodes if n["kind"] != "consignee"]
    assert len(hubs) == len(graph["hubs"]) and all(int(h["consignees_sharing"]) for h in hubs)
    assert len(edges) == len(graph["links"]) + len(graph["hub_links"])
    assert all(e["shared"] for e in edges)
    event = engine.store.audit_events(1)[0]
    assert event["action"] == "ui_network_exported"
    assert event["caller"] == "officer:officer investigator"
    assert json.loads(event["detail"])["parties"] == len(graph["parties"])
    printed = client.get("/ui/network/consignee/NORDIC7/print")
    assert printed.status_code == 200 and 'id="evidence-note"' in printed.text
    assert 'id="network-table"' in printed.text and "cytoscape.min.js" not in printed.text
    assert "ui_network_printed" in _actions(engine, 3)
    assert client.get("/ui/network/container/MSKU1234567/export.csv").status_code == 404


def test_network_csv_cells_cannot_start_a_formula(client, engine):
    """A consignee id declared as a formula is data in the export, not code."""
    record = make_shipment(
        32_000,
        shipment_id="F00001",
        consignee_id="=HYPERLINK(1)",
        consignee_phone=PHONE,
        declared_at=dt.datetime.combine(DAY, dt.time(11)).isoformat(),
        booked_at=None,
        departed_at=None,
        arrival_at=None,
    )
    engine.score([ShipmentIn(**record)], caller=GATE)
    _sign_in(client, engine)
    exported = client.get("/ui/network/phone/" + PHONE.replace(" ", "%20") + "/export.csv")
    assert exported.status_code == 200
    cells = [c for r in csv.reader(io.StringIO(exported.text)) for c in r]
    assert "'=HYPERLINK(1)" in cells and "=HYPERLINK(1)" not in cells


def test_machines_and_admins_may_not_and_officers_may(client, engine):
    admin = _sign_in(client, engine, role="admin")
    assert admin
    assert client.get("/ui/search", params={"q": "NORDIC7"}).status_code == 403
    assert client.get("/ui/watchlist").status_code == 403
    assert client.get("/ui/parties/consignee/NORDIC7").status_code == 403
    assert client.get("/ui/network/consignee/NORDIC7/export.csv").status_code == 403
    assert client.get("/ui/network/consignee/NORDIC7/print").status_code == 403


def test_the_search_api_is_for_officer_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("CARGORISK_HOME", str(tmp_path))
    monkeypatch.delenv("CARGORISK_CONFIG", raising=False)
    with TestClient(service_app()) as c:
        from serving.service import current_service

        store = current_service().engine.store
        store.record_scoring(
            [ShipmentIn(**make_shipment(1, container_id="MSKU7777777")).model_dump()],
            [{"shipment_id": "S0000001", "score": 0.2, "band": "low"}],
            request_id="r",
            caller=GATE,
            model_name="m",
            model_version="1",
        )
        officer = store.create_key("Officer Park", "officer")
        system = store.create_key("gate", "system")
        r = c.get(
            "/search", params={"q": "msku7777777"}, headers={"Authorization": f"Bearer {officer}"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["results"][0]["kind"] == "container"
        assert body["results"][0]["shipment_id"] == "S0000001"
        assert (
            c.get(
                "/search", params={"q": "msku"}, headers={"Authorization": f"Bearer {system}"}
            ).status_code
            == 403
        )
        assert c.get("/search", params={"q": "msku"}).status_code == 401
        bad = c.get("/search", params={"q": ""}, headers={"Authorization": f"Bearer {officer}"})
        assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["query", "q"]
        [event] = [e for e in store.audit_events(5) if e["action"] == "search"]
        assert event["caller"] == "officer:Officer Park" and "msku7777777" in event["detail"]


def test_the_watchlist_api_adds_lists_changes_and_removes_with_the_audit(tmp_path, monkeypatch):
    monkeypatch.setenv("CARGORISK_HOME", str(tmp_path))
    monkeypatch.delenv("CARGORISK_CONFIG", raising=False)
    with TestClient(service_app()) as c:
        from serving.service import current_service

        store = current_service().engine.store
        officer = {"Authorization": f"Bearer {store.create_key('Officer Park', 'officer')}"}
        system = {"Authorization": f"Bearer {store.create_key('gate', 'system')}"}
        add = {
            "kind": "phone",
            "value": "+82 10 5550 0199",
            "reason": "tip-off from the port police",
            "expires_at": "2099-12-31T23:59:00+09:00",
        }
        r = c.post("/watchlist", json=add, headers=officer)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["key"] == "821055500199" and made["value"] == "+82 10 5550 0199"
        assert made["expires_at"] == "2099-12-31T14:59:00"  # held as naive UTC
        assert made["added_by"] == "officer:Officer Park" and made["in_force"]
        [event] = [e for e in store.audit_events(3) if e["action"] == "watchlist_added"]
        assert event["caller"] == "officer:Officer Park"
        # the same store entry the UI shows
        assert [e.entry for e in store.watched("phone", "821055500199")] == [made["entry"]]
        listed = c.get("/watchlist", headers=officer).json()["entries"]
        assert [e["entry"] for e in listed] == [made["entry"]]
        assert store.audit_events(1)[0]["action"] == "watchlist_viewed"
        # bad input: 4xx naming the field
        for change, field in (
            ({"reason": ""}, "reason"),
            ({"expires_at": "2001-01-01"}, "expires_at"),
            ({"expires_at": "tomorrow"}, "expires_at"),
            ({"expires_at": "0001-01-01T00:00:00+01:00"}, "expires_at"),  # no UTC time
            ({"kind": "planet"}, "kind"),
            ({"value": ""}, "value"),
            ({"value": "\u00a0 "}, "value"),  # nothing left once normalised
            ({"colour": "red"}, "colour"),
        ):
            bad = c.post("/watchlist", json={**add, **change}, headers=officer)
            assert bad.status_code in (400, 422), (change, bad.text)
            assert field in bad.json()["detail"][0]["loc"], (change, bad.json())
        no_expiry = {k: v for k, v in add.items() if k != "expires_at"}
        bad = c.post("/watchlist", json=no_expiry, headers=officer)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "expires_at"]
        # a system key may not; nothing changed
        assert c.post("/watchlist", json=add, headers=system).status_code == 403
        assert c.get("/watchlist", headers=system).status_code == 403
        assert c.get("/watchlist").status_code == 401
        # changed, then removed: audited with the key's caller, the history kept
        entry = made["entry"]
        change = {"action": "change", "reason": "extended", "expires_at": "2099-06-30"}
        changed = c.post(f"/watchlist/{entry}", json=change, headers=officer)
        assert changed.status_code == 200 and changed.json()["reason"] == "extended"
        no_reason = c.post(
            f"/watchlist/{entry}", json={"action": "remove", "reason": ""}, headers=officer
        )
        assert no_reason.status_code == 400 and no_reason.json()["detail"][0]["loc"] == [
            "body",
            "reason",
        ]
        removed = c.post(
            f"/watchlist/{entry}", json={"action": "remove", "reason": "case closed"},
            headers=officer,
        )  # fmt: skip
        assert removed.status_code == 200 and not removed.json()["in_force"]
        assert [h["action"] for h in removed.json()["history"]] == ["added", "changed", "removed"]
        actions = {e["action"]: e["caller"] for e in store.audit_events(6)}
        assert (
            actions["watchlist_changed"] == actions["watchlist_removed"] == ("officer:Officer Park")
        )
        assert c.get("/watchlist", headers=officer).json()["entries"] == []
        everything = c.get("/watchlist", params={"all": "true"}, headers=officer).json()
        assert [e["entry"] for e in everything["entries"]] == [entry]
        again = c.post(
            f"/watchlist/{entry}", json={"action": "remove", "reason": "twice"}, headers=officer
        )
        assert again.status_code == 404 and again.json()["detail"][0]["loc"] == ["path", "entry"]
