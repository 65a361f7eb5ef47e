"""What an officer sees of a party in the online state: its profile, the consignees linked
to it through shared identifiers or using an identifier, and the network around it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from features.errors import ContractError
from features.history import COUNTERPARTY, ROLES, window_start
from features.manifest import norm_text
from features.network import IDENTIFIERS
from features.online.storage import StateStorage


class OfficerViews(StateStorage):
    """What the state knows of a party, for the officer's pages."""

    def party_profile(self, role: str, party_id: str) -> dict[str, Any]:
        """What the state knows of one party (``role`` in shipper, consignee, forwarder,
        declarant, recipient) as of the latest declaration it holds: first seen, shipments
        (total and in the last 365 days), inspections, seizures, distinct counterparties,
        origins and HS chapters (``shipments_365d``: the 365 UTC days before that declaration's
        day and its day so far, as the features count windows). Unknown parties get zeros and
        ``first_seen`` None."""
        if role not in ROLES:
            raise ContractError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        key = norm_text(party_id)
        now = (self._now if self._now is not None else 0) + 1
        timeline = self._ship[role].get(key) if key is not None else None
        insp = self._insp[role].get(key) if key is not None else None
        seiz = self._seiz[role].get(key) if key is not None else None

        def distinct(value: str) -> int:
            tl = self._distinct[(role, value)].get(key) if key is not None else None
            return len(tl.times) if tl else 0

        first = timeline.first() if timeline else None
        return {
            "role": role,
            "party_id": party_id,
            "first_seen": pd.Timestamp(first) if first is not None else None,
            "shipments": len(timeline.times) if timeline else 0,
            "shipments_365d": timeline.count_between(window_start(now, 365), now)
            if timeline
            else 0,
            "inspections": len(insp.times) if insp else 0,
            "seizures": len(seiz.times) if seiz else 0,
            "distinct_counterparties": distinct(COUNTERPARTY[role]),
            "distinct_origins": distinct("origin"),
            "distinct_hs_chapters": distinct("hs2"),
        }

    def linked_parties(self, party_id: str) -> list[dict[str, Any]]:
        """Consignees sharing a phone, address or recipient customs code with consignee
        ``party_id``: who, through which identifiers, and their seizures known so far;
        most seizures first."""
        key = norm_text(party_id)
        if key is None:
            return []
        return linked_from(key, self._identifiers_of, self._members_of, self._consignee)

    def _identifiers_of(self, consignee: str) -> list[tuple[str, str]]:
        return list(self._links.get(("consignee", consignee), ()))

    def _members_of(self, ident: tuple[str, str]) -> list[str]:
        return list(self._links.get(ident, ()))

    def consignees_of(self, ident: str, value: str) -> list[dict[str, Any]]:
        """The consignees that declared an identifier (``ident`` in phone, address,
        recipient; ``value`` as the features key it), with their shipments and seizures known
        so far; most seizures first."""
        if ident not in IDENTIFIERS:
            raise ContractError(f"ident must be one of {', '.join(IDENTIFIERS)}; got {ident!r}")
        out = [self._consignee(c) for c in self._links.get((ident, value), ())]
        return sorted(out, key=lambda d: (-d["seizures"], d["party_id"]))

    def _consignee(self, key: str) -> dict[str, Any]:
        seiz = self._seiz["consignee"].get(key)
        ships = self._ship["consignee"].get(key)
        return {
            "key": key,
            "party_id": self._display.get(key, key),
            "shipments": len(ships.times) if ships else 0,
            "seizures": len(seiz.times) if seiz else 0,
        }

    def component(
        self, kind: str, value: str, *, max_parties: int = 150, hub: int = 8
    ) -> dict[str, Any]:
        """The network around a consignee or an identifier (:func:`walk_component` over the
        links the state holds)."""
        return walk_component(
            kind,
            value,
            self._identifiers_of,
            self._members_of,
            self._consignee,
            max_parties=max_parties,
            hub=hub,
        )


def linked_from(
    key: str,
    identifiers_of: Callable[[str], list[tuple[str, str]]],
    members_of: Callable[[tuple[str, str]], list[str]],
    consignee: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The consignees sharing an identifier with consignee ``key`` (normalised), through
    which identifiers, with their seizures: one definition for the memory state and the
    store (``identifiers_of`` a consignee's identifiers, ``members_of`` an identifier's
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
