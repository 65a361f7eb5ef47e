"""How an officer's views walk the link graph: the consignees linked to a party through shared
identifiers, and the network around it, over any source of identifier/member lookups (the
store's online aggregates, :class:`serving.store.online.StoreViews`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from features.errors import ContractError
from features.network import IDENTIFIERS


def linked_from(
    key: str,
    identifiers_of: Callable[[str], list[tuple[str, str]]],
    members_of: Callable[[tuple[str, str]], list[str]],
    consignee: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The consignees sharing an identifier with consignee ``key`` (normalised), through
    which identifiers, with their seizures, over any source of lookups
    (``identifiers_of`` a consignee's identifiers, ``members_of`` an identifier's
    consignees, ``consignee`` a consignee's display id, shipments and seizures)."""
    via: dict[str, list[str]] = {}
    for ident in identifiers_of(key):
        for other in members_of(ident):
            if other != key:
                via.setdefault(other, []).append(ident[0])
    out = []
    for other, kinds in via.items():
        info = consignee(other)
        out.append(
            {
                "party_id": info["party_id"],
                "role": "consignee",
                "shared": sorted(set(kinds)),
                "seizures": info["seizures"],
            }
        )
    return sorted(out, key=lambda d: (-d["seizures"], d["party_id"]))


def walk_component(
    kind: str,
    value: str,
    identifiers_of: Callable[[str], list[tuple[str, str]]],
    members_of: Callable[[tuple[str, str]], list[str]],
    consignee: Callable[[str], dict[str, Any]],
    *,
    max_parties: int = 150,
    hub: int = 8,
) -> dict[str, Any]:
    """The network around a consignee (``kind`` consignee) or an identifier (phone,
    address, recipient), ``value`` as the features key it: consignees joined by shared
    identifiers, walked outwards breadth first up to ``max_parties`` consignees (the links
    read through ``identifiers_of`` / ``members_of``, each consignee through ``consignee``,
    as :func:`linked_from`).

    Returns ``parties`` (key, display id, shipments, seizures, ``hops``: how many shared
    identifiers away from the start),
    ``links`` (two consignees and the identifiers they share) and ``hubs``: identifiers
    shared by more than ``hub`` consignees are not walked through (a broker's phone
    would join hundreds of strangers) but kept as one node with their number of
    consignees and links to the ones already in the network; ``truncated`` says the
    walk stopped at ``max_parties``."""
    if kind == "consignee":
        start: list[tuple[str, Any]] = [("consignee", value)]
    elif kind in IDENTIFIERS:
        start = [(kind, value)]
    else:
        raise ContractError(f"kind must be consignee or one of {', '.join(IDENTIFIERS)}")
    parties: dict[str, int] = {}
    hubs: dict[tuple[str, str], dict[str, Any]] = {}
    queue = list(start)
    hops = {start[0]: 0}
    truncated = False
    i = 0
    while i < len(queue):
        node = queue[i]
        i += 1
        depth = hops[node]
        if node[0] == "consignee":
            if node[1] not in parties:
                if len(parties) >= max_parties:
                    truncated = True
                    continue
                parties[node[1]] = depth
            for ident in identifiers_of(node[1]):
                if ident not in hops:
                    hops[ident] = depth + 1
                    queue.append(ident)
            continue
        members = members_of(node)
        if len(members) > hub and i > 1:  # the start is walked however shared
            hubs[node] = {"kind": node[0], "value": node[1], "parties": len(members)}
            continue
        for member in members:
            other = ("consignee", member)
            if other not in hops:
                hops[other] = depth + 1
                queue.append(other)
    links: dict[tuple[str, str], set[str]] = {}
    for ident, members in ((k, members_of(k)) for k in hops if k[0] != "consignee"):
        if ident in hubs:
            continue
        inside = [m for m in members if m in parties]
        for a_i, a in enumerate(inside):
            for b in inside[a_i + 1 :]:
                links.setdefault((a, b) if a < b else (b, a), set()).add(ident[0])
    hub_links = []
    for ident in hubs:
        hub_links += [(ident, m) for m in members_of(ident) if m in parties]
    nodes = []
    # hops: shared identifiers walked from the start (consignee, identifier, consignee...)
    shift = 0 if kind == "consignee" else 1
    for key, depth in parties.items():
        party = dict(consignee(key))
        party["hops"] = (depth + shift) // 2
        nodes.append(party)
    return {
        "parties": nodes,
        "links": [{"a": a, "b": b, "shared": sorted(k)} for (a, b), k in links.items()],
        "hubs": list(hubs.values()),
        "hub_links": [{"hub": f"{h[0]}:{h[1]}", "party": m} for h, m in hub_links],
        "truncated": truncated,
    }
