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
from features.manifest import NS_PER_DAY
from features.network import IDENTIFIERS
from features.pipeline import attribute_values, feature_columns, feature_frame
from features.snapshot import (
    PARTNERS,
    PORT_DIM,
    WORDS_DIM,
    key_text,
    spans,
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
    the link graph (consignee and identifiers)."""

    totals: frozenset[tuple[str, str]]
    days: frozenset[tuple[str, str]]
    pairs: frozenset[tuple[str, str, str, str]]
    nodes: frozenset[tuple[str, str]]


_TEXT = "_key_text"
"""Where :func:`_column` leaves, in a prepared manifest, the key texts it made (the keys,
the deltas and the features of one manifest read the same columns)."""


def _column(p: Mapping[str, Any], name: str) -> list:
    """The key text (:func:`features.snapshot.key_text`) of each row's ``name`` key."""
    cache = p.get(_TEXT) if isinstance(p, dict) else None
    if cache is not None and name in cache:
        return cache[name]
    texts = [key_text(v) for v in np.asarray(p[name], dtype=object).tolist()]
    if isinstance(p, dict):
        p.setdefault(_TEXT, {})[name] = texts
    return texts


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
    for kind in ("consignee", *IDENTIFIERS):
        nodes.update((kind, k) for k in _column(p, kind) if k)
    return ManifestKeys(frozenset(totals), frozenset(days), frozenset(pairs), frozenset(nodes))


def feature_rows(
    shipments: pd.DataFrame | Mapping[str, Any],
    p: dict[str, Any],
    tables: Mapping[str, Any],
    attributes: Mapping[str, AttributeSpec] | None = None,
) -> pd.DataFrame:
    """Feature rows of ``shipments`` (a contract frame, or one shipment as a mapping of its
    fields: index 0) prepared as ``p``, from the aggregate rows of their keys (``tables``,
    :func:`manifest_keys`): the columns and order of the training frame, the attribute
    features of ``attributes`` last - what :meth:`features.online.OnlineFeatureState.features`
    gives, from rows instead of timelines."""
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
    their components: the one with fewer parties is relabelled (ties: the larger id)."""
    comp_of = {node: int(c) for node, (c, _, _) in nodes.items()}
    parent: dict[int, int] = {}
    totals: dict[int, list[int]] = {}
    for c, parties, seizures in nodes.values():
        parent[int(c)] = int(c)
        totals[int(c)] = [int(parties), int(seizures)]
    initial = {c: tuple(v) for c, v in totals.items()}
    new_nodes: set[tuple[str, str]] = set()

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
        party = node in comp_of
        c = node_component(node)
        if not party:
            totals[c][0] += 1
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
