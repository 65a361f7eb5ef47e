"""Point-in-time history: what customs knew about a party, place or commodity *before* a shipment.

Two rules make every number here honest:

* only shipments declared **strictly before** the shipment's ``declared_at`` count (shipments
  declared at the same instant do not see each other);
* only inspection outcomes **known** strictly before it count. An outcome is known at
  ``known_at = max(result_at, declared_at of its shipment)``: labels arrive late, and an outcome
  can never be used before its own shipment existed.

The same aggregates are computed by two executors that share the definitions below:

* :class:`EventIndex` (offline, vectorised): events sorted by ``(key, time)`` in one composite
  integer array; "how many events of key k before t" is two ``searchsorted`` calls, sums come
  from a cumulative sum over the same order, windows ("in the 30 days before") are
  differences.
* :class:`Timeline` (online): the sorted event times of one key in a compact array; the same
  questions are answered by ``bisect``.

Windows are on the UTC-day grid (:func:`window_start`): a ``w``-day window as of ``t`` holds
the events of the ``w`` whole UTC days before the day of ``t`` and of that day up to ``t``
(strictly before ``t``, as above), so an online store can answer it from per-day buckets.

Raw aggregates are named ``"<what>:<dimension>"`` (``"n30:consignee"`` = shipments of the
consignee in the 30 days before the shipment's day and its own day so far). The finishing
functions at the bottom turn them into the catalogued history and change features; both
executors call them, so offline and online features come from one formula.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Final

import numpy as np
import pandas as pd

from features.manifest import NS_PER_DAY, codes_of

ROLES: Final = ("shipper", "consignee", "forwarder", "declarant", "recipient")
"""Parties with an entity history; ``recipient`` is the express recipient's customs code."""

COUNTERPARTY: Final = {
    "shipper": "consignee",
    "consignee": "shipper",
    "forwarder": "consignee",
    "declarant": "consignee",
    "recipient": "shipper",
}
"""Whose distinct number counts as a party's *counterparties* (recipients per sender, senders
per recipient, clients per forwarder or broker, senders using one recipient code)."""

ROLE_WINDOWS: Final = (7, 30, 365)

SHIPMENT_COUNTS: Final[dict[str, tuple[int, ...]]] = {
    **{role: ROLE_WINDOWS for role in ROLES},
    "hs": (),
    "hs2": (),
    "origin_hs6": (),
    "shipper_consignee": (),
    "consignee_phone": (),
    "consignee_address": (),
    "consignee_forwarder": (),
    "consignee_recipient": (),
    "consignee_if_phone": (),
    "consignee_if_address": (),
    "consignee_if_forwarder": (),
}
"""Dimensions whose earlier shipments are counted (``n:<dim>``) and the day windows counted
(``n<w>:<dim>``)."""

FIRST_SEEN: Final = ROLES
"""Dimensions whose first declaration time is kept (``first:<dim>``)."""

DISTINCT: Final = (
    *((role, "origin") for role in ROLES),
    *((role, "hs2") for role in ROLES),
    *((role, COUNTERPARTY[role]) for role in ROLES),
    ("phone", "consignee"),
    ("address", "consignee"),
    ("recipient", "consignee"),
)
"""(dimension, value) pairs whose number of distinct earlier values is counted
(``d:<dim>:<value>``)."""

VALUE_MEANS: Final = ("hs4", "hs4_origin")
"""Dimensions whose earlier log value-per-kg is summed (``sum:<dim>``, ``cnt:<dim>``)."""

OUTCOME_COUNTS: Final[dict[str, tuple[int, ...]]] = {
    **{role: () for role in ROLES},
    "global": (),
    "origin": (),
    "departure": (90,),
    "loading_port": (90,),
    "hs2": (),
    "hs4": (),
    "hs6": (),
    "origin_hs2": (),
    "route": (),
    "phone": (),
    "address": (),
    "recipient": (),
    "consignee_phone": (),
    "consignee_address": (),
    "consignee_recipient": (),
}
"""Dimensions whose known inspections and seizures are counted (``insp:<dim>``,
``seiz:<dim>``) and seizure windows in days (``seiz<w>:<dim>``)."""

OUTCOME_EVENT_COLUMNS: Final = ("shipment_id", "inspected_at", "result_at", "result")
"""The outcome columns the history reads: which shipment was inspected, when, when the result
became known and what it was. The online state and the SQL engines require these, not the
whole outcomes contract."""

WINDOWS_DAYS: Final = tuple(
    sorted({w for ws in (*SHIPMENT_COUNTS.values(), *OUTCOME_COUNTS.values()) for w in ws})
)


def window_start(t, days: int):
    """Where a ``days``-day window as of ``t`` (int64 ns since the epoch, UTC; a Python int or
    a numpy array) starts: midnight UTC ``days`` whole days before the day of ``t``.

    A window as of ``t`` holds the events ``e`` with ``window_start(t, days) <= e < t``: the
    ``days`` whole UTC days before the shipment's day and its own day up to ``t`` - a grid of
    day buckets, which an online store can keep per key without keeping every event's time
    (issue 15). Every executor uses it: the numpy one (:func:`offline_aggregates`), the SQL
    engine (:mod:`features.engine`, as the exit time :func:`window_exit`), the in-memory online
    state and the snapshot's day buckets (:mod:`features.snapshot`).

    >>> day = NS_PER_DAY
    >>> window_start(40 * day + 1, 30) == 10 * day  # day 40 at 00:00:00.000000001
    True
    >>> window_start(41 * day - 1, 30) == 10 * day  # day 40 at 23:59:59.999999999
    True
    """
    return (t // NS_PER_DAY - days) * NS_PER_DAY


def window_exit(e, days: int):
    """The first instant whose ``days``-day window no longer holds an event at ``e``: midnight
    UTC ``days + 1`` days after the day of ``e``. An event at ``e`` is in the window as of
    ``t`` exactly when ``e < t < window_exit(e, days)`` (the same condition as
    ``window_start(t, days) <= e < t``: both say ``t``'s day is at most ``days`` days after
    ``e``'s)."""
    return (e // NS_PER_DAY + days + 1) * NS_PER_DAY


SMOOTHING: Final = 10.0
"""Pseudo-inspections pulling a rare key's seizure rate toward the overall rate."""
PRIOR_SEIZURES: Final = 1.0
PRIOR_INSPECTIONS: Final = 100.0
"""The overall rate itself starts from 1 seizure in 100 inspections before any outcome is
known, so the very first shipments get a defined (and modest) rate."""


# -- offline executor -------------------------------------------------------------------------
class TimeAxis:
    """All instants the offline pipeline compares (declaration times, outcome known times and
    window starts) as sorted unique int64 ns, so every comparison becomes an integer rank."""

    def __init__(self, t: np.ndarray, known_at: np.ndarray, windows_days=WINDOWS_DAYS):
        parts = [t, known_at, *(window_start(t, w) for w in windows_days)]
        values = np.sort(np.concatenate(parts).astype("int64"))
        keep = np.ones(len(values), dtype=bool)
        keep[1:] = values[1:] != values[:-1]
        self.values = values[keep]
        self.size = len(self.values) + 1

    def rank(self, times: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.values, times, side="left").astype("int64")


class EventIndex:
    """Events (key code, time rank, optional weight) sorted by key then time, for counting
    "events of this key strictly before this rank" by binary search."""

    def __init__(self, codes: np.ndarray, ranks: np.ndarray, size: int, weights=None):
        keep = codes >= 0
        comp = codes[keep].astype("int64") * size + ranks[keep]
        order = np.argsort(comp, kind="stable")
        self.comp = comp[order]
        self.cum = None
        if weights is not None:
            w = np.asarray(weights, dtype="float64")[keep][order]
            self.cum = np.concatenate([[0.0], np.cumsum(w)])


class Queries:
    """The shipments asking "how many events of my key before my time", sorted once by
    (key, time) so that every binary search over an :class:`EventIndex` walks memory in order
    (several times faster than searching in row order on millions of rows)."""

    def __init__(self, codes: np.ndarray, ranks: np.ndarray, size: int):
        self.n = len(codes)
        self.size = size
        self.missing = codes < 0
        base = codes.astype("int64") * size
        comp = base + ranks
        self.order = np.argsort(comp, kind="stable")
        self.base = base[self.order]
        self.comp = comp[self.order]

    def self_events(self, weights: np.ndarray | None = None) -> EventIndex:
        """The queries themselves as events (earlier shipments of the same key), reusing the
        sort already done."""
        present = self.base >= 0
        index = EventIndex.__new__(EventIndex)
        index.comp = self.comp[present]
        index.cum = None
        if weights is not None:
            w = np.asarray(weights, dtype="float64")[self.order][present]
            index.cum = np.concatenate([[0.0], np.cumsum(w)])
        return index

    def _scatter(self, sorted_values: np.ndarray, missing=np.nan) -> np.ndarray:
        out = np.empty(self.n, dtype="float64")
        out[self.order] = sorted_values
        out[self.missing] = missing
        return out

    def _bounds(self, events: EventIndex, since: np.ndarray | None = None):
        lo_needles = self.base if since is None else self.base + since[self.order]
        lo = np.searchsorted(events.comp, lo_needles, side="left")
        hi = np.searchsorted(events.comp, self.comp, side="left")
        return lo, hi

    def count(self, events: EventIndex, since: np.ndarray | None = None) -> np.ndarray:
        """Events of each query's key before its rank (and at or after ``since``); NaN for a
        missing key."""
        lo, hi = self._bounds(events, since)
        return self._scatter((hi - lo).astype("float64"))

    def total(self, events: EventIndex) -> np.ndarray:
        """Sum of the events' weights before each query's rank."""
        if events.cum is None:
            raise ValueError("these events carry no weights to sum")
        lo, hi = self._bounds(events)
        return self._scatter(events.cum[hi] - events.cum[lo])

    def first_rank(self, events: EventIndex) -> np.ndarray:
        """Rank of each key's first event when it is before the query, else -1."""
        lo, hi = self._bounds(events)
        if not len(events.comp):
            return np.full(self.n, -1, dtype="int64")
        first = events.comp[np.minimum(lo, len(events.comp) - 1)] - self.base
        out = np.empty(self.n, dtype="int64")
        out[self.order] = np.where(hi > lo, first, -1)
        out[self.missing] = -1
        return out


def factorize(keys: np.ndarray) -> np.ndarray:
    """Integer codes of normalised keys (-1 for missing). Integer arrays are already codes
    (the offline path builds combination keys as codes, -1 when a part is missing)."""
    if keys.dtype.kind in "iu":
        return keys.astype("int64")
    codes, _ = pd.factorize(pd.Series(keys, dtype="object"), use_na_sentinel=True)
    return codes.astype("int64")


def first_pairs(
    entity: np.ndarray, value: np.ndarray, ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct (entity, value) pair: the entity code and the rank of the pair's first
    occurrence - the events of a distinct count."""
    ok = (entity >= 0) & (value >= 0)
    e, v, r = entity[ok], value[ok], ranks[ok]
    pair = e * (int(v.max()) + 1 if len(v) else 1) + v
    order = np.lexsort((r, pair))
    pair_sorted = pair[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair_sorted[1:] != pair_sorted[:-1]
    idx = order[first]
    return e[idx], r[idx]


def offline_aggregates(
    p: dict[str, np.ndarray],
    outcome_rows: np.ndarray,
    outcome_known: np.ndarray,
    outcome_seized: np.ndarray,
) -> tuple[dict[str, np.ndarray], TimeAxis]:
    """All single-key raw aggregates of every prepared shipment, as of its declaration time.

    ``outcome_rows`` index the shipment (row of ``p``) each known inspection belongs to,
    ``outcome_known`` is its known time and ``outcome_seized`` whether drugs were found.
    Returns the raw aggregates and the time axis (for the other offline aggregates).
    """
    t = p["t"]
    axis = TimeAxis(t, outcome_known)
    q = axis.rank(t)
    o_rank = axis.rank(outcome_known)
    since = {w: axis.rank(window_start(t, w)) for w in WINDOWS_DAYS}
    dims = (
        set(SHIPMENT_COUNTS)
        | set(OUTCOME_COUNTS)
        | set(VALUE_MEANS)
        | {d for pair in DISTINCT for d in pair}
    )
    codes = {d: codes_of(p, d) for d in sorted(dims)}
    queries = {d: Queries(codes[d], q, axis.size) for d in sorted(dims)}
    raw: dict[str, np.ndarray] = {}

    for dim, windows in SHIPMENT_COUNTS.items():
        index = queries[dim].self_events()
        raw[f"n:{dim}"] = queries[dim].count(index)
        for w in windows:
            raw[f"n{w}:{dim}"] = queries[dim].count(index, since[w])
        if dim in FIRST_SEEN:
            first = queries[dim].first_rank(index)
            first_t = axis.values[np.maximum(first, 0)].astype("float64")
            raw[f"first:{dim}"] = np.where(first >= 0, first_t, np.nan)

    for dim, value in DISTINCT:
        ev_code, ev_rank = first_pairs(codes[dim], codes[value], q)
        raw[f"d:{dim}:{value}"] = queries[dim].count(EventIndex(ev_code, ev_rank, axis.size))

    lvk = p["log_value_per_kg"]
    finite = np.isfinite(lvk)
    for dim in VALUE_MEANS:
        c = np.where(finite, codes[dim], -1)
        index = EventIndex(c, q, axis.size, weights=np.where(finite, lvk, 0.0))
        raw[f"sum:{dim}"] = queries[dim].total(index)
        raw[f"cnt:{dim}"] = queries[dim].count(index)

    for dim, windows in OUTCOME_COUNTS.items():
        ev = codes[dim][outcome_rows]
        insp = EventIndex(ev, o_rank, axis.size)
        seiz = EventIndex(np.where(outcome_seized, ev, -1), o_rank, axis.size)
        raw[f"insp:{dim}"] = queries[dim].count(insp)
        raw[f"seiz:{dim}"] = queries[dim].count(seiz)
        for w in windows:
            raw[f"seiz{w}:{dim}"] = queries[dim].count(seiz, since[w])
    return raw, axis


# -- online executor --------------------------------------------------------------------------
class Timeline:
    """The sorted event times (int64 ns) of one key, with optional running sums of a value.

    Appending in time order is O(1); a late (out-of-order) event is inserted in place and the
    running sums after it are rebuilt, so answers stay exact for any query time.
    """

    __slots__ = ("sums", "times")

    def __init__(self, with_sums: bool = False):
        self.times = array("q")
        self.sums = array("d", [0.0]) if with_sums else None

    def add(self, time: int, value: float = 0.0) -> None:
        times = self.times
        if not times or time >= times[-1]:
            times.append(time)
            if self.sums is not None:
                self.sums.append(self.sums[-1] + value)
            return
        pos = bisect_left(times, time)
        times.insert(pos, time)
        if self.sums is not None:
            # shift the running sums after the insertion point by ``value`` (late events
            # only): one vectorised pass, not a Python loop over the tail, so a manifest
            # declared alongside the previous one adds in milliseconds, not seconds
            sums = self.sums
            tail = (np.frombuffer(sums, dtype="float64")[pos + 1 :] + value).tobytes()
            del sums[pos + 1 :]
            sums.append(sums[pos] + value)
            sums.frombytes(tail)

    def add_many(self, times: list[int], values: list[float] | None = None) -> None:
        """Add events whose ``times`` are in ascending order (with ``values`` for a timeline
        with sums): the late events of one key in a whole manifest, merged in one numpy pass
        instead of one insertion (and one shift of the running sums) each."""
        if not times:
            return
        weights: list[float] = [] if values is None else values
        if self.sums is not None and len(weights) != len(times):
            raise ValueError("a timeline with sums needs one value per added time")
        if not self.times or times[0] >= self.times[-1]:
            self.times.extend(times)
            if self.sums is not None:
                sums, total = self.sums, self.sums[-1]
                for value in weights:
                    total += value
                    sums.append(total)
            return
        old = np.frombuffer(self.times, dtype="int64")
        # side="left": a new event goes before an equal old one, as with add()
        pos = np.searchsorted(old, np.asarray(times, dtype="int64"), side="left")
        merged = np.insert(old, pos, times)
        if self.sums is not None:
            steps = np.diff(np.frombuffer(self.sums, dtype="float64"))
            running = np.cumsum(np.insert(steps, pos, weights))
            sums = array("d", [0.0])
            sums.frombytes(running.tobytes())
            self.sums = sums
        del old  # release the buffer before the array is replaced
        self.times = array("q")
        self.times.frombytes(merged.tobytes())

    def remove(self, time: int) -> None:
        """Drop one event at ``time`` (only for timelines without sums)."""
        pos = bisect_left(self.times, time)
        if pos < len(self.times) and self.times[pos] == time:
            del self.times[pos]

    def count(self, before: int) -> int:
        return bisect_left(self.times, before)

    def count_between(self, since: int, before: int) -> int:
        return bisect_left(self.times, before) - bisect_left(self.times, since)

    def total(self, before: int) -> float:
        if self.sums is None:
            raise ValueError("this timeline keeps no sums")
        return self.sums[bisect_left(self.times, before)]

    def first(self) -> int | None:
        return self.times[0] if self.times else None


# -- from raw aggregates to catalogued features (shared by both executors) --------------------
def overall_rate(seized, inspected):
    """The overall seizure rate from the ``seized`` of ``inspected`` inspections known before a
    shipment (all keys together), starting from :data:`PRIOR_SEIZURES` in
    :data:`PRIOR_INSPECTIONS`. Scalars or arrays: every executor's one formula."""
    return (seized + PRIOR_SEIZURES) / (inspected + PRIOR_INSPECTIONS)


def prior_rate(raw: dict[str, np.ndarray]) -> np.ndarray:
    """The overall seizure rate among inspections known before each shipment."""
    return overall_rate(raw["seiz:global"], raw["insp:global"])


def relative_rate(seized, inspected, prior):
    """A key's seizure rate relative to the overall rate ``prior`` known at the same time: its
    seizures per inspection shrunk toward ``prior`` with :data:`SMOOTHING` pseudo-inspections,
    divided by ``prior`` - ``(seized / prior + SMOOTHING) / (inspected + SMOOTHING)``. 1 means
    "as risky as traffic overall", 3 "three times as often seized"; NaN where the key is
    missing.

    Written so that the prior cancels exactly where a key has no seizure: a key never
    inspected is exactly 1.0, one inspected ``k`` times without a seizure exactly
    ``SMOOTHING / (k + SMOOTHING)``, whatever the day. The smoothed rate itself, ``(seized +
    SMOOTHING * prior) / (inspected + SMOOTHING)``, put most rows (every party never
    inspected) on the prior, which moves a little every day: the trees learned split points
    between its values (a clock), and the served day's whole mass sat across a split
    (docs/monitoring.md, "Known limits")."""
    return (seized / prior + SMOOTHING) / (inspected + SMOOTHING)


def entity_features(p: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> dict:
    """History of each party role as of the shipment (see the catalog for meanings)."""
    t = p["t"].astype("float64")
    prior = prior_rate(raw)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for role in ROLES:
            n = raw[f"n:{role}"]
            n30, n365 = raw[f"n30:{role}"], raw[f"n365:{role}"]
            out[f"{role}_days_since_first"] = (t - raw[f"first:{role}"]) / NS_PER_DAY
            out[f"{role}_shipments_7d"] = raw[f"n7:{role}"]
            out[f"{role}_shipments_30d"] = n30
            out[f"{role}_shipments_365d"] = n365
            out[f"{role}_shipments_total"] = n
            older = n365 - n30
            out[f"{role}_growth_30d"] = np.where(older > 0, n30 / (older * 30.0 / 335.0), np.nan)
            out[f"{role}_distinct_origins"] = raw[f"d:{role}:origin"]
            out[f"{role}_distinct_hs_chapters"] = raw[f"d:{role}:hs2"]
            out[f"{role}_distinct_counterparties"] = raw[f"d:{role}:{COUNTERPARTY[role]}"]
            insp, seiz = raw[f"insp:{role}"], raw[f"seiz:{role}"]
            out[f"{role}_inspected_share"] = np.where(n > 0, insp / n, np.nan)
            out[f"{role}_seizures"] = seiz
            out[f"{role}_seizure_rate"] = relative_rate(seiz, insp, prior)
    return out


def _new_flag(pair_count: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """1 when the party has a history for this attribute (basis > 0) but never with this value,
    0 when it has used it before, NaN without a basis (no history, or the value is missing)."""
    flag = (pair_count == 0).astype("float64")
    return np.where((basis > 0) & ~np.isnan(pair_count), flag, np.nan)


def change_features(p: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> dict:
    """Signs of a hijacked identity: an established consignee with a new phone, address or
    forwarder, and first shipments between a shipper and a consignee; and a declaration
    amended in substance after it was scored."""
    out: dict[str, np.ndarray] = {}
    out["consignee_phone_new"] = _new_flag(raw["n:consignee_phone"], raw["n:consignee_if_phone"])
    out["consignee_address_new"] = _new_flag(
        raw["n:consignee_address"], raw["n:consignee_if_address"]
    )
    out["consignee_forwarder_new"] = _new_flag(
        raw["n:consignee_forwarder"], raw["n:consignee_if_forwarder"]
    )
    basis = raw["n:consignee_if_forwarder"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["consignee_forwarder_share"] = np.where(
            basis > 0, raw["n:consignee_forwarder"] / basis, np.nan
        )
    pair = raw["n:shipper_consignee"]  # NaN when either party is not declared
    out["shipper_consignee_new_pair"] = np.where(np.isnan(pair), np.nan, pair == 0)
    out["shipper_consignee_shipments"] = pair
    # the declaration's own record: re-written in its parties, goods, route or weight after
    # it was scored (counted by the store as each version arrives; NaN when unknown)
    out["declaration_amendments"] = p["amendments_after_score"]
    return out


def place_commodity_features(p: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> dict:
    """Risk of the shipment's places, commodity and their combinations learned from earlier
    outcomes (smoothed seizure rates relative to the overall rate), seizures in the last 90
    days, rarity counts and the shipment's value per kg against earlier shipments of the same
    HS heading."""
    prior = prior_rate(raw)
    out: dict[str, np.ndarray] = {}
    for name, dim in TARGET_ENCODED.items():
        out[name] = relative_rate(raw[f"seiz:{dim}"], raw[f"insp:{dim}"], prior)
    out["transshipment_risk"] = raw["ports:max_rate"]
    out["loading_port_seizures_90d"] = raw["seiz90:loading_port"]
    out["departure_seizures_90d"] = raw["seiz90:departure"]
    out["hs_code_shipments"] = raw["n:hs"]
    out["origin_hs_shipments"] = raw["n:origin_hs6"]
    lvk = p["log_value_per_kg"]
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, dim in (
            ("value_per_kg_vs_heading", "hs4"),
            ("value_per_kg_vs_heading_origin", "hs4_origin"),
        ):
            cnt = raw[f"cnt:{dim}"]
            out[name] = np.where(cnt > 0, lvk - raw[f"sum:{dim}"] / cnt, np.nan)
        tokens = raw["desc:tokens"]
        basis = (tokens > 0) & (raw["n:hs2"] > 0)
        out["description_novelty"] = np.where(basis, 1.0 - raw["desc:seen"] / tokens, np.nan)
    return out


TARGET_ENCODED: Final = {
    "origin_risk": "origin",
    "departure_risk": "departure",
    "loading_port_risk": "loading_port",
    "hs_chapter_risk": "hs2",
    "hs_heading_risk": "hs4",
    "hs_subheading_risk": "hs6",
    "origin_hs_risk": "origin_hs2",
    "route_risk": "route",
}
"""Target-encoded features and the dimension whose outcomes they learn from."""


def multi_offline(
    p: dict[str, np.ndarray],
    axis: TimeAxis,
    outcome_rows: np.ndarray,
    outcome_known: np.ndarray,
    outcome_seized: np.ndarray,
    prior: np.ndarray,
) -> dict[str, np.ndarray]:
    """Aggregates over multi-valued keys: the riskiest transshipment port of the route
    (``ports:max_rate``, the highest :func:`relative_rate` of its ports) and how many words of
    the goods description were seen before with the same HS chapter (``desc:seen`` of
    ``desc:tokens``)."""
    n = len(p["t"])
    q = axis.rank(p["t"])
    raw: dict[str, np.ndarray] = {}

    # transshipment ports: one (shipment, port) row per port
    counts = np.fromiter((len(x) for x in p["ports"]), dtype="int64", count=n)
    rows = np.repeat(np.arange(n), counts)
    ports = np.array([port for x in p["ports"] for port in x], dtype=object)
    codes = factorize(ports) if len(ports) else np.zeros(0, dtype="int64")
    starts = np.concatenate([[0], np.cumsum(counts)])
    o_counts = counts[outcome_rows]
    o_pairs = np.repeat(starts[outcome_rows], o_counts) + _ranges(o_counts)
    o_rank = np.repeat(axis.rank(outcome_known), o_counts)
    o_seized = np.repeat(outcome_seized, o_counts)
    port_queries = Queries(codes, q[rows], axis.size)
    insp = port_queries.count(EventIndex(codes[o_pairs], o_rank, axis.size))
    seiz = port_queries.count(EventIndex(np.where(o_seized, codes[o_pairs], -1), o_rank, axis.size))
    rate = relative_rate(seiz, insp, prior[rows])
    best = np.full(n, -np.inf)
    np.maximum.at(best, rows, rate)
    raw["ports:max_rate"] = np.where(counts > 0, best, np.nan)

    # goods-description words against the HS chapter
    t_counts = np.fromiter(
        (len(x) if h is not None else 0 for x, h in zip(p["tokens"], p["hs2"], strict=True)),
        dtype="int64",
        count=n,
    )
    t_rows = np.repeat(np.arange(n), t_counts)
    words = np.array(
        [
            f"{h}|{w}"
            for x, h in zip(p["tokens"], p["hs2"], strict=True)
            if h is not None
            for w in x
        ],
        dtype=object,
    )
    w_codes = factorize(words) if len(words) else np.zeros(0, dtype="int64")
    word_queries = Queries(w_codes, q[t_rows], axis.size)
    seen = word_queries.count(EventIndex(w_codes, q[t_rows], axis.size)) > 0
    raw["desc:seen"] = np.bincount(t_rows, weights=seen.astype("float64"), minlength=n)
    raw["desc:tokens"] = t_counts.astype("float64")
    return raw


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each count, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype="int64")
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)
