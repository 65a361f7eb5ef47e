"""Filling an empty online state from a whole history at once: timelines grouped with numpy,
one Python step per key rather than per shipment and key."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import DISTINCT, SHIPMENT_COUNTS, VALUE_MEANS, Timeline
from features.manifest import prepare
from features.network import IDENTIFIERS
from features.online.storage import (
    MIRROR,
    OUTCOME_DIMS,
    ShipmentRecord,
    StateStorage,
    check_shipments,
    optional_column,
)


class BulkAdd(StateStorage):
    """Fills an empty state from a whole history (see :meth:`OnlineFeatureState.from_history`)."""

    def _bulk_add(self, shipments: pd.DataFrame) -> None:
        """Fill an empty state with ``shipments`` (the first row of a repeated id wins, in
        declaration order, as with :meth:`add_shipments`)."""
        check_shipments(shipments)
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
            if pair not in MIRROR:
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
        keys = {d: p[d].tolist() for d in (*OUTCOME_DIMS, "consignee", *IDENTIFIERS)}
        raw_consignee = optional_column(frame, "consignee_id")
        ids = [str(v) for v in frame["shipment_id"].tolist()]
        graph, is_party, links = self._graph, self._is_party, self._links
        outcome_keys = list(zip(*(keys[d] for d in OUTCOME_DIMS), strict=True))
        for i, (sid, when, ports) in enumerate(
            zip(ids, t.tolist(), p["ports"].tolist(), strict=True)
        ):
            consignee = keys["consignee"][i]
            node = self._node("consignee", consignee)
            idents = tuple(self._node(d, keys[d][i]) for d in IDENTIFIERS)
            self._shipments[sid] = ShipmentRecord(when, outcome_keys[i], ports, node, consignee)
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


def _link(links: dict, key, member) -> None:
    members = links.get(key)
    if members is None:
        links[key] = [member]
    elif member not in members:
        members.append(member)
