"""The officers' search index: every identifier, party and name a declaration carries, as the
features normalise it, kept up to date in the same transaction as the declaration.

Two tables (:mod:`serving.store.tables`): ``search_keys`` holds each distinct searchable value
once - its ``kind`` (:data:`SEARCH_KINDS`), its normalised ``term`` and how it was first
written (``display``) - and ``search_terms`` which shipments carry it, from every version of
their declaration (an amendment does not hide the container or phone a shipment was first
declared with). Shipper and consignee names are also matched fuzzily: on SQLite through an
FTS5 table with the trigram tokenizer over those keys (``search_names`` numbers them; both
filled by a trigger as keys are added; full detail, which the bm25 ranking of candidates
needs), on PostgreSQL through a ``pg_trgm`` GIN index.

A query is normalised three ways (identifiers and names with
:func:`features.manifest.norm_text`, phones to their digits, addresses without punctuation)
and matched exactly, then as a prefix, then - for shipper and consignee names, when nothing matched
exactly - by trigram similarity; results are ranked in that order and paginated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from features.contracts import normal_text
from features.manifest import norm_address, norm_phone, norm_text
from serving.store.tables import search_keys, search_terms, shipment_versions, shipments

log = logging.getLogger("cargorisk.serving")


@dataclass(frozen=True)
class SearchKind:
    """One kind of searchable value: the contract column it comes from, how it is
    normalised, what an officer calls it, and whether it is a party or identifier with a
    history of its own (``party``: the party pages know it) or a shipment's own reference."""

    kind: str
    column: str
    normalise: Callable[[Any], str | None]
    words: str
    party: bool = True
    fuzzy: bool = False


SEARCH_KINDS: tuple[SearchKind, ...] = (
    SearchKind("shipment", "shipment_id", norm_text, "shipment", party=False),
    SearchKind("bill_of_lading", "bill_of_lading", norm_text, "bill of lading", party=False),
    SearchKind("air_waybill", "air_waybill", norm_text, "air waybill", party=False),
    SearchKind("order_ref", "order_ref", norm_text, "order reference", party=False),
    SearchKind("container", "container_id", norm_text, "container"),
    SearchKind("shipper", "shipper_id", norm_text, "shipper"),
    SearchKind("shipper_name", "shipper_name", norm_text, "shipper name", fuzzy=True),
    SearchKind("consignee", "consignee_id", norm_text, "consignee"),
    SearchKind("consignee_name", "consignee_name", norm_text, "consignee name", fuzzy=True),
    SearchKind("notify", "notify_party_id", norm_text, "notify party"),
    SearchKind("forwarder", "forwarder_id", norm_text, "forwarder"),
    SearchKind("declarant", "declarant_id", norm_text, "declarant"),
    SearchKind("carrier", "carrier_id", norm_text, "carrier"),
    SearchKind("phone", "consignee_phone", norm_phone, "phone"),
    SearchKind("address", "consignee_address", norm_address, "address"),
    SearchKind("recipient", "recipient_customs_code", norm_text, "customs code"),
)
"""Everything an officer can look up, declared once: the index, the search, the party pages
and the watchlists all read it."""

KINDS: dict[str, SearchKind] = {k.kind: k for k in SEARCH_KINDS}
FUZZY_KINDS: tuple[str, ...] = tuple(k.kind for k in SEARCH_KINDS if k.fuzzy)
MIN_PREFIX = 3
"""A query shorter than this is matched exactly only (a one-letter prefix matches millions)."""
MIN_SIMILARITY = 0.3
"""Trigram similarity (as ``pg_trgm`` computes it) a fuzzy match needs: pg_trgm's default."""
RARE_TRIGRAMS = 8
"""How many of a query's rarest trigrams look for similar names on SQLite (see
:meth:`SearchStore._similar`)."""
MAX_QUERY = 200
"""Longest query accepted (characters)."""


class SearchError(ValueError):
    """A query the officer must fix; the message names the field."""


def key_of(kind: str, value: Any) -> str | None:
    """``value`` normalised as the index keeps the kind (None: nothing to index)."""
    spec = KINDS.get(kind)
    if spec is None:
        raise SearchError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    return spec.normalise(value)


def index_entries(
    ship: dict[str, list], rows: Iterable[int] | None = None
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The search keys (kind, term, display) and postings (kind, term, shipment id) of the
    declarations in ``ship`` (contract columns, one list each; only ``rows`` when given)."""
    ids = ship["shipment_id"]
    which = range(len(ids)) if rows is None else rows
    keys: dict[tuple[str, str], str] = {}
    postings: list[tuple[str, str, str]] = []
    for spec in SEARCH_KINDS:
        values = ship.get(spec.column)
        if values is None:
            continue
        cache: dict[Any, str | None] = {}
        for i in which:
            value = values[i]
            if value is None:
                continue
            term = cache.get(value, "")
            if term == "":
                term = cache[value] = spec.normalise(value)
            if term is None:
                continue
            pair = (spec.kind, term)
            if pair not in keys:
                keys[pair] = " ".join(normal_text(str(value)).split())[:300]
            postings.append((spec.kind, term, str(ids[i])))
    return [(k, t, d) for (k, t), d in keys.items()], postings


def trigrams(text: str) -> set[str]:
    """The trigrams of a text as ``pg_trgm`` makes them: each word lower-cased, padded with
    two spaces before and one after."""
    out: set[str] = set()
    for word in re.findall(r"[0-9a-z\u00c0-\uffff]+", text.casefold()):
        padded = f"  {word} "
        out.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return out


def similarity(a: str, b: str) -> float:
    """``pg_trgm``'s similarity: shared trigrams over all trigrams of the two texts."""
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


@dataclass(frozen=True)
class SearchHit:
    """One search result: a searchable value, how it matched (``exact``, ``prefix`` or
    ``similar`` with its ``score``), and - once counted - how many shipments carry it and, when
    one does, which."""

    kind: str
    term: str
    display: str
    match: str
    score: float
    shipments: int = 0
    shipment_id: str | None = None

    @property
    def words(self) -> str:
        return KINDS[self.kind].words

    @property
    def party(self) -> bool:
        return KINDS[self.kind].party


@dataclass(frozen=True)
class SearchPage:
    query: str
    hits: list[SearchHit]
    offset: int
    limit: int
    more: bool


_RANK = {"exact": 0, "prefix": 1, "similar": 2}


def _normalised_queries(q: str) -> dict[str, str]:
    """The query as each family of kinds keeps its values (only those it can be)."""
    out: dict[str, str] = {}
    text = norm_text(q)
    if text:
        out["text"] = text
    digits = norm_phone(q)
    if digits and len(digits) >= 5 and len(digits) * 2 >= len(re.sub(r"\s", "", q)):
        out["phone"] = digits
    address = norm_address(q)
    if address:
        out["address"] = address
    return out


def _family(kind: str) -> str:
    return kind if kind in ("phone", "address") else "text"


def _upper(term: str) -> str:
    """The first key after every key starting with ``term`` (for a range scan)."""
    return term + "\U0010ffff"


def write_index(conn: Connection, ship: dict[str, list], rows: Iterable[int] | None = None):
    """Within ``conn``'s transaction: index the declarations in ``ship`` (contract columns, one
    list each; only ``rows`` when given). A value or posting already held is left as it is."""
    keys, postings = index_entries(ship, rows)
    if not postings:
        return
    # in key order: a manifest's values land in a few places of each index instead of
    # scattering writes over the whole of a large one
    keys.sort()
    postings.sort()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "INSERT INTO search_keys (kind, term, display) VALUES (?, ?, ?) "
            "ON CONFLICT (term, kind) DO NOTHING",
            keys,
        )
        conn.exec_driver_sql(
            "INSERT INTO search_terms (kind, term, shipment_id) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, term, shipment_id) DO NOTHING",
            postings,
        )
        return
    from sqlalchemy.dialects.postgresql import insert

    for table, names, items in (
        (search_keys, ("kind", "term", "display"), keys),
        (search_terms, ("kind", "term", "shipment_id"), postings),
    ):
        for start in range(0, len(items), 10_000):
            conn.execute(
                insert(table).on_conflict_do_nothing(),
                [dict(zip(names, item, strict=True)) for item in items[start : start + 10_000]],
            )


class SearchStore:
    """The search index's writes and reads (a part of :class:`serving.store.Store`)."""

    engine: Engine
    is_sqlite: bool

    # -- writes ----------------------------------------------------------------------------
    def _index(self, conn: Connection, ship: dict[str, list], rows: Iterable[int] | None = None):
        """Within ``conn``'s transaction: index the declarations in ``ship``."""
        write_index(conn, ship, rows)

    # -- reads -----------------------------------------------------------------------------
    def search(self, q: str, *, limit: int = 20, offset: int = 0) -> SearchPage:
        """Search every kind of value for ``q``: exact matches first, then prefixes (three
        characters or more), then - when nothing matched exactly - shipper and consignee names by
        trigram similarity; ``limit``
        results from ``offset``, each counted (how many shipments carry it)."""
        q = " ".join(normal_text(str(q)).split())
        if not q:
            raise SearchError("q: give a shipment id, reference, container, party, phone, "
                              "address or name to search for")  # fmt: skip
        if len(q) > MAX_QUERY:
            raise SearchError(f"q: at most {MAX_QUERY} characters (got {len(q)})")
        if not 1 <= limit <= 100:
            raise SearchError("limit: between 1 and 100")
        if not 0 <= offset <= 1_000:
            raise SearchError("offset: between 0 and 1000")
        wanted = offset + limit + 1
        forms = _normalised_queries(q)
        found: dict[tuple[str, str], SearchHit] = {}

        def keep(hit: SearchHit) -> None:
            old = found.get((hit.kind, hit.term))
            if old is None or (_RANK[hit.match], -hit.score) < (_RANK[old.match], -old.score):
                found[(hit.kind, hit.term)] = hit

        k = search_keys.c
        with self.engine.connect() as conn:
            # one exact and one prefix lookup per distinct normalised form, the kinds kept
            # after (a kind filter in SQL would walk every key of the range in term order)
            families: dict[str, set[str]] = {}
            for family, term in forms.items():
                families.setdefault(term, set()).add(family)
            for term, fams in families.items():
                rows = conn.execute(sa.select(k.kind, k.term, k.display).where(k.term == term))
                for r in rows:
                    if _family(r.kind) in fams:
                        keep(SearchHit(r.kind, r.term, r.display, "exact", 1.0))
                if len(term) >= MIN_PREFIX:
                    rows = conn.execute(
                        sa.select(k.kind, k.term, k.display)
                        .where(k.term > term, k.term < _upper(term))
                        .order_by(k.term)
                        .limit(4 * wanted)
                    )
                    kept = 0
                    for r in rows:
                        if _family(r.kind) in fams and kept < wanted:
                            keep(SearchHit(r.kind, r.term, r.display, "prefix", 0.0))
                            kept += 1
            fuzzy_q = forms.get("text")
            exact = any(h.match == "exact" for h in found.values())
            if fuzzy_q and len(fuzzy_q) >= MIN_PREFIX and not exact and len(found) < wanted:
                for kind, term, display, score in self._similar(conn, fuzzy_q, wanted):
                    keep(SearchHit(kind, term, display, "similar", score))
            kind_order = {s.kind: i for i, s in enumerate(SEARCH_KINDS)}
            ranked = sorted(
                found.values(),
                key=lambda h: (_RANK[h.match], -h.score, kind_order[h.kind], h.term),
            )
            page = [self._counted(conn, h) for h in ranked[offset : offset + limit]]
        return SearchPage(q, page, offset, limit, len(ranked) > offset + limit)

    def _similar(self, conn: Connection, q: str, limit: int) -> list[tuple[str, str, str, float]]:
        """Shipper and consignee names similar to ``q`` (trigram similarity, best first)."""
        if self.is_sqlite:
            grams = sorted({q[i : i + 3] for i in range(len(q) - 2)})
            if not grams:
                return []
            # only the rarest trigrams of the query look for candidates: a typo spoils at
            # most three of them, and common ones ("ro ", "co.") would make every name a
            # candidate; the candidates are then scored on all trigrams
            counts: dict[str, int] = dict(
                conn.exec_driver_sql(
                    "SELECT term, doc FROM search_fuzzy_vocab WHERE term IN "
                    f"({', '.join('?' for _ in grams)})",
                    tuple(grams),
                ).all()
            )
            present = sorted((counts[g], g) for g in grams if g in counts)
            if not present:
                return []
            rare = [g for _, g in present[:RARE_TRIGRAMS]]
            match = " OR ".join('"' + g.replace('"', '""') + '"' for g in rare)
            rows = conn.exec_driver_sql(
                "SELECT k.kind, k.term, k.display FROM search_fuzzy f "
                "JOIN search_names k ON k.id = f.rowid WHERE search_fuzzy MATCH ? "
                "ORDER BY f.rank LIMIT ?",
                (match, max(200, 4 * limit)),
            ).all()
            scored = [(r[0], r[1], r[2], similarity(q, r[1])) for r in rows]
        else:
            rows = conn.execute(
                sa.text(
                    "SELECT kind, term, display, similarity(term, :q) AS s FROM search_keys "
                    "WHERE kind = ANY(:kinds) AND term % :q ORDER BY s DESC LIMIT :n"
                ),
                {"q": q, "kinds": list(FUZZY_KINDS), "n": limit},
            ).all()
            scored = [(r[0], r[1], r[2], float(r[3])) for r in rows]
        scored = [s for s in scored if s[3] >= MIN_SIMILARITY]
        return sorted(scored, key=lambda s: -s[3])[:limit]

    @staticmethod
    def _counted(conn: Connection, hit: SearchHit) -> SearchHit:
        t = search_terms.c
        cond = (t.kind == hit.kind) & (t.term == hit.term)
        n = int(conn.execute(sa.select(sa.func.count()).where(cond)).scalar() or 0)
        one = conn.execute(sa.select(t.shipment_id).where(cond).limit(1)).scalar() if n else None
        return SearchHit(hit.kind, hit.term, hit.display, hit.match, hit.score, n, one)

    def key_display(self, kind: str, term: str) -> str | None:
        """How a searchable value was first written (None: the index does not hold it)."""
        k = search_keys.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(k.display).where(k.kind == kind, k.term == term)).scalar()

    def shipments_with(self, kind: str, term: str, limit: int = 500) -> list[str]:
        """Ids of the shipments that carry a value (in any version of their declaration),
        latest declared first, at most ``limit``."""
        t = search_terms.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(t.shipment_id)
                    .join(shipments, shipments.c.shipment_id == t.shipment_id)
                    .where(t.kind == kind, t.term == term)
                    .order_by(shipments.c.declared_at.desc())
                    .limit(limit)
                ).scalars()
            )

    def count_with(self, kind: str, term: str) -> int:
        t = search_terms.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(t.kind == kind, t.term == term)
                ).scalar()
                or 0
            )


def setup_search(engine: Engine) -> None:
    """The fuzzy side of the index (SQLite: FTS5 trigram table and its trigger; PostgreSQL:
    the ``pg_trgm`` extension and a GIN index), made if missing; then, for a store made before
    the index existed, every stored declaration version indexed."""
    kinds = ", ".join(f"'{k}'" for k in FUZZY_KINDS)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            # the names among the keys, numbered for the FTS5 table (the keys
            # themselves are a WITHOUT ROWID table), both filled by a trigger as keys are added
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS search_names (id INTEGER PRIMARY KEY, "
                "kind TEXT NOT NULL, term TEXT NOT NULL, display TEXT NOT NULL)"
            )
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE IF NOT EXISTS search_fuzzy USING "
                "fts5(term, content='', tokenize='trigram')"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER IF NOT EXISTS search_keys_fuzzy AFTER INSERT ON search_keys "
                f"WHEN new.kind IN ({kinds}) BEGIN "
                "INSERT INTO search_names (kind, term, display) "
                "VALUES (new.kind, new.term, new.display); "
                "INSERT INTO search_fuzzy (rowid, term) VALUES (last_insert_rowid(), new.term); "
                "END"
            )
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE IF NOT EXISTS search_fuzzy_vocab USING "
                "fts5vocab(search_fuzzy, 'row')"
            )
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS ix_search_keys_trgm ON search_keys "
                f"USING gin (term gin_trgm_ops) WHERE kind IN ({kinds})"
            )
    _backfill(engine)


def _backfill(engine: Engine) -> None:
    with engine.connect() as conn:
        if conn.execute(sa.select(search_terms.c.shipment_id).limit(1)).first() is not None:
            return
        if conn.execute(sa.select(shipment_versions.c.seq).limit(1)).first() is None:
            return
    log.info("indexing the stored declarations for search (once, for a store made before it)")
    columns = [shipment_versions.c[s.column] for s in SEARCH_KINDS]
    if shipment_versions.c.shipment_id not in columns:
        columns.append(shipment_versions.c.shipment_id)
    last = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(shipment_versions.c.seq, *columns)
                .where(shipment_versions.c.seq > last)
                .order_by(shipment_versions.c.seq)
                .limit(50_000)
            ).all()
            if not rows:
                return
            last = rows[-1][0]
            names = ["seq", *(c.name for c in columns)]
            ship = {n: [r[i] for r in rows] for i, n in enumerate(names)}
            write_index(conn, ship)
