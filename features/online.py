"""The online feature state: the history the scoring service keeps in memory.

It holds, per key (party, place, commodity, identifier, combination), the sorted times of
earlier declarations and of known inspection results, and answers the same point-in-time
questions as the offline pipeline with binary search, then finishes the numbers with the same
functions (:func:`features.pipeline.feature_columns` and ``feature_frame``). A parity test
replays a simulated month through both and compares every feature of every shipment.

Time semantics of :meth:`OnlineFeatureState.features`: each shipment is described as of its own
``declared_at`` using what was added to the state before: earlier declarations and results
known (``max(result_at, declared_at)``) strictly before it. Serving scores shipments as they
are declared, so that is "now". A shipment declared in the past relative to the state is still
computed as of its own time for every history, change and one-hop network feature (the state
keeps full timelines); only the two whole-network features (``network_size``,
``network_seizures``) describe the link graph as the state holds it now, because connected
components cannot be taken back to an earlier time.

Adding is idempotent: a shipment is counted once per ``shipment_id`` (re-scoring never counts
it twice; the first version added wins; an amendment, :meth:`OnlineFeatureState.amend_shipments`,
moves only where its inspections count) and an inspection once per ``(shipment_id,
inspected_at)``: a later, different report of the same inspection (a correction) replaces the
earlier one's effect, so the report in force counts, as when the state is rebuilt from the
reports in force. An outcome whose shipment is not in the state yet is kept and applied when
the shipment is added.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features import history
from features.catalog import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.contracts import REQUIRED_SHIPMENT_COLUMNS, AttributeSpec
from features.errors import ContractError
from features.history import (
    COUNTERPARTY,
    DISTINCT,
    FIRST_SEEN,
    OUTCOME_COUNTS,
    ROLES,
    SHIPMENT_COUNTS,
    VALUE_MEANS,
    Timeline,
    smoothed_rate,
)
from features.manifest import NS_PER_DAY, norm_text, prepare
from features.network import IDENTIFIERS, LinkGraph
from features.pipeline import attribute_values, feature_columns, feature_frame

_NAN = math.nan
_OUTCOME_DIMS = tuple(OUTCOME_COUNTS)
_IDENT_PREFIX = {"consignee": "c:", "phone": "p:", "address": "a:", "recipient": "r:"}
_KEY_DIMS = tuple(
    sorted(
        set(SHIPMENT_COUNTS)
        | set(OUTCOME_COUNTS)
        | set(VALUE_MEANS)
        | {d for pair in DISTINCT for d in pair}
        | {"hs2", "consignee", *IDENTIFIERS}
    )
)


_MIRROR = {
    ("shipper", "consignee"): "shipper_consignee",
    ("consignee", "shipper"): "shipper_consignee",
    ("phone", "consignee"): "consignee_phone",
    ("address", "consignee"): "consignee_address",
    ("recipient", "consignee"): "consignee_recipient",
}
"""Distinct-count pairs whose first time is the first shipment of a combination key the state
already keeps (no second table for them)."""
_MIRRORED_DIMS = frozenset(_MIRROR.values())

_MERGE_FROM = 256
"""Timeline length from which a manifest's late events are merged at once, not inserted."""

_FOUND = "_found_timelines"
"""Key under which :meth:`OnlineFeatureState.features` leaves, in a prepared manifest, the
timelines it looked up - ``(state, {(table, dim): [Timeline | None per row]})`` - so that
:meth:`OnlineFeatureState.add_shipments` of the same manifest does not look them up again.
Timelines are never replaced in a state, so a reference found earlier stays right; a key
without one (None) is looked up again, as another manifest may have created it since."""


_SHIP_SPEC = tuple(
    (
        dim,
        f"n:{dim}",
        tuple((w * NS_PER_DAY, f"n{w}:{dim}") for w in windows),
        f"first:{dim}" if dim in FIRST_SEEN else None,
    )
    for dim, windows in SHIPMENT_COUNTS.items()
)
_DISTINCT_SPEC = tuple((pair, f"d:{pair[0]}:{pair[1]}") for pair in DISTINCT)
_VALUE_SPEC = tuple((dim, f"sum:{dim}", f"cnt:{dim}") for dim in VALUE_MEANS)
_OUTCOME_SPEC = tuple(
    (dim, f"insp:{dim}", f"seiz:{dim}", tuple((w * NS_PER_DAY, f"seiz{w}:{dim}") for w in ws))
    for dim, ws in OUTCOME_COUNTS.items()
)
_RAW_NAMES = (
    *(n for spec in _SHIP_SPEC for n in (spec[1], *(w[1] for w in spec[2]), spec[3]) if n),
    *(spec[1] for spec in _DISTINCT_SPEC),
    *(n for spec in _VALUE_SPEC for n in spec[1:]),
    *(n for spec in _OUTCOME_SPEC for n in (spec[1], spec[2], *(w[1] for w in spec[3]))),
    "ports:max_rate",
    "desc:seen",
    "desc:tokens",
    "net:size",
    "net:seizures",
)
"""Every raw aggregate the online state produces (the offline path produces the same)."""


class _Shipment:
    """What the state remembers of one added shipment, to attribute its outcomes later:
    ``t`` its place in the history (as first declared), and the keys, ports and consignee of
    the declaration in force (``version``; amendments replace them)."""

    __slots__ = ("consignee", "keys", "node", "ports", "t", "version")

    def __init__(self, t: int, keys: tuple, ports: tuple, node: int, consignee: str | None):
        self.t = t
        self.keys = keys
        self.ports = ports
        self.node = node
        self.consignee = consignee
        self.version = 1


class OnlineFeatureState:
    """In-memory history for scoring shipments one by one, with the same numbers as
    :func:`features.pipeline.build_training_frame`.

    ``attributes``: the attribute schema of the model served (name -> spec); each feature row
    ends with the ``attr.<name>`` columns of these attributes, as in the training frame.
    Attributes have no history: they are read from the shipments scored."""

    def __init__(self, attributes: Mapping[str, AttributeSpec] | None = None) -> None:
        self.attributes: dict[str, AttributeSpec] = dict(attributes or {})
        self._ship: dict[str, dict[Any, Timeline]] = {dim: {} for dim in SHIPMENT_COUNTS}
        self._pair_first: dict[Any, dict[Any, int]] = {pair: {} for pair in DISTINCT}
        self._distinct: dict[Any, dict[Any, Timeline]] = {pair: {} for pair in DISTINCT}
        self._values: dict[str, dict[Any, Timeline]] = {dim: {} for dim in VALUE_MEANS}
        self._insp: dict[str, dict[Any, Timeline]] = {dim: {} for dim in OUTCOME_COUNTS}
        self._seiz: dict[str, dict[Any, Timeline]] = {dim: {} for dim in OUTCOME_COUNTS}
        self._port_insp: dict[str, Timeline] = {}
        self._port_seiz: dict[str, Timeline] = {}
        self._words: dict[str, int] = {}
        self._graph = LinkGraph()
        self._nodes: dict[str, int] = {}
        self._is_party: list[bool] = []
        self._links: dict[tuple[str, str], list] = {}
        self._display: dict[str, str] = {}
        self._shipments: dict[str, _Shipment] = {}
        # report in force of each inspection: shipment id -> inspected at -> (result at,
        # seized); counted once the shipment is added
        self._outcomes: dict[str, dict[int, tuple[int, bool]]] = {}
        # declarations in force of amended shipments not added yet: shipment id -> amendment
        self._later: dict[str, tuple] = {}
        self._now: int | None = None

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_history(
        cls,
        shipments: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        attributes: Mapping[str, AttributeSpec] | None = None,
        amended: tuple[pd.DataFrame, list[int]] | None = None,
    ) -> OnlineFeatureState:
        """A state holding ``shipments`` (as first declared) and their known ``outcomes``
        (contract frames), giving features with the ``attributes`` of this schema.
        ``amended``: the declarations in force of amended shipments and their version numbers
        (see :meth:`amend_shipments`).

        Built in bulk (timelines grouped with numpy, one Python step per key rather than per
        shipment and key); the result is the same as adding the shipments one by one."""
        state = cls(attributes=attributes)
        if len(shipments):
            state._bulk_add(shipments)
        if amended is not None:
            state.amend_shipments(*amended)
        state.add_outcomes(outcomes)
        return state

    def _bulk_add(self, shipments: pd.DataFrame) -> None:
        """Fill an empty state with ``shipments`` (the first row of a repeated id wins, in
        declaration order, as with :meth:`add_shipments`)."""
        _check(shipments)
        order = np.argsort(
            pd.to_datetime(shipments["declared_at"]).to_numpy(dtype="datetime64[ns]"),
            kind="stable",
        )
        frame = shipments.iloc[order]
        frame = frame[~frame["shipment_id"].astype(str).duplicated(keep="first").to_numpy()]
        p = prepare(frame, tuple_keys=True)
        t = p["t"]
        for dim in SHIPMENT_COUNTS:
            self._ship[dim] = _group_timelines(p[dim], t)
        for pair in DISTINCT:
            first = _first_rows(p[pair[0]], p[pair[1]])
            if pair not in _MIRROR:
                left, right = p[pair[0]][first].tolist(), p[pair[1]][first].tolist()
                self._pair_first[pair] = dict(
                    zip(zip(left, right, strict=True), t[first].tolist(), strict=True)
                )
            self._distinct[pair] = _group_timelines(p[pair[0]][first], t[first])
        lvk = p["log_value_per_kg"]
        finite = np.isfinite(lvk)
        for dim in VALUE_MEANS:
            self._values[dim] = _group_timelines(p[dim][finite], t[finite], lvk[finite])
        words = self._words
        for hs2, tokens, when in zip(
            p["hs2"].tolist(), p["tokens"].tolist(), t.tolist(), strict=True
        ):
            if hs2 is not None:
                for word in tokens:
                    wk = f"{hs2}|{word}"
                    if wk not in words:
                        words[wk] = when
        # link graph, officer views and the per-shipment records for later outcomes
        keys = {d: p[d].tolist() for d in (*_OUTCOME_DIMS, "consignee", *IDENTIFIERS)}
        raw_consignee = _column(frame, "consignee_id")
        ids = [str(v) for v in frame["shipment_id"].tolist()]
        graph, is_party, links = self._graph, self._is_party, self._links
        outcome_keys = list(zip(*(keys[d] for d in _OUTCOME_DIMS), strict=True))
        for i, (sid, when, ports) in enumerate(
            zip(ids, t.tolist(), p["ports"].tolist(), strict=True)
        ):
            consignee = keys["consignee"][i]
            node = self._node("consignee", consignee)
            idents = tuple(self._node(d, keys[d][i]) for d in IDENTIFIERS)
            self._shipments[sid] = _Shipment(when, outcome_keys[i], ports, node, consignee)
            if consignee is None:  # no consignee declared: no party to link or remember
                continue
            graph.add_shipment(node, idents, not is_party[node])
            is_party[node] = True
            if consignee not in self._display:
                self._display[consignee] = " ".join(str(raw_consignee[i]).split())
            for ident in IDENTIFIERS:
                value = keys[ident][i]
                if value is not None:
                    _link(links, (ident, value), consignee)
                    _link(links, ("consignee", consignee), (ident, value))
        self._now = int(t.max())

    @staticmethod
    def prepare(shipments: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The normalised keys of contract ``shipments`` as the state uses them. The service
        prepares a manifest once and passes the result to :meth:`features` and then to
        :meth:`add_shipments` (``prepared=``), rather than normalising it twice. One shipment
        may be given as a mapping of contract fields (three times cheaper than a frame)."""
        if isinstance(shipments, Mapping):
            _check_mapping(shipments)
        else:
            _check(shipments)
        return prepare(shipments, tuple_keys=True)

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
        found = p.get(_FOUND)
        found = found[1] if found is not None and found[0] is self else {}
        keys = {dim: p[dim].tolist() for dim in _KEY_DIMS}
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
            mirror = _MIRROR.get(pair)
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
        outcome_keys = [keys[d] for d in _OUTCOME_DIMS]
        raw_consignee = _column(shipments, "consignee_id")
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
            record = _Shipment(when, tuple(k[i] for k in outcome_keys), ports[i], node, consignee)
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

    def _node(self, kind: str, key: str | None) -> int:
        if key is None:
            return -1
        name = _IDENT_PREFIX[kind] + key
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = len(self._is_party)
            self._is_party.append(False)
            self._graph.grow(node + 1)
        return node

    def add_outcomes(self, outcomes: pd.DataFrame) -> None:
        """Remember inspection reports, one in force per ``(shipment_id, inspected_at)``: an
        identical report again changes nothing; a different one (a correction) takes the
        place of the earlier one."""
        if outcomes is None or len(outcomes) == 0:
            return
        missing = [
            c for c in ("shipment_id", "inspected_at", "result_at", "result") if c not in outcomes
        ]
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
        keys = [p[d].tolist() for d in _OUTCOME_DIMS]
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

    def _amend(self, sid: str, record: _Shipment, amendment: tuple, *, counted: bool) -> None:
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
        self, record: _Shipment, result_at: int, seized: bool, *, undo: bool = False
    ) -> None:
        """Count one report on the shipment's keys (``undo``: take back a report counted
        before, which a correction replaces)."""
        known = max(result_at, record.t)

        def count(table: dict, key) -> None:
            if undo:
                table[key].remove(known)
            else:
                _timeline(table, key).add(known)

        for dim, key in zip(_OUTCOME_DIMS, record.keys, strict=True):
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

    # -- features --------------------------------------------------------------------------
    def features(
        self,
        shipments: pd.DataFrame | Mapping[str, Any],
        *,
        prepared: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Feature rows of ``shipments`` (same columns as the training frame, same index),
        each as of its own ``declared_at``; the shipments are NOT added to the state.
        ``prepared``: :meth:`prepare` of these very ``shipments`` (a frame), if already
        computed.

        One shipment may also be passed as a mapping of contract field names to values (what
        an API body already is): it skips reading a one-row frame, the largest part of the
        cost of scoring a single shipment. The row then gets index 0. Attributes of the
        state's schema come from the ``attr.<name>`` columns of the frame (keys of the
        mapping); an ``attr.*`` the schema does not know is a :class:`ContractError`."""
        if isinstance(shipments, Mapping):
            _check_mapping(shipments)
            index = pd.RangeIndex(1)
        elif prepared is not None:
            index = shipments.index
        else:
            _check(shipments)
            index = shipments.index
        attrs = attribute_values(shipments, self.attributes) if self.attributes else None
        p = prepared if prepared is not None else prepare(shipments, tuple_keys=True)
        found: dict = {}
        raw = self._raw(p, found)
        if prepared is not None:  # the caller may add this very manifest next
            prepared[_FOUND] = (self, found)
        dates = p["t"].astype("datetime64[ns]")
        cols = feature_columns(p, raw)
        if attrs:
            cols.update(attrs)
        return feature_frame(cols, p["shipment_id"], dates, index, self.attributes)

    def _raw(self, p: dict[str, Any], found: dict | None = None) -> dict[str, np.ndarray]:
        """Raw aggregates of prepared shipments, one column at a time: per key dimension the
        timelines are looked up once and the point-in-time counts taken by binary search in a
        list comprehension (about twice as fast for a 10,000-shipment manifest as a loop per
        shipment; the numbers are the same). ``found`` receives the timelines looked up (see
        :data:`_FOUND`)."""
        found = {} if found is None else found
        n = len(p["t"])
        t_list = p["t"].tolist()
        keys = {dim: p[dim].tolist() for dim in _KEY_DIMS}
        ports_list = p["ports"].tolist()
        tokens_list = p["tokens"].tolist()
        cols: dict[str, list[float]] = {}
        nan = _NAN

        def lookup(table: dict, ks: list) -> list:
            get = table.get
            return [None if k is None else get(k) for k in ks]

        def counts(tls: list, ks: list) -> list:
            # count before t; NaN where the key is missing, 0 where it has no history
            return [
                (nan if k is None else 0.0) if tl is None else float(bisect_left(tl.times, t))
                for tl, k, t in zip(tls, ks, t_list, strict=True)
            ]

        def windowed(tls: list, ks: list, span: int, total: list) -> list:
            # count in [t - span, t): the count before t (``total``) less the count before
            # t - span
            return [
                (nan if k is None else 0.0)
                if tl is None
                else before - bisect_left(tl.times, t - span)
                for tl, k, t, before in zip(tls, ks, t_list, total, strict=True)
            ]

        for dim, name, windows, first_name in _SHIP_SPEC:
            ks = keys[dim]
            tls = found["ship", dim] = lookup(self._ship[dim], ks)
            total = cols[name] = counts(tls, ks)
            for span, wname in windows:
                cols[wname] = windowed(tls, ks, span, total)
            if first_name:
                cols[first_name] = [
                    float(tl.times[0]) if tl is not None and c > 0 else nan
                    for tl, c in zip(tls, total, strict=True)
                ]
        for pair, name in _DISTINCT_SPEC:
            ks = keys[pair[0]]
            tls = found["distinct", pair] = lookup(self._distinct[pair], ks)
            cols[name] = counts(tls, ks)
        for dim, sum_name, cnt_name in _VALUE_SPEC:
            ks = keys[dim]
            tls = found["values", dim] = lookup(self._values[dim], ks)
            cols[sum_name] = [
                (nan if k is None else 0.0) if tl is None else tl.sums[bisect_left(tl.times, t)]
                for tl, k, t in zip(tls, ks, t_list, strict=True)
            ]
            cols[cnt_name] = counts(tls, ks)
        for dim, insp_name, seiz_name, windows in _OUTCOME_SPEC:
            ks = keys[dim]
            seiz = lookup(self._seiz[dim], ks)
            cols[insp_name] = counts(lookup(self._insp[dim], ks), ks)
            seized = cols[seiz_name] = counts(seiz, ks)
            for span, wname in windows:
                cols[wname] = windowed(seiz, ks, span, seized)

        # multi-valued keys: riskiest transshipment port, description words vs HS chapter;
        # and the whole network each shipment connects to
        max_rate, seen_words, n_tokens, net_size, net_seized = [], [], [], [], []
        seiz_global, insp_global = cols["seiz:global"], cols["insp:global"]
        port_insp, port_seiz, words = self._port_insp, self._port_seiz, self._words
        nodes, is_party, graph = self._nodes, self._is_party, self._graph
        hs2_list, consignees = keys["hs2"], keys["consignee"]
        ident_keys = [(_IDENT_PREFIX[d], keys[d]) for d in IDENTIFIERS]
        found_nodes: list[int] = []  # link-graph nodes (-1: none yet), for the addition
        found_idents: list[tuple] = []
        found["nodes"] = (found_nodes, found_idents)
        for i in range(n):
            t = t_list[i]
            prior = (seiz_global[i] + history.PRIOR_SEIZURES) / (
                insp_global[i] + history.PRIOR_INSPECTIONS
            )
            best = nan
            for port in ports_list[i]:
                port_inspections = port_insp.get(port)
                port_seizures = port_seiz.get(port)
                rate = float(
                    smoothed_rate(
                        float(port_seizures.count(t)) if port_seizures else 0.0,
                        float(port_inspections.count(t)) if port_inspections else 0.0,
                        prior,
                    )
                )
                best = rate if math.isnan(best) or rate > best else best
            max_rate.append(best)
            hs2 = hs2_list[i]
            tokens = tokens_list[i] if hs2 is not None else ()
            seen_words.append(float(sum(1 for w in tokens if words.get(f"{hs2}|{w}", t) < t)))
            n_tokens.append(float(len(tokens)))
            consignee = consignees[i]
            node = nodes.get("c:" + consignee, -1) if consignee is not None else -1
            idents = tuple(
                nodes.get(prefix + values[i], -1) if values[i] else -1
                for prefix, values in ident_keys
            )
            found_nodes.append(node)
            found_idents.append(idents)
            known = node >= 0 and is_party[node]
            size, seized = graph.component(node, idents, known)
            net_size.append(size)
            net_seized.append(seized)
        cols["ports:max_rate"] = max_rate
        cols["desc:seen"] = seen_words
        cols["desc:tokens"] = n_tokens
        cols["net:size"] = net_size
        cols["net:seizures"] = net_seized
        return {name: np.array(cols[name], dtype="float64") for name in _RAW_NAMES}

    # -- officer views ---------------------------------------------------------------------
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

    def __len__(self) -> int:
        """Number of shipments held."""
        return len(self._shipments)


def _group_timelines(keys: np.ndarray, times: np.ndarray, values=None) -> dict:
    """One :class:`Timeline` per distinct key from aligned keys (None = missing) and times
    already in ascending order (with running sums of ``values`` when given)."""
    if not len(keys):
        return {}
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    present = codes >= 0
    codes = codes[present]
    order = np.argsort(codes, kind="stable")  # stable: time order kept within a key
    codes = codes[order]
    times = np.ascontiguousarray(times[present][order], dtype="int64")
    if values is not None:
        values = np.asarray(values, dtype="float64")[present][order]
    if not len(codes):
        return {}
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    out = {}
    for code, a, b in zip(codes[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        timeline = Timeline(with_sums=values is not None)
        timeline.times.frombytes(times[a:b].tobytes())
        if values is not None and timeline.sums is not None:
            timeline.sums.frombytes(np.cumsum(values[a:b]).tobytes())
        out[uniques[code]] = timeline
    return out


def _first_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Rows where a (left, right) pair of present keys occurs for the first time (rows are in
    time order)."""
    a, _ = pd.factorize(pd.Series(left, dtype=object), use_na_sentinel=True)
    b, _ = pd.factorize(pd.Series(right, dtype=object), use_na_sentinel=True)
    ok = (a >= 0) & (b >= 0)
    combined = a.astype("int64") * (int(b.max()) + 1 if len(b) else 1) + b
    combined[~ok] = -1
    _, first = np.unique(combined, return_index=True)
    first = np.sort(first)
    return first[ok[first]]


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


def _link(links: dict, key, member) -> None:
    members = links.get(key)
    if members is None:
        links[key] = [member]
    elif member not in members:
        members.append(member)


def _timeline(table: dict, key: str) -> Timeline:
    timeline = table.get(key)
    if timeline is None:
        timeline = table[key] = Timeline()
    return timeline


def _column(frame: pd.DataFrame, name: str) -> list:
    """An optional contract column's values (all None when the frame does not have it)."""
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _check(shipments: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_SHIPMENT_COLUMNS if c not in shipments.columns]
    if missing:
        raise ContractError(f"shipments lack required column(s): {', '.join(missing)}")


def _check_mapping(shipment: Mapping[str, Any]) -> None:
    missing = [c for c in REQUIRED_SHIPMENT_COLUMNS if c not in shipment]
    if missing:
        raise ContractError(f"shipment lacks required field(s): {', '.join(missing)}")


def _ns_list(column: pd.Series, name: str) -> list[int]:
    values = pd.to_datetime(column)
    if values.isna().any():
        raise ContractError(f"outcomes: {name} is missing on some rows")
    return values.to_numpy(dtype="datetime64[ns]").astype("int64").tolist()


__all__ = ["CATEGORICAL_FEATURES", "FEATURE_NAMES", "OnlineFeatureState"]
