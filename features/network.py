"""Network features: consignees linked through shared phones, addresses and recipient codes.

Smuggling networks show in shared identifiers: express recipients who give the same phone or
address, personal customs codes borrowed by many people, a sender shipping to many recipients.
Two kinds of features come out of the link graph, both point in time:

* **one hop** (exact, any query time): for the shipment's phone, address and recipient customs
  code, how many *other* consignees used it before and how many seizures were made known on
  their earlier shipments (from the aggregates of :mod:`features.history`);
* **the whole network** (:class:`LinkGraph`): the connected component of consignees joined by
  any chain of shared identifiers that this shipment connects to, its size and the seizures
  known among its other consignees. The offline pipeline replays declarations and seizures in
  time order; the online state keeps the same graph up to date. Online, component features
  reflect the graph as the state holds it (everything added so far), which equals the
  point-in-time graph when shipments are scored as they are declared. Offline, the
  components come from prepared arrays (:func:`offline_components`) or straight from the
  engine's tables (:func:`engine_components`: DuckDB de-duplicates and sorts what changes the
  graph, Python holds only the graph and the rows asked for).

Seizures two hops away are a subset of the network's seizures; an exact two-hop count is not
computed (it would need a neighbourhood walk per shipment, which does not fit the 1 ms budget).
"""

from __future__ import annotations

from array import array
from typing import Final

import numpy as np

from features.manifest import codes_of

IDENTIFIERS = ("phone", "address", "recipient")
"""Identifiers that link consignees: consignee phone, consignee address, recipient code."""


class LinkGraph:
    """Union-find over integer nodes (consignees and identifiers) with, per component, the
    number of consignees and the seizures known on their shipments."""

    __slots__ = ("own", "parent", "parties", "seizures")

    def __init__(self) -> None:
        # compact int64 arrays: 8 bytes a node instead of a Python int object each
        self.parent = array("q")
        self.parties = array("q")
        self.seizures = array("q")
        self.own = array("q")

    def grow(self, n_nodes: int) -> None:
        """Make nodes ``0 .. n_nodes-1`` exist (new ones isolated, not yet parties)."""
        start = len(self.parent)
        if n_nodes > start:
            self.parent.extend(range(start, n_nodes))
            extra = array("q", bytes(8 * (n_nodes - start)))
            self.parties.extend(extra)
            self.seizures.extend(extra)
            self.own.extend(extra)

    def find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.parties[ra] < self.parties[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.parties[ra] += self.parties[rb]
        self.seizures[ra] += self.seizures[rb]

    def add_shipment(self, consignee: int, identifiers: tuple[int, ...], new_party: bool) -> None:
        """Record one declaration: the consignee (a party the first time) linked to each of
        its identifiers (``-1`` = not declared). A shipment without a consignee (``-1``)
        links nothing: there is no party to join its identifiers to."""
        if consignee < 0:
            return
        if new_party:
            root = self.find(consignee)
            self.parties[root] += 1
        for node in identifiers:
            if node >= 0:
                self._union(consignee, node)

    def add_seizure(self, consignee: int) -> None:
        """A seizure on one of the consignee's shipments became known (none to count when no
        consignee was declared)."""
        if consignee < 0:
            return
        self.own[consignee] += 1
        self.seizures[self.find(consignee)] += 1

    def remove_seizure(self, consignee: int) -> None:
        """A seizure counted by :meth:`add_seizure` was corrected away (the inspection's
        report in force is now another one)."""
        if consignee < 0:
            return
        self.own[consignee] -= 1
        self.seizures[self.find(consignee)] -= 1

    def component(self, consignee: int, identifiers: tuple[int, ...], known: bool):
        """(consignees, seizures among the others) of the network this shipment connects to,
        without adding it: the union of the components of its consignee and identifiers. A
        shipment without a consignee (``-1``) counts as one new party."""
        known = known and consignee >= 0
        roots = {self.find(n) for n in identifiers if n >= 0}
        if known:
            roots.add(self.find(consignee))
        parties = sum(self.parties[r] for r in roots) + (0 if known else 1)
        seized = sum(self.seizures[r] for r in roots) - (self.own[consignee] if known else 0)
        return float(parties), float(seized)


def link_nodes(p: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Node numbers of the link graph: consignees first, then each identifier (``-1`` = not
    declared), and how many nodes there are."""
    offset = 0
    node = {}
    for name in ("consignee", *IDENTIFIERS):
        codes = np.asarray(codes_of(p, name), dtype="int64")
        node[name] = np.where(codes >= 0, codes + offset, -1)
        offset += int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    return node, offset


_QUERY_BLOCK: Final = 1 << 18
"""Shipments answered at once (bounds the answering's temporary arrays)."""

_EVENT_BLOCK: Final = 1 << 16
"""Graph changes read at once by the replay (from numpy or from the engine)."""


class _AsOf:
    """Entries ``(key, time)`` sorted by key, then time, then arrival: for a key and a time
    ``t``, the position after its last entry strictly before ``t`` (:meth:`before`). Times are
    kept as ranks among the entries' distinct times, so a key and a time make one int64."""

    __slots__ = ("code", "times", "width")

    def __init__(self, keys: np.ndarray, times: np.ndarray) -> None:
        self.times = np.unique(times)
        self.width = len(self.times) + 1
        code = np.asarray(keys, dtype="int64") * self.width
        code += np.searchsorted(self.times, times)
        self.code = code

    def sort(self) -> np.ndarray:
        """Sort the entries (stable: entries of one key and time keep their arrival order);
        returns the permutation, for the entries' values."""
        order = np.argsort(self.code, kind="stable")
        self.code = self.code[order]
        return order

    def rank(self, t: np.ndarray) -> np.ndarray:
        """How many distinct entry times are strictly before each ``t``."""
        return np.searchsorted(self.times, t)

    def before(self, keys: np.ndarray, rank: np.ndarray | None) -> np.ndarray:
        """Position after the last entry of each key strictly before the time of ``rank``
        (:meth:`rank`; None: before every entry of the key)."""
        query = np.asarray(keys, dtype="int64") * self.width
        if rank is not None:
            query += rank
        return np.searchsorted(self.code, query)


class _Graph:
    """The replayed link graph: each node's parent and the time it was attached to it (union
    by size, no path compression: a parent never changes once set), the log of every change
    of a root's ``(parties, seizures)`` as of its time, and each consignee's own seizures.
    Compact: parent int32 and attach time int64 per node (12 bytes; 16 more while
    replaying), 16 bytes a log entry (and its distinct time, 8)."""

    __slots__ = ("attached", "log", "log_parties", "log_seizures", "n_parties", "own", "parent")

    def __init__(self, n_nodes: int, n_parties: int, changes, seizures) -> None:
        """``changes``: batches ``(a, b, when)`` in time order - a link ``a``-``b``, or a
        seizure made known on consignee ``a`` when ``b`` is -1; ``seizures``: every seizure as
        ``(consignee, known)``. Nodes below ``n_parties`` are consignees (one party each)."""
        if n_nodes >= 2**31 - 1:
            raise ValueError(f"link graph: {n_nodes} nodes do not fit 32-bit node numbers")
        self.n_parties = n_parties
        parent = array("i", np.arange(n_nodes, dtype="int32").tobytes())
        attached = array("q", bytes(8 * n_nodes))
        weight = array("i", [1]) * n_nodes
        parties = array("i", [1]) * n_parties + array("i", bytes(4 * (n_nodes - n_parties)))
        seized = array("i", bytes(4 * n_nodes))
        log_root, log_time, log_parties, log_seizures = (array(c) for c in "iqii")
        for a, b, when in changes:
            for start in range(0, len(a), _EVENT_BLOCK):
                end = start + _EVENT_BLOCK
                for x, y, at in zip(a[start:end].tolist(), b[start:end].tolist(),
                                    when[start:end].tolist(), strict=True):  # fmt: skip
                    while parent[x] != x:
                        x = parent[x]
                    if y < 0:
                        seized[x] += 1
                    else:
                        while parent[y] != y:
                            y = parent[y]
                        if x == y:
                            continue
                        if weight[x] < weight[y]:
                            x, y = y, x
                        parent[y] = x
                        attached[y] = at
                        weight[x] += weight[y]
                        if not (parties[y] or seized[y]):
                            continue  # an identifier alone: the totals of x do not change
                        parties[x] += parties[y]
                        seized[x] += seized[y]
                    log_root.append(x)
                    log_time.append(at)
                    log_parties.append(parties[x])
                    log_seizures.append(seized[x])
        del weight, parties, seized
        for log_list, end in zip((log_root, log_time, log_parties, log_seizures),
                                 (n_nodes, 0, 0, 0), strict=True):  # fmt: skip
            log_list.append(end)  # an entry of no node, last: there is always one to index
        self.parent = np.frombuffer(parent, dtype="int32")
        self.attached = np.frombuffer(attached, dtype="int64")
        # the log sorted by root, then time (appended in time order: a stable sort keeps it)
        self.log = _AsOf(np.frombuffer(log_root, dtype="int32"),
                         np.frombuffer(log_time, dtype="int64"))  # fmt: skip
        del log_root, log_time
        order = self.log.sort()
        self.log_parties = np.frombuffer(log_parties, dtype="int32")[order]
        del log_parties
        self.log_seizures = np.frombuffer(log_seizures, dtype="int32")[order]
        del log_seizures, order
        consignee, known = seizures
        self.own = _AsOf(consignee, known)
        self.own.sort()

    def roots_as_of(self, nodes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The root of each node of ``nodes`` (one row per node kind, one column per shipment;
        ``-1`` stays ``-1``) as of its shipment's time ``t``: parents attached strictly before
        ``t`` are followed (union by size: at most log2(nodes) steps), for the nodes still
        moving only."""
        root = nodes.ravel().astype("int64")
        n = nodes.shape[1]
        moving = np.flatnonzero(root >= 0)
        while moving.size:
            r = root[moving]
            up = self.parent[r]
            step = (up != r) & (self.attached[r] < t[moving % n])
            moving = moving[step]
            root[moving] = up[step]
        return root.reshape(nodes.shape)

    def answer(self, t: np.ndarray, consignee: np.ndarray, known_party: np.ndarray,
               identifiers: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Network size and seizures among the others of shipments declared at ``t`` with
        the consignee node ``consignee`` (a party known before ``t``: ``known_party``) and
        the identifier nodes ``identifiers`` (``-1`` = not declared)."""
        queried = np.stack([np.where(known_party, consignee, -1), *identifiers])
        roots = self.roots_as_of(queried, t)
        size = np.where(known_party, 0.0, 1.0)
        seized = np.zeros(len(t))
        log = self.log
        t_rank = log.rank(t)
        for j in range(len(roots)):
            root = roots[j]
            distinct = root >= 0
            for i in range(j):
                distinct &= root != roots[i]
            at = log.before(np.maximum(root, 0), t_rank) - 1
            entry = np.maximum(at, 0)
            logged = (at >= 0) & (log.code[entry] // log.width == root)
            alone = root < self.n_parties  # never merged nor seized before: its own party or none
            size += np.where(distinct, np.where(logged, self.log_parties[entry], alone), 0)
            seized += np.where(distinct & logged, self.log_seizures[entry], 0)
        # less the consignee's own seizures known before the shipment
        c = np.maximum(consignee, 0)
        own = self.own.before(c, self.own.rank(t)) - self.own.before(c, None)
        return size, seized - np.where(known_party, own, 0)


def offline_components(
    p: dict[str, np.ndarray],
    outcome_rows: np.ndarray,
    outcome_known: np.ndarray,
    outcome_seized: np.ndarray,
) -> dict[str, np.ndarray]:
    """Network size and seizures of every shipment as of its declaration: shipments declared
    at the same instant do not see each other, and a seizure counts only when known strictly
    before.

    A *partially persistent* union-find answers every shipment at once instead of replaying
    them one by one. Only what changes the graph is replayed, in time order, in Python: the
    first shipment of each distinct (consignee, identifier) link (a union) and each seizure
    becoming known - not every shipment. Unions are by size without path compression, so a
    node's parent never changes once set and records the time it was attached: the root of a
    node *as of* ``t`` is found by following parents attached strictly before ``t`` (at most
    log2(nodes) steps), for all shipments together in numpy. A consignee counts as a party
    from the start: by the time it is linked to anything, or asked about as a known party,
    it has declared. Every change of a root's parties and seizures is logged as ``(root,
    time, parties, seizures)``; a shipment reads its roots' last entries strictly before its
    time (none: the root's own one party or none). Equal, feature by feature, to the replay of
    :class:`LinkGraph` that the online state uses (tested). :func:`engine_components` runs the
    same from the engine's tables, for chosen rows."""
    n = len(p["t"])
    if n == 0:
        return {"net:size": np.zeros(0), "net:seizures": np.zeros(0)}
    t = np.asarray(p["t"], dtype="int64")
    node, n_nodes = link_nodes(p)
    cons = node["consignee"]
    has = cons >= 0
    n_parties = int(cons.max()) + 1 if has.any() else 0  # consignee nodes come first

    # what changes the graph: first links (in time order) and seizures known
    link_a, link_b, link_t = [], [], []
    for ident in IDENTIFIERS:
        ok = has & (node[ident] >= 0)
        pair = cons[ok] * n_nodes + node[ident][ok]
        order = np.lexsort((t[ok], pair))
        pair, first = pair[order], t[ok][order]
        new = np.ones(len(pair), dtype=bool)
        new[1:] = pair[1:] != pair[:-1]
        link_a.append(pair[new] // n_nodes)
        link_b.append(pair[new] % n_nodes)
        link_t.append(first[new])
    seized_rows = np.asarray(outcome_rows, dtype="int64")[np.asarray(outcome_seized, bool)]
    known = np.asarray(outcome_known, dtype="int64")[np.asarray(outcome_seized, bool)]
    seized_by = cons[seized_rows]
    known, seized_by = known[seized_by >= 0], seized_by[seized_by >= 0]
    a_node = np.concatenate([*link_a, seized_by])
    b_node = np.concatenate([*link_b, np.full(len(seized_by), -1)])  # -1: a seizure
    when = np.concatenate([*link_t, known])
    order = np.argsort(when, kind="stable")
    changes = [(a_node[order], b_node[order], when[order])]
    del a_node, b_node, when, order, link_a, link_b, link_t
    graph = _Graph(n_nodes, n_parties, changes, (seized_by, known))
    del changes

    first_t = np.full(max(n_parties, 1), np.iinfo(np.int64).max)
    np.minimum.at(first_t, cons[has], t[has])
    size, seized = np.empty(n), np.empty(n)
    for start in range(0, n, _QUERY_BLOCK):  # shipments answer independently: in blocks
        rows = slice(start, start + _QUERY_BLOCK)
        t_block, c_block = t[rows], cons[rows]
        known_party = (c_block >= 0) & (first_t[np.maximum(c_block, 0)] < t_block)
        size[rows], seized[rows] = graph.answer(
            t_block, c_block, known_party, [node[i][rows] for i in IDENTIFIERS]
        )
    return {"net:size": size, "net:seizures": seized}


ENGINE_KEYS: Final = {"consignee": "k_consignee", "phone": "k_phone", "address": "k_address",
                      "recipient": "k_recipient"}  # fmt: skip
"""The ``keys`` columns of :mod:`features.engine` holding the link graph's node codes."""


def engine_components(con, kept: str | None = None) -> dict[str, np.ndarray]:
    """:func:`offline_components` from the engine's ``keys`` and ``outcomes`` relations
    (:func:`features.engine.load_parquet`, integer codes) on a DuckDB connection, for the
    rows of the relation ``kept`` (a column ``row``; None = every shipment), in ``row`` order.

    What grows with the history stays in the engine, within its memory limit: the engine
    groups the shipments into distinct (consignee, identifier) links with their first time
    (most shipments repeat a link), joins the seizures to their consignees, sorts those
    changes by time and streams them to the replay in batches; it also finds each
    consignee's first declaration and streams the chosen rows' node codes in blocks, each
    answered as it arrives. Python holds the replayed graph (12 bytes a node, 16 bytes a
    logged change) and the answers of the chosen rows, never a per-shipment array of the
    whole history."""
    cols = ENGINE_KEYS
    maxima = con.execute(
        "SELECT " + ", ".join(f"max({c})" for c in cols.values()) + " FROM keys"
    ).fetchall()[0]
    offset, offsets = 0, {}
    for key, top in zip(cols, maxima, strict=True):
        offsets[key] = offset
        offset += int(top) + 1 if top is not None and top >= 0 else 0
    n_nodes, n_parties = offset, offsets["phone"]  # consignee nodes come first

    def node(key: str, alias: str = "") -> str:
        return f"{offsets[key]} + {alias}{cols[key]}"

    links = " UNION ALL ".join(
        f"SELECT k_consignee AS a, {node(key)} AS b, min(t) AS w FROM keys "
        f"WHERE k_consignee IS NOT NULL AND {cols[key]} IS NOT NULL GROUP BY ALL"
        for key in IDENTIFIERS
    )
    seizures_sql = (
        "SELECT k.k_consignee AS a, o.known AS w FROM outcomes AS o JOIN keys AS k "
        "ON k.row = o.row WHERE o.seized = 1 AND k.k_consignee IS NOT NULL"
    )
    seizures = con.sql(seizures_sql).to_arrow_table()
    own = (seizures.column("a").to_numpy().astype("int64"),
           seizures.column("w").to_numpy().astype("int64"))  # fmt: skip
    del seizures
    changes_sql = (
        f"SELECT a, b, w FROM ({links} UNION ALL SELECT a, -1 AS b, w FROM ({seizures_sql})) "
        "ORDER BY w"
    )

    def changes():  # streamed: nothing else runs on ``con`` until it is read to the end
        with con.sql(changes_sql).to_arrow_reader(batch_size=_EVENT_BLOCK) as reader:
            for batch in reader:
                yield tuple(batch.column(i).to_numpy().astype("int64") for i in range(3))

    graph = _Graph(n_nodes, n_parties, changes(), own)

    chosen = "keys" if kept is None else f"(SELECT k.* FROM keys AS k SEMI JOIN {kept} USING (row))"
    n = con.execute(f"SELECT count(*) FROM {chosen}").fetchall()[0][0]
    rows = con.sql(f"SELECT row FROM {chosen} ORDER BY row").to_arrow_table()
    row_order = rows.column("row").to_numpy().astype("int64")
    del rows
    nodes = ", ".join(f"coalesce({node(key, 'k.')}, -1) AS n_{key}" for key in IDENTIFIERS)
    query = (
        f"SELECT k.row, k.t, coalesce(k.k_consignee, -1) AS c, "
        "coalesce(f.first_t < k.t, false) AS known_party, "
        f"{nodes} FROM {chosen} AS k LEFT JOIN (SELECT k_consignee, min(t) AS first_t "
        "FROM keys WHERE k_consignee IS NOT NULL GROUP BY ALL) AS f "
        "ON f.k_consignee = k.k_consignee"
    )
    size, seized = np.empty(n), np.empty(n)
    with con.sql(query).to_arrow_reader(batch_size=_QUERY_BLOCK) as reader:
        for batch in reader:
            at = np.searchsorted(row_order, batch.column(0).to_numpy())
            t = batch.column(1).to_numpy().astype("int64")
            c = batch.column(2).to_numpy().astype("int64")
            known_party = batch.column(3).to_numpy(zero_copy_only=False).astype(bool)
            idents = [batch.column(4 + i).to_numpy().astype("int64") for i in range(3)]
            size[at], seized[at] = graph.answer(t, c, known_party, idents)
    return {"net:size": size, "net:seizures": seized}


def network_features(p: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> dict:
    """One-hop links through the shipment's identifiers and its network component."""
    out: dict[str, np.ndarray] = {}
    for ident, feat, pair in (
        ("phone", "phone", "consignee_phone"),
        ("address", "address", "consignee_address"),
        ("recipient", "recipient_code", "consignee_recipient"),
    ):
        # the consignee itself counts among the identifier's consignees if it used it before
        used_before = raw[f"n:{pair}"] > 0
        distinct = raw[f"d:{ident}:consignee"]
        out[f"{feat}_other_consignees"] = distinct - np.where(used_before, 1.0, 0.0)
        own = raw[f"seiz:{pair}"]
        out[f"{feat}_linked_seizures"] = raw[f"seiz:{ident}"] - np.where(np.isnan(own), 0.0, own)
    out["network_size"] = raw["net:size"]
    out["network_seizures"] = raw["net:seizures"]
    return out
