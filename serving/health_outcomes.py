"""Performance from outcomes: how each way of selecting inspections is doing, and how many
seizures the model's selection misses, estimated without bias from the random exploration
picks.

Two figures, both read from the serving store:

* the **outcome table** - by ISO week of inspection and stream, for each way an inspection
  was chosen (the outcomes' ``selected_by``: model, rule, officer, random): inspections,
  seizures, hit rate and the median time from inspection to result;
* the **recall estimate** of the model's selection, per worklist scope (stream or mode, port).
  The worklist records every pick of every plan it draws with its selection probability
  (``exploration_picks``): 1 for a model pick, ``random picks / pool`` for a random pick
  drawn among the pool of scored shipments below the cut line. The seizures below the line
  are estimated by inverse propensity (Horvitz-Thompson): each seizure among inspected random
  picks stands for ``1 / probability`` shipments of the pool, scaled by ``drawn / inspected``
  when officers did not inspect every random pick of a plan (those missing at random). The
  recall of the model's selection is ``model seizures / (model seizures + estimated seizures
  below the line)``, with a Wilson interval (see docs/monitoring.md for why Wilson).

Only plans with at least one inspected random pick enter the estimate (their model picks
too, so numerator and denominator cover the same shipments); the others are counted and named.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import pandas as pd

from features.contracts import SELECTED_BY, STREAM_OF_MODE
from serving.store import Store, utcnow


def wilson_interval(hits: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / n`` (``(0, 1)`` when ``n`` is 0).
    Unlike the normal (Wald) interval it stays inside [0, 1] and is not a point at 0 hits."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class OutcomeRow:
    """Inspections of one ISO week and stream chosen one way (``selected_by``)."""

    week: str
    stream: str
    selected_by: str
    inspections: int
    seizures: int
    hit_rate: float
    median_days_to_result: float


@dataclass(frozen=True)
class RecallEstimate:
    """The estimated recall of the model's selection in one worklist scope (``scope``: the
    worklist's stream/mode key, ``""`` for all streams; ``port``: ``""`` for all ports)."""

    scope: str
    port: str
    plans: int
    """Plans (days) in the estimate: those with at least one inspected random pick."""
    plans_without_exploration: int
    """Plans left out: no random pick drawn or none inspected (yet)."""
    scored: int
    """Shipments the counted plans ranked."""
    model_picks: int
    model_inspected: int
    model_seizures: int
    random_picks: int
    random_inspected: int
    random_seizures: int
    pool: int
    """Scored shipments below the cut line of the counted plans."""
    below_rate: float | None
    """Estimated seizure rate below the cut line."""
    below_seizures: float | None
    """Horvitz-Thompson estimate of the seizures below the cut line."""
    below_interval: tuple[float, float] | None
    recall: float | None
    recall_interval: tuple[float, float] | None
    confidence: float
    interval: str = "Wilson score interval of the seizure rate among inspected random picks"
    scope_words: str = ""
    """The scope as an officer reads it: a mode, a stream or "all streams"."""


@dataclass(frozen=True)
class OutcomeReport:
    """Performance from outcomes over inspections of [since, until) (plans of those days)."""

    since: dt.date | None
    until: dt.date | None
    generated_at: dt.datetime
    rows: list[OutcomeRow] = field(default_factory=list)
    recall: list[RecallEstimate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: dates as ISO text, NaN as null."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dt.date | dt.datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))


def _day(value: dt.date | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.combine(value, dt.time())


def outcome_table(outcomes: pd.DataFrame, modes: dict[str, str]) -> list[OutcomeRow]:
    """The outcome table of contract outcomes (reports in force) whose shipments' modes are
    ``modes``: one row per ISO week of inspection, stream and ``selected_by`` that has an
    inspection, in that order (a shipment the store does not hold counts under stream
    ``unknown``)."""
    if outcomes.empty:
        return []
    frame = outcomes.assign(
        week=outcomes["inspected_at"].dt.strftime("%G-W%V"),
        stream=outcomes["shipment_id"].map(modes).map(STREAM_OF_MODE).fillna("unknown"),
        seized=(outcomes["result"] == "seized").astype(int),
        days=(outcomes["result_at"] - outcomes["inspected_at"]).dt.total_seconds() / 86_400,
    )
    order = {name: i for i, name in enumerate(SELECTED_BY)}
    rows = []
    for (week, stream, by), g in frame.groupby(["week", "stream", "selected_by"], sort=False):
        rows.append(
            OutcomeRow(
                week=str(week),
                stream=str(stream),
                selected_by=str(by),
                inspections=len(g),
                seizures=int(g["seized"].sum()),
                hit_rate=float(g["seized"].mean()),
                median_days_to_result=round(float(g["days"].median()), 2),
            )
        )
    return sorted(rows, key=lambda r: (r.week, r.stream, order.get(r.selected_by, 99)))


def recall_estimates(
    picks: pd.DataFrame, outcomes: pd.DataFrame, confidence: float = 0.95
) -> list[RecallEstimate]:
    """The recall estimate of each scope of the recorded ``picks`` (the store's
    ``exploration_picks``) given the ``outcomes`` (reports in force): what a pick found is
    whether any report of its shipment says seized."""
    if picks.empty:
        return []
    inspected = set(outcomes["shipment_id"])
    seized = set(outcomes.loc[outcomes["result"] == "seized", "shipment_id"])
    frame = picks.assign(
        inspected=picks["shipment_id"].isin(inspected),
        seized=picks["shipment_id"].isin(seized),
        is_random=picks["pick"] == "random",
    )
    out = []
    for (scope, port), plans in frame.groupby(["scope", "port"], sort=True):
        out.append(_estimate(str(scope), str(port), plans, confidence))
    return out


def scope_words(key: str) -> str:
    """A worklist scope key (``serving.ui.worklist.Filters.scope_key``: ``stream:mode``, a
    mode, or ``""``) as an officer reads it."""
    stream, _, mode = key.rpartition(":")
    return mode or stream or "all streams"


def _estimate(scope: str, port: str, picks: pd.DataFrame, confidence: float) -> RecallEstimate:
    counted: list[pd.DataFrame] = []
    skipped = 0
    ht = 0.0
    pool = scored = 0
    for _day_key, plan in picks.groupby("plan_day", sort=True):
        random = plan[plan["is_random"]]
        looked = random[random["inspected"]]
        if looked.empty:
            skipped += 1
            continue
        counted.append(plan)
        # Horvitz-Thompson: each seizure among the random picks stands for 1/probability
        # shipments of the pool; uninspected picks are taken as missing at random
        weight = (1.0 / looked["probability"]) * (len(random) / len(looked))
        ht += float((weight * looked["seized"]).sum())
        # a plan redrawn over more of the day's shipments: its latest pool and size
        pool += int(plan.sort_values("drawn_at")["pool"].iloc[-1])
        scored += int(plan.sort_values("drawn_at")["scored"].iloc[-1])
    if not counted:
        return RecallEstimate(
            scope=scope, port=port, plans=0, plans_without_exploration=skipped, scored=0,
            model_picks=int((~picks["is_random"]).sum()), model_inspected=0, model_seizures=0,
            random_picks=int(picks["is_random"].sum()), random_inspected=0, random_seizures=0,
            pool=0, below_rate=None, below_seizures=None, below_interval=None, recall=None,
            recall_interval=None, confidence=confidence, scope_words=scope_words(scope),
        )  # fmt: skip
    used = pd.concat(counted)
    model = used[~used["is_random"]]
    random = used[used["is_random"]]
    m_found = int(model["seized"].sum())
    k = int((random["seized"] & random["inspected"]).sum())
    n = int(random["inspected"].sum())
    low, high = wilson_interval(k, n, confidence)
    below_interval = (low * pool, high * pool)
    recall = recall_interval = None
    if m_found + ht > 0:
        recall = m_found / (m_found + ht)
    if m_found > 0:
        recall_interval = (
            m_found / (m_found + below_interval[1]),
            m_found / (m_found + below_interval[0]),
        )
    elif ht > 0 or high > 0:
        recall_interval = (0.0, 0.0) if ht > 0 else (0.0, 1.0)
    return RecallEstimate(
        scope=scope,
        port=port,
        plans=len(counted),
        plans_without_exploration=skipped,
        scored=scored,
        model_picks=len(model),
        model_inspected=int(model["inspected"].sum()),
        model_seizures=m_found,
        random_picks=len(random),
        random_inspected=n,
        random_seizures=k,
        pool=pool,
        below_rate=ht / pool if pool else None,
        below_seizures=ht,
        below_interval=below_interval,
        recall=recall,
        recall_interval=recall_interval,
        confidence=confidence,
        scope_words=scope_words(scope),
    )


def outcome_report(
    store: Store,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    confidence: float = 0.95,
) -> OutcomeReport:
    """The outcome table of inspections made in [since, until) and the recall estimate of
    the plans of those days, from the store."""
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until: {until} is not after since {since}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} not in (0, 1)")
    outcomes = store.outcomes_frame(since=_day(since))
    table = outcomes
    if until is not None:
        table = outcomes[outcomes["inspected_at"] < _day(until)]
    modes = store.modes_of(table["shipment_id"])
    picks = store.picks_frame(since, until)
    found = store.outcomes_frame() if since is not None else outcomes  # picks' later reports
    return OutcomeReport(
        since=since,
        until=until,
        generated_at=utcnow(),
        rows=outcome_table(table.reset_index(drop=True), modes),
        recall=recall_estimates(picks, found, confidence),
    )
