"""The raw point-in-time aggregates an online state answers (counts by binary search in its
timelines, the riskiest port, description words, the link network) and the feature rows the
pipeline's own functions make of them."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features import history
from features.history import (
    DISTINCT,
    FIRST_SEEN,
    OUTCOME_COUNTS,
    SHIPMENT_COUNTS,
    VALUE_MEANS,
    overall_rate,
    relative_rate,
    window_start,
)
from features.manifest import prepare
from features.network import IDENTIFIERS
from features.online.storage import (
    FOUND,
    IDENT_PREFIX,
    KEY_DIMS,
    StateStorage,
    check_shipment_mapping,
    check_shipments,
)
from features.pipeline import attribute_values, feature_columns, feature_frame

_NAN = math.nan

_SHIP_SPEC = tuple(
    (
        dim,
        f"n:{dim}",
        tuple((w, f"n{w}:{dim}") for w in windows),
        f"first:{dim}" if dim in FIRST_SEEN else None,
    )
    for dim, windows in SHIPMENT_COUNTS.items()
)
_DISTINCT_SPEC = tuple((pair, f"d:{pair[0]}:{pair[1]}") for pair in DISTINCT)
_VALUE_SPEC = tuple((dim, f"sum:{dim}", f"cnt:{dim}") for dim in VALUE_MEANS)
_OUTCOME_SPEC = tuple(
    (dim, f"insp:{dim}", f"seiz:{dim}", tuple((w, f"seiz{w}:{dim}") for w in ws))
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


class RawAggregates(StateStorage):
    """Feature rows of shipments from the raw aggregates the state answers."""

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
            check_shipment_mapping(shipments)
            index = pd.RangeIndex(1)
        elif prepared is not None:
            index = shipments.index
        else:
            check_shipments(shipments)
            index = shipments.index
        attrs = attribute_values(shipments, self.attributes) if self.attributes else None
        p = prepared if prepared is not None else prepare(shipments, tuple_keys=True)
        found: dict = {}
        raw = self._raw(p, found)
        if prepared is not None:  # the caller may add this very manifest next
            prepared[FOUND] = (self, found)
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
        :data:`FOUND`)."""
        found = {} if found is None else found
        n = len(p["t"])
        t_list = p["t"].tolist()
        keys = {dim: p[dim].tolist() for dim in KEY_DIMS}
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

        # where each shipment's windows start (once per window length, not per dimension)
        starts = {w: [window_start(t, w) for t in t_list] for w in history.WINDOWS_DAYS}

        def windowed(tls: list, ks: list, days: int, total: list) -> list:
            # count in [window_start(t, days), t) - the ``days`` UTC days before t's day and
            # that day up to t: the count before t (``total``) less the count before the start
            return [
                (nan if k is None else 0.0) if tl is None else before - bisect_left(tl.times, start)
                for tl, k, start, before in zip(tls, ks, starts[days], total, strict=True)
            ]

        for dim, name, windows, first_name in _SHIP_SPEC:
            ks = keys[dim]
            tls = found["ship", dim] = lookup(self._ship[dim], ks)
            total = cols[name] = counts(tls, ks)
            for days, wname in windows:
                cols[wname] = windowed(tls, ks, days, total)
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
            for days, wname in windows:
                cols[wname] = windowed(seiz, ks, days, seized)

        # multi-valued keys: riskiest transshipment port, description words vs HS chapter;
        # and the whole network each shipment connects to
        max_rate, seen_words, n_tokens, net_size, net_seized = [], [], [], [], []
        seiz_global, insp_global = cols["seiz:global"], cols["insp:global"]
        port_insp, port_seiz, words = self._port_insp, self._port_seiz, self._words
        nodes, is_party, graph = self._nodes, self._is_party, self._graph
        hs2_list, consignees = keys["hs2"], keys["consignee"]
        ident_keys = [(IDENT_PREFIX[d], keys[d]) for d in IDENTIFIERS]
        found_nodes: list[int] = []  # link-graph nodes (-1: none yet), for the addition
        found_idents: list[tuple] = []
        found["nodes"] = (found_nodes, found_idents)
        for i in range(n):
            t = t_list[i]
            prior = overall_rate(seiz_global[i], insp_global[i])
            best = nan
            for port in ports_list[i]:
                port_inspections = port_insp.get(port)
                port_seizures = port_seiz.get(port)
                rate = float(
                    relative_rate(
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
