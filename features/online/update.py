"""Adding to an online state: declared shipments (a whole manifest one dimension at a time),
amendments, and inspection reports with their corrections."""

from __future__ import annotations

import math
from bisect import insort
from typing import Any

import pandas as pd

from features.errors import ContractError
from features.history import (
    DISTINCT,
    OUTCOME_EVENT_COLUMNS,
    SHIPMENT_COUNTS,
    VALUE_MEANS,
    Timeline,
)
from features.manifest import prepare
from features.network import IDENTIFIERS
from features.online.storage import (
    FOUND,
    KEY_DIMS,
    MIRROR,
    OUTCOME_DIMS,
    ShipmentRecord,
    StateStorage,
    optional_column,
)

_MIRRORED_DIMS = frozenset(MIRROR.values())

_MERGE_FROM = 256
"""Timeline length from which a manifest's late events are merged at once, not inserted."""


class Updates(StateStorage):
    """Adds declared shipments, amendments and inspection reports to a state."""

    def add_shipments(
        self, shipments: pd.DataFrame, *, prepared: dict[str, Any] | None = None
    ) -> None:
        """Remember declared shipments (once per ``shipment_id``; repeats are ignored).
        ``prepared``: :meth:`prepare` of these very ``shipments``, if already computed (and,
        if :meth:`features` saw it first, the timelines it found, so they are not looked up
        again).

        Adds a whole manifest one dimension at a time, in declaration order; the state is
        the same as adding the shipments one by one in that order (tests compare it with
        :meth:`from_history`)."""
        if len(shipments) == 0:
            return
        p = prepared if prepared is not None else self.prepare(shipments)
        ids = [str(v) for v in shipments["shipment_id"].tolist()]
        t = p["t"].tolist()
        rows, seen, known = [], set(), self._shipments
        for i in sorted(range(len(ids)), key=t.__getitem__):
            sid = ids[i]
            if sid not in known and sid not in seen:
                seen.add(sid)
                rows.append(i)
        if not rows:
            return
        found = p.get(FOUND)
        found = found[1] if found is not None and found[0] is self else {}
        keys = {dim: p[dim].tolist() for dim in KEY_DIMS}
        times = [t[i] for i in rows]

        # A late event (earlier than one its timeline already holds) is inserted in place in
        # a short timeline; long timelines, and any with running sums (an insertion shifts
        # every sum after it), get their late events merged in one pass at the end.
        late: dict[int, tuple[Timeline, list, list]] = {}

        # shipment counts; the first time of each combination before each row, for the
        # distinct counts mirrored on it
        first_before: dict[str, list[Any] | None] = {}
        for dim in SHIPMENT_COUNTS:
            column = [keys[dim][i] for i in rows]
            tls = _found_rows(found.get(("ship", dim)), rows)
            firsts = first_before[dim] = [None] * len(rows) if dim in _MIRRORED_DIMS else None
            table = self._ship[dim]
            for j, (key, tl, when) in enumerate(zip(column, tls, times, strict=True)):
                if key is None:
                    continue
                if tl is None:
                    tl = table.get(key)
                    if tl is None:
                        tl = table[key] = Timeline()
                events = tl.times
                if not events or when >= events[-1]:
                    if firsts is not None and events:
                        firsts[j] = events[0]
                    events.append(when)
                elif firsts is not None:  # late, and its first time is needed row by row
                    firsts[j] = events[0]
                    insort(events, when)
                else:
                    _late(late, tl, when)

        # distinct values: a (key, value) pair counts from its first time
        for pair in DISTINCT:
            lefts = [keys[pair[0]][i] for i in rows]
            rights = [keys[pair[1]][i] for i in rows]
            tls = _found_rows(found.get(("distinct", pair)), rows)
            mirror = MIRROR.get(pair)
            mirrored = first_before[mirror] if mirror is not None else None
            pair_firsts = self._pair_first[pair]
            table = self._distinct[pair]
            for j, (key, value, tl, when) in enumerate(zip(lefts, rights, tls, times, strict=True)):
                if key is None or value is None:
                    continue
                if mirrored is not None:
                    old = mirrored[j]
                    if old is not None and old <= when:
                        continue
                else:
                    old = pair_firsts.get((key, value))
                    if old is not None and old <= when:
                        continue
                    pair_firsts[(key, value)] = when
                if tl is None:
                    tl = table.get(key)
                    if tl is None:
                        tl = table[key] = Timeline()
                if old is not None:
                    tl.remove(old)
                events = tl.times
                if not events or when >= events[-1]:
                    events.append(when)
                else:
                    _late(late, tl, when)

        # values per kilogram (finite only), with running sums
        lvk = p["log_value_per_kg"][rows].tolist()
        for dim in VALUE_MEANS:
            column = [keys[dim][i] for i in rows]
            tls = _found_rows(found.get(("values", dim)), rows)
            table = self._values[dim]
            for key, tl, when, value in zip(column, tls, times, lvk, strict=True):
                if key is None or not math.isfinite(value):
                    continue
                if tl is None:
                    tl = table.get(key)
                    if tl is None:
                        tl = table[key] = Timeline(with_sums=True)
                events = tl.times
                if not events or when >= events[-1]:
                    events.append(when)
                    tl.sums.append(tl.sums[-1] + value)
                else:  # shifting every running sum after it: always merged at the end
                    _defer(late, tl, when, value)
        for tl, when, values in late.values():  # events earlier than ones already held
            tl.add_many(when, values)

        # description words per chapter, the link graph, officer views, shipment records
        words, graph, is_party, links = self._words, self._graph, self._is_party, self._links
        hs2s, tokens, ports = keys["hs2"], p["tokens"].tolist(), p["ports"].tolist()
        consignees = keys["consignee"]
        idents = [(ident, keys[ident]) for ident in IDENTIFIERS]
        outcome_keys = [keys[d] for d in OUTCOME_DIMS]
        raw_consignee = optional_column(shipments, "consignee_id")
        node_of = self._node
        nodes_found, idents_found = found.get("nodes", (None, None))
        for i, when in zip(rows, times, strict=True):
            hs2 = hs2s[i]
            if hs2 is not None:
                for word in tokens[i]:
                    wk = f"{hs2}|{word}"
                    if when < words.get(wk, when + 1):
                        words[wk] = when
            consignee = consignees[i]
            # nodes features() found are kept (a node's number never changes); -1 there
            # means absent or new since, so look it up (and create it) here
            node = nodes_found[i] if nodes_found is not None else -1
            if node < 0:
                node = node_of("consignee", consignee)
            if idents_found is None:
                nodes = tuple(node_of(d, v[i]) for d, v in idents)
            else:
                nodes = tuple(
                    n if n >= 0 else node_of(d, v[i])
                    for n, (d, v) in zip(idents_found[i], idents, strict=True)
                )
            if consignee is not None:  # else: no party to link or remember
                graph.add_shipment(node, nodes, not is_party[node])
                is_party[node] = True
                if consignee not in self._display:
                    self._display[consignee] = " ".join(str(raw_consignee[i]).split())
            mine = None
            for ident, values in idents:
                value = values[i]
                if value is not None and consignee is not None:
                    key = (ident, value)
                    members = links.get(key)
                    if members is None:
                        links[key] = [consignee]
                    elif consignee not in members:
                        members.append(consignee)
                    if mine is None:
                        mine = links.get(("consignee", consignee))
                        if mine is None:
                            mine = links[("consignee", consignee)] = []
                    if key not in mine:
                        mine.append(key)
            record = ShipmentRecord(
                when, tuple(k[i] for k in outcome_keys), ports[i], node, consignee
            )
            sid = ids[i]
            known[sid] = record
            held = self._later.pop(sid, None)
            if held is not None:  # amended before its first version reached the state
                self._amend(sid, record, held, counted=False)
            for result_at, seized in self._outcomes.get(sid, {}).values():
                self._apply_outcome(record, result_at, seized)
        latest = max(times)
        if self._now is None or latest > self._now:
            self._now = latest

    def add_outcomes(self, outcomes: pd.DataFrame) -> None:
        """Remember inspection reports, one in force per ``(shipment_id, inspected_at)``: an
        identical report again changes nothing; a different one (a correction) takes the
        place of the earlier one."""
        if outcomes is None or len(outcomes) == 0:
            return
        missing = [c for c in OUTCOME_EVENT_COLUMNS if c not in outcomes]
        if missing:
            raise ContractError(f"outcomes lack required column(s): {', '.join(missing)}")
        ids = [str(v) for v in outcomes["shipment_id"].tolist()]
        inspected = _ns_list(outcomes["inspected_at"], "inspected_at")
        result_at = _ns_list(outcomes["result_at"], "result_at")
        seized = [str(r).casefold() == "seized" for r in outcomes["result"].tolist()]
        for sid, at, known, hit in zip(ids, inspected, result_at, seized, strict=True):
            report = (known, hit)
            reports = self._outcomes.get(sid)
            if reports is None:
                reports = self._outcomes[sid] = {}
            old = reports.get(at)
            if old == report:
                continue
            reports[at] = report
            record = self._shipments.get(sid)
            if record is None:  # counted when the shipment is added
                continue
            if old is not None:
                self._apply_outcome(record, *old, undo=True)
            self._apply_outcome(record, known, hit)

    def amend_shipments(self, shipments: pd.DataFrame, versions: list[int]) -> None:
        """Take the declarations now in force of amended shipments (contract rows; their
        ``versions``, 2 and up): a shipment's inspections count against the parties, places
        and goods in force, so a seizure moves from the consignee first declared to the one
        the shipment was amended to. Its place in the history of other shipments stays as
        first declared (its time, and its declaration in the counts, first-seen times,
        distinct values and links: those cannot be taken back). An older version than the one
        held changes nothing, so amendments may arrive in any order."""
        if len(shipments) == 0:
            return
        p = prepare(shipments, tuple_keys=True)
        ids = [str(v) for v in shipments["shipment_id"].tolist()]
        keys = [p[d].tolist() for d in OUTCOME_DIMS]
        consignees = p["consignee"].tolist()
        ports = p["ports"].tolist()
        for i, sid in enumerate(ids):
            amendment = (
                int(versions[i]),
                tuple(k[i] for k in keys),
                ports[i],
                consignees[i],
            )
            record = self._shipments.get(sid)
            if record is None:
                held = self._later.get(sid)
                if held is None or held[0] < amendment[0]:
                    self._later[sid] = amendment
                continue
            self._amend(sid, record, amendment, counted=True)

    def _amend(self, sid: str, record: ShipmentRecord, amendment: tuple, *, counted: bool) -> None:
        """Put an amendment in force on a shipment's record, moving the reports already
        counted on it (``counted``) from the old keys to the new ones."""
        version, keys, ports, consignee = amendment
        if version <= record.version:
            return
        reports = list(self._outcomes.get(sid, {}).values()) if counted else []
        for result_at, seized in reports:
            self._apply_outcome(record, result_at, seized, undo=True)
        record.version = version
        record.keys = keys
        record.ports = ports
        record.consignee = consignee
        record.node = self._node("consignee", consignee)
        for result_at, seized in reports:
            self._apply_outcome(record, result_at, seized)

    def _apply_outcome(
        self, record: ShipmentRecord, result_at: int, seized: bool, *, undo: bool = False
    ) -> None:
        """Count one report on the shipment's keys (``undo``: take back a report counted
        before, which a correction replaces)."""
        known = max(result_at, record.t)

        def count(table: dict, key) -> None:
            if undo:
                table[key].remove(known)
            else:
                _timeline(table, key).add(known)

        for dim, key in zip(OUTCOME_DIMS, record.keys, strict=True):
            if key is None:
                continue
            count(self._insp[dim], key)
            if seized:
                count(self._seiz[dim], key)
        for port in record.ports:
            count(self._port_insp, port)
            if seized:
                count(self._port_seiz, port)
        if seized:
            if undo:
                self._graph.remove_seizure(record.node)
            else:
                self._graph.add_seizure(record.node)


def _found_rows(found: list | None, rows: list[int]) -> list:
    """The timelines :meth:`OnlineFeatureState.features` found for ``rows`` (None: look up)."""
    if found is None:
        return [None] * len(rows)
    return [found[i] for i in rows]


def _late(late: dict, timeline: Timeline, when: int) -> None:
    """A late event of a timeline without sums (an equal time's place among equals does not
    matter): in place if the timeline is short, else merged with the others at the end."""
    if len(timeline.times) < _MERGE_FROM:
        insort(timeline.times, when)
    else:
        _defer(late, timeline, when)


def _defer(late: dict, timeline: Timeline, when: int, value: float = 0.0) -> None:
    entry = late.get(id(timeline))
    if entry is None:
        late[id(timeline)] = (timeline, [when], [value])
    else:
        entry[1].append(when)
        entry[2].append(value)


def _timeline(table: dict, key: str) -> Timeline:
    timeline = table.get(key)
    if timeline is None:
        timeline = table[key] = Timeline()
    return timeline


def _ns_list(column: pd.Series, name: str) -> list[int]:
    values = pd.to_datetime(column)
    if values.isna().any():
        raise ContractError(f"outcomes: {name} is missing on some rows")
    return values.to_numpy(dtype="datetime64[ns]").astype("int64").tolist()
