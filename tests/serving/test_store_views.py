"""What an officer sees of a party, from the online aggregates of a store (issue 15:
:class:`serving.store.online.StoreViews`, the in-memory state's views gone): a store holding
the ring of tests/features/test_network.py, materialised from its own history."""

from __future__ import annotations

import pytest

from features.errors import ContractError
from serving.store import Store
from serving.store.aggregates import materialize_history
from serving.store.online import StoreViews
from tests.features.helpers import make_outcomes, make_shipments
from tests.features.test_network import ring  # noqa: F401 - the fixture


def _views(tmp_path, shipments, outcomes) -> tuple[Store, StoreViews]:
    store = Store(f"sqlite:///{tmp_path / 'views.db'}")
    store.import_history(shipments, outcomes)
    result = materialize_history(store)
    return store, StoreViews(store.engine, now_ns=result.as_of)


@pytest.fixture
def ring_views(tmp_path, ring):  # noqa: F811
    store, views = _views(tmp_path, *ring)
    yield views
    store.close()


def test_linked_parties_and_profiles(ring_views):
    views = ring_views
    linked = views.linked_parties("b ")
    assert [(p["party_id"], p["shared"], p["seizures"]) for p in linked] == [
        ("A", ["phone"], 1),
        ("C", ["address"], 0),
        ("D", ["phone"], 0),
    ]
    assert views.linked_parties("nobody") == []
    profile = views.party_profile("consignee", " A")
    assert profile["shipments"] == 2
    assert profile["inspections"] == 1 and profile["seizures"] == 1
    assert str(profile["first_seen"]) == "2026-01-01 08:00:00"
    assert profile["shipments_365d"] == 2
    assert profile["distinct_counterparties"] == 1
    unknown = views.party_profile("shipper", "ghost")
    assert unknown["shipments"] == 0 and unknown["first_seen"] is None
    with pytest.raises(ContractError, match="role"):
        views.party_profile("captain", "A")


def test_the_component_around_a_consignee_or_an_identifier(ring_views):
    """The officers' network view (issue 17): consignees joined by shared identifiers, hops
    from the start, seizures known so far; identifiers shared too widely become hubs."""
    views = ring_views
    graph = views.component("consignee", "c")
    parties = {p["key"]: p for p in graph["parties"]}
    assert set(parties) == {"a", "b", "c", "d"}  # not E: its phone is another number
    assert parties["c"]["hops"] == 0 and parties["b"]["hops"] == 1
    assert parties["a"]["hops"] == parties["d"]["hops"] == 2
    assert parties["a"]["seizures"] == 1 and parties["a"]["shipments"] == 2
    shared = {(link["a"], link["b"]): link["shared"] for link in graph["links"]}
    assert shared[("b", "c")] == ["address"] and shared[("a", "b")] == ["phone"]
    assert not graph["hubs"] and not graph["truncated"]
    # the phone shared by A, B and D: walked from the identifier itself
    around_phone = views.component("phone", "44201111")
    assert {p["key"] for p in around_phone["parties"]} == {"a", "b", "c", "d"}
    assert {p["key"]: p["hops"] for p in around_phone["parties"]}["c"] == 2
    # with a hub limit of two, the phone (three consignees) is a hub seen from C: not walked
    capped = views.component("consignee", "c", hub=2)
    assert {p["key"] for p in capped["parties"]} == {"b", "c"}
    assert capped["hubs"] == [{"kind": "phone", "value": "44201111", "parties": 3}]
    assert {h["party"] for h in capped["hub_links"]} == {"b"}
    # a cap on consignees: nearest first, and said
    assert views.component("consignee", "c", max_parties=2)["truncated"]
    assert [u["party_id"] for u in views.consignees_of("address", "7 dock st")] == ["B", "C"]
    with pytest.raises(ContractError, match="kind"):
        views.component("shipper", "x")


def test_a_shipment_without_consignee_links_no_party(tmp_path):
    shipments = make_shipments(
        {"day": 0, "consignee_id": "A", "consignee_phone": "+1 111"},
        {"day": 1, "consignee_id": None, "consignee_phone": "+1 999"},
        {"day": 3, "consignee_id": "B", "consignee_phone": "+1 999"},
        {"day": 4, "consignee_id": "  ", "consignee_phone": "+1 111"},
        {"day": 5, "consignee_id": "A", "consignee_phone": "+1 111"},
    )
    outcomes = make_outcomes(("S2", 1.1, 2, "seized"), ("S4", 4.1, 4.2, "seized"))
    store, views = _views(tmp_path, shipments, outcomes)
    try:
        assert [p["party_id"] for p in views.linked_parties("A")] == []
        assert views.party_profile("consignee", "A")["shipments"] == 2
    finally:
        store.close()
