"""The cargorisk risk-scoring service on BentoML.

Run it with ``cargorisk serve`` or directly ``bentoml serve serving.service:CargoRisk``
(``bentoml build`` uses the ``bentofile.yaml`` at the repository root). Endpoints:

* ``POST /score`` - one shipment -> score, percentile, band, model version, top reasons;
* ``POST /score/batch`` - a manifest -> the same per shipment, riskiest first, reasons for the
  top share;
* ``POST /outcomes`` - inspection results; stored and applied to the history features;
* ``GET /shipments/{shipment_id}`` - latest score, reasons and outcomes of a shipment;
* ``GET /performance`` - performance from outcomes (:mod:`serving.health_outcomes`): the
  outcome table by week, stream and selection, and the recall estimate of the model's
  selection from the random exploration picks (officers and admins);
* ``GET /search?q=`` - the officers' search (containers, references, parties, names, phones,
  addresses, customs codes);
* ``GET /watchlist``, ``POST /watchlist``, ``POST /watchlist/{entry}`` - the officers'
  watchlist: the entries in force, add one, change or remove one (officers' keys; audited);
* ``POST /admin/reload`` - load the current champion without dropping requests;
  ``GET /admin/status`` - what is loaded and, after a failed load, why;
  ``GET /admin/shadow`` - the shadow challenger and its comparison with the champion;
* ``/livez``, ``/readyz`` (ready once a model is loaded and the store's online aggregates are
  ready), ``/metrics``
  (monitor or admin key unless ``metrics_require_key`` is off), the OpenAPI description at
  ``/docs.json`` and, with the setting ``api_explorer``, the API explorer at ``/``.

Every request first meets :class:`serving.edge.Edge` (client address, body size, overload:
at most ``max_scoring_in_flight`` scoring requests per worker, the excess answered 503 at once,
security headers, one log line per refusal), then :class:`serving.auth.AuthMiddleware` (API
keys and roles). All logic lives in :class:`serving.engine.ScoringEngine`; this module only
translates HTTP. Settings are read when the service starts (``load_settings``), never at import
time.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import uuid
from typing import Annotated, Any

import anyio
import bentoml
from fastapi import FastAPI, Path, Query, Request
from pydantic import Field
from starlette.responses import JSONResponse

from serving.auth import ApiKeyAuth, AuthMiddleware
from serving.edge import UVICORN_PROXIES, Edge, EdgePolicy
from serving.engine import Conflict, NotReady, RequestError, ScoringEngine
from serving.preflight import preflight
from serving.schemas import (
    BatchResponse,
    ConflictBody,
    ErrorBody,
    OutcomeIn,
    OutcomeReport,
    OutcomesAck,
    ReloadResponse,
    ScoreResponse,
    SearchResponse,
    ShipmentIn,
    ShipmentView,
    WatchAdd,
    WatchChange,
    WatchEntryView,
    WatchlistResponse,
)
from serving.store import Caller, SearchError, WatchEntry, WatchlistError, utcnow
from serving.ui.app import create_app

log = logging.getLogger("cargorisk.serving")

GIL_SWITCH_INTERVAL_S = 0.001
"""How long a thread may hold the GIL while another waits (Python's default: 5 ms). After a
manifest is answered, the feature-state thread adds it (~0.35 s of pure Python for 10,000
shipments) while the event loop reads the next 12 MB request body: each socket read gives
the GIL up and waits up to the interval to get it back. At 5 ms, back-to-back 10,000-shipment
manifests took 1.95-2.31 s each; at 1 ms 1.62-1.78 s (benchmarks/README.md)."""

HARD_MAX_BATCH = 200_000
"""Upper bound of any list in a request body (the configured ``max_batch`` is at most this)."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
"""A request id a caller may choose (``X-Request-ID``); it is kept under the caller's own
namespace (:func:`_request_id`)."""


http = FastAPI(
    title="cargorisk",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


_RUNNING: dict[str, CargoRisk] = {}
"""The service instance of this process under ``"service"`` (BentoML makes one per worker
process), set when its ``__init__`` has built the engine, the edge and the key check."""


def current_service() -> CargoRisk | None:
    """The service instance of this process; None while it starts."""
    return _RUNNING.get("service")


def _current_auth() -> ApiKeyAuth | None:
    service = current_service()
    return None if service is None else service.auth


def _current_edge() -> EdgePolicy | None:
    service = current_service()
    return None if service is None else service.edge


def _current_engine() -> ScoringEngine | None:
    service = current_service()
    return None if service is None else service.engine


ui_app = create_app(_current_engine)
"""The worklist app the service mounts at ``/ui``."""


def _request_id(ctx: bentoml.Context) -> str:
    """The id of a request: ``<caller tag>:<X-Request-ID>`` (or a fresh one), e.g.
    ``k12:gate7-000001`` for API key 12. Ids are unique per caller by construction: a caller
    cannot make its request look like another caller's in the audit trail by reusing that
    caller's id."""
    given = ctx.request.headers.get("x-request-id", "")
    own = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    return f"{_caller(ctx).tag}:{own}"


def _caller(ctx: bentoml.Context) -> Caller:
    state = ctx.request.scope.get("state") or {}
    caller = state.get("caller")
    return caller if isinstance(caller, Caller) else Caller("anonymous", "none")


def _http_caller(request: Request) -> Caller:
    """The caller of a plain FastAPI route (set by :class:`serving.auth.AuthMiddleware`)."""
    caller = (request.scope.get("state") or {}).get("caller")
    return caller if isinstance(caller, Caller) else Caller("anonymous", "none")


def _field_error(exc: Exception, status: int = 400) -> JSONResponse:
    """A request the caller must fix, its message starting with the field it names."""
    field = str(exc).split(":", 1)[0]
    return JSONResponse(
        {"error": str(exc), "detail": [{"loc": ["body", field], "msg": str(exc)}]},
        status_code=status,
    )


def _watch_view(entry: WatchEntry) -> dict[str, Any]:
    return {
        "entry": entry.entry,
        "kind": entry.kind,
        "key": entry.term,
        "value": entry.display,
        "reason": entry.reason,
        "expires_at": entry.expires_at,
        "added_by": entry.added_by,
        "added_at": entry.added_at,
        "in_force": entry.in_force(utcnow()),
        "history": [
            {k: h[k] for k in ("action", "at", "caller", "reason", "expires_at")}
            for h in entry.history
        ],
    }


def _json(body: dict, status: int):
    """A JSON answer other than the route's declared response model (e.g. a 409 body)."""
    return JSONResponse(body, status_code=status)


def _error(ctx: bentoml.Context, status: int, message: str, loc: list | None = None):
    ctx.response.status_code = status
    headers = {"retry-after": "5"} if status == 503 else None
    return JSONResponse(
        {"error": message, "detail": [{"loc": loc or [], "msg": message}]},
        status_code=status,
        headers=headers,
    )


class _ClientErrorTracebacks(logging.Filter):
    """Drops BentoML's ERROR-with-traceback records of requests it answers 4xx (a body that
    fails validation is the client's mistake, not the service's); :class:`serving.edge.Edge`
    logs those in one WARNING line. Errors answered 5xx keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bentoml.exceptions import BentoMLException
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            return False
        if isinstance(exc, BentoMLException):
            return int(exc.error_code) >= 500
        return True


def _configure_logging() -> None:
    """Our INFO lines (start-up progress) reach BentoML's log handler, whose root level is
    WARNING; BentoML's tracebacks of 4xx answers do not."""
    ours = logging.getLogger("cargorisk")
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _ClientErrorTracebacks) for f in logger.filters):
        logger.addFilter(_ClientErrorTracebacks())


@bentoml.asgi_app(http, path="/")
@bentoml.asgi_app(ui_app, path="/ui")
@bentoml.service(
    name="cargorisk",
    workers=1,
    threads=4,
    traffic={"timeout": 120, "max_concurrency": 256},
    logging={"access": {"enabled": False}},
    envs=[{"name": "FORWARDED_ALLOW_IPS", "value": UVICORN_PROXIES}],
)
class CargoRisk:
    """Narcotics risk scoring of shipments with reasons, audit trail and outcomes."""

    def __init__(self) -> None:
        from common.settings import load_settings

        self.settings = load_settings()
        _configure_logging()
        preflight(self.settings)  # a short signing secret or a trusting uvicorn: no start
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        if self.settings.embedded_tracking:
            self.settings.ensure_home()  # mlruns/ 0700 before MLflow creates it 0755
        self.edge = EdgePolicy.from_settings(self.settings)
        self.engine = ScoringEngine(self.settings)
        self.auth = ApiKeyAuth(
            self.engine.store,
            enabled=self.settings.auth_enabled,
            metrics_require_key=self.settings.metrics_require_key,
        )
        log.info(
            "start-up: edge: body limit %d MiB, %d concurrent requests, %d scoring requests "
            "in flight, trusted proxies %s, API explorer %s, /metrics %s",
            self.settings.max_body_mb,
            self.settings.max_concurrent_requests,
            self.settings.max_scoring_in_flight,
            ", ".join(self.settings.trusted_proxies) or "none",
            "on" if self.settings.api_explorer else "off",
            "needs a key" if self.settings.metrics_require_key else "open",
        )
        _RUNNING["service"] = self
        # Building the online aggregates of a store that has none and loading the model can
        # take a while: do it beside the server so /livez answers at once and /readyz turns
        # green when done.
        self._starter = threading.Thread(target=self.engine.start, name="start", daemon=True)
        self._starter.start()

    def __is_ready__(self) -> bool:
        return self.engine.ready

    @bentoml.api(route="/score")
    def score(
        self,
        shipment: ShipmentIn,  # type: ignore[valid-type]  # generated from the contract
        all_contributions: bool = False,
        ctx: bentoml.Context = None,  # type: ignore[assignment]  # BentoML injects it
    ) -> ScoreResponse:
        """Score one shipment: calibrated risk, percentile in recent traffic, band at the
        inspection capacity, model version and the top reasons (exact SHAP)."""
        try:
            request_id, _, results = self.engine.score(
                [shipment],
                caller=_caller(ctx),
                request_id=_request_id(ctx),
                explain_share=1.0,
                all_contributions=all_contributions,
            )
        except NotReady as exc:
            return _error(ctx, 503, str(exc))
        except RequestError as exc:
            return _error(ctx, exc.status, str(exc), ["shipment", *exc.loc])
        ctx.response.metadata["x-request-id"] = request_id
        return ScoreResponse(**results[0], request_id=request_id)

    @bentoml.api(route="/score/batch")
    def score_batch(
        self,
        shipments: Annotated[
            list[ShipmentIn],  # type: ignore[valid-type]  # generated from the contract
            Field(min_length=1, max_length=HARD_MAX_BATCH),
        ],
        explain_top_share: Annotated[float | None, Field(ge=0, le=1)] = None,
        all_contributions: bool = False,
        ctx: bentoml.Context = None,  # type: ignore[assignment]  # BentoML injects it
    ) -> BatchResponse:
        """Score a manifest (a vessel, a flight, a day of parcels), riskiest first; reasons
        for the top ``explain_top_share`` (default from settings)."""
        share = self.settings.explain_top_share if explain_top_share is None else explain_top_share
        try:
            request_id, model, results = self.engine.score(
                shipments,
                caller=_caller(ctx),
                request_id=_request_id(ctx),
                explain_share=share,
                all_contributions=all_contributions,
            )
        except NotReady as exc:
            return _error(ctx, 503, str(exc))
        except RequestError as exc:
            return _error(ctx, exc.status, str(exc), exc.loc)
        ctx.response.metadata["x-request-id"] = request_id
        return BatchResponse(
            request_id=request_id,
            model_name=model.name,
            model_version=model.version,
            count=len(results),
            explained=sum(r["reasons"] is not None for r in results),
            results=results,
        )

    @bentoml.api(route="/outcomes")
    def outcomes(
        self,
        outcomes: Annotated[
            list[OutcomeIn],  # type: ignore[valid-type]  # generated from the contract
            Field(min_length=1, max_length=HARD_MAX_BATCH),
        ],
        ctx: bentoml.Context = None,  # type: ignore[assignment]  # BentoML injects it
    ) -> OutcomesAck:
        """Record inspection reports; they update the history features at once and are
        stored for retraining. A report that differs from the one on record for the same
        inspection (shipment_id, inspected_at) is refused with 409 naming that report,
        unless it is sent as a correction (``correction: {"reason": ...}``, officers only);
        an identical re-send changes nothing."""
        try:
            request_id, recorded = self.engine.record_reports(
                outcomes, caller=_caller(ctx), request_id=_request_id(ctx)
            )
        except NotReady as exc:
            return _error(ctx, 503, str(exc))
        except Conflict as exc:
            ctx.response.status_code = 409
            body = ConflictBody(
                error=str(exc),
                detail=[{"loc": exc.loc, "msg": str(exc)}],
                existing=[OutcomeReport(**r) for r in exc.existing],
            )
            return _json(body.model_dump(mode="json"), 409)
        except RequestError as exc:
            return _error(ctx, exc.status, str(exc), exc.loc)
        ctx.response.metadata["x-request-id"] = request_id
        return OutcomesAck(
            request_id=request_id,
            accepted=len(outcomes),
            recorded=len(recorded.stored),
            corrections=len(recorded.corrected),
            unchanged=len(recorded.unchanged),
        )

    @bentoml.api(route="/admin/reload")
    async def reload(
        self,
        ctx: bentoml.Context = None,  # type: ignore[assignment]  # BentoML injects it
    ) -> ReloadResponse:
        """Load the current champion from the registry beside the serving model; swap only
        if it loads and scores. Requests keep being served meanwhile."""
        caller = _caller(ctx)
        result = await anyio.to_thread.run_sync(self.engine.reload, caller)
        if not result["reloaded"]:
            ctx.response.status_code = 409
        return ReloadResponse(**result)

    @http.get("/shipments/{shipment_id:path}", response_model=ShipmentView)
    def get_shipment(self, shipment_id: Annotated[str, Path(min_length=1, max_length=256)]) -> Any:
        """The declaration in force, its versions, the latest score and reasons, and the
        inspection reports of a shipment. Any accepted id is reachable, "/" included: quote
        the id in the path (``a%2Fb``); it is normalised as when it was declared."""
        try:
            return self.engine.shipment_view(shipment_id)
        except RequestError as exc:
            return JSONResponse(
                {"error": str(exc), "detail": [{"loc": exc.loc, "msg": str(exc)}]},
                status_code=exc.status,
            )

    @http.get("/performance")
    def performance(
        self,
        since: Annotated[str | None, Query(max_length=10)] = None,
        until: Annotated[str | None, Query(max_length=10)] = None,
    ) -> Any:
        """Performance from outcomes over inspections and plans of [since, until) (dates,
        YYYY-MM-DD; open-ended when not given): by ISO week, stream and who selected each
        inspection (model, rule, officer, random), inspections, seizures, hit rate and the
        median days to result; per worklist scope, the recall of the model's selection
        estimated from the random picks (Horvitz-Thompson) with a 95 % Wilson interval."""
        import datetime as dt

        from serving.health_outcomes import outcome_report

        dates: dict[str, dt.date | None] = {}
        for name, value in (("since", since), ("until", until)):
            try:
                dates[name] = dt.date.fromisoformat(value) if value else None
            except ValueError:
                message = f"{name}: not a date (YYYY-MM-DD): {value!r}"
                return JSONResponse(
                    {"error": message, "detail": [{"loc": ["query", name], "msg": message}]},
                    status_code=422,
                )
        try:
            report = outcome_report(self.engine.store, since=dates["since"], until=dates["until"])
        except ValueError as exc:
            return JSONResponse(
                {"error": str(exc), "detail": [{"loc": ["query", "until"], "msg": str(exc)}]},
                status_code=422,
            )
        return report.as_dict()

    @http.get("/search", response_model=SearchResponse)
    def search(
        self,
        request: Request,
        q: Annotated[str, Query(max_length=400)] = "",
        limit: Annotated[int, Query()] = 20,
        offset: Annotated[int, Query()] = 0,
    ) -> Any:
        """Search shipments, references, containers, parties, names, phones, addresses and
        customs codes (officers): normalised as the features normalise them, exact matches
        first, then prefixes, then similar shipper and consignee names; ``limit`` (1-100)
        results from ``offset``. Audited."""
        try:
            page = self.engine.store.search(q, limit=limit, offset=offset)
        except SearchError as exc:
            field = str(exc).split(":", 1)[0]
            return JSONResponse(
                {"error": str(exc), "detail": [{"loc": ["query", field], "msg": str(exc)}]},
                status_code=400,
            )
        state = request.scope.get("state") or {}
        caller = state.get("caller")
        self.engine.store.audit(
            "search",
            caller if isinstance(caller, Caller) else "anonymous",
            {"q": page.query, "offset": offset, "results": len(page.hits)},
        )
        return {
            "query": page.query,
            "offset": page.offset,
            "limit": page.limit,
            "more": page.more,
            "results": [
                {
                    "kind": h.kind,
                    "value": h.display,
                    "key": h.term,
                    "match": h.match,
                    "similarity": h.score,
                    "shipments": h.shipments,
                    "shipment_id": h.shipment_id,
                }
                for h in page.hits
            ],
        }

    @http.get("/watchlist", response_model=WatchlistResponse)
    def watchlist(
        self, request: Request, everything: Annotated[bool, Query(alias="all")] = False
    ) -> Any:
        """The watchlist's entries in force (``all=true``: every entry ever made, removed and
        lapsed ones included), newest first, each with its history. Officers; audited."""
        entries = self.engine.store.watchlist(all_entries=everything)
        self.engine.store.audit(
            "watchlist_viewed", _http_caller(request), {"entries": len(entries), "all": everything}
        )
        return {"entries": [_watch_view(e) for e in entries]}

    @http.post("/watchlist", response_model=WatchEntryView, status_code=201)
    def watch_add(self, request: Request, body: WatchAdd) -> Any:
        """Flag a party or identifier (``kind`` one of the search's kinds; ``value`` as
        written) with a reason and an expiry: every new shipment touching it is marked on
        the worklist and in its score response. Officers; audited as ``watchlist_added``."""
        store = self.engine.store
        try:
            entry = store.watch(
                body.kind,
                body.value,
                reason=body.reason,
                expires_at=body.expires_at,
                caller=_http_caller(request),
            )
        except WatchlistError as exc:
            return _field_error(exc)
        return _watch_view(store.watch_entry(entry))  # type: ignore[arg-type]  # just added

    @http.post("/watchlist/{entry}", response_model=WatchEntryView)
    def watch_change(
        self,
        request: Request,
        entry: Annotated[str, Path(min_length=1, max_length=64)],
        body: WatchChange,
    ) -> Any:
        """Change an entry in force (``action: change``: a new reason and expiry) or remove
        it (``action: remove``: the reason says why); the earlier events stay. Officers;
        audited as ``watchlist_changed`` / ``watchlist_removed``. 404 for no such entry in
        force."""
        store = self.engine.store
        current = store.watch_entry(entry)
        if current is None or current.removed:
            message = f"entry: no watchlist entry {entry!r} in force"
            return JSONResponse(
                {"error": message, "detail": [{"loc": ["path", "entry"], "msg": message}]},
                status_code=404,
            )
        try:
            store.change_watch(
                entry,
                reason=body.reason,
                expires_at=body.expires_at,
                caller=_http_caller(request),
                remove=body.action == "remove",
            )
        except WatchlistError as exc:
            return _field_error(exc)
        return _watch_view(store.watch_entry(entry))  # type: ignore[arg-type]  # exists

    @http.get("/admin/status")
    def admin_status(self) -> dict[str, Any]:
        """What is loaded (model version, online aggregates) and the last load error, if any."""
        return self.engine.status()

    @http.get("/admin/shadow")
    def admin_shadow(self) -> dict[str, Any]:
        """The shadow challenger (alias ``shadow_alias``): its version and counts, and its
        comparison with the champion on the shipments both scored whose outcomes arrived."""
        return {**self.engine.shadow_status(), "comparison": self.engine.shadow_comparison()}


# add_asgi_middleware is added by @bentoml.service, which mypy cannot see
CargoRisk.add_asgi_middleware(Edge, resolve=_current_edge)  # type: ignore[attr-defined]
CargoRisk.add_asgi_middleware(AuthMiddleware, resolver=_current_auth)  # type: ignore[attr-defined]
