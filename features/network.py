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


def _nodes(p: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Node numbers of the link graph: consignees first, then each identifier (``-1`` = not
    declared), and how many nodes there are."""
    offset = 0
    node = {}
    for name in ("consignee", *IDENTIFIERS):
        codes = np.asarray(codes_of(p, name), dtype="int64")
        node[name] = np.where(codes >= 0, codes + offset, -1)
        offset += int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    return node, offset


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
    them one by one. Only what changes the graph is replayed, in time order, in Python: a
    consignee's first shipment (it becomes a party), the first shipment of each distinct
    (consignee, identifier) link (a union) and each seizure becoming known - not every
    shipment. Unions are by size without path compression, so a node's parent never changes
    once set and records the time it was attached: the root of a node *as of* ``t`` is found
    by following parents attached strictly before ``t`` (at most log2(nodes) steps), for all
    shipments together in numpy. Every change of a root's parties and seizures is logged as
    ``(root, time, parties, seizures)``; a shipment reads its roots' last entries strictly
    before its time. Equal, feature by feature, to the replay of :class:`LinkGraph` that the
    online state uses (tested)."""
    n = len(p["t"])
    if n == 0:
        return {"net:size": np.zeros(0), "net:seizures": np.zeros(0)}
    t = np.asarray(p["t"], dtype="int64")
    node, n_nodes = _nodes(p)
    cons = node["consignee"]
    has = cons >= 0

    # what changes the graph: first shipments of parties, first links, known seizures
    party_rows = np.flatnonzero(has)
    first_t = np.full(n_nodes, np.iinfo(np.int64).max)
    np.minimum.at(first_t, cons[party_rows], t[party_rows])
    parties = np.flatnonzero(first_t < np.iinfo(np.int64).max)
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
    rows = np.asarray(outcome_rows, dtype="int64")[np.asarray(outcome_seized, dtype=bool)]
    known = np.asarray(outcome_known, dtype="int64")[np.asarray(outcome_seized, dtype=bool)]
    seized_by = cons[rows]
    known = known[seized_by >= 0]
    seized_by = seized_by[seized_by >= 0]

    # one stream of changes in time order: 0 = new party, 1 = link, 2 = seizure
    kind = np.concatenate([np.zeros(len(parties), "int8"),
                           np.ones(sum(len(a) for a in link_a), "int8"),
                           np.full(len(seized_by), 2, "int8")])  # fmt: skip
    a_node = np.concatenate([parties, *link_a, seized_by])
    b_node = np.concatenate([np.full(len(parties), -1), *link_b, np.full(len(seized_by), -1)])
    when = np.concatenate([first_t[parties], *link_t, known])
    order = np.argsort(when, kind="stable")
    parent, attached, log = _replay(
        n_nodes, kind[order].tolist(), a_node[order].tolist(), b_node[order].tolist(),
        when[order].tolist(),
    )  # fmt: skip

    # every shipment's roots as of its time, and their parties and seizures then
    queried = np.stack([np.where(has & (first_t[np.maximum(cons, 0)] < t), cons, -1),
                        *(node[i] for i in IDENTIFIERS)])  # fmt: skip
    known_party = queried[0] >= 0
    roots = _roots_as_of(parent, attached, queried, t)
    log_root, log_time, log_parties, log_seizures = log
    times = np.unique(np.concatenate([log_time, t]))
    width = len(times) + 1
    log_key = log_root * width + np.searchsorted(times, log_time)
    by_key = np.argsort(log_key, kind="stable")  # stable: a root's changes stay in time order
    log_key = log_key[by_key]
    t_rank = np.searchsorted(times, t)
    size = np.where(known_party, 0.0, 1.0)
    seized = np.zeros(n)
    for j in range(len(queried)):
        root = roots[j]
        distinct = root >= 0
        for i in range(j):
            distinct &= root != roots[i]
        at = np.searchsorted(log_key, np.maximum(root, 0) * width + t_rank, side="left") - 1
        found = distinct & (at >= 0)
        at = np.maximum(at, 0)
        found &= log_root[by_key[at]] == root
        entry = by_key[at]
        size += np.where(found, log_parties[entry], 0)
        seized += np.where(found, log_seizures[entry], 0)
    # less the consignee's own seizures known before the shipment
    own_order = np.lexsort((known, seized_by))
    own_key = seized_by[own_order] * width + np.searchsorted(times, known[own_order])
    c = np.maximum(cons, 0)
    own = np.searchsorted(own_key, c * width + t_rank, side="left") - np.searchsorted(
        own_key, c * width, side="left"
    )
    seized -= np.where(known_party, own, 0)
    return {"net:size": size, "net:seizures": seized}


def _replay(n_nodes: int, kind: list, a: list, b: list, when: list):
    """The changes of the graph in time order (new party of ``a``, link ``a``-``b``, seizure
    on ``a``): union by size, no path compression. Returns each node's parent and the time it
    was attached to it, and the log of every root's ``(root, time, parties, seizures)``."""
    parent = list(range(n_nodes))
    attached = [0] * n_nodes
    weight = [1] * n_nodes
    parties = [0] * n_nodes
    seizures = [0] * n_nodes
    log_root, log_time, log_parties, log_seizures = [], [], [], []
    for k, x, y, at in zip(kind, a, b, when, strict=True):
        while parent[x] != x:
            x = parent[x]
        if k == 0:
            parties[x] += 1
        elif k == 2:
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
            parties[x] += parties[y]
            seizures[x] += seizures[y]
            if not (parties[y] or seizures[y]):
                continue  # the totals of x did not change
        log_root.append(x)
        log_time.append(at)
        log_parties.append(parties[x])
        log_seizures.append(seizures[x])
    log = (
        np.array(log_root, dtype="int64"),
        np.array(log_time, dtype="int64"),
        np.array(log_parties, dtype="float64"),
        np.array(log_seizures, dtype="float64"),
    )
    return np.array(parent, dtype="int64"), np.array(attached, dtype="int64"), log


def _roots_as_of(parent: np.ndarray, attached: np.ndarray, nodes: np.ndarray, t: np.ndarray):
    """The root of each node (``-1`` stays ``-1``) as of its shipment's time ``t``: parents
    attached strictly before ``t`` are followed (union by size: at most log2(nodes) steps)."""
    root = nodes.copy()
    live = root >= 0
    while True:
        safe = np.where(live, root, 0)
        step = live & (parent[safe] != safe) & (attached[safe] < t)
        if not step.any():
            return root
        root = np.where(step, parent[safe], root)
        live = step


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
