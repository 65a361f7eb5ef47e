"""Finding 9 - ``/ui/worklist?day=9999-12-31`` answered 500 (a timedelta overflow). Finding 12 -
outcomes for unknown shipments were accepted by the API (200; the UI said 404); an inspection in
1990 with a result in 2099 for a 2026 shipment was accepted; ``declared_at: "1795899152"`` was
read as epoch seconds; ``packages: true`` was accepted."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.security.conftest import bearer, csrf_of, sign_in_with_key
from tests.serving.conftest import make_outcome, make_shipment

SHIPMENT = "H000030"  # seeded, declared 2026-01-03


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2100-01-01", "1989-12-31"])
def test_a_worklist_day_out_of_range_is_a_400_naming_day(service, day):
    http = service["http"]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    r = http.get("/ui/worklist", params={"day": day})
    assert r.status_code == 400 and "day: " in r.text and day in r.text
    assert http.get("/ui/worklist", params={"day": "2026-01-03"}).status_code == 200
    http.cookies.clear()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("declared_at", "1795899152"),
        ("declared_at", "1795899152.5"),
        ("declared_at", 1795899152),
        ("declared_at", "next tuesday"),
        ("arrival_at", "20260301"),
        ("packages", True),
        ("packages", "12"),
        ("packages", 12.5),
        ("gross_weight_kg", False),
    ],
)
def test_timestamps_only_as_iso_text_counts_only_as_integers(service, field, value):
    store = service["store"]
    before = store.count("shipments")
    shipment = make_shipment(3, shipment_id="BAD-1", **{field: value})
    r = service["http"].post(
        "/score", json={"shipment": shipment}, headers=bearer(service["keys"]["system"])
    )
    assert r.status_code == 400 and field in r.text, (field, value, r.status_code, r.text[:300])
    assert store.count("shipments") == before


def test_iso_text_and_integers_still_pass(service):
    shipment = make_shipment(
        4,
        shipment_id="GOOD-1",
        declared_at="2026-01-05T08:00:00+09:00",
        booked_at=None,
        departed_at="2026-01-01",
        arrival_at="2026-01-06T09:30Z",
        packages=12,
    )
    r = service["http"].post(
        "/score", json={"shipment": shipment}, headers=bearer(service["keys"]["system"])
    )
    assert r.status_code == 200, r.text[:300]
    assert service["store"].shipment("GOOD-1")["declared_at"] == dt.datetime(2026, 1, 4, 23)


def test_outcomes_for_unknown_shipments_are_404_in_the_api_and_the_worklist(service):
    http, store = service["http"], service["store"]
    before = store.count("outcomes")
    outcomes = [make_outcome(SHIPMENT, inspected_at="2026-01-20T10:00:00")]
    outcomes.append(make_outcome("NO-SUCH-SHIPMENT", inspected_at="2026-01-20T10:00:00"))
    r = http.post(
        "/outcomes", json={"outcomes": outcomes}, headers=bearer(service["keys"]["system"])
    )
    assert r.status_code == 404 and "NO-SUCH-SHIPMENT" in r.text
    assert r.json()["detail"][0]["loc"] == ["outcomes", "shipment_id"]
    assert store.count("outcomes") == before  # nothing of the request was stored
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    token = csrf_of(http.get(f"/ui/shipments/{SHIPMENT}").text)
    r = http.post(
        "/ui/shipments/NO-SUCH-SHIPMENT/outcome",
        data={"csrf": token, "result": "clean", "method": "document", "selected_by": "officer"},
    )
    assert r.status_code == 404 and "No such shipment" in r.text
    http.cookies.clear()


@pytest.mark.parametrize(
    "times",
    [
        {"inspected_at": "1990-01-02T00:00:00", "result_at": "2099-01-01T00:00:00"},
        {"inspected_at": "1990-01-02T00:00:00", "result_at": "1990-01-03T00:00:00"},
        {"inspected_at": "2026-01-02T00:00:00", "result_at": "2026-01-04T00:00:00"},
        {"inspected_at": "2026-01-20T00:00:00", "result_at": "2099-01-01T00:00:00"},
        {"inspected_at": "2099-01-01T00:00:00", "result_at": "2099-01-02T00:00:00"},
    ],
)
def test_inspection_and_result_times_fit_the_declaration_and_the_clock(service, times):
    """Inspected before the declaration (2026-01-03 12:00), or a result not known yet: 400
    naming the field, nothing stored."""
    store = service["store"]
    declared = store.shipment(SHIPMENT)["declared_at"]
    inspected = dt.datetime.fromisoformat(times["inspected_at"])
    early_or_future = inspected < declared.replace(second=0) or inspected > dt.datetime.now()
    expected = "inspected_at" if early_or_future else "result_at"
    before = store.outcomes_for(SHIPMENT)
    r = service["http"].post(
        "/outcomes",
        json={"outcomes": [make_outcome(SHIPMENT, **times)]},
        headers=bearer(service["keys"]["system"]),
    )
    assert r.status_code == 400 and r.json()["detail"][0]["loc"][-1] == expected, r.text[:300]
    assert store.outcomes_for(SHIPMENT) == before
