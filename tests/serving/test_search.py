"""The officers' search index in the store: kept with every declaration version, normalised
as the features normalise, exact before prefix before similar names, paginated; on SQLite
(FTS5 trigram) and on PostgreSQL (pg_trgm)."""

from __future__ import annotations

import contextlib
import uuid

import pytest
import sqlalchemy as sa

from serving.store import Caller, Store
from serving.store.search import SearchError, index_entries, similarity
from tests.serving.conftest import make_shipment

GATE = Caller("gate-7", "system", 1)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def _postgres():
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"search_{uuid.uuid4().hex[:10]}"
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # no server on this machine
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
        yield s
        s.close()
        return
    with _postgres() as url:
        s = Store(url)
        yield s
        s.close()


def _score(store: Store, records: list[dict], request_id: str = "r1") -> None:
    """Store declarations as the engine does after scoring them."""
    store.record_scoring(
        records,
        [
            {"shipment_id": r["shipment_id"], "score": 0.1, "percentile": 50.0, "band": "low"}
            for r in records
        ],
        request_id=request_id,
        caller=GATE,
        model_name="m",
        model_version="1",
    )


def _records() -> list[dict]:
    from serving.schemas import ShipmentIn

    raw = [
        make_shipment(1, container_id="MSKU1234567", consignee_name="Fresh Imports BV"),
        make_shipment(2, container_id="MSKU1234567", consignee_name="Fresh Imports BV"),
        make_shipment(
            3,
            container_id="TGHU7654321",
            consignee_id="CNS77",
            consignee_name="Nordic Fruit Trading AB",
            consignee_phone="+46 (8) 555-0199",
            consignee_address="Hamngatan 4, Stockholm",
        ),
        make_shipment(
            4,
            mode="express",
            container_id=None,
            container_type=None,
            load_type=None,
            bill_of_lading=None,
            vessel=None,
            voyage=None,
            transshipment_ports=None,
            air_waybill="AWB00000004",
            order_ref="ORD-4",
            platform="shopnow",
            recipient_customs_code="P12345678",
            consignee_name="Ｋｉｍ Min-jun",
        ),
    ]
    return [ShipmentIn(**r).model_dump() for r in raw]


def test_terms_are_normalised_as_the_features_normalise_them():
    ship = {
        "shipment_id": ["A1", "A2"],
        "consignee_phone": ["+31 10 555 0101", "0031-10-5550101"],
        "consignee_name": ["Ｆｒｅｓｈ  Imports", None],
        "consignee_address": ["Havenweg 1, Rotterdam", "HAVENWEG 1 ROTTERDAM"],
    }
    keys, postings = index_entries(ship)
    assert ("consignee_name", "fresh imports", "Fresh Imports") in keys
    assert {p for p in postings if p[0] == "address"} == {
        ("address", "havenweg 1 rotterdam", "A1"),
        ("address", "havenweg 1 rotterdam", "A2"),
    }
    assert ("phone", "31105550101", "A1") in postings


def test_similarity_is_pg_trgm_s():
    assert similarity("word", "word") == 1.0
    assert 0.3 < similarity("fresh imports bv", "fresh imprts bv") < 1.0
    assert similarity("fresh imports", "nordic fruit") < 0.3


def test_search_finds_every_kind_ranked_and_paginated(store):
    records = _records()
    _score(store, records)
    # a container finds both shipments that carried it; written any way
    top = store.search("msku1234567").hits[0]
    assert (top.kind, top.term, top.match) == ("container", "msku1234567", "exact")
    assert top.shipments == 2
    # the phone as digits, written otherwise
    hit = store.search("+46 8 5550199").hits[0]
    assert (hit.kind, hit.shipments, hit.shipment_id) == ("phone", 1, "S0000003")
    # an address without its punctuation, in capitals
    assert store.search("HAMNGATAN 4 STOCKHOLM").hits[0].kind == "address"
    # a misspelt consignee name is found by similarity
    similar = [h for h in store.search("Fresh Imprts").hits if h.match == "similar"]
    assert similar and similar[0].term == "fresh imports bv" and similar[0].shipments == 2
    # full-width letters are the same name
    assert store.search("kim min-jun").hits[0].kind == "consignee_name"
    # references and the customs code
    for q, kind in [("AWB00000004", "air_waybill"), ("ord-4", "order_ref"),
                    ("p12345678", "recipient"), ("s0000003", "shipment")]:  # fmt: skip
        assert store.search(q).hits[0].kind == kind, q
    # a prefix of a shipment id: exact match first, then the prefixes, in order
    page = store.search("S000000", limit=2)
    assert [h.match for h in page.hits] == ["prefix", "prefix"] and page.more
    second = store.search("S000000", limit=2, offset=2)
    assert {h.term for h in page.hits}.isdisjoint({h.term for h in second.hits})


def test_amended_declarations_keep_their_old_identifiers_searchable(store):
    records = _records()
    _score(store, records)
    amended = {**records[2], "container_id": "ABCU1111111"}
    _score(store, [amended], request_id="r2")
    assert store.search("TGHU7654321").hits[0].shipment_id == "S0000003"
    assert store.search("ABCU1111111").hits[0].shipment_id == "S0000003"


def test_bad_queries_name_the_field(store):
    for q, field in [("", "q"), ("  ", "q"), ("x" * 201, "q")]:
        with pytest.raises(SearchError, match=f"^{field}:"):
            store.search(q)
    with pytest.raises(SearchError, match=r"^limit:"):
        store.search("abc", limit=0)
    with pytest.raises(SearchError, match=r"^offset:"):
        store.search("abc", offset=-1)


def test_a_store_made_before_the_index_is_indexed_when_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    _score(store, _records())
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM search_terms")
    store.close()
    reopened = Store(url)
    assert reopened.search("MSKU1234567").hits[0].shipments == 2
    reopened.close()
