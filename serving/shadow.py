"""The shadow challenger: a second model that scores every request beside the champion,
stored and never served, off the request's critical path.

A model version registered under the alias ``settings.shadow_alias`` (``challenger``) is
loaded beside the champion (at start and on every reload, the same load-probe-swap as the
champion's :class:`serving.model.ModelHolder`). For each scoring request the engine hands the
feature rows it computed for the champion to :meth:`ShadowScorer.submit`, which only puts a
reference on a bounded queue; one background thread scores them with the challenger and
stores the scores (``shadow_scores``, append-only). When the queue is full the batch is
dropped and counted (``cargorisk_shadow_dropped_total``) instead of slowing the answer down,
and a challenger that cannot score the rows (a feature or attribute the champion's rows do
not carry) is counted as an error, never seen by the caller.

The comparison of champion and challenger on the outcomes that arrive is
:func:`compare` (the model page, ``GET /admin/shadow`` and ``cargorisk shadow report``).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from serving.model import LoadedModel, ModelHolder, ModelLoadError

log = logging.getLogger("cargorisk.shadow")


@dataclass
class _Batch:
    features: pd.DataFrame
    shipment_ids: list[str]
    versions: list[int | None]
    request_id: str
    champion_version: str


@dataclass
class ShadowCounts:
    """What the shadow scorer did since the process started."""

    scored: int = 0
    dropped: int = 0
    errors: int = 0
    last_error: str | None = None


class NoChallenger(ModelLoadError):
    """No version carries the shadow alias: shadow scoring is off."""


class ShadowScorer:
    """Scores requests with the challenger in a background thread and stores the scores."""

    def __init__(
        self,
        loader: Callable[[], LoadedModel],
        record: Callable[[list[dict[str, Any]]], None],
        *,
        probe: Callable | None = None,
        max_pending: int = 64,
    ) -> None:
        self.holder = ModelHolder(loader, probe=probe)
        self._loader_check = getattr(loader, "check", lambda: None)
        self._record = record
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=max(1, max_pending))
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._busy = 0
        self.counts = ShadowCounts()
        self._metrics = _shadow_metrics()

    # -- model -------------------------------------------------------------------------------
    @property
    def current(self) -> LoadedModel | None:
        return self.holder.current

    def load(self) -> tuple[bool, str]:
        """Load (or reload) the challenger. No challenger registered is the normal case: the
        shadow is off (a challenger loaded before is dropped) and nothing is an error. A
        challenger that fails to load or to score leaves the one loaded before, if any, with
        the reason in ``holder.last_error``."""
        try:
            self._loader_check()
        except NoChallenger as exc:
            self.holder.current = None
            self.holder.last_error = None
            return False, f"{exc} (shadow scoring off)"
        return self.holder.load()

    # -- scoring -----------------------------------------------------------------------------
    def submit(
        self,
        features: pd.DataFrame,
        shipment_ids: list[str],
        versions: list[int | None],
        *,
        request_id: str,
        champion_version: str,
    ) -> bool:
        """Queue a request's feature rows for the challenger; never blocks. Returns whether it
        was queued (False: no challenger, the challenger is the champion, or the queue is
        full, counted as dropped)."""
        challenger = self.holder.current
        if challenger is None or challenger.version == champion_version:
            return False
        self._ensure_thread()
        batch = _Batch(features, list(shipment_ids), list(versions), request_id, champion_version)
        with self._idle:
            self._busy += 1
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            with self._idle:
                self._busy -= 1
                self.counts.dropped += len(shipment_ids)
                self._idle.notify_all()
            self._metrics["dropped"].inc(len(shipment_ids))
            return False
        return True

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every queued batch is scored and stored (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def stop(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=10)
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self._score(batch)
            except Exception as exc:  # the shadow never takes the service down
                with self._idle:
                    self.counts.errors += len(batch.shipment_ids)
                    self.counts.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                self._metrics["errors"].inc(len(batch.shipment_ids))
                log.warning("shadow scoring failed: %s", self.counts.last_error)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _score(self, batch: _Batch) -> None:
        challenger = self.holder.current
        if challenger is None:
            return
        scoring = challenger.scoring
        matrix = scoring.matrix(batch.features)
        raw = scoring.raw_score(matrix, num_threads=1)
        scores = scoring.calibrate(raw)
        self._record(
            [
                {
                    "shipment_id": sid,
                    "shipment_version": version,
                    "request_id": batch.request_id,
                    "model_name": challenger.name,
                    "model_version": challenger.version,
                    "champion_version": batch.champion_version,
                    "score": float(s),
                    "raw_score": float(r),
                }
                for sid, version, s, r in zip(
                    batch.shipment_ids, batch.versions, scores, raw, strict=True
                )
            ]
        )
        with self._idle:
            self.counts.scored += len(batch.shipment_ids)
        self._metrics["scored"].inc(len(batch.shipment_ids))


_METRICS_LOCK = threading.Lock()
_METRICS: dict[str, Any] | None = None


def _shadow_metrics() -> dict[str, Any]:
    """The shadow scorer's Prometheus counters (one set per process, made on first use, like
    :func:`serving.metrics.get_metrics`)."""
    global _METRICS
    with _METRICS_LOCK:
        if _METRICS is None:
            from prometheus_client import Counter

            _METRICS = {
                "scored": Counter(
                    "cargorisk_shadow_scored", "Shipments scored by the shadow challenger."
                ),
                "dropped": Counter(
                    "cargorisk_shadow_dropped",
                    "Shipments the shadow challenger skipped because its queue was full.",
                ),
                "errors": Counter(
                    "cargorisk_shadow_errors",
                    "Shipments the shadow challenger could not score (see /admin/status).",
                ),
            }
        return _METRICS


# -- comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures on the shipments both models scored."""

    version: str
    within_capacity: int
    """Shipments the model would put within the inspection capacity."""
    seizures_within_capacity: int
    """Known seizures among them."""
    inspected_within_capacity: int
    """Inspected shipments among them (the others have no outcome: unknown, not clean)."""
    auc_inspected: float
    """Ranking quality among the inspected shipments (ROC AUC; NaN without both classes)."""
    mean_score_seized: float
    mean_score_clean: float
    random_auc: float
    """ROC AUC among the randomly selected inspections only (no selection bias; NaN when
    there are too few)."""


@dataclass(frozen=True)
class ShadowComparison:
    """Champion and challenger on the same shipments, as outcomes arrive."""

    champion: ModelFigures | None
    challenger: ModelFigures | None
    shipments: int
    inspected: int
    seizures: int
    random_inspected: int
    random_seizures: int
    capacity: float
    overlap_within_capacity: float
    """Share of the challenger's within-capacity shipments the champion also puts there."""
    rank_correlation: float
    """Spearman correlation of the two scores."""
    verdict: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        from dataclasses import asdict

        return clean(asdict(self))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged); NaN without both classes."""
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return math.nan
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _figures(frame: pd.DataFrame, column: str, version: str, n_cap: int) -> ModelFigures:
    top = frame.sort_values(column, ascending=False, kind="stable").head(n_cap)
    inspected = frame[frame["inspected"]]
    y = inspected["seized"].to_numpy(dtype=int)
    s = inspected[column].to_numpy(dtype=float)
    rand = inspected[inspected["random"]]
    return ModelFigures(
        version=version,
        within_capacity=len(top),
        seizures_within_capacity=int(top["seized"].sum()),
        inspected_within_capacity=int(top["inspected"].sum()),
        auc_inspected=_auc(y, s),
        mean_score_seized=float(s[y == 1].mean()) if (y == 1).any() else math.nan,
        mean_score_clean=float(s[y == 0].mean()) if (y == 0).any() else math.nan,
        random_auc=_auc(rand["seized"].to_numpy(dtype=int), rand[column].to_numpy(dtype=float)),
    )


def compare(pairs: pd.DataFrame, capacity: float) -> ShadowComparison:
    """Compare champion and challenger on ``pairs``: one row per shipment both scored
    (``champion_score``, ``challenger_score``, ``champion_version``, ``challenger_version``,
    ``inspected`` / ``seized`` / ``random`` booleans from the reports in force: ``random``
    when the inspection was a random exploration pick).

    The champion chose most of the inspections, so outcomes exist mostly where it pointed:
    "seizures within capacity" favours it. The figures without that bias are those on random
    picks (``random_auc``), which are few; the verdict says which evidence it rests on."""
    notes: list[str] = []
    if pairs.empty:
        return ShadowComparison(
            None, None, 0, 0, 0, 0, 0, capacity, math.nan, math.nan,
            "no shipment scored by both models yet",
        )  # fmt: skip
    n_cap = max(1, math.ceil(capacity * len(pairs)))
    champ_v = str(pairs["champion_version"].mode().iloc[0])
    chall_v = str(pairs["challenger_version"].mode().iloc[0])
    if pairs["champion_version"].nunique() > 1 or pairs["challenger_version"].nunique() > 1:
        notes.append("more than one version pair in the window; the most frequent is named")
    champion = _figures(pairs, "champion_score", champ_v, n_cap)
    challenger = _figures(pairs, "challenger_score", chall_v, n_cap)
    top_a = set(pairs.nlargest(n_cap, "champion_score").index)
    top_b = set(pairs.nlargest(n_cap, "challenger_score").index)
    overlap = len(top_a & top_b) / max(1, len(top_b))
    rho = float(
        pairs["champion_score"].rank().corr(pairs["challenger_score"].rank())
        if len(pairs) > 1
        else math.nan
    )
    inspected = int(pairs["inspected"].sum())
    seizures = int(pairs["seized"].sum())
    rand = pairs[pairs["inspected"] & pairs["random"]]
    if seizures == 0:
        verdict = "no seizure among the shipments both scored yet: no evidence either way"
    elif challenger.seizures_within_capacity > champion.seizures_within_capacity:
        verdict = (
            f"challenger ahead: {challenger.seizures_within_capacity} known seizures within "
            f"capacity against {champion.seizures_within_capacity} (evidence favours the "
            "champion, which chose the inspections)"
        )
    elif challenger.seizures_within_capacity == champion.seizures_within_capacity:
        verdict = f"level: {champion.seizures_within_capacity} known seizures within capacity each"
    else:
        verdict = (
            f"champion ahead: {champion.seizures_within_capacity} known seizures within "
            f"capacity against {challenger.seizures_within_capacity}"
        )
    if len(rand) < 30:
        notes.append(
            f"only {len(rand)} random inspections so far: the unbiased comparison "
            "(AUC on random picks) is not yet informative"
        )
    return ShadowComparison(
        champion=champion,
        challenger=challenger,
        shipments=len(pairs),
        inspected=inspected,
        seizures=seizures,
        random_inspected=len(rand),
        random_seizures=int(rand["seized"].sum()),
        capacity=capacity,
        overlap_within_capacity=overlap,
        rank_correlation=rho,
        verdict=verdict,
        notes=notes,
    )


class RegistryShadowLoader:
    """Loads the version behind the shadow alias from the service's own registry;
    :meth:`check` raises :class:`NoChallenger` when no version carries the alias (a registry
    that cannot be reached is a load failure, not "no challenger")."""

    def __init__(self, settings) -> None:
        self.tracking_uri = settings.tracking_uri
        self.name = settings.model_name
        self.alias = settings.shadow_alias

    def check(self) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        try:
            aliases = client.get_registered_model(self.name).aliases or {}
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                raise NoChallenger(f"no model {self.name} registered") from exc
            raise
        if self.alias not in aliases:
            raise NoChallenger(f"no version of {self.name} has the alias @{self.alias}")

    def __call__(self) -> LoadedModel:
        from serving.model import load_champion

        return load_champion(self.tracking_uri, self.name, self.alias)


def loader_for(settings) -> RegistryShadowLoader:
    """The shadow loader of the service's settings."""
    return RegistryShadowLoader(settings)


__all__ = [
    "ModelFigures",
    "ModelLoadError",
    "NoChallenger",
    "RegistryShadowLoader",
    "ShadowComparison",
    "ShadowCounts",
    "ShadowScorer",
    "compare",
    "loader_for",
]
