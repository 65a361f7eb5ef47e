"""What an officer sees of a party in the online state: its profile and the consignees linked
to it through shared identifiers."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.errors import ContractError
from features.history import COUNTERPARTY, ROLES
from features.manifest import NS_PER_DAY, norm_text
from features.online.storage import StateStorage


class OfficerViews(StateStorage):
    """What the state knows of a party, for the officer's pages."""

    def party_profile(self, role: str, party_id: str) -> dict[str, Any]:
        """What the state knows of one party (``role`` in shipper, consignee, forwarder,
        declarant, recipient) as of the latest declaration it holds: first seen, shipments
        (total and in the last 365 days), inspections, seizures, distinct counterparties,
        origins and HS chapters. Unknown parties get zeros and ``first_seen`` None."""
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
            "shipments_365d": timeline.count_between(now - 365 * NS_PER_DAY, now)
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
        via: dict[str, list[str]] = {}
        for ident in self._links.get(("consignee", key), ()):
            for other in self._links.get(ident, ()):
                if other != key:
                    via.setdefault(other, []).append(ident[0])
        out = []
        for other, kinds in via.items():
            seiz = self._seiz["consignee"].get(other)
            out.append(
                {
                    "party_id": self._display.get(other, other),
                    "role": "consignee",
                    "shared": sorted(set(kinds)),
                    "seizures": len(seiz.times) if seiz else 0,
                }
            )
        return sorted(out, key=lambda d: (-d["seizures"], d["party_id"]))
