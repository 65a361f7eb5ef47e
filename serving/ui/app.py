"""The targeting officers' worklist: a small server-rendered web app mounted at ``/ui``.

Pages (Jinja2 templates, a little CSS, one small script; no JavaScript build):

* ``/ui/login`` - sign in with a worklist account (user name and password) or an officer API
  key; ``POST /ui/logout`` signs out;
* ``/ui/worklist`` - the shipments of a day ranked by risk with the capacity cut line and the
  random exploration picks (:mod:`serving.ui.worklist`), filters by stream, port, vessel or
  flight, band, and not-yet-inspected;
* ``/ui/shipments/{id}`` - the declaration, score, band, the reasons as a bar chart, the
  parties' history and linked parties, and the inspection-outcome form (recorded through
  :meth:`serving.engine.ScoringEngine.record_outcomes`, the path of ``POST /outcomes``);
* ``/ui/model`` - the champion in service, its test metrics beside the baselines and its
  capacity curve.

Every page needs a session (:mod:`serving.ui.session`, held in the store) and names the action
it performs in the authority table the API uses (:data:`serving.auth.PERMISSIONS`): the
worklist and shipment pages read shipments (officers), the outcome form records outcomes
(officers), the model page is for officers and admins. Every sign-in (refused ones too, with
the client address), sign-out, page view and outcome is written to the store's audit trail
with the officer's identity. The app gets the running :class:`~serving.engine.ScoringEngine`
from a resolver, so the BentoML service, the tests and any other ASGI host can mount it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from features.contracts import (
    DRUGS,
    EARLIEST,
    INSPECTION_METHODS,
    LATEST,
    MODES,
    SELECTED_BY,
    DatasetInfo,
    LabelMeaning,
    attribute_column,
    normal_text,
)
from serving.auth import may
from serving.edge import SECURITY_HEADERS as EDGE_HEADERS
from serving.store import Caller, UiSession
from serving.ui import worklist as wl
from serving.ui.model_info import WHO, ModelReports
from serving.ui.session import (
    COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_MAX_AGE,
    CookieSigner,
    SignInThrottle,
    load_secret,
    new_nonce,
)

log = logging.getLogger("cargorisk.serving")

HERE = Path(__file__).resolve().parent

BELOW_PAGE = 50
"""Rows shown below the cut line at first (more on request)."""

MANIFEST_GROUPS = (
    ("Declaration", ("shipment_id", "mode", "declared_at", "booked_at", "departed_at",
                     "arrival_at", "bill_of_lading", "air_waybill", "order_ref")),
    ("Parties", ("shipper_id", "shipper_name", "consignee_id", "consignee_name",
                 "consignee_address", "consignee_phone", "notify_party_id", "forwarder_id",
                 "declarant_id", "carrier_id", "recipient_customs_code", "platform")),
    ("Route", ("origin_country", "departure_country", "loading_port", "transshipment_ports",
               "discharge_port", "vessel", "voyage", "flight")),
    ("Goods", ("hs_code", "goods_description", "packages", "gross_weight_kg", "declared_value",
               "currency", "declared_value_usd", "freight_terms", "payment_method",
               "container_id", "container_type", "load_type")),
)  # fmt: skip
ALWAYS_SHOWN = frozenset(
    {
        "shipper_id",
        "consignee_id",
        "declarant_id",
        "origin_country",
        "departure_country",
        "loading_port",
        "discharge_port",
        "hs_code",
        "goods_description",
        "packages",
        "gross_weight_kg",
        "declared_value",
        "currency",
    }
)
"""Fields shown even when blank ("not declared"): what a targeting officer expects every
declaration to state, so a blank is visible. Transport references show only when given."""
SECURITY_HEADERS = {**EDGE_HEADERS, "cache-control": "no-store"}
"""The service's security headers (the same when the worklist is mounted elsewhere) and no
caching: pages hold shipments, parties and the session's CSRF token."""

ACTION_WORDS = {
    "read_shipments": "read shipments",
    "record_outcomes": "record inspection outcomes",
    "view_model": "see the model page",
}


def _label(name: str) -> str:
    """A contract column as a form label: ``declared_value_usd`` -> ``Declared value USD``."""
    words = [w.upper() if w in ("id", "usd", "hs") else w for w in name.split("_") if w]
    if words and words[-1] == "kg":
        words[-1] = "(kg)"
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _fmt(value: Any) -> str:
    """A stored value as an officer reads it (blank for missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


def _odds(contribution: float) -> str:
    """A log-odds contribution as a change of the odds an officer can read: x2.4 or ÷1.8."""
    factor = math.exp(abs(contribution))
    sign = "×" if contribution >= 0 else "÷"
    if factor < 10:
        return f"{sign}{factor:.2f}"
    return f"{sign}{factor:.1f}" if factor < 100 else f"{sign}{factor:,.0f}"


def _field_of(message: str, fields) -> str:
    """The form field a contract rule's message is about (frame-level rules name no column:
    "result_at must not be before inspected_at", "a clean result cannot name a drug")."""
    for name in fields:
        if name in message:
            return name
    return "drug" if "drug" in message else "form"


def _amendments(versions: list[dict]) -> list[dict[str, Any]]:
    """The amendments of a declaration for the page, newest first: version, when, by whom,
    and each changed field with its value before and after."""
    out = []
    for before, after in itertools.pairwise(versions):
        out.append(
            {
                "version": after["version"],
                "received_at": after["received_at"],
                "caller": after["caller"],
                "counted": (after["amendments_after_score"] or 0)
                > (before["amendments_after_score"] or 0),
                "changes": [
                    (
                        name,
                        _fmt(before.get(name)) if name != "attributes" else "",
                        _fmt(after.get(name)) if name != "attributes" else "",
                    )
                    for name in after["changed"]
                ],
            }
        )
    return out[::-1]


def _report_words(report: dict) -> str:
    """An inspection report in a few words: "seized, cocaine, 40 kg" or "clean"."""
    words = [str(report["result"])]
    if report.get("drug"):
        words.append(str(report["drug"]))
    if report.get("quantity_kg") is not None and report["quantity_kg"] == report["quantity_kg"]:
        words.append(f"{report['quantity_kg']:g} kg")
    return ", ".join(words)


def _safe_next(target: str | None, root: str) -> str | None:
    """Only local worklist paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith(f"{root}/") or target.startswith("//"):
        return None
    if any(c in target for c in "\\\r\n") or len(target) > 500:
        return None
    return target


class _Refused(Exception):
    """A page refused before it starts (service starting, not signed in): its response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class WorklistApp:
    """The worklist ASGI app; ``resolve`` returns the running scoring engine (or None while
    the service starts)."""

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self.resolve = resolve
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["fmt"] = _fmt
        env.filters["label"] = _label
        env.filters["odds"] = _odds
        env.globals["BANDS"] = wl.BANDS
        env.globals["MODES"] = MODES
        env.globals["STREAM_WORDS"] = wl.STREAM_WORDS
        env.globals["may"] = may
        self._signer: tuple[tuple, CookieSigner] | None = None
        self._reports: tuple[str, ModelReports] | None = None
        routes = [
            Route("/", self.index, name="index"),
            Route("/login", self.login_page, name="login", methods=["GET"]),
            Route("/login", self.login, name="login_post", methods=["POST"]),
            Route("/logout", self.logout, name="logout", methods=["POST"]),
            Route("/worklist", self.worklist, name="worklist"),
            Route(
                "/shipments/{shipment_id:path}/outcome",
                self.outcome,
                methods=["POST"],
                name="outcome",
            ),
            Route("/shipments/{shipment_id:path}", self.shipment, name="shipment"),
            Route("/model", self.model, name="model"),
            Route("/model/capacity-curve.png", self.capacity_curve, name="capacity_curve"),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        self.app = Starlette(
            routes=routes,
            exception_handlers={500: self._server_error, _Refused: self._refused},
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.encode() not in present:
                        headers.append((key.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    # -- plumbing ------------------------------------------------------------------------
    def engine(self):
        return self.resolve()

    def signer(self, engine) -> CookieSigner:
        """The cookie signer of the engine's settings (read once per home and secret)."""
        settings = engine.settings
        configured = getattr(settings, "ui_secret", None)
        text = configured.get_secret_value() if configured is not None else None
        if self._signer is None or self._signer[0] != (settings.home, text):
            self._signer = ((settings.home, text), CookieSigner(load_secret(settings.home, text)))
        return self._signer[1]

    @staticmethod
    def session_limits(engine) -> dict[str, dt.timedelta]:
        settings = engine.settings
        return {
            "idle": dt.timedelta(minutes=getattr(settings, "ui_session_idle_minutes", 30)),
            "lifetime": dt.timedelta(minutes=getattr(settings, "ui_session_max_minutes", 480)),
        }

    @staticmethod
    def throttle(engine) -> SignInThrottle:
        settings = engine.settings
        return SignInThrottle(
            engine.store,
            getattr(settings, "sign_in_max_failures", 10),
            getattr(settings, "sign_in_window_minutes", 5),
        )

    def reports(self, engine) -> ModelReports:
        uri = engine.settings.tracking_uri
        if self._reports is None or self._reports[0] != uri:
            self._reports = (uri, ModelReports(uri))
        return self._reports[1]

    @staticmethod
    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def path(self, request: Request, name: str, query: dict | None = None, **params) -> str:
        # shipment ids may hold any printable character ("/", "?", "#", spaces)
        params = {k: quote(str(v), safe="") for k, v in params.items()}
        url = self.root(request) + str(self.app.url_path_for(name, **params))
        query = {k: v for k, v in (query or {}).items() if v not in (None, "", False)}
        return f"{url}?{urlencode(query)}" if query else url

    def render(self, request: Request, template: str, status: int = 200, **context) -> Response:
        context.setdefault("session", None)
        context.setdefault("caller", None)
        context["request"] = request
        context["u"] = lambda name, query=None, **p: self.path(request, name, query, **p)
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def unavailable(self, request: Request) -> Response:
        return self.render(
            request,
            "error.html",
            503,
            title="Service starting",
            message="The scoring service is starting; try again in a few seconds.",
        )

    def signed_in(self, request: Request, engine) -> tuple[UiSession, Caller] | None:
        """The open session of the request's cookie and who holds it - if the cookie is
        genuine, the store holds the session open (not signed out, idle or expired) and the
        account or key is still active and may use the worklist."""
        token = self.signer(engine).unsign(request.cookies.get(COOKIE))
        if token is None:
            return None
        session = engine.store.session(token, **self.session_limits(engine))
        if session is None or not may(session.caller.role, "sign_in_to_worklist"):
            return None
        return session, session.caller

    def officer(self, request: Request, action: str) -> tuple[Any, UiSession, Caller]:
        """The engine and the signed-in officer of a page performing ``action``; otherwise
        the page is refused (:class:`_Refused`): 503 while the service starts, the sign-in
        page without a valid session, 403 when the role may not perform the action (the
        same table as the API's)."""
        engine = self.engine()
        if engine is None:
            raise _Refused(self.unavailable(request))
        who = self.signed_in(request, engine)
        if who is None:
            raise _Refused(self.to_login(request))
        session, caller = who
        if not may(caller.role, action):
            raise _Refused(
                self.render(
                    request,
                    "error.html",
                    403,
                    title="Not allowed",
                    message=f"Your role ({caller.role}) may not "
                    f"{ACTION_WORDS.get(action, action)}, here or through the API.",
                    session=session,
                    caller=caller,
                )
            )
        return engine, session, caller

    async def _refused(self, request: Request, exc: Exception) -> Response:
        if not isinstance(exc, _Refused):  # registered for _Refused only
            raise exc
        return exc.response

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(self.path(request, "login", {"next": target}), 303)
        response.delete_cookie(COOKIE, path=self.cookie_path(request))
        return response

    def csrf_ok(self, session: UiSession, form) -> bool:
        import hmac

        given = str(form.get("csrf") or "")
        return bool(given) and hmac.compare_digest(given, session.csrf)

    def cookie_path(self, request: Request) -> str:
        return self.root(request) or "/"

    def landing(self, request: Request, caller: Caller) -> str:
        """Where a signed-in user goes by default: the worklist, or for roles that may not
        read shipments (admin) the model page."""
        return self.path(request, "worklist" if may(caller.role, "read_shipments") else "model")

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("worklist error %s on %s", ref, request.url.path, exc_info=exc)
        return self.render(
            request,
            "error.html",
            500,
            title="Something went wrong",
            message=f"The page could not be shown (reference {ref}; the error is in the "
            "service log).",
        )

    # -- sign-in ---------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        engine = self.engine()
        if engine is None:
            return self.unavailable(request)
        who = await run_in_threadpool(self.signed_in, request, engine)
        if who is None:
            return RedirectResponse(self.path(request, "worklist"), 303)
        return RedirectResponse(self.landing(request, who[1]), 303)

    def sign_in_page(
        self, request: Request, engine, status: int = 200, nonce: str | None = None, **context
    ) -> Response:
        """The sign-in page with a CSRF token bound to the browser's sign-in cookie (kept if
        it has one, so two open sign-in tabs both work)."""
        given = request.cookies.get(SIGN_IN_COOKIE) or ""
        nonce = nonce or (given if 16 <= len(given) <= 64 and given.isascii() else new_nonce())
        context.setdefault("next", "")
        context.setdefault("signed_out", False)
        context.setdefault("error", None)
        context.setdefault("method", "password")
        context.setdefault("username", "")
        response = self.render(
            request,
            "login.html",
            status,
            csrf=self.signer(engine).sign_in_csrf(nonce),
            **context,
        )
        response.set_cookie(
            SIGN_IN_COOKIE,
            nonce,
            max_age=SIGN_IN_MAX_AGE,
            path=self.cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def login_page(self, request: Request) -> Response:
        engine = self.engine()
        if engine is None:
            return self.unavailable(request)
        who = await run_in_threadpool(self.signed_in, request, engine)
        if who:
            return RedirectResponse(self.landing(request, who[1]), 303)
        return self.sign_in_page(
            request,
            engine,
            next=_safe_next(request.query_params.get("next"), self.root(request)) or "",
            signed_out=request.query_params.get("signed_out") == "1",
        )

    async def login(self, request: Request) -> Response:
        engine = self.engine()
        if engine is None:
            return self.unavailable(request)
        form = await request.form()
        method = "key" if form.get("method") == "key" else "password"
        username = str(form.get("username") or "").strip()[:200]
        target = _safe_next(str(form.get("next") or ""), self.root(request))
        client = request.client.host if request.client else "unknown"

        def refuse(message: str, status: int = 401) -> Response:
            return self.sign_in_page(
                request,
                engine,
                status,
                next=target or "",
                error=message,
                method=method,
                username=username,
            )

        signer = self.signer(engine)
        if not signer.sign_in_ok(request.cookies.get(SIGN_IN_COOKIE), str(form.get("csrf") or "")):
            return self.sign_in_page(
                request,
                engine,
                403,
                nonce=new_nonce(),
                next=target or "",
                error="The sign-in form expired or did not come from this page; try again.",
                method=method,
                username=username,
            )
        account = username if method == "password" else None
        throttle = self.throttle(engine)
        blocked = await run_in_threadpool(throttle.refusal, client, account)
        if blocked:
            detail = {"method": method, "client": client, "reason": "throttled"}
            if account:
                detail["username"] = account
            await run_in_threadpool(engine.store.audit, "ui_sign_in_refused", "anonymous", detail)
            return refuse(blocked, 429)
        if method == "key":
            key = str(form.get("api_key") or "").strip()
            caller = (
                await run_in_threadpool(engine.store.lookup_key, key)
                if 0 < len(key) <= 200
                else None
            )
            refused = "Unknown or revoked API key, or not an officer's key."
        else:
            password = str(form.get("password") or "")
            caller = (
                await run_in_threadpool(engine.store.authenticate_user, username, password)
                if username and 0 < len(password) <= 1024
                else None
            )
            refused = "Wrong user name or password."
        if caller is None or not may(caller.role, "sign_in_to_worklist"):
            await run_in_threadpool(throttle.fail, client, account)
            detail = {"method": method, "client": client}
            if account:
                detail["username"] = account
            if caller is not None:
                detail["role"] = caller.role
            await run_in_threadpool(engine.store.audit, "ui_sign_in_refused", "anonymous", detail)
            return refuse(refused)
        token, session = await run_in_threadpool(engine.store.create_session, caller, client)
        await run_in_threadpool(
            engine.store.audit,
            "ui_sign_in",
            caller,
            {"method": method, "client": client, "session": session.id},
        )
        response = RedirectResponse(target or self.landing(request, caller), 303)
        response.set_cookie(
            COOKIE,
            signer.sign(token),
            max_age=int(self.session_limits(engine)["lifetime"].total_seconds()),
            path=self.cookie_path(request),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=self.cookie_path(request))
        return response

    async def logout(self, request: Request) -> Response:
        """Sign out: the session ends in the store (the cookie is worthless from now on, on
        every worker). The form's CSRF token is required, so another site cannot sign an
        officer out; without a session there is nothing to end."""
        engine = self.engine()
        if engine is None:
            return self.unavailable(request)
        who = await run_in_threadpool(self.signed_in, request, engine)
        form = await request.form()
        if who is not None:
            session, caller = who
            if not self.csrf_ok(session, form):
                return self.render(
                    request,
                    "error.html",
                    403,
                    title="Form expired",
                    message="This sign-out form was not issued to your session; reload the "
                    "page and try again.",
                    session=session,
                    caller=caller,
                )
            await run_in_threadpool(engine.store.end_session, session.id, "signed out")
            await run_in_threadpool(
                engine.store.audit, "ui_sign_out", caller, {"session": session.id}
            )
        response = RedirectResponse(self.path(request, "login", {"signed_out": "1"}), 303)
        response.delete_cookie(COOKIE, path=self.cookie_path(request))
        return response

    # -- worklist --------------------------------------------------------------------------
    def worklist(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "read_shipments")
        settings = engine.settings
        ctx: dict[str, Any] = {"session": session, "caller": caller, "active": "worklist"}
        try:
            filters = wl.Filters.from_query(request.query_params)
        except wl.FilterError as exc:
            return self.render(
                request, "worklist.html", 400, error=str(exc), filters=wl.Filters(), day=None,
                **ctx,
            )  # fmt: skip
        store = engine.store
        day = filters.day
        if day is not None and not EARLIEST.date() <= day < LATEST.date():
            message = (
                f"day: {day.isoformat()} is outside the dates shipments can have "
                f"({EARLIEST.date().isoformat()} to {(LATEST.date() - dt.timedelta(days=1))})"
            )
            return self.render(
                request, "worklist.html", 400, error=message, filters=wl.Filters(), day=None,
                **ctx,
            )  # fmt: skip
        if day is None:
            latest = store.declared_between()
            day = latest.date() if latest is not None else None
        if day is None:
            return self.render(
                request, "worklist.html", filters=filters, day=None, error=None, **ctx
            )
        start = dt.datetime.combine(day, dt.time())
        end = start + dt.timedelta(days=1)
        frame = store.worklist(start, end)
        in_scope = wl.scope(frame, wl.Filters(stream=filters.stream, mode=filters.mode))
        ports = sorted(p for p in in_scope["discharge_port"].dropna().unique().tolist())
        planned, summary = wl.plan(
            wl.scope(frame, filters),
            capacity=settings.capacity,
            exploration_share=settings.exploration_share,
            seed=wl.exploration_seed(day, filters.scope_key, filters.port, settings.seed),
        )
        visible = wl.view(planned, filters)
        try:
            shown_below = max(BELOW_PAGE, min(int(request.query_params.get("below", 0)), 50_000))
        except ValueError:
            shown_below = BELOW_PAGE
        sections = {
            "model": visible[visible["pick"] == "model"],
            "random": visible[visible["pick"] == "random"],
            "below": visible[(visible["pick"] == "") & visible["rank"].notna()],
            "unscored": visible[visible["rank"].isna()],
        }
        before = store.declared_between(end=start)
        after = store.declared_between(start=end, last=False)
        query = {
            "day": day.isoformat(),
            "stream": filters.stream,
            "mode": filters.mode,
            "port": filters.port,
            "transport": filters.transport,
            "band": filters.band,
            "uninspected": "1" if filters.uninspected else "",
        }
        store.audit(
            "ui_worklist_viewed",
            caller,
            {k: v for k, v in query.items() if v} | {"rows": len(visible)},
        )
        return self.render(
            request,
            "worklist.html",
            filters=filters,
            day=day,
            error=None,
            ports=ports,
            summary=summary,
            visible=len(visible),
            inspected=int(planned["outcome"].notna().sum()),
            model_rows=self._rows(sections["model"]),
            random_rows=self._rows(sections["random"]),
            below_rows=self._rows(sections["below"].head(shown_below)),
            below_total=len(sections["below"]),
            unscored_rows=self._rows(sections["unscored"].head(BELOW_PAGE)),
            unscored_total=len(sections["unscored"]),
            query=query,
            more_below=shown_below + 200,
            prev_day=before.date().isoformat() if before is not None else None,
            next_day=after.date().isoformat() if after is not None else None,
            **ctx,
        )

    @staticmethod
    def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        rows = []
        for r in frame.itertuples(index=False):
            transport = _fmt(r.flight) or " ".join(filter(None, [_fmt(r.vessel), _fmt(r.voyage)]))
            route = " → ".join(
                filter(
                    None, [_fmt(r.loading_port) or _fmt(r.origin_country), _fmt(r.discharge_port)]
                )
            )
            rows.append(
                {
                    "shipment_id": r.shipment_id,
                    "rank": None if pd.isna(r.rank) else int(r.rank),
                    "score": None if pd.isna(r.score) else float(r.score),
                    "band": None if pd.isna(r.band) else str(r.band),
                    "pick": r.pick,
                    "mode": r.mode,
                    "transport": transport,
                    "route": route,
                    "shipper": _fmt(r.shipper_name) or _fmt(r.shipper_id),
                    "consignee": _fmt(r.consignee_name) or _fmt(r.consignee_id),
                    "goods": _fmt(r.goods_description)[:60],
                    "hs_code": _fmt(r.hs_code),
                    "origin": _fmt(r.origin_country),
                    "outcome": None if pd.isna(r.outcome) else str(r.outcome),
                }
            )
        return rows

    # -- shipment --------------------------------------------------------------------------
    def shipment(self, request: Request) -> Response:
        return self._shipment_page(request, *self.officer(request, "read_shipments"))

    def _shipment_page(
        self,
        request: Request,
        engine,
        session: UiSession,
        caller: Caller,
        *,
        form: dict | None = None,
        errors: list[dict] | None = None,
        status: int = 200,
    ) -> Response:
        shipment_id = normal_text(request.path_params["shipment_id"])
        store = engine.store
        record = store.shipment(shipment_id)
        ctx = {"session": session, "caller": caller, "active": "worklist"}
        if record is None:
            return self.render(
                request,
                "error.html",
                404,
                title="No such shipment",
                message=f"The store holds no shipment {shipment_id!r}.",
                **ctx,
            )
        latest = store.latest_score(shipment_id)
        outcomes = store.outcomes_for(shipment_id)
        reports = store.outcome_reports(shipment_id)
        amendments = _amendments(store.shipment_versions(shipment_id))
        reasons, reasons_note = self._reasons(engine, record, latest)
        parties, linked, history_note = self._parties(engine, record)
        pick = request.query_params.get("pick", "")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M")
        form = form or {
            "inspected_at": now,
            "result_at": now,
            "result": "",
            "drug": "",
            "quantity_kg": "",
            "method": "physical",
            "selected_by": pick if pick in ("model", "random") else "officer",
            "correction_reason": "",
        }
        if errors is None:
            store.audit("ui_shipment_viewed", caller, {"shipment_id": shipment_id})
        groups = [
            (
                title,
                [
                    (name, _fmt(record.get(name)))
                    for name in names
                    if name in ALWAYS_SHOWN or _fmt(record.get(name))
                ],
            )
            for title, names in MANIFEST_GROUPS
        ]
        info = self._dataset(engine)
        attributes = [
            (
                info.attributes[name].wording(name)
                if name in info.attributes
                else name.replace("_", " "),
                _fmt(value),
            )
            for name, value in sorted((record.get("attributes") or {}).items())
        ]
        scale = max((abs(r["contribution"]) for r in reasons), default=1.0) or 1.0
        return self.render(
            request,
            "shipment.html",
            status,
            record=record,
            groups=groups,
            attributes=attributes,
            label=info.label,
            narcotics=info.label == LabelMeaning(),
            latest=latest,
            outcomes=outcomes,
            reports=reports,
            corrected=any(r["revision"] > 1 for r in reports),
            amendments=amendments,
            reasons=reasons,
            reasons_note=reasons_note,
            scale=scale,
            parties=parties,
            linked=linked,
            history_note=history_note,
            form=form,
            errors=errors or [],
            error_fields={e["field"] for e in errors or []},
            recorded=request.query_params.get("recorded"),
            pick=pick,
            DRUGS=DRUGS,
            METHODS=INSPECTION_METHODS,
            SELECTED_BY=SELECTED_BY,
            **ctx,
        )

    @staticmethod
    def _dataset(engine) -> DatasetInfo:
        """What the served model's positives mean and its attributes (the default narcotics
        meaning when no model is loaded)."""
        model = engine.model_holder.current
        return DatasetInfo() if model is None else model.scoring.dataset

    @staticmethod
    def _reasons(engine, record: dict, latest: dict | None) -> tuple[list[dict], str]:
        """The reasons to draw: those served with the latest score (what the audit trail
        holds) or, when the shipment ranked below the explained share of its manifest,
        computed now from the history as of its declaration."""
        if latest is not None and latest.get("reasons"):
            return latest["reasons"], (
                f"As served with the score on {_fmt(latest['scored_at'])} UTC by model "
                f"version {latest['model_version']}."
            )
        model = engine.model_holder.current
        state = engine.state
        if model is None or state is None:
            return [], "No reasons: the model or the history is not loaded yet."
        from features.contracts import validate_shipments

        attributes = record.get("attributes") or {}
        row = {k: v for k, v in record.items() if k != "attributes"}
        row.update({attribute_column(k): v for k, v in attributes.items()})
        frame = validate_shipments(pd.DataFrame([row]))
        feats = engine.features(frame)
        item = model.scoring.explain(feats)[0]
        return item["reasons"], (
            "Computed on opening this page by model version "
            f"{model.version}, from the history known at the shipment's declaration (it "
            "ranked below the share of its manifest explained at scoring time)."
        )

    @staticmethod
    def _parties(engine, record: dict) -> tuple[list[dict], list[dict], str | None]:
        found = engine.parties(record)
        if found is None:
            return [], [], "The history is not loaded yet."
        parties, linked = found
        return parties, linked, None

    async def outcome(self, request: Request) -> Response:
        engine, session, caller = await run_in_threadpool(self.officer, request, "record_outcomes")
        form = await request.form()
        if not self.csrf_ok(session, form):
            return self.render(
                request,
                "error.html",
                403,
                title="Form expired",
                message="This form was not issued to your session; reload the page and try again.",
                session=session,
                caller=caller,
            )
        shipment_id = normal_text(request.path_params["shipment_id"])
        fields = ("inspected_at", "result_at", "result", "drug", "quantity_kg", "method",
                  "selected_by")  # fmt: skip
        given = {f: str(form.get(f) or "").strip()[:64] for f in fields}
        given["correction_reason"] = str(form.get("correction_reason") or "").strip()[:600]
        return await run_in_threadpool(
            self._record_outcome, request, engine, session, caller, shipment_id, given
        )

    def _record_outcome(self, request, engine, session, caller, shipment_id, given) -> Response:
        from serving.engine import Conflict, NotFound, NotReady, RequestError
        from serving.schemas import OutcomeIn

        def not_found() -> Response:
            return self.render(
                request, "error.html", 404, title="No such shipment",
                message=f"The store holds no shipment {shipment_id!r}.",
                session=session, caller=caller,
            )  # fmt: skip

        if engine.store.shipment(shipment_id) is None:
            return not_found()
        data: dict[str, Any] = {"shipment_id": shipment_id}
        for key, value in given.items():
            if key != "correction_reason":
                data[key] = value or None
        if given["correction_reason"]:
            data["correction"] = {"reason": given["correction_reason"]}
        if data["result"] == "clean":  # the form hides these for clean results
            data["drug"] = data["drug"] if given["drug"] else None
            data["quantity_kg"] = data["quantity_kg"] if given["quantity_kg"] else None
        errors = []
        status = 400
        try:
            outcome = OutcomeIn(**data)
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "form"
                if field == "correction":
                    field = "correction_reason"
                errors.append({"field": field, "message": f"{_label(field)}: {err['msg']}"})
            outcome = None
        if outcome is not None:
            try:
                engine.record_outcomes([outcome], caller=caller)
            except NotReady as exc:
                errors.append({"field": "form", "message": f"Not recorded: {exc}"})
            except NotFound:  # the same answer as POST /outcomes
                return not_found()
            except Conflict as exc:  # the same answer as POST /outcomes: 409
                status = 409
                old = exc.existing[0] if exc.existing else None
                message = (
                    "Not recorded: this inspection already has a report"
                    if old is None
                    else "Not recorded: the inspection of "
                    f"{_fmt(old['inspected_at'])} UTC already has a report "
                    f"({_report_words(old)}, revision {old['revision']}, recorded by "
                    f"{old['caller']} on {_fmt(old['received_at'])} UTC)"
                )
                errors.append(
                    {
                        "field": "correction_reason",
                        "message": f"{message}. To correct it, give the reason for the "
                        "correction; both reports are kept.",
                    }
                )
            except RequestError as exc:
                status = exc.status if exc.status in (403,) else 400
                field = _field_of(str(exc), given)
                errors.append({"field": field, "message": f"Not recorded: {exc}"})
        if errors:
            return self._shipment_page(
                request, engine, session, caller, form=given, errors=errors, status=status
            )
        target = self.path(request, "shipment", {"recorded": "1"}, shipment_id=shipment_id)
        return RedirectResponse(target, 303)

    # -- model -----------------------------------------------------------------------------
    def model(self, request: Request) -> Response:
        engine, session, caller = self.officer(request, "view_model")
        current = engine.model_holder.current
        report = None
        if current is not None:
            report = self.reports(engine).get(current.name, current.version)
        engine.store.audit(
            "ui_model_viewed", caller, {"version": current.version if current else None}
        )
        meta = current.scoring.metadata if current is not None else {}
        info = current.scoring.dataset if current is not None else DatasetInfo()
        return self.render(
            request,
            "model.html",
            label=info.label,
            attributes=[(spec.wording(name), spec.kind) for name, spec in info.attributes.items()],
            kind=meta.get("kind", "full"),
            families=meta.get("families") or [],
            session=session,
            caller=caller,
            active="model",
            current=current,
            report=report,
            rows=report.table() if report else [],
            WHO=WHO,
            meta=meta,
            thresholds=current.scoring.thresholds if current is not None else {},
            last_error=engine.model_holder.last_error,
            capacity=engine.settings.capacity,
            exploration=engine.settings.exploration_share,
        )

    def capacity_curve(self, request: Request) -> Response:
        engine, _, _ = self.officer(request, "view_model")
        current = engine.model_holder.current
        report = self.reports(engine).get(current.name, current.version) if current else None
        if report is None or report.capacity_curve_png is None:
            return Response("no capacity curve logged for this model", 404)
        return Response(
            report.capacity_curve_png,
            media_type="image/png",
            headers={"cache-control": "private, max-age=300"},
        )


def create_app(resolve: Callable[[], Any]) -> WorklistApp:
    """The worklist ASGI app over the engine ``resolve()`` returns."""
    return WorklistApp(resolve)
