"""The hot endpoints - ``POST /score``, ``/score/batch`` and ``/outcomes`` - as plain routes of
the ASGI app the service mounts at ``/`` (:data:`serving.service.http`), beside BentoML's own
API layer rather than through it.

Why: BentoML's request path (the IO descriptor, the request context, its thread limiter, the
response descriptor) cost more than the whole in-process score; measured against the same
service in one run, alternating, in benchmarks/README.md ("The HTTP hot path").

What a caller sees is what the ``@bentoml.api`` methods answered:

* bodies validated by models of the same shape and name (``Input``, with
  :data:`serving.schemas.ShipmentIn` / ``OutcomeIn`` inside) with pydantic's JSON parser, a
  failure answered ``400`` ``{"error": "<n> validation error for Input", "detail": [...]}``
  with pydantic's errors (``loc`` names the field) exactly as BentoML formats them;
* the response models' JSON (``model_dump_json``), ``X-Request-ID``, the engine's errors
  (``RequestError`` with its status and field, ``Conflict`` as 409, ``NotReady`` as 503 with
  ``Retry-After``) and BentoML's body for an unexpected error (500, traceback in the log);
* the OpenAPI description: request and response schemas of each route (:func:`register`).

What each request gets here, in order:

1. **an in-flight bound** (setting ``max_scoring_in_flight``, per worker): past it the request
   is answered ``503`` with ``Retry-After: 1`` before its body is read, and counted in
   ``cargorisk_shed_requests_total``. A worker that can score ~100 single shipments a second
   otherwise queues excess traffic for seconds (every queued request still answered 200, far
   too late for a gate system's time-out);
2. the body, read on the event loop;
3. validation, scoring and the response's JSON **in one worker thread** (at most ``threads``
   of them, as BentoML's limiter did), so the event loop keeps answering probes and 503s while
   a 10,000-shipment manifest is parsed.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from pydantic import BaseModel, Field, ValidationError, create_model
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from serving.engine import Conflict, NotReady, RequestError, ScoringEngine
from serving.schemas import (
    BatchResponse,
    ConflictBody,
    ErrorBody,
    OutcomeIn,
    OutcomeReport,
    OutcomesAck,
    ScoreResponse,
    ShipmentIn,
)
from serving.store import Caller

log = logging.getLogger("cargorisk.serving")

HARD_MAX_BATCH = 200_000
"""Upper bound of any list in a request body (the configured ``max_batch`` is at most this)."""

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
"""A request id a caller may choose (``X-Request-ID``); it is kept under the caller's own
namespace (:func:`request_id`)."""

UNEXPECTED = "An unexpected error has occurred, please check the server log."
"""BentoML's body for a 500 (kept: callers and tests read it)."""

ScoreInput: type[BaseModel] = create_model(
    "Input",
    shipment=(ShipmentIn, ...),
    all_contributions=(bool, False),
)
BatchInput: type[BaseModel] = create_model(
    "Input",
    shipments=(
        Annotated[
            list[ShipmentIn],  # type: ignore[valid-type]  # generated from the contract
            Field(min_length=1, max_length=HARD_MAX_BATCH),
        ],
        ...,
    ),
    explain_top_share=(Annotated[float | None, Field(ge=0, le=1)], None),
    all_contributions=(bool, False),
)
OutcomesInput: type[BaseModel] = create_model(
    "Input",
    outcomes=(
        Annotated[
            list[OutcomeIn],  # type: ignore[valid-type]  # generated from the contract
            Field(min_length=1, max_length=HARD_MAX_BATCH),
        ],
        ...,
    ),
)
"""The request bodies, as BentoML built them from the old methods' signatures (same fields,
constraints and model name, so the same validation errors; a test compares them)."""


def caller_of(scope) -> Caller:
    """The caller of a request (set by :class:`serving.auth.AuthMiddleware`)."""
    caller = (scope.get("state") or {}).get("caller")
    return caller if isinstance(caller, Caller) else Caller("anonymous", "none")


def request_id(caller: Caller, given: str) -> str:
    """The id of a request: ``<caller tag>:<X-Request-ID>`` (or a fresh one), e.g.
    ``k12:gate7-000001`` for API key 12. Ids are unique per caller by construction: a caller
    cannot make its request look like another caller's in the audit trail by reusing that
    caller's id."""
    own = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    return f"{caller.tag}:{own}"


def error_response(status: int, message: str, loc: list | None = None) -> JSONResponse:
    """The service's error body (``error`` + ``detail`` with the field's ``loc``)."""
    headers = {"retry-after": "5"} if status == 503 else None
    return JSONResponse(
        {"error": message, "detail": [{"loc": loc or [], "msg": message}]},
        status_code=status,
        headers=headers,
    )


def validation_response(exc: ValidationError) -> JSONResponse:
    """A body that fails validation, as BentoML answers it."""
    return JSONResponse(
        {
            "error": f"{exc.error_count()} validation error for {exc.title}",
            "detail": exc.errors(include_context=False, include_input=False),
        },
        status_code=400,
    )


def _json(model: BaseModel, rid: str) -> Response:
    return Response(
        model.model_dump_json(),
        media_type="application/json",
        headers={"x-request-id": rid},
    )


# -- the work of each route, in a worker thread ------------------------------------------------
def score_one(engine: ScoringEngine, settings, body: bytes, caller: Caller, rid: str) -> Response:
    data: Any = ScoreInput.model_validate_json(body or b"{}")
    try:
        rid, _, results = engine.score(
            [data.shipment],
            caller=caller,
            request_id=rid,
            explain_share=1.0,
            all_contributions=data.all_contributions,
        )
    except NotReady as exc:
        return error_response(503, str(exc))
    except RequestError as exc:
        return error_response(exc.status, str(exc), ["shipment", *exc.loc])
    return _json(ScoreResponse(**results[0], request_id=rid), rid)


def score_batch(engine: ScoringEngine, settings, body: bytes, caller: Caller, rid: str) -> Response:
    data: Any = BatchInput.model_validate_json(body or b"{}")
    share = settings.explain_top_share if data.explain_top_share is None else data.explain_top_share
    try:
        rid, model, results = engine.score(
            data.shipments,
            caller=caller,
            request_id=rid,
            explain_share=share,
            all_contributions=data.all_contributions,
        )
    except NotReady as exc:
        return error_response(503, str(exc))
    except RequestError as exc:
        return error_response(exc.status, str(exc), exc.loc)
    answer = BatchResponse(
        request_id=rid,
        model_name=model.name,
        model_version=model.version,
        count=len(results),
        explained=sum(r["reasons"] is not None for r in results),
        results=results,
    )
    return _json(answer, rid)


def record_outcomes(
    engine: ScoringEngine, settings, body: bytes, caller: Caller, rid: str
) -> Response:
    data: Any = OutcomesInput.model_validate_json(body or b"{}")
    try:
        rid, recorded = engine.record_reports(data.outcomes, caller=caller, request_id=rid)
    except NotReady as exc:
        return error_response(503, str(exc))
    except Conflict as exc:
        conflict = ConflictBody(
            error=str(exc),
            detail=[{"loc": exc.loc, "msg": str(exc)}],
            existing=[OutcomeReport(**r) for r in exc.existing],
        )
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    except RequestError as exc:
        return error_response(exc.status, str(exc), exc.loc)
    ack = OutcomesAck(
        request_id=rid,
        accepted=len(data.outcomes),
        recorded=len(recorded.stored),
        corrections=len(recorded.corrected),
        unchanged=len(recorded.unchanged),
    )
    return _json(ack, rid)


Work = Callable[[ScoringEngine, Any, bytes, Caller, str], Response]


@dataclass
class HotPath:
    """The hot routes of one worker process: its in-flight count and thread limiter.

    ``resolve`` returns ``(engine, settings)`` of the running service, or None while it
    starts; ``threads`` bounds the worker threads scoring at once."""

    resolve: Callable[[], tuple[ScoringEngine, Any] | None]
    threads: int = 4
    in_flight: int = 0
    _limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)

    async def handle(self, request: Request, endpoint: str, work: Work) -> Response:
        running = self.resolve()
        if running is None:
            return error_response(503, "the service is starting")
        engine, settings = running
        limit = settings.max_scoring_in_flight
        if self.in_flight >= limit:
            engine.metrics.shed.labels(endpoint=endpoint, limit="max_scoring_in_flight").inc()
            message = (
                f"the service is busy ({self.in_flight} scoring requests in progress, the "
                "limit of this worker: setting max_scoring_in_flight); retry in a moment"
            )
            return JSONResponse(
                {"error": message, "detail": [{"loc": [], "msg": message}]},
                status_code=503,
                headers={"retry-after": "1", "cache-control": "no-store"},
            )
        self.in_flight += 1
        try:
            body = await request.body()
            caller = caller_of(request.scope)
            rid = request_id(caller, request.headers.get("x-request-id", ""))
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self.threads)
            return await anyio.to_thread.run_sync(
                _guarded, work, engine, settings, body, caller, rid, limiter=self._limiter
            )
        finally:
            self.in_flight -= 1


def _guarded(
    work: Work, engine: ScoringEngine, settings, body: bytes, caller: Caller, rid: str
) -> Response:
    try:
        return work(engine, settings, body, caller, rid)
    except ValidationError as exc:
        return validation_response(exc)
    except Exception:
        log.exception("%s failed (request %s)", getattr(work, "__name__", "request"), rid)
        return JSONResponse({"error": UNEXPECTED}, status_code=500)


def inline_schema(model: type[BaseModel]) -> dict:
    """``model``'s JSON schema with its ``$defs`` written in place: an OpenAPI operation's
    request body that needs no component of its own."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return expand(defs[ref.removeprefix("#/$defs/")])
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    return expand(schema)


def _body_doc(model: type[BaseModel]) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


ROUTES: tuple[tuple[str, str, Work, type[BaseModel], type[BaseModel], str], ...] = (
    (
        "/score",
        "score",
        score_one,
        ScoreInput,
        ScoreResponse,
        "Score one shipment: calibrated risk, percentile in recent traffic, band at the "
        "inspection capacity, model version and the top reasons (exact SHAP).",
    ),
    (
        "/score/batch",
        "batch",
        score_batch,
        BatchInput,
        BatchResponse,
        "Score a manifest (a vessel, a flight, a day of parcels), riskiest first; reasons for "
        "the top ``explain_top_share`` (default from settings).",
    ),
    (
        "/outcomes",
        "outcomes",
        record_outcomes,
        OutcomesInput,
        OutcomesAck,
        "Record inspection reports; they update the history features at once and are stored "
        "for retraining. A report that differs from the one on record for the same inspection "
        "(shipment_id, inspected_at) is refused with 409 naming that report, unless it is sent "
        'as a correction (``correction: {"reason": ...}``, officers only); an identical '
        "re-send changes nothing.",
    ),
)
"""Path, endpoint label, work, request model, response model, description."""


def register(app, hot: HotPath, prefix: str = "") -> None:
    """Add the hot routes to the FastAPI ``app`` (documented in its OpenAPI description)."""
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "The body fails validation (names the field)."},
        413: {"model": ErrorBody, "description": "More items than the setting max_batch."},
        503: {
            "model": ErrorBody,
            "description": "Starting, or busy (max_scoring_in_flight): retry after Retry-After.",
        },
    }
    for path, endpoint, work, request_model, response_model, description in ROUTES:

        def make(endpoint: str = endpoint, work: Work = work):
            async def route(request: Request) -> Response:
                return await hot.handle(request, endpoint, work)

            route.__name__ = f"hot_{endpoint}"
            return route

        responses = dict(errors)
        if endpoint == "outcomes":
            responses[409] = {"model": ConflictBody, "description": "Differs from the report."}
        app.add_api_route(
            prefix + path,
            make(),
            methods=["POST"],
            response_model=response_model,
            responses=responses,
            description=description,
            openapi_extra=_body_doc(request_model),
            name=f"hot_{endpoint}",
        )
