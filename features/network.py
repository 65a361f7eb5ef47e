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
  point-in-time graph when shipments are scored as they are declared.

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
"""Shipments answered at once by :func:`offline_components` (bounds its temporary arrays)."""


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
    :class:`LinkGraph` that the online state uses (tested)."""
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
    parent, attached, log = _replay(n_nodes, n_parties, a_node[order], b_node[order], when[order])
    del a_node, b_node, when, order, link_a, link_b, link_t

    # times as ranks among the shipments' times: e < t  <=>  rank(e) < rank(t)
    sorted_t = t if bool((t[1:] >= t[:-1]).all()) else np.sort(t)
    width = n + 1

    def rank(times: np.ndarray) -> np.ndarray:
        return np.searchsorted(sorted_t, times, side="right")

    first_t = np.full(max(n_parties, 1), np.iinfo(np.int64).max)
    np.minimum.at(first_t, cons[has], t[has])
    # a root's parties and seizures as of a shipment: its last log entry before it (and a
    # last entry of no root, so that there is always one to index)
    ends = (-1, 0, 0, 0)
    log_root, log_time, log_parties, log_seizures = (
        np.append(v, end) for v, end in zip(log, ends, strict=True)
    )
    log_key = np.where(log_root >= 0, log_root * width + rank(log_time), np.iinfo(np.int64).max)
    by_key = np.argsort(log_key, kind="stable")  # stable: a root's changes stay in time order
    log_key = log_key[by_key]
    own_key = np.sort(seized_by * width + rank(known))  # each consignee's own seizures

    size, seized = np.empty(n), np.empty(n)
    for start in range(0, n, _QUERY_BLOCK):  # shipments answer independently: in blocks
        rows = slice(start, start + _QUERY_BLOCK)
        t_block, c_block = t[rows], cons[rows]
        t_rank = rank(t_block)
        known_party = (c_block >= 0) & (first_t[np.maximum(c_block, 0)] < t_block)
        queried = np.stack([np.where(known_party, c_block, -1),
                            *(node[i][rows] for i in IDENTIFIERS)])  # fmt: skip
        roots = _roots_as_of(parent, attached, queried, t_block)
        s_block = np.where(known_party, 0.0, 1.0)
        z_block = np.zeros(len(t_block))
        for j in range(len(roots)):
            root = roots[j]
            distinct = root >= 0
            for i in range(j):
                distinct &= root != roots[i]
            at = np.searchsorted(log_key, np.maximum(root, 0) * width + t_rank) - 1
            entry = by_key[np.maximum(at, 0)]
            logged = (at >= 0) & (log_root[entry] == root)
            alone = root < n_parties  # never merged nor seized before: its own party or none
            s_block += np.where(distinct, np.where(logged, log_parties[entry], alone), 0)
            z_block += np.where(distinct & logged, log_seizures[entry], 0)
        # less the consignee's own seizures known before the shipment
        c = np.maximum(c_block, 0) * width
        own = np.searchsorted(own_key, c + t_rank) - np.searchsorted(own_key, c)
        size[rows] = s_block
        seized[rows] = z_block - np.where(known_party, own, 0)
    return {"net:size": size, "net:seizures": seized}


def _replay(n_nodes: int, n_parties: int, a: np.ndarray, b: np.ndarray, when: np.ndarray):
    """The changes of the graph in time order (a link ``a``-``b``, or a seizure on ``a`` when
    ``b`` is -1): union by size, no path compression; nodes below ``n_parties`` are
    consignees (one party each). Returns each node's parent and the time it was attached to
    it, and the log of every change of a root's ``(root, time, parties, seizures)``. The
    state is compact arrays (8 bytes a node each, no Python int per node) and the changes are
    read in blocks, so memory is the nodes', not the events'."""
    parent = array("q", range(n_nodes))
    attached = array("q", bytes(8 * n_nodes))
    weight = array("q", [1]) * n_nodes
    parties = array("q", [1]) * n_parties + array("q", bytes(8 * (n_nodes - n_parties)))
    seizures = array("q", bytes(8 * n_nodes))
    log_root, log_time, log_parties, log_seizures = (array("q") for _ in range(4))
    block = 1 << 16
    for start in range(0, len(a), block):
        end = start + block
        for x, y, at in zip(a[start:end].tolist(), b[start:end].tolist(),
                            when[start:end].tolist(), strict=True):  # fmt: skip
            while parent[x] != x:
                x = parent[x]
            if y < 0:
                seizures[x] += 1
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
                if not (parties[y] or seizures[y]):
                    continue  # an identifier alone: the totals of x do not change
                parties[x] += parties[y]
                seizures[x] += seizures[y]
            log_root.append(x)
            log_time.append(at)
            log_parties.append(parties[x])
            log_seizures.append(seizures[x])
    log = tuple(np.frombuffer(v, dtype="int64") for v in (log_root, log_time, log_parties,
                                                          log_seizures))  # fmt: skip
    return np.frombuffer(parent, dtype="int64"), np.frombuffer(attached, dtype="int64"), log


def _roots_as_of(parent: np.ndarray, attached: np.ndarray, nodes: np.ndarray, t: np.ndarray):
    """The root of each node of ``nodes`` (one row per node kind, one column per shipment;
    ``-1`` stays ``-1``) as of its shipment's time ``t``: parents attached strictly before
    ``t`` are followed (union by size: at most log2(nodes) steps), for the nodes still moving
    only."""
    root = nodes.ravel().copy()
    n = nodes.shape[1]
    moving = np.flatnonzero(root >= 0)
    while moving.size:
        r = root[moving]
        up = parent[r]
        step = (up != r) & (attached[r] < t[moving % n])
        moving = moving[step]
        root[moving] = up[step]
    return root.reshape(nodes.shape)


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
