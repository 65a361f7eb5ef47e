"""Finding 11 - ids with zero-width, bidi-override, BOM, NEL or full-width characters were
accepted and not normalised, so a look-alike id was a new party; ids with "/" could be scored
but ``GET /shipments/{id}`` never found them. Now identifiers and names are normalised once
(NFKC, zero-width and bidi characters removed, then each key's case and spacing rules) by one
function of ``features`` used by the API, ingest and the features; control and format
characters in ids are refused naming the field (ingest: the row is quarantined with the
reason); every accepted id is reachable."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import pytest

from features.manifest import norm_text
from tests.features.test_ingest import run, source
from tests.security.conftest import bearer, sign_in_with_key
from tests.serving.conftest import make_outcome, make_shipment

INVISIBLE = {
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "bidi override": "\u202e",
    "bom": "\ufeff",
    "nel": "\u0085",
    "line separator": "\u2028",
}


def _score(service, **fields):
    return service["http"].post(
        "/score",
        json={"shipment": make_shipment(11, booked_at=None, departed_at=None, **fields)},
        headers=bearer(service["keys"]["officer"]),
    )


@pytest.mark.parametrize("field", ["shipment_id", "consignee_id", "shipper_id"])
@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_control_and_format_characters_in_ids_are_refused_naming_the_field(service, field, kind):
    store = service["store"]
    before = store.count("shipments")
    value = f"ID{INVISIBLE[kind]}-{kind[:3]}"
    r = _score(
        service,
        **{field: value},
        **({} if field == "shipment_id" else {"shipment_id": f"OK-{kind}"}),
    )
    assert r.status_code == 400, (field, kind, r.text[:300])
    detail = r.json()["detail"]
    assert any(field in d["loc"] for d in detail) and f"U+{ord(INVISIBLE[kind]):04X}" in r.text
    assert store.count("shipments") == before


@pytest.mark.parametrize("field", ["shipment_id", "consignee_id"])
def test_a_too_long_id_is_refused_in_words_not_by_the_pattern(service, field):
    """The identifier pattern spells out every invisible character class: an error that
    printed it would bury the answer. A long id is refused with its length and the limit."""
    r = _score(
        service, **{field: "A" * 80}, **({} if field == "shipment_id" else {"shipment_id": "L1"})
    )
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert any(field in d["loc"] for d in detail)
    assert "80 characters long" in r.text and "at most 64" in r.text
    assert "\\u200b" not in r.text and len(r.text) < 1000


def test_look_alike_ids_and_names_are_one_party(service):
    store = service["store"]
    r = _score(
        service,
        shipment_id="ＦＷ－０００１",  # full-width
        consignee_id="ＣＮＳ７",
        consignee_name="ACME\u200b Trading\u200e",
    )
    assert r.status_code == 200, r.text
    assert r.json()["shipment_id"] == "FW-0001"
    stored = store.shipment("FW-0001")
    assert stored["consignee_id"] == "CNS7" and stored["consignee_name"] == "ACME Trading"
    assert norm_text("ＣＮＳ\u200b７") == norm_text("cns7")  # the features' key
    # the full-width form of the id finds the shipment too
    view = service["http"].get(
        "/shipments/" + quote("ＦＷ－０００１", safe=""), headers=bearer(service["keys"]["officer"])
    )
    assert view.status_code == 200 and view.json()["shipment"]["shipment_id"] == "FW-0001"


@pytest.mark.parametrize(
    "shipment_id", ["BL/2026/0007", "A?b#c", "50% off", "x/../y", "/lead", "trail/", " sp ace"]
)
def test_every_accepted_id_is_reachable_in_the_api_and_the_worklist(service, shipment_id):
    http, officer = service["http"], service["keys"]["officer"]
    r = _score(service, shipment_id=shipment_id)
    assert r.status_code == 200, r.text
    path = quote(shipment_id, safe="")
    view = http.get(f"/shipments/{path}", headers=bearer(officer))
    assert view.status_code == 200, (shipment_id, view.status_code, view.text[:200])
    assert view.json()["shipment"]["shipment_id"] == shipment_id
    outcome = make_outcome(
        shipment_id, "clean", inspected_at="2026-03-01T12:00:00", result_at="2026-03-01T13:00:00"
    )
    r = http.post("/outcomes", json={"outcomes": [outcome]}, headers=bearer(officer))
    assert r.status_code == 200, r.text
    http.cookies.clear()
    sign_in_with_key(http, officer)
    page = http.get(f"/ui/shipments/{path}")
    assert page.status_code == 200 and "inspected · clean" in page.text, shipment_id
    http.cookies.clear()


def test_ingest_refuses_ids_with_invisible_characters_and_normalises_the_rest():
    """As every contract failure in ingest: a refused shipment id quarantines the row, a
    refused party id is left blank and reported (the shipment is still scored, without that
    party); the reason names the character."""
    frame = source(
        {"DECL_NO": "D\u200b1"},
        {"DECL_NO": "D2", "IMPTR": "IM\u202e-2"},
        {"DECL_NO": "Ｄ３", "IMPTR": "ＩＭ－３"},
        {"DECL_NO": "D4", "EXPTR": "EX\ufeff4"},
    )
    result = run(frame)
    quarantine = result.quarantine
    assert quarantine["source_row"].tolist() == [1]
    assert quarantine["field"].tolist() == ["shipment_id"]
    assert "U+200B (ZERO WIDTH SPACE)" in quarantine["reason"].iloc[0]
    blanked = result.blanked.set_index("field")
    assert blanked.loc["consignee_id", "source_row"] == 2
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in blanked.loc["consignee_id", "reason"]
    assert "U+FEFF" in blanked.loc["shipper_id", "reason"]
    accepted = result.shipments.set_index("shipment_id")
    assert accepted.index.tolist() == ["D2", "D3", "D4"]
    assert accepted.loc["D3", "consignee_id"] == "IM-3"  # full-width: the same party as IM-3
    assert pd.isna(accepted.loc["D2", "consignee_id"])
    assert pd.isna(accepted.loc["D4", "shipper_id"])


@pytest.mark.slow
@pytest.mark.integration
def test_every_accepted_id_is_reachable_on_the_real_server(live):
    """The same through uvicorn (the in-process test client decodes a path twice, so ids
    that look percent-encoded themselves are tried here): each byte of the id encoded."""
    import httpx

    url, officer = live["url"], bearer(live["keys"]["officer"])
    for shipment_id in ("%2F", "%41b", "a/b", "..", "x?y#z", "ＬＩＶＥ／１"):
        shipment = make_shipment(3, shipment_id=shipment_id, booked_at=None, departed_at=None)
        r = httpx.post(f"{url}/score", json={"shipment": shipment}, headers=officer)
        assert r.status_code == 200, (shipment_id, r.text[:200])
        stored = r.json()["shipment_id"]
        path = "".join(f"%{b:02X}" for b in shipment_id.encode())
        view = httpx.get(f"{url}/shipments/{path}", headers=officer)
        assert view.status_code == 200, (shipment_id, view.text[:200])
        assert view.json()["shipment"]["shipment_id"] == stored
