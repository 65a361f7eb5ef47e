"""The scoring engine: the service's logic as a plain Python object, free of HTTP.

:class:`ScoringEngine` owns the store, the champion model (:class:`serving.model.ModelHolder`),
the store's online aggregates and the window of recent scores. The BentoML service, the CLI, the
benchmarks and the worklist UI all call it; it never imports ``training``.

One scoring request, in order:

1. the shipments (already validated field by field against the contract) become a contract
   frame and pass the contract's frame-level rules;
2. their features are computed *as of now* from the store's online aggregates of their keys
   (:mod:`features.online.rows`: the same ``features/`` definitions the offline engine
   evaluates for training), without changing them;
3. the model scores them; the top-ranked get exact TreeSHAP reasons;
4. the shipments, the scores served and the shipments' increments to the aggregates are
   committed to the store in one transaction (idempotently: a ledger of applied events);
5. the answer is returned.

The process holds no history: every worker and replica reads and updates the same aggregates,
so nothing is acknowledged before it is durable, a request that fails at any step leaves the
store (records and aggregates) as it was, and a restart finds the aggregates as they were. A
store with history but no aggregates (seeded, or kept by an older version) gets them built
from its own history by the offline engine once, at start-up.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime as dt
import gc
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import (
    ATTRIBUTE_PREFIX,
    AttributeSpec,
    LabelMeaning,
    attribute_column,
    attribute_columns,
    check_attributes,
    columns_frame,
    frame_rule_errors,
    missing_required,
    normal_identifier,
    validate_shipments,
)
from features.errors import CargoriskError, ContractError
from features.manifest import prepare
from features.scoring import TOP_REASONS
from features.tables import read_contract_dir
from serving import schemas
from serving.auth import may
from serving.model import LoadedModel, ModelHolder, ModelLoadError, load_champion, probe_frame
from serving.shadow import ShadowScorer
from serving.shadow import loader_for as shadow_loader_for
from serving.store import Caller, RecordedReports, ReportConflict, Store
from serving.store.online import StoreViews

log = logging.getLogger("cargorisk.serving")

_VERSION_FIELDS = (
    "version",
    "received_at",
    "caller",
    "request_id",
    "changed",
    "amendments_after_score",
)

CLOCK_SKEW = pd.Timedelta(minutes=5)
"""How far ahead of this machine's clock another system's clock may run: an inspection or a
result later than now plus this is refused as not having happened yet."""


PARTY_FIELDS = (
    ("shipper", "shipper_id", "shipper_name"),
    ("consignee", "consignee_id", "consignee_name"),
    ("forwarder", "forwarder_id", None),
    ("declarant", "declarant_id", None),
    ("recipient", "recipient_customs_code", None),
)
"""The parties of a shipment with a history: (role, id field, name field or None)."""

PARTY_FEATURES: dict[str, tuple[str, ...]] = {
    "shipper": ("shipper_",),
    "consignee": ("consignee_", "network_"),
    "forwarder": ("forwarder_",),
    "declarant": ("declarant_",),
    "recipient": ("recipient_",),
    "phone": ("phone_",),
    "address": ("address_",),
}
"""The model features that describe a party or identifier of each kind (by name prefix)."""
PARTY_FAMILIES = ("history", "network")
"""Feature families that describe a party (the others describe one declaration: a blank
consignee, a new phone for a known consignee...)."""


class RequestError(CargoriskError):
    """A request the client must fix; ``loc`` names the field (as in pydantic errors)."""

    def __init__(self, message: str, loc: list[str | int] | None = None, status: int = 400):
        super().__init__(message)
        self.loc = loc or []
        self.status = status


class NotReady(CargoriskError):
    """The service has no model or no online aggregates yet."""


class Conflict(RequestError):
    """409: reports differing from the report in force of their inspection, sent without
    ``correction``; ``existing`` holds those reports in force (with revision and author)."""

    def __init__(self, exc: ReportConflict):
        loc: list[str | int] = ["outcomes", exc.conflicts[0][0]] if exc.conflicts else []
        super().__init__(str(exc), loc, status=409)
        self.existing = [dict(old) for _, old, _ in exc.conflicts]


class NotFound(RequestError):
    def __init__(self, message: str, loc: list[str | int] | None = None):
        super().__init__(message, loc, status=404)


@dataclasses.dataclass(frozen=True)
class ShipmentAttributes:
    """The attributes of a request's shipments, checked against the served model's schema:
    ``columns`` = ``attr.<name>`` -> one value per shipment (text or None / float or NaN), for
    the feature frame; ``stored`` = one JSON object (or None) per shipment, for the store."""

    columns: dict[str, list[Any]]
    stored: list[str | None]


def shipment_attributes(
    given: list[dict[str, Any] | None], schema: dict[str, AttributeSpec], *, batch: bool
) -> ShipmentAttributes:
    """Check each shipment's ``attributes`` against the model's schema: an attribute the
    model does not know, or a value of the wrong kind, is a 400 naming it; a missing one is
    missing. Shipments without attributes cost nothing."""
    n = len(given)
    columns: dict[str, list[Any]] = {
        attribute_column(name): [math.nan] * n if spec.kind == "numeric" else [None] * n
        for name, spec in schema.items()
    }
    stored: list[str | None] = [None] * n
    for i, values in enumerate(given):
        if not values:
            continue
        try:
            checked = check_attributes(values, schema)
        except ContractError as exc:
            name = str(exc).split(":", 1)[0].removeprefix("attributes.")
            loc: list[str | int] = ["shipments", i] if batch else ["shipment"]
            raise RequestError(str(exc), [*loc, "attributes", name]) from None
        kept = {}
        for name, value in checked.items():
            if value is None:
                continue
            columns[attribute_column(name)][i] = value
            kept[name] = value
        stored[i] = json.dumps(kept, sort_keys=True) if kept else None
    return ShipmentAttributes(columns, stored)


def prepare_shipments(shipments: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The normalised keys and numbers of contract ``shipments``
    (:func:`features.manifest.prepare`, combination keys as tuples: how the aggregate rows of
    :mod:`features.online.rows` are found). One shipment may be given as a mapping of contract
    fields (three times cheaper than a frame). A required field missing is a
    :class:`ContractError` naming it."""
    given = shipments if isinstance(shipments, Mapping) else shipments.columns
    missing = missing_required("shipments", given)
    if missing:
        raise ContractError(f"shipments lack required field(s): {', '.join(missing)}")
    return prepare(shipments, tuple_keys=True)


class RecentScores:
    """The last ``size`` scores served by the current model, kept sorted, for percentiles."""

    def __init__(self, size: int, initial: np.ndarray | None = None) -> None:
        self.size = size
        self._fifo: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        if initial is not None:
            self.extend(initial[-size:])

    def __len__(self) -> int:
        return len(self._fifo)

    def extend(self, values) -> None:
        values = np.asarray(values, dtype="float64").tolist()
        if len(values) > 64:
            # a manifest: re-sorting the window once beats thousands of insertions, each
            # moving up to ``size`` list entries (0.2 s for 10,000 scores into 20,000)
            self._fifo.extend(values)
            while len(self._fifo) > self.size:
                self._fifo.popleft()
            self._sorted = sorted(self._fifo)
            return
        for v in values:
            self._fifo.append(v)
            bisect.insort(self._sorted, v)
            if len(self._fifo) > self.size:
                old = self._fifo.popleft()
                del self._sorted[bisect.bisect_left(self._sorted, old)]

    def percentiles(self, values: np.ndarray) -> np.ndarray:
        """Share (0-100) of recent scores plus ``values`` at or below each value."""
        reference = np.sort(np.concatenate([np.asarray(self._sorted), np.asarray(values)]))
        return 100.0 * np.searchsorted(reference, values, side="right") / len(reference)


class ScoringEngine:
    """Everything the scoring service does, callable in-process."""

    def __init__(
        self,
        settings,
        *,
        store: Store | None = None,
        model_loader=None,
        shadow_loader=None,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.store)
        self._lock = threading.RLock()
        self._schemas: dict[str, dict[str, AttributeSpec]] = {}
        self._labels: dict[str, LabelMeaning] = {}
        self.aggregates_ready = False
        """Whether the store's online aggregates are ready (seeded and built or found loaded at
        start-up): features as of now come from them; no history is held in this process."""
        self.aggregates_error: str | None = None
        """Why the aggregates could not be made ready at start-up (None when they were)."""
        self.pruner: Any = None
        """The day buckets' pruning job, once started."""
        self.model_holder = ModelHolder(
            model_loader
            or (
                lambda: load_champion(
                    settings.tracking_uri, settings.model_name, settings.champion_alias
                )
            ),
            probe=self._probe,
        )
        self.shadow = ShadowScorer(
            shadow_loader or shadow_loader_for(settings),
            self.store.record_shadow_scores,
            probe=self._probe,
            max_pending=settings.shadow_max_pending,
        )
        self.recent = RecentScores(settings.recent_scores_window)
        self._recent_version: str | None = None
        from serving.drift import DriftMonitor
        from serving.metrics import get_metrics

        self.metrics = get_metrics()
        self.drift = DriftMonitor(self)
        """Drift of the served traffic (the health page and the /metrics gauges read its last
        report; its thread recomputes it every ``drift_refresh_minutes``)."""

    # -- start-up --------------------------------------------------------------------------
    def start(self) -> None:
        """Make the store's online aggregates ready (seeding an empty store first, if a seed
        directory is configured; building them from a store's history that has none) and load
        the champion. Errors are kept, not raised: the service stays alive, not ready, and
        says in ``/admin/status`` what is missing."""
        try:
            self.build_aggregates()
        except Exception as exc:
            self.aggregates_error = f"{type(exc).__name__}: {exc}"
            log.exception("the online aggregates could not be made ready")
        log.info("start-up: loading the model %s", getattr(self.settings, "model_uri", ""))
        step = time.perf_counter()
        _, message = self.model_holder.load()
        log.info("start-up: model: %s (%.1f s)", message, time.perf_counter() - step)
        _, message = self.shadow.load()
        log.info("start-up: shadow challenger: %s", message)
        self._reset_recent()
        self.drift.start()
        self._start_pruner()
        # What start-up made (modules, the model's vocabularies and tables) lives as long as
        # the process: freezing it leaves garbage collections only the objects made since.
        gc.collect()
        gc.freeze()

    def _start_pruner(self) -> None:
        """The background job deleting the day buckets of the aggregates no window can read
        any more (:class:`serving.store.prune.DayPruner`), if ``aggregate_prune_minutes``."""
        from serving.store.prune import DayPruner

        minutes = float(getattr(self.settings, "aggregate_prune_minutes", 0))
        if minutes > 0 and self.pruner is None:
            self.pruner = DayPruner(
                self.store.engine,
                interval=minutes * 60,
                grace_days=self.settings.aggregate_prune_grace_days,
            )
            self.pruner.start()

    def _seed(self) -> None:
        """Copy the seed directory's history into an empty store (if one is configured)."""
        seed = getattr(self.settings, "serve_seed_data", None)
        if seed is None or self.store.count("shipments") != 0:
            return
        started = time.perf_counter()
        log.info("start-up: seeding the empty store from %s", seed)
        seed_tables = read_contract_dir(seed, what="seed data", keep_undeclared=True)
        ships, outs = seed_tables.shipments, seed_tables.outcomes
        self.store.import_history(ships, outs)
        log.info(
            "start-up: seeded the store with %d shipments, %d outcomes (%.1f s)",
            len(ships),
            len(outs),
            time.perf_counter() - started,
        )

    def build_aggregates(self) -> None:
        """Make sure the store holds online aggregates. A store with history but none loaded
        (a seeded store, or one kept by a version that held the history in memory) gets them
        built from its own history by the offline engine and materialised
        (:func:`serving.store.aggregates.materialize_history`); nothing is held in this
        process."""
        from serving.store.aggregates import materialize_history

        # one process at a time: a second worker or replica finds the store seeded and the
        # aggregates loaded (and never replaces aggregates another has begun to update)
        with self.store.startup_lock():
            self._seed()
            shipments = self.store.count("shipments")
            if self.store.aggregates_loaded():
                log.info("start-up: online aggregates found in the store (%d shipments)", shipments)
            elif shipments == 0:
                log.info("start-up: the store is empty; the online aggregates start empty")
            else:
                started = time.perf_counter()
                outcomes = self.store.count("outcomes")
                log.info(
                    "start-up: no online aggregates in the store; building them from its "
                    "%d shipments and %d outcomes",
                    shipments,
                    outcomes,
                )
                result = materialize_history(self.store)
                log.info(
                    "start-up: online aggregates built from %d shipments and %d outcomes and "
                    "loaded (%s rows; %.1f s)",
                    shipments,
                    outcomes,
                    sum(result.rows.values()),
                    time.perf_counter() - started,
                )
        with self._lock:
            self.aggregates_ready = True
            self.aggregates_error = None

    def _history_ready(self) -> bool:
        """Whether features as of now can be computed (the store's aggregates ready)."""
        return self.aggregates_ready

    def _not_ready(self) -> NotReady:
        return NotReady(f"online aggregates not ready: {self.aggregates_error or 'starting'}")

    def _store_features(
        self,
        shipments: pd.DataFrame | dict[str, Any],
        prepared: dict[str, Any],
        attributes: dict[str, AttributeSpec],
    ) -> pd.DataFrame:
        """Features of prepared shipments from the store's aggregate rows of their keys, as of
        now."""
        from features.online.rows import feature_rows, manifest_keys

        if not self.aggregates_ready:
            raise self._not_ready()
        from features.history import window_start
        from features.snapshot import MAX_WINDOW_DAYS

        since = window_start(int(np.min(prepared["t"])), MAX_WINDOW_DAYS)
        # results known by now that arrived early counted first (asked with the rows)
        tables = self.store.aggregate_rows(manifest_keys(prepared), since, due_first=True)
        return feature_rows(shipments, prepared, tables, attributes)

    def parties(self, record: dict) -> tuple[list[dict], list[dict]] | None:
        """The history of a stored shipment's parties (one profile per party it names, with
        the party's name from the record) and the consignees linked to its consignee; None
        while the aggregates are not ready."""
        views = self._views()
        if views is None:
            return None
        parties = []
        for role, id_col, name_col in PARTY_FIELDS:
            party_id = record.get(id_col)
            if not party_id:
                continue
            profile = views.party_profile(role, party_id)
            profile["name"] = record.get(name_col) if name_col else None
            parties.append(profile)
        consignee = record.get("consignee_id")
        linked = views.linked_parties(consignee) if consignee else []
        return parties, linked

    def _views(self) -> StoreViews | None:
        """What the officer's pages read a party from: the store's aggregates
        (:class:`serving.store.online.StoreViews`, reports due by now counted first); None
        while they are not ready."""
        if not self._history_ready():
            return None
        self.store.fold_due_reports()
        return StoreViews(self.store.engine)

    def party_view(self, kind: str, term: str, latest: dict | None) -> dict[str, Any] | None:
        """What the history says of a party or identifier (a kind of
        :data:`serving.store.search.SEARCH_KINDS`, ``term`` as the index keys it): its
        profile (roles with a history), the consignees linked to it (a consignee) or using it
        (phone, address, customs code), and the features that describe it - those of its
        latest shipment (``latest``, a stored record) were it declared now - each with its
        catalog description. None while the aggregates are not ready."""
        views = self._views()
        if views is None:
            return None
        from features.catalog import feature as catalog_feature
        from features.history import ROLES as HISTORY_ROLES
        from features.network import IDENTIFIERS

        out: dict[str, Any] = {"profile": None, "linked": [], "users": [], "features": []}
        if kind in HISTORY_ROLES:
            out["profile"] = views.party_profile(kind, term)
        if kind == "consignee":
            out["linked"] = views.linked_parties(term)
        if kind in IDENTIFIERS:
            out["users"] = views.consignees_of(kind, term)
        prefixes = PARTY_FEATURES.get(kind)
        if prefixes and latest is not None:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            row = {k: v for k, v in latest.items() if k not in ("attributes", "version")}
            row.update(shipment_id=f"{latest['shipment_id']} (now)", declared_at=now)
            for name in ("booked_at", "departed_at", "arrival_at"):
                if row.get(name) is not None and row[name] > now:
                    row[name] = None
            try:
                frame = validate_shipments(pd.DataFrame([row]))
            except ContractError:  # a record the contract's rules no longer take as of now
                return out
            values = self.features(frame, attributes={}).iloc[0]
            for name in values.index:
                if name.startswith(prefixes):
                    try:
                        record = catalog_feature(name)
                    except KeyError:
                        continue
                    if record.family not in PARTY_FAMILIES:
                        continue
                    out["features"].append(
                        {"name": name, "value": values[name], "description": record.description}
                    )
        return out

    def network(self, kind: str, term: str) -> dict[str, Any] | None:
        """The network around a consignee or an identifier
        (:meth:`serving.store.online.StoreViews.component`); None while the aggregates are not
        ready."""
        views = self._views()
        if views is None:
            return None
        return views.component(kind, term)

    def features(
        self, shipments: pd.DataFrame, attributes: dict[str, AttributeSpec] | None = None
    ) -> pd.DataFrame:
        """Features of contract shipments as of now (every committed update counted), with the
        attribute features of ``attributes`` (default: the served model's schema). Stored
        attributes that schema does not know are left out, as a model ignores data it was
        not trained on."""
        if attributes is None:
            model = self.model_holder.current
            attributes = {} if model is None else self._attribute_schema(model)
        extra = [
            c
            for c in attribute_columns(shipments)
            if c.removeprefix(ATTRIBUTE_PREFIX) not in attributes
        ]
        if extra:
            shipments = shipments.drop(columns=extra)
        return self._store_features(shipments, prepare_shipments(shipments), attributes)

    def _reset_recent(self) -> None:
        model = self.model_holder.current
        if model is None or model.version == self._recent_version:
            return
        initial = self.store.recent_scores(model.version, self.settings.recent_scores_window)
        self.recent = RecentScores(self.settings.recent_scores_window, initial)
        self._recent_version = model.version

    def _probe(self, scoring) -> None:
        """A candidate model must use only features the pipeline produces, and score and
        explain a real stored shipment."""
        from features.catalog import FEATURE_NAMES

        schema = scoring.attributes
        produced = {*FEATURE_NAMES, *(attribute_column(n) for n in schema)}
        unknown = [n for n in scoring.feature_names if n not in produced]
        if unknown:
            raise ModelLoadError(
                f"model needs features the pipeline does not produce: {', '.join(unknown[:5])}"
            )
        if not self._history_ready():
            return
        latest = self.store.shipments_frame().tail(1)
        if latest.empty:
            return
        probe_frame(scoring, self.features(latest, attributes=schema))

    # -- what the worklist reads ------------------------------------------------------------
    @property
    def served_model(self) -> LoadedModel | None:
        """The model in service (None until one is loaded)."""
        return self.model_holder.current

    @property
    def model_error(self) -> str | None:
        """Why the last model load failed (None when it did not)."""
        return self.model_holder.last_error

    @property
    def history_loaded(self) -> bool:
        """Whether the online aggregates are ready, so features as of now can be computed."""
        return self._history_ready()

    # -- status ----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._history_ready() and self.model_holder.ready

    def status(self) -> dict[str, Any]:
        model = self.model_holder.current
        return {
            "ready": self.ready,
            "model": None
            if model is None
            else {"name": model.name, "version": model.version, "loaded_at": model.loaded_at},
            "model_error": self.model_holder.last_error,
            "online_aggregates": self._history_ready(),
            "online_aggregates_error": self.aggregates_error,
            "shadow": self.shadow_status(),
        }

    def shadow_status(self) -> dict[str, Any]:
        """The shadow challenger: which version, what it did, its last error."""
        shadow = self.shadow.current
        counts = self.shadow.counts
        return {
            "alias": self.settings.shadow_alias,
            "version": shadow.version if shadow else None,
            "scored": counts.scored,
            "dropped": counts.dropped,
            "errors": counts.errors,
            "last_error": counts.last_error or self.shadow.holder.last_error,
        }

    def shadow_comparison(self, since: dt.datetime | None = None) -> dict[str, Any]:
        """Champion and challenger compared on the outcomes that arrived
        (:func:`serving.shadow.compare`)."""
        from serving.shadow import compare

        shadow = self.shadow.current
        pairs = self.store.shadow_pairs(
            since=since, challenger_version=shadow.version if shadow else None
        )
        return compare(pairs, self.settings.capacity).as_dict()

    def _attribute_schema(self, model: LoadedModel) -> dict[str, AttributeSpec]:
        """The attribute schema of the served model (parsed once per model version)."""
        cached = self._schemas.get(model.version)
        if cached is None:
            cached = self._schemas[model.version] = model.scoring.attributes
        return cached

    def _label(self, model: LoadedModel) -> LabelMeaning:
        """What a positive means for the served model."""
        cached = self._labels.get(model.version)
        if cached is None:
            cached = self._labels[model.version] = model.scoring.dataset.label
        return cached

    def _require_ready(self) -> LoadedModel:
        if not self._history_ready():
            raise self._not_ready()
        return self.model_holder.get()

    # -- scoring ---------------------------------------------------------------------------
    def score(
        self,
        shipments: list,
        *,
        caller: Caller,
        request_id: str | None = None,
        explain_share: float | None = 1.0,
        all_contributions: bool = False,
        top_reasons: int = TOP_REASONS,
    ) -> tuple[str, LoadedModel, list[dict[str, Any]]]:
        """Score validated shipments (``schemas.ShipmentIn``) as of now; returns the request
        id, the model used and one result per shipment, riskiest first, with reasons for the
        top ``explain_share`` of them."""
        started = time.perf_counter()
        request_id = request_id or uuid.uuid4().hex
        if not shipments:
            raise RequestError("shipments: at least one shipment is required", ["shipments"])
        if len(shipments) > self.settings.max_batch:
            raise RequestError(
                f"shipments: {len(shipments)} shipments exceed the maximum batch of "
                f"{self.settings.max_batch}",
                ["shipments"],
                status=413,
            )
        # one list per contract column: for the frame and for the store (no per-row dicts)
        records = [s.model_dump() for s in shipments]
        given = [r.pop("attributes", None) for r in records]
        for r in records:  # null by validation: the store counts it (plan_versions below)
            del r["amendments_after_score"]
        columns = schemas.declared_columns(records)
        frame = columns_frame("shipments", columns)
        self._check_frame(frame)
        model = self._require_ready()
        scoring = model.scoring
        schema = self._attribute_schema(model)
        attributes = shipment_attributes(given, schema, batch=len(shipments) > 1)
        columns["attributes"] = attributes.stored
        # a shipment id declared before: an amendment (or a re-send); its amendment count is
        # one of its features
        plan = self.store.plan_versions(columns)
        amended = [p.amendments for p in plan]
        columns["amendments_after_score"] = amended
        frame["amendments_after_score"] = pd.array(amended, dtype="Int64")
        if schema:
            for name, values in attributes.columns.items():
                frame[name] = values
        threads = 1 if len(frame) <= 16 else 0
        # the manifest's keys (one shipment: from its fields rather than the frame), then the
        # aggregate rows of those keys, as of now
        prepared = prepare_shipments(
            frame if len(frame) > 1 else {name: values[0] for name, values in columns.items()}
        )
        feats = self._store_features(frame, prepared, schema)
        matrix = scoring.matrix(feats)
        n_explain = len(frame)
        if explain_share is not None:
            n_explain = min(len(frame), int(np.ceil(explain_share * len(frame))))
        contrib: np.ndarray | None
        if n_explain == len(frame):
            # Explaining everything: the contributions also give the raw scores.
            contrib = scoring.contributions(matrix, num_threads=threads)
            raw = contrib.sum(axis=1)
            order = np.argsort(-raw, kind="stable")
            idx = order
        else:
            raw = scoring.raw_score(matrix, num_threads=threads)
            order = np.argsort(-raw, kind="stable")
            idx = order[:n_explain]
            contrib = scoring.contributions(matrix[idx], num_threads=threads) if n_explain else None
        scores = scoring.calibrate(raw)
        bands = scoring.band(scores)
        with self._lock:
            self._reset_recent()
            percentiles = self.recent.percentiles(scores)
        explained: dict[int, dict] = {}
        if n_explain and contrib is not None:
            # contrib rows follow idx (top rows only) or the frame (all rows)
            items = scoring.explain(
                feats.iloc[idx],
                contributions=contrib if n_explain < len(frame) else contrib[idx],
                top=top_reasons,
                all_contributions=all_contributions,
                label=self._label(model),
                attributes=schema,
            )
            explained = dict(zip(idx.tolist(), items, strict=True))
        results = []
        ids = columns["shipment_id"]
        for rank, i in enumerate(order.tolist(), start=1):
            item = explained.get(i)
            results.append(
                {
                    "shipment_id": ids[i],
                    "score": float(scores[i]),
                    "percentile": float(percentiles[i]),
                    "band": str(bands[i]),
                    "rank": rank,
                    "model_name": model.name,
                    "model_version": model.version,
                    "reasons": None if item is None else item["reasons"],
                    "contributions": None if item is None else item.get("contributions"),
                    "raw_score": float(raw[i]),
                    "base_value": None if item is None else item["base_value"],
                }
            )
        versions = self.store.record_scoring(
            columns,
            results,
            request_id=request_id,
            caller=caller,
            model_name=model.name,
            model_version=model.version,
            online=True,  # counted in the aggregates in the same transaction
        )
        watched = self.store.watch_hits(columns)
        for item in results:
            item["shipment_version"] = versions[item["shipment_id"]].version
            hits = watched.get(item["shipment_id"])
            item["watchlist"] = (
                None
                if not hits
                else [
                    {"kind": e.kind, "value": e.display, "reason": e.reason,
                     "expires_at": e.expires_at, "added_by": e.added_by}
                    for e in hits
                ]
            )  # fmt: skip
        # the shadow challenger scores the same rows in its own thread, after the answer
        self.shadow.submit(
            feats,
            ids,
            [versions[sid].version for sid in ids],
            request_id=request_id,
            champion_version=model.version,
        )
        with self._lock:
            self.recent.extend(scores)
        self.metrics.observe_scores(scores, bands)
        self.drift.notice()  # wakes the drift thread (it decides whether to recompute)
        self.metrics.latency.labels(endpoint="score" if len(frame) == 1 else "batch").observe(
            time.perf_counter() - started
        )
        return request_id, model, results

    def _check_frame(self, frame: pd.DataFrame) -> None:
        dupes = []
        if len(frame) > 1:
            dupes = frame["shipment_id"][frame["shipment_id"].duplicated()].unique().tolist()
        if dupes:
            shown = ", ".join(map(str, dupes[:5]))
            raise RequestError(
                f"shipments: shipment_id repeated in one request: {shown}", ["shipment_id"]
            )
        errors = frame_rule_errors("shipments", frame)
        if errors:
            raise RequestError("; ".join(errors[:5]), ["shipments"])

    # -- outcomes --------------------------------------------------------------------------
    def record_outcomes(
        self, outcomes: list, *, caller: Caller, request_id: str | None = None
    ) -> tuple[str, int]:
        """Store inspection reports and apply them to the online history; returns the
        request id and how many were accepted (see :meth:`record_reports`)."""
        request_id, _ = self.record_reports(outcomes, caller=caller, request_id=request_id)
        return request_id, len(outcomes)

    def record_reports(
        self, outcomes: list, *, caller: Caller, request_id: str | None = None
    ) -> tuple[str, RecordedReports]:
        """Store inspection reports (validated ``schemas.OutcomeIn``) and apply the new ones
        to the online history. A report that differs from the one in force for the same
        inspection is a correction: refused (:class:`Conflict`, 409, naming the report in
        force) unless it carries ``correction`` with a reason and the caller may correct
        (``correct_outcomes`` in :data:`serving.auth.PERMISSIONS`; else 403). An identical
        re-send stores nothing. Nothing of a refused request is stored."""
        request_id = request_id or uuid.uuid4().hex
        if not outcomes:
            raise RequestError("outcomes: at least one outcome is required", ["outcomes"])
        if len(outcomes) > self.settings.max_batch:
            raise RequestError(
                f"outcomes: more than {self.settings.max_batch} in one request",
                ["outcomes"],
                status=413,
            )
        frame = schemas.outcomes_frame(outcomes)
        keys = frame[["shipment_id", "inspected_at"]]
        if keys.duplicated().any():
            raise RequestError(
                "outcomes: the same inspection (shipment_id, inspected_at) appears twice",
                ["outcomes"],
            )
        errors = frame_rule_errors("outcomes", frame)
        if errors:
            raise RequestError("; ".join(errors[:5]), ["outcomes"])
        if not self._history_ready():
            raise self._not_ready()
        self._check_outcome_times(frame)
        reasons = schemas.correction_reasons(outcomes)
        allowed = may(caller.role, "correct_outcomes")
        try:
            recorded = self.store.record_outcomes(
                frame,
                request_id=request_id,
                caller=caller,
                corrections=reasons,
                may_correct=allowed,
                online=True,  # counted in the aggregates in the same transaction
            )
        except ReportConflict as exc:
            asked = [c for c in exc.conflicts if c[2]]
            if asked and not allowed:
                i = asked[0][0]
                raise RequestError(
                    f"outcomes[{i}].correction: the role {caller.role!r} may not correct an "
                    "inspection report (officers may)",
                    ["outcomes", i, "correction"],
                    status=403,
                ) from None
            raise Conflict(exc) from None
        if recorded.stored:
            stored = frame.iloc[recorded.stored].reset_index(drop=True)
            for result in stored["result"]:
                self.metrics.outcomes.labels(result=str(result)).inc()
        return request_id, recorded

    def _check_outcome_times(self, frame: pd.DataFrame) -> None:
        """Every outcome is about a stored shipment (else 404, as the worklist answers), was
        inspected at or after the shipment's declaration and has not happened yet: neither
        the inspection nor the result may lie in the future. Times are compared to the
        minute, the precision of the worklist's form."""
        declared = self.store.declared_at(frame["shipment_id"].tolist())
        unknown = [sid for sid in dict.fromkeys(frame["shipment_id"]) if sid not in declared]
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise NotFound(
                f"shipment_id: no shipment {shown}{more} in the store; an outcome can only be "
                "reported for a shipment the service has received",
                ["outcomes", "shipment_id"],
            )
        now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))
        declared_at = pd.to_datetime(frame["shipment_id"].map(declared)).dt.floor("min")
        early = (frame["inspected_at"] < declared_at).to_numpy()
        if early.any():
            i = int(np.argmax(early))
            sid = frame["shipment_id"].iloc[i]
            raise RequestError(
                f"inspected_at: {frame['inspected_at'].iloc[i]} is before shipment {sid!r} "
                f"was declared ({declared[sid]})",
                ["outcomes", i, "inspected_at"],
            )
        for field in ("inspected_at", "result_at"):
            future = (frame[field] > now + CLOCK_SKEW).fillna(False).to_numpy(dtype=bool)
            if future.any():
                i = int(np.argmax(future))
                raise RequestError(
                    f"{field}: {frame[field].iloc[i]} is in the future "
                    f"(now {now:%Y-%m-%d %H:%M} UTC)",
                    ["outcomes", i, field],
                )

    # -- reads -----------------------------------------------------------------------------
    def shipment_view(self, shipment_id: str) -> dict[str, Any]:
        """The stored declaration, latest score (with reasons) and outcomes of a shipment.
        ``shipment_id`` is normalised as when it was declared (a full-width form finds it); one
        holding a control or format character is a 400."""
        try:
            shipment_id = normal_identifier(shipment_id)
        except ContractError as exc:
            raise RequestError(f"shipment_id: {exc}", ["path", "shipment_id"]) from None
        if len(shipment_id) > 64:
            raise NotFound(
                f"shipment_id: no shipment {shipment_id[:64]!r}... in the store (ids have at "
                "most 64 characters)",
                ["path", "shipment_id"],
            )
        shipment = self.store.shipment(shipment_id)
        if shipment is None:
            raise NotFound(
                f"shipment_id: no shipment {shipment_id!r} in the store", ["path", "shipment_id"]
            )
        latest = self.store.latest_score(shipment_id)
        return {
            "shipment": shipment,
            "latest_score": None
            if latest is None
            else {
                k: latest[k]
                for k in (
                    "request_id",
                    "scored_at",
                    "caller",
                    "model_version",
                    "score",
                    "percentile",
                    "band",
                    "reasons",
                    "shipment_version",
                )
            },
            "outcomes": self.store.outcomes_for(shipment_id),
            "reports": self.store.outcome_reports(shipment_id),
            "versions": [
                {k: v[k] for k in _VERSION_FIELDS}
                for v in self.store.shipment_versions(shipment_id)
            ],
        }

    # -- reload ----------------------------------------------------------------------------
    def reload(self, caller: Caller | str = "system") -> dict[str, Any]:
        """Load the current champion beside the serving model and swap if it works."""
        previous = self.model_holder.current
        ok, message = self.model_holder.load()
        current = self.model_holder.current
        self.metrics.reloads.labels(result="ok" if ok else "failed").inc()
        _, shadow_message = self.shadow.load()
        shadow = self.shadow.current
        self.store.audit(
            "model_reload",
            caller,
            {
                "ok": ok,
                "message": message,
                "version": current.version if current else None,
                "shadow_version": shadow.version if shadow else None,
                "shadow_message": shadow_message,
            },
        )
        if ok:
            with self._lock:
                self._reset_recent()
        return {
            "reloaded": ok,
            "model_name": self.settings.model_name,
            "model_version": current.version if current else None,
            "previous_version": previous.version if previous else None,
            "message": message,
            "shadow_version": shadow.version if shadow else None,
            "shadow_message": shadow_message,
        }
