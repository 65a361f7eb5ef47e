"""Online aggregates as rows (issue 15): the pure arithmetic behind a store that keeps the
snapshot's tables (:mod:`features.snapshot`: ``key_totals``, ``key_days``, ``key_pairs``,
``key_components``) up to date event by event, with no history in memory.

* :func:`manifest_keys` - the rows a prepared manifest needs (its keys in each table);
* :func:`features.snapshot.tables_raw` (re-exported as :func:`rows_raw`) - the raw
  aggregates of the manifest's shipments from those rows, each as of its own ``t``: totals as
  the rows hold them ("as of now"), a ``w``-day window the key's day buckets from
  :func:`features.history.window_start` ``(t, w)`` on;
* :func:`shipment_deltas`, :func:`outcome_deltas`, :func:`distinct_deltas` and
  :func:`link_changes` - the increments that adding shipments, an inspection report (or
  taking one back: a correction, an amendment moving it to the declaration in force) and
  new partner pairs make, and the merges of the link graph's components (a union-find kept
  as a table: a component id per node; a merge relabels the component with fewer parties).

A store applies them as ``x = x + delta`` upserts in the transaction that stores the events
(:mod:`serving.store.aggregates`). The rules are the online state's: a shipment counts once,
at its first declaration; its inspections count against the declaration in force, at
``known = max(result_at, first declared_at)``; shipments of one manifest do not see each other
(features are computed before the manifest's deltas are applied).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features import engine
from features.contracts import AttributeSpec
from features.manifest import NS_PER_DAY, prepare
from features.network import IDENTIFIERS
from features.pipeline import attribute_values, feature_columns, feature_frame
from features.snapshot import (
    PARTNERS,
    PORT_DIM,
    TABLE_COLUMNS,
    WORDS_DIM,
    key_texts,
    spans,
    table_rows,
    tables_raw,
)

rows_raw = tables_raw
"""The raw aggregates of prepared shipments from the rows of their keys (one definition with
:func:`features.snapshot.snapshot_raw`)."""

WORD_PARTNER = "word"
"""The ``partner`` of description words in ``key_pairs`` (dimension :data:`WORDS_DIM`)."""

NEW_COMPONENT_BASE = 1 << 62
"""Components made online get ids from here up (a hash of their first node), above every id a
snapshot gives (node numbers), so two writers never pick the same id for different nodes."""

Number = int | float | None


@dataclass(frozen=True)
class ManifestKeys:
    """The keys of a manifest in each aggregate table: ``totals`` ``(dim, key)`` (ports as
    :data:`PORT_DIM`), ``days`` ``(dim, key)`` of the dimensions with windows, ``pairs``
    ``(dim, partner, key, value)`` (words as :data:`WORDS_DIM`), ``nodes`` ``(dim, key)`` of
    the link graph (consignee and identifiers); ``times`` the declaration times (ns) of the
    manifest's shipments (where their windows start)."""

    totals: frozenset[tuple[str, str]]
    days: frozenset[tuple[str, str]]
    pairs: frozenset[tuple[str, str, str, str]]
    nodes: frozenset[tuple[str, str]]
    times: frozenset[int] = frozenset()


_column = key_texts
"""The key text (:func:`features.snapshot.key_text`) of each row's ``name`` key, made once
per prepared manifest (its keys, deltas and features read the same columns)."""


def manifest_keys(p: Mapping[str, Any]) -> ManifestKeys:
    """Every row of the aggregate tables that the features or the deltas of the prepared
    shipments ``p`` (``prepare(..., tuple_keys=True)``) read."""
    totals: set[tuple[str, str]] = set()
    days: set[tuple[str, str]] = set()
    pairs: set[tuple[str, str, str, str]] = set()
    nodes: set[tuple[str, str]] = set()
    for dim in engine.dimensions():
        keys = _column(p, dim.name)
        windowed = any(spans(dim))
        for key in keys:
            if key is not None:
                totals.add((dim.name, key))
                if windowed:
                    days.add((dim.name, key))
        for partner in dim.distinct:
            for key, value in zip(keys, _column(p, partner), strict=True):
                if key is not None and value is not None:
                    pairs.add((dim.name, partner, key, value))
    for ports in p["ports"]:
        totals.update((PORT_DIM, port) for port in ports)
    for chapter, words in zip(_column(p, "hs2"), p["tokens"], strict=True):
        if chapter is not None:
            pairs.update((WORDS_DIM, WORD_PARTNER, chapter, w) for w in words)
    nodes.update(graph_nodes(p))
    times = frozenset(np.unique(np.asarray(p["t"], dtype="int64")).tolist())
    return ManifestKeys(
        frozenset(totals), frozenset(days), frozenset(pairs), frozenset(nodes), times
    )


def graph_nodes(p: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The link graph's nodes of prepared shipments: ``(dim, key)`` of their consignees and
    identifiers (``ManifestKeys.nodes``)."""
    nodes: set[tuple[str, str]] = set()
    for kind in ("consignee", *IDENTIFIERS):
        nodes.update((kind, k) for k in _column(p, kind) if k)
    return nodes


def feature_rows(
    shipments: pd.DataFrame | Mapping[str, Any],
    p: dict[str, Any],
    tables: Mapping[str, Any],
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> pd.DataFrame:
    """Feature rows of ``shipments`` (a contract frame, or one shipment as a mapping of its
    fields: index 0) prepared as ``p``, from the aggregate rows of their keys (``tables``,
    :func:`manifest_keys`): the columns and order of the training frame, the attribute
    features of ``attributes`` last."""
    index = pd.RangeIndex(1) if isinstance(shipments, Mapping) else shipments.index
    attrs = attribute_values(shipments, dict(attributes)) if attributes else None
    raw = tables_raw(tables, p)
    cols = feature_columns(p, raw)
    if attrs:
        cols.update(attrs)
    dates = np.asarray(p["t"]).astype("datetime64[ns]")
    return feature_frame(cols, p["shipment_id"], dates, index, dict(attributes or {}))


# -- deltas -------------------------------------------------------------------------------------
@dataclass
class Deltas:
    """Increments of the aggregate tables: ``totals[(dim, key)]`` and ``days[(dim, key,
    day_start)]`` map a column to what it grows by (None: a column the dimension does not
    define, left NULL; ``first_seen`` is a minimum, not a sum); ``pairs[(dim, partner, key,
    value)]`` the first time of a pair, inserted when absent (a new one then counts in the
    key's ``distinct_<partner>``, :func:`distinct_deltas`); ``own[consignee]`` seizures on a
    consignee's shipments (its ``own_seizures`` and its component's ``seizures``)."""

    totals: dict[tuple[str, str], dict[str, Number]] = field(default_factory=dict)
    days: dict[tuple[str, str, int], dict[str, Number]] = field(default_factory=dict)
    pairs: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    own: dict[str, int] = field(default_factory=dict)

    def add(self, other: Deltas) -> Deltas:
        """Fold ``other`` into these deltas (returns self)."""
        for key, row in other.totals.items():
            _fold(self.totals.setdefault(key, dict.fromkeys(row)), row)
        for dkey, row in other.days.items():
            _fold(self.days.setdefault(dkey, dict.fromkeys(row)), row)
        for pkey, first in other.pairs.items():
            self.pairs[pkey] = min(first, self.pairs.get(pkey, first))
        for consignee, n in other.own.items():
            self.own[consignee] = self.own.get(consignee, 0) + n
        return self

    def __bool__(self) -> bool:
        return bool(self.totals or self.days or self.pairs or self.own)


def _fold(target: dict[str, Number], row: Mapping[str, Number]) -> None:
    for column, value in row.items():
        if value is None:
            continue
        old = target.get(column)
        if old is None:
            target[column] = value
        elif column == "first_seen":
            target[column] = min(old, value)
        else:
            target[column] = old + value


def _totals_template(dim: engine.Dimension | None) -> dict[str, Number]:
    """A ``key_totals`` increment of nothing: 0 in the columns the dimension defines (None
    for the ports' dimension: shipments, first seen, inspections and seizures)."""
    if dim is None:  # transshipment ports
        row: dict[str, Number] = {"shipments": 0, "first_seen": None, "value_sum": None,
                                  "value_count": None, "inspections": 0, "seizures": 0}  # fmt: skip
        row |= {f"distinct_{v}": None for v in PARTNERS}
        return row
    return {
        "shipments": 0,
        "first_seen": None,
        "value_sum": 0.0 if dim.value_mean else None,
        "value_count": 0 if dim.value_mean else None,
        "inspections": 0 if dim.outcomes else None,
        "seizures": 0 if dim.outcomes else None,
        **{f"distinct_{v}": (0 if v in dim.distinct else None) for v in PARTNERS},
    }


def _days_template(dim: engine.Dimension) -> dict[str, Number]:
    ship_days, seizure_days = spans(dim)
    return {"shipments": 0 if ship_days else None, "seizures": 0 if seizure_days else None}


def day_of(t: int) -> int:
    """The day bucket (UTC midnight, ns) of an instant."""
    return (int(t) // NS_PER_DAY) * NS_PER_DAY


def shipment_deltas(p: Mapping[str, Any], rows: Iterable[int] | None = None) -> Deltas:
    """What adding the prepared shipments ``p`` (the ``rows`` of it; default all: each one a
    first declaration) adds: per key a shipment, its first-seen time, its value per kg; a
    shipment in the day bucket of its declaration; per transshipment port a shipment; the
    partner pairs and description words it declares (inserted if new)."""
    out = Deltas()
    t = [int(v) for v in np.asarray(p["t"], dtype="int64").tolist()]
    chosen = list(range(len(t))) if rows is None else list(rows)
    lvk = np.asarray(p["log_value_per_kg"], dtype="float64").tolist()
    days_of = [day_of(v) for v in t]
    totals, days, pairs = out.totals, out.days, out.pairs
    for dim in engine.dimensions():
        name = dim.name
        keys = _column(p, name)
        partners = [(v, _column(p, v)) for v in dim.distinct]
        ship_days, _ = spans(dim)
        template = _totals_template(dim)
        day_template = _days_template(dim)
        values = dim.value_mean
        for i in chosen:
            key = keys[i]
            if key is None:
                continue
            when = t[i]
            row = totals.get((name, key))
            if row is None:
                row = totals[(name, key)] = dict(template)
            row["shipments"] += 1  # type: ignore[operator]
            first = row["first_seen"]
            if first is None or when < first:
                row["first_seen"] = when
            if values and math.isfinite(lvk[i]):
                row["value_sum"] += lvk[i]
                row["value_count"] += 1  # type: ignore[operator]
            if ship_days:
                bucket = days.get((name, key, days_of[i]))
                if bucket is None:
                    bucket = days[(name, key, days_of[i])] = dict(day_template)
                bucket["shipments"] += 1  # type: ignore[operator]
            for partner, partner_keys in partners:
                value = partner_keys[i]
                if value is not None:
                    pair = (name, partner, key, value)
                    old = pairs.get(pair)
                    if old is None or when < old:
                        pairs[pair] = when
    ports = p["ports"]
    chapters = _column(p, "hs2")
    tokens = p["tokens"]
    port_template = _totals_template(None)
    for i in chosen:
        when = t[i]
        for port in ports[i]:
            row = totals.get((PORT_DIM, port))
            if row is None:
                row = totals[(PORT_DIM, port)] = dict(port_template)
            row["shipments"] += 1  # type: ignore[operator]
            first = row["first_seen"]
            if first is None or when < first:
                row["first_seen"] = when
        if chapters[i] is not None:
            for word in tokens[i]:
                pair = (WORDS_DIM, WORD_PARTNER, chapters[i], word)
                old = pairs.get(pair)
                if old is None or when < old:
                    pairs[pair] = when
    return out


def distinct_deltas(new_pairs: Iterable[tuple[str, str, str, str]]) -> Deltas:
    """The ``distinct_<partner>`` increments of partner pairs that were new to the store (the
    words' pairs count nothing)."""
    out = Deltas()
    dims = {d.name: d for d in engine.dimensions()}
    for dim, partner, key, _ in new_pairs:
        if dim == WORDS_DIM:
            continue
        row = out.totals.setdefault((dim, key), _totals_template(dims[dim]))
        row[f"distinct_{partner}"] = int(row[f"distinct_{partner}"] or 0) + 1
    return out


def outcome_deltas(
    p: Mapping[str, Any],
    known: Sequence[int],
    seized: Sequence[bool],
    sign: int = 1,
) -> Deltas:
    """What counting inspection reports adds (``sign`` -1: takes back): report ``i`` is about
    the declaration in force prepared as row ``i`` of ``p`` and became known at ``known[i]``
    (``max(result_at, first declared_at)``). Per key of the outcome dimensions an inspection
    (and a seizure), a seizure in the day bucket of ``known`` of the dimensions with seizure
    windows, the same per transshipment port, and the consignee's own seizure."""
    out = Deltas()
    for dim in engine.dimensions():
        if not dim.outcomes:
            continue
        keys = _column(p, dim.name)
        _, seizure_days = spans(dim)
        for i, key in enumerate(keys):
            if key is None:
                continue
            row = _totals_template(dim)
            row["inspections"] = sign
            row["seizures"] = sign if seized[i] else 0
            _fold(out.totals.setdefault((dim.name, key), _totals_template(dim)), row)
            if seized[i] and seizure_days:
                day = _days_template(dim)
                day["seizures"] = sign
                bucket = (dim.name, key, day_of(known[i]))
                _fold(out.days.setdefault(bucket, _days_template(dim)), day)
    for i, ports in enumerate(p["ports"]):
        for port in ports:
            row = _totals_template(None)
            row["inspections"] = sign
            row["seizures"] = sign if seized[i] else 0
            _fold(out.totals.setdefault((PORT_DIM, port), _totals_template(None)), row)
    for i, consignee in enumerate(_column(p, "consignee")):
        if consignee is not None and seized[i]:
            out.own[consignee] = out.own.get(consignee, 0) + sign
    return out


# -- the link graph as a table ----------------------------------------------------------------
def component_id(dim: str, key: str) -> int:
    """The id of a component made online around its first node: :data:`NEW_COMPONENT_BASE`
    plus a 61-bit hash of the node, the same in every process."""
    digest = hashlib.blake2b(f"{dim}\x1f{key}".encode(), digest_size=8).digest()
    return NEW_COMPONENT_BASE + (int.from_bytes(digest, "big") >> 3)


@dataclass(frozen=True)
class LinkChanges:
    """What adding shipments does to the link graph's table: ``new_nodes`` (dim, key) -> its
    component (a new consignee is a party); ``relabel`` old component -> the component it
    merged into; ``components`` component -> (parties, seizures) for each component whose
    numbers changed (every node of it carries them)."""

    new_nodes: dict[tuple[str, str], int]
    relabel: dict[int, int]
    components: dict[int, tuple[int, int]]


def link_changes(
    nodes: Mapping[tuple[str, str], tuple[int, int, int]],
    p: Mapping[str, Any],
    rows: Iterable[int] | None = None,
) -> LinkChanges:
    """The link graph's changes from adding the prepared shipments ``p`` (``rows`` of it,
    default all) given the table's rows of their nodes: ``nodes[(dim, key)] = (component,
    parties, seizures)``. A consignee is a party from its first shipment; each shipment links
    its consignee to its identifiers (a shipment without consignee links nothing), merging
    their components: the one with fewer parties is relabelled (ties: the larger id). A
    consignee node in a component of no parties is one that never declared (it holds a
    seizure an amendment moved onto it): its first shipment makes it a party."""
    comp_of = {node: int(c) for node, (c, _, _) in nodes.items()}
    parent: dict[int, int] = {}
    totals: dict[int, list[int]] = {}
    for c, parties, seizures in nodes.values():
        parent[int(c)] = int(c)
        totals[int(c)] = [int(parties), int(seizures)]
    initial = {c: tuple(v) for c, v in totals.items()}
    new_nodes: set[tuple[str, str]] = set()
    # consignees in the graph that never declared (a seizure amended onto them): no party yet
    waiting = {node for node, (_, parties, _) in nodes.items()
               if node[0] == "consignee" and int(parties) == 0}  # fmt: skip

    def find(c: int) -> int:
        root = c
        while parent[root] != root:
            root = parent[root]
        while parent[c] != root:
            parent[c], c = root, parent[c]
        return root

    def node_component(node: tuple[str, str]) -> int:
        c = comp_of.get(node)
        if c is None:
            c = comp_of[node] = component_id(*node)
            parent[c] = c
            totals[c] = [0, 0]
            new_nodes.add(node)
        return find(c)

    def union(a: int, b: int) -> None:
        if a == b:
            return
        if (totals[a][0], -a) < (totals[b][0], -b):
            a, b = b, a
        parent[b] = a
        totals[a][0] += totals[b][0]
        totals[a][1] += totals[b][1]

    t = np.asarray(p["t"], dtype="int64").tolist()
    chosen = sorted(range(len(t)) if rows is None else rows, key=t.__getitem__)
    consignees = _column(p, "consignee")
    idents = [(d, _column(p, d)) for d in IDENTIFIERS]
    for i in chosen:
        consignee = consignees[i]
        if consignee is None:
            continue
        node = ("consignee", consignee)
        party = node in comp_of and node not in waiting
        c = node_component(node)
        if not party:
            totals[c][0] += 1
            waiting.discard(node)
        for d, values in idents:
            if values[i]:
                union(find(comp_of[node]), node_component((d, values[i])))
    relabel = {c: find(c) for c in initial if find(c) != c}
    roots = {find(c) for c in parent}
    with_new = {find(comp_of[node]) for node in new_nodes}
    changed = {
        r: (totals[r][0], totals[r][1])
        for r in roots
        if r not in initial
        or initial[r] != tuple(totals[r])
        or r in relabel.values()
        or r in with_new
    }
    return LinkChanges(
        new_nodes={node: find(comp_of[node]) for node in sorted(new_nodes)},
        relabel=relabel,
        components=changed,
    )


# -- the tables in memory -----------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """A cell as a store gives it: None for NULL (None, NaN, pandas' NA), int64 as int."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


_TOTALS_COLUMNS = tuple(c for c, _ in TABLE_COLUMNS["key_totals"] if c != "key")
_COMPONENT_COLUMNS = ("component", "parties", "seizures", "own_seizures")


class MemoryRows:
    """The aggregate tables (:data:`features.snapshot.TABLE_COLUMNS`) held in dicts, kept up to
    date by the deltas of this module exactly as a store applies them
    (:mod:`serving.store.online`: ``x = x + delta`` upserts, a NULL column staying NULL,
    ``first_seen`` a minimum, partner pairs inserted when absent, the link graph's table
    relabelled on merges). No history: only the rows. It answers :meth:`rows` of a manifest's
    keys in the shapes :func:`features.snapshot.tables_raw` reads, so features computed over
    it are the service's ("as of now": every event applied so far). Kept up to date from a
    snapshot as of ``A`` with the events between ``A`` and ``B`` it holds what a snapshot as
    of ``B`` holds (tested), but for day buckets no window reaches any more (kept) and the
    ids of components made online (hashed, :func:`component_id`)."""

    def __init__(self, tables: Mapping[str, Any] | None = None) -> None:
        self.totals: dict[tuple[str, str], dict[str, Any]] = {}
        self.days: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        self.pairs: dict[tuple[str, str, str, str], int] = {}
        self.nodes: dict[tuple[str, str], dict[str, Any]] = {}
        self._members: dict[int, set[tuple[str, str]]] = {}
        if tables is None:
            return
        for row in table_rows(tables["key_totals"], ("dim", "key", *_TOTALS_COLUMNS)):
            self.totals[(row[0], row[1])] = {
                c: _plain(v) for c, v in zip(_TOTALS_COLUMNS, row[2:], strict=True)
            }
        for d, k, start, ship, seiz in table_rows(
            tables["key_days"], ("dim", "key", "day_start", "shipments", "seizures")
        ):
            self.days.setdefault((d, k), {})[int(start)] = {
                "shipments": _plain(ship),
                "seizures": _plain(seiz),
            }
        for d, partner, k, value, first in table_rows(
            tables["key_pairs"], ("dim", "partner", "key", "value", "first_seen")
        ):
            self.pairs[(d, partner, k, value)] = int(first)
        for row in table_rows(tables["key_components"], ("dim", "key", *_COMPONENT_COLUMNS)):
            node = (row[0], row[1])
            self.nodes[node] = {
                c: _plain(v) for c, v in zip(_COMPONENT_COLUMNS, row[2:], strict=True)
            }
            self._members.setdefault(int(row[2]), set()).add(node)

    # -- reads ---------------------------------------------------------------------------------
    def rows(self, keys: ManifestKeys, since: int | None = None) -> dict[str, list[dict]]:
        """The rows of a manifest's keys (:func:`manifest_keys`) as lists of row mappings,
        what a store's ``fetch_rows`` returns; ``since``: day buckets from then on only."""
        totals = [
            {"dim": d, "key": k, **self.totals[(d, k)]}
            for d, k in sorted(keys.totals)
            if (d, k) in self.totals
        ]
        days = [
            {"dim": d, "key": k, "day_start": start, **bucket}
            for d, k in sorted(keys.days)
            for start, bucket in sorted(self.days.get((d, k), {}).items())
            if since is None or start >= since
        ]
        pairs = [
            {"dim": d, "partner": pt, "key": k, "value": v, "first_seen": self.pairs[(d, pt, k, v)]}
            for d, pt, k, v in sorted(keys.pairs)
            if (d, pt, k, v) in self.pairs
        ]
        nodes = [
            {"dim": d, "key": k, **self.nodes[(d, k)]}
            for d, k in sorted(keys.nodes)
            if (d, k) in self.nodes
        ]
        return {"key_totals": totals, "key_days": days, "key_pairs": pairs,
                "key_components": nodes}  # fmt: skip

    def node_rows(self, nodes: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
        """``(component, parties, seizures)`` of the link graph's ``nodes`` held (what
        :func:`link_changes` reads)."""
        out = {}
        for node in nodes:
            row = self.nodes.get(node)
            if row is not None:
                out[node] = (int(row["component"]), int(row["parties"]), int(row["seizures"]))
        return out

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table as a frame in the snapshot's shapes (``dim`` first, sorted by the
        table's key, NULL as None)."""
        frames = {
            "key_totals": [
                {"dim": d, "key": k, **row} for (d, k), row in sorted(self.totals.items())
            ],
            "key_days": [
                {"dim": d, "key": k, "day_start": start, **bucket}
                for (d, k), buckets in sorted(self.days.items())
                for start, bucket in sorted(buckets.items())
            ],
            "key_pairs": [
                {"dim": d, "partner": pt, "key": k, "value": v, "first_seen": first}
                for (d, pt, k, v), first in sorted(self.pairs.items())
            ],
            "key_components": [
                {"dim": d, "key": k, **row} for (d, k), row in sorted(self.nodes.items())
            ],
        }
        return {
            table: pd.DataFrame(
                rows, columns=["dim", *(c for c, _ in TABLE_COLUMNS[table])], dtype=object
            )
            for table, rows in frames.items()
        }

    def features(
        self,
        shipments: pd.DataFrame | Mapping[str, Any],
        p: dict[str, Any] | None = None,
        attributes: Mapping[str, AttributeSpec] | None = None,
    ) -> pd.DataFrame:
        """:func:`feature_rows` of ``shipments`` (prepared as ``p``, by default here) over
        the rows of their keys held now."""
        if p is None:
            p = prepare(shipments, tuple_keys=True)
        return feature_rows(shipments, p, self.rows(manifest_keys(p)), attributes)

    # -- writes --------------------------------------------------------------------------------
    def apply_deltas(self, deltas: Deltas) -> None:
        """Add ``deltas``: totals and day buckets summed (a NULL column left NULL, a row made
        when absent), ``first_seen`` the minimum; a consignee's own seizures on its row and
        its component's seizures on every node of the component (a consignee not in the
        table gets a node of its own first, with no parties, as
        :func:`serving.store.online.add_consignee_nodes` does). Pairs are not inserted here
        (:meth:`insert_pairs`)."""
        for key, delta in deltas.totals.items():
            row = self.totals.get(key)
            if row is None:
                row = self.totals[key] = dict.fromkeys(_TOTALS_COLUMNS)
            _fold(row, delta)
        for (dim, day_key, start), delta in deltas.days.items():
            buckets = self.days.setdefault((dim, day_key), {})
            bucket = buckets.get(start)
            if bucket is None:
                bucket = buckets[start] = {"shipments": None, "seizures": None}
            _fold(bucket, delta)
        for consignee, n in deltas.own.items():
            if n == 0:
                continue
            node = self.nodes.get(("consignee", consignee))
            if node is None:  # never declared (an amendment named it): a node of its own
                component = component_id("consignee", consignee)
                node = {"component": component, "parties": 0, "seizures": 0, "own_seizures": 0}
                self.nodes[("consignee", consignee)] = node
                self._members.setdefault(component, set()).add(("consignee", consignee))
            for member in self._members.get(int(node["component"]), ()):
                self.nodes[member]["seizures"] += n
            node["own_seizures"] = (node["own_seizures"] or 0) + n

    def insert_pairs(self, pairs: Mapping[tuple[str, str, str, str], int]) -> dict:
        """Insert the partner pairs not held yet; returns those (pair -> first seen)."""
        new = {pair: first for pair, first in pairs.items() if pair not in self.pairs}
        self.pairs.update(new)
        return new

    def apply_links(self, changes: LinkChanges) -> None:
        """The link graph's changes (:func:`link_changes`): merged components relabelled, new
        nodes inserted, the parties and seizures of changed components on all their nodes."""
        for old, new in sorted(changes.relabel.items()):
            moved = self._members.pop(old, set())
            for node in moved:
                self.nodes[node]["component"] = new
            self._members.setdefault(new, set()).update(moved)
        for (dim, key), component in changes.new_nodes.items():
            parties, seizures = changes.components[component]
            self.nodes[(dim, key)] = {
                "component": component,
                "parties": parties,
                "seizures": seizures,
                "own_seizures": 0 if dim == "consignee" else None,
            }
            self._members.setdefault(component, set()).add((dim, key))
        for component, (parties, seizures) in changes.components.items():
            for node in self._members.get(component, ()):
                self.nodes[node]["parties"] = parties
                self.nodes[node]["seizures"] = seizures

    def add_shipments(self, p: Mapping[str, Any]) -> None:
        """Count the prepared shipments ``p`` as first declarations (as a store does in the
        transaction that stores them): their deltas, the partner pairs new to the tables
        (and the distinct counts they add), then the link graph's changes."""
        deltas = shipment_deltas(p)
        deltas.add(distinct_deltas(self.insert_pairs(deltas.pairs)))
        self.apply_deltas(deltas)
        self.apply_links(link_changes(self.node_rows(manifest_keys(p).nodes), p))

    def add_reports(
        self, p: Mapping[str, Any], known: Sequence[int], seized: Sequence[bool], sign: int = 1
    ) -> None:
        """Count inspection reports on the declarations in force prepared as ``p`` (row
        ``i``: report ``i``), known at ``known`` (``sign`` -1: take them back)."""
        if len(known):
            self.apply_deltas(outcome_deltas(p, known, seized, sign=sign))
