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


def offline_components(
    p: dict[str, np.ndarray],
    outcome_rows: np.ndarray,
    outcome_known: np.ndarray,
    outcome_seized: np.ndarray,
) -> dict[str, np.ndarray]:
    """Network size and seizures of every shipment as of its declaration: declarations and
    seizures are replayed in time order; shipments declared at the same instant do not see
    each other, and a seizure counts only when known strictly before."""
    n = len(p["t"])
    graph = LinkGraph()
    offset = 0
    node = {}
    for name in ("consignee", *IDENTIFIERS):
        codes = codes_of(p, name)
        node[name] = np.where(codes >= 0, codes + offset, -1)
        offset += int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    graph.grow(offset)
    cons = node["consignee"].tolist()
    ids = list(zip(*(node[i].tolist() for i in IDENTIFIERS), strict=True)) if n else []
    t = p["t"]
    order = np.argsort(t, kind="stable").tolist()
    times = t.tolist()
    seized_rows = outcome_rows[outcome_seized]
    seized_known = outcome_known[outcome_seized]
    s_order = np.argsort(seized_known, kind="stable")
    s_cons = [cons[r] for r in seized_rows[s_order].tolist()]
    s_known = seized_known[s_order].tolist()

    size = np.empty(n)
    seized = np.empty(n)
    is_party = [False] * offset
    i = j = 0
    while i < n:
        now = times[order[i]]
        while j < len(s_known) and s_known[j] < now:
            graph.add_seizure(s_cons[j])
            j += 1
        k = i
        while k < n and times[order[k]] == now:
            r = order[k]
            c = cons[r]
            size[r], seized[r] = graph.component(c, ids[r], c >= 0 and is_party[c])
            k += 1
        for r in order[i:k]:
            c = cons[r]
            if c >= 0:  # no consignee declared: nothing to link
                graph.add_shipment(c, ids[r], not is_party[c])
                is_party[c] = True
        i = k
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
