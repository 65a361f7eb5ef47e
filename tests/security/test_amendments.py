"""Finding 6 - a second ``POST /score`` with the same id replaced the goods ("COCAINE HIDDEN IN
BANANAS" -> "FRESH BANANAS"), the consignee and ``declared_at`` (moving the shipment to another
day's worklist); the first declaration was gone. Now a shipment declared again is an amendment:
every version is kept with who sent it and when, the latest is in force, each score records
the version it saw, an identical re-send is no version, and the shipment page shows what
changed. An amendment of substance after a score is counted (a feature)."""

from __future__ import annotations

from tests.security.conftest import bearer, sign_in_with_key
from tests.serving.conftest import make_shipment

FIRST = {
    "shipment_id": "AMEND-1",
    "declared_at": "2026-01-20T08:00:00",
    "booked_at": None,
    "departed_at": None,
    "arrival_at": None,
    "goods_description": "COCAINE HIDDEN IN BANANAS",
    "consignee_id": "CNS-A",
}
SECOND = {
    **FIRST,
    "declared_at": "2026-01-22T08:00:00",
    "goods_description": "FRESH BANANAS",
    "consignee_id": "CNS-B",
}


def _score(service, fields: dict, role: str = "system"):
    r = service["http"].post(
        "/score",
        json={"shipment": make_shipment(5, **fields)},
        headers=bearer(service["keys"][role]),
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_a_redeclaration_is_an_amendment_and_the_first_declaration_is_kept(service):
    store = service["store"]
    assert _score(service, FIRST)["shipment_version"] == 1
    assert _score(service, FIRST)["shipment_version"] == 1  # an identical re-send
    assert len(store.shipment_versions("AMEND-1")) == 1

    assert _score(service, SECOND)["shipment_version"] == 2
    first, second = store.shipment_versions("AMEND-1")
    assert first["goods_description"] == "COCAINE HIDDEN IN BANANAS"
    assert first["consignee_id"] == "CNS-A" and first["caller"] == "system:system-sec"
    assert set(second["changed"]) == {"declared_at", "consignee_id", "goods_description"}
    assert (first["amendments_after_score"], second["amendments_after_score"]) == (
        0,
        1,
    )  # changed after a score

    # the latest is in force: the record, the worklist day, the score rows name their version
    assert store.shipment("AMEND-1")["goods_description"] == "FRESH BANANAS"
    assert store.shipment("AMEND-1")["version"] == 2
    rows = store.worklist(*_day("2026-01-22"))
    assert "AMEND-1" in set(rows["shipment_id"])
    assert "AMEND-1" not in set(store.worklist(*_day("2026-01-20"))["shipment_id"])
    versions = [s["shipment_version"] for s in _scores(store, "AMEND-1")]
    assert versions == [1, 1, 2]

    view = service["http"].get("/shipments/AMEND-1", headers=bearer(service["keys"]["officer"]))
    assert [v["version"] for v in view.json()["versions"]] == [1, 2]
    assert view.json()["latest_score"]["shipment_version"] == 2

    # the shipment page shows what changed, when and by whom
    http = service["http"]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    page = http.get("/ui/shipments/AMEND-1").text
    assert "Amendments" in page and "COCAINE HIDDEN IN BANANAS" in page
    assert "FRESH BANANAS" in page and "system:system-sec" in page
    http.cookies.clear()


def _day(day: str):
    import datetime as dt

    start = dt.datetime.fromisoformat(day)
    return start, start + dt.timedelta(days=1)


def _scores(store, shipment_id: str) -> list[dict]:
    import sqlalchemy as sa

    from serving.store import scores

    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(scores).where(scores.c.shipment_id == shipment_id).order_by(scores.c.id)
        ).mappings()
        return [dict(r) for r in rows]
