"""Finding 4 - an officer recorded "seized, cocaine, 40 kg"; a system key posted the same
(shipment, inspected_at) as "clean" and the store held only "clean", the audit only the
shipment id. Now a report is never overwritten: a different report of the same inspection is
refused with 409 naming the report on record, unless it is an officer's correction with a
reason; then both are kept, the correction in force, and the audit holds every field."""

from __future__ import annotations

import json

from tests.security.conftest import bearer, csrf_of, sign_in_with_key
from tests.serving.conftest import make_outcome

SHIPMENT = "H000040"  # seeded, declared 2026-01-04
INSPECTED = "2026-01-20T10:00:00"


def _seizure() -> dict:
    return make_outcome(
        SHIPMENT,
        "seized",
        inspected_at=INSPECTED,
        result_at="2026-01-20T16:00:00",
        quantity_kg=40.0,
        selected_by="officer",
    )


def _clean() -> dict:
    return make_outcome(SHIPMENT, "clean", inspected_at=INSPECTED, result_at="2026-01-20T16:00:00")


def _post(service, role: str, *outcomes: dict):
    return service["http"].post(
        "/outcomes", json={"outcomes": list(outcomes)}, headers=bearer(service["keys"][role])
    )


def test_a_seizure_is_never_silently_overwritten(service):
    store = service["store"]
    r = _post(service, "officer", _seizure())
    assert r.status_code == 200 and r.json()["recorded"] == 1, r.text

    # the attack: a system key reports the same inspection as clean
    r = _post(service, "system", _clean())
    assert r.status_code == 409, r.text
    body = r.json()
    assert "already has a report" in body["error"] and "correction" in body["error"]
    [existing] = body["existing"]
    assert existing["result"] == "seized" and existing["drug"] == "cocaine"
    assert existing["quantity_kg"] == 40.0 and existing["caller"] == "officer:officer-sec"
    assert existing["revision"] == 1
    assert store.outcomes_for(SHIPMENT)[-1]["result"] == "seized"

    # saying it is a correction does not help a system key: people answer for corrections
    r = _post(service, "system", {**_clean(), "correction": {"reason": "scanner said clean"}})
    assert r.status_code == 403 and "correct" in r.text, r.text
    assert [x["result"] for x in store.outcome_reports(SHIPMENT)] == ["seized"]

    # an identical re-send is accepted and stores nothing
    r = _post(service, "system", _seizure())
    assert r.status_code == 200 and r.json()["unchanged"] == 1 and r.json()["recorded"] == 0
    assert len(store.outcome_reports(SHIPMENT)) == 1

    # an officer's correction with a reason is kept beside the original
    reason = "lab test: the powder was flour"
    r = _post(service, "officer", {**_clean(), "correction": {"reason": reason}})
    assert r.status_code == 200 and r.json()["corrections"] == 1, r.text
    reports = store.outcome_reports(SHIPMENT)
    assert [(x["revision"], x["result"], x["in_force"]) for x in reports] == [
        (1, "seized", False),
        (2, "clean", True),
    ]
    assert reports[1]["correction_reason"] == reason
    assert store.outcomes_for(SHIPMENT)[-1]["result"] == "clean"
    view = service["http"].get(f"/shipments/{SHIPMENT}", headers=bearer(service["keys"]["officer"]))
    assert [x["result"] for x in view.json()["reports"]] == ["seized", "clean"]

    # the audit keeps every field of every report
    details = [
        json.loads(e["detail"]) for e in store.audit_events(200) if e["action"] == "outcomes"
    ]
    stored = [rep for d in details for rep in d["reports"] if rep["shipment_id"] == SHIPMENT]
    assert {(x["result"], x["drug"], x["quantity_kg"], x["caller"]) for x in stored} == {
        ("seized", "cocaine", 40.0, "officer:officer-sec"),
        ("clean", None, None, "officer:officer-sec"),
    }
    assert any(x["correction_reason"] == reason for x in stored)


def test_a_blank_or_missing_reason_is_not_a_correction(service):
    other = {**_seizure(), "inspected_at": "2026-01-21T10:00:00", "result_at": "2026-01-21T12:00"}
    assert _post(service, "officer", other).status_code == 200
    for correction in ({"reason": "  "}, {}, {"reason": "x" * 501}):
        r = _post(service, "officer", {**other, "result": "clean", "drug": None,
                                       "quantity_kg": None, "correction": correction})  # fmt: skip
        assert r.status_code == 400 and "correction" in r.text, (correction, r.text[:300])


def test_the_worklist_refuses_an_uncorrected_change_and_keeps_a_correction(service):
    http, store = service["http"], service["store"]
    shipment = "H000041"
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    page = http.get(f"/ui/shipments/{shipment}")
    form = {
        "csrf": csrf_of(page.text),
        "result": "seized",
        "drug": "heroin",
        "quantity_kg": "2",
        "method": "physical",
        "selected_by": "officer",
        "inspected_at": "2026-01-22T09:00",
        "result_at": "2026-01-22T11:00",
    }
    url = f"/ui/shipments/{shipment}/outcome"
    assert http.post(url, data=form, follow_redirects=False).status_code == 303
    changed = {**form, "result": "clean", "drug": "", "quantity_kg": ""}
    r = http.post(url, data=changed, follow_redirects=False)
    assert r.status_code == 409
    assert "already has a report" in r.text and "seized, heroin, 2 kg" in r.text
    assert [x["result"] for x in store.outcome_reports(shipment)] == ["seized"]
    r = http.post(
        url, data={**changed, "correction_reason": "wrong parcel sampled"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert [x["result"] for x in store.outcome_reports(shipment)] == ["seized", "clean"]
    page = http.get(f"/ui/shipments/{shipment}").text
    assert "wrong parcel sampled" in page and "(corrected)" in page
    http.cookies.clear()
