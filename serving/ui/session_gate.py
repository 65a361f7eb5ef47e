"""What every worklist page stands on: the running engine, the signed session cookie and the
session it names, the officer a page needs (or its refusal), rendering and paths.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from serving.auth import may
from serving.store import Caller, UiSession
from serving.ui.model_info import ModelReports
from serving.ui.session import (
    COOKIE,
    CookieSigner,
    SignInThrottle,
    load_secret,
)

log = logging.getLogger("cargorisk.serving")


ACTION_WORDS = {
    "read_shipments": "read shipments",
    "record_outcomes": "record inspection outcomes",
    "view_model": "see the model page",
    "manage_watchlist": "keep the watchlist",
}


def safe_next(target: str | None, root: str) -> str | None:
    """Only local worklist paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith(f"{root}/") or target.startswith("//"):
        return None
    if any(c in target for c in "\\\r\n") or len(target) > 500:
        return None
    return target


class Refused(Exception):
    """A page refused before it starts (service starting, not signed in): its response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class PageBase:
    """The plumbing the worklist's pages share (:class:`serving.ui.app.WorklistApp` is made
    of it and the pages)."""

    resolve: Callable[[], Any]
    templates: Jinja2Templates
    app: Starlette
    _signer: tuple[tuple, CookieSigner] | None
    _reports: tuple[str, ModelReports] | None

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
        the page is refused (:class:`Refused`): 503 while the service starts, the sign-in
        page without a valid session, 403 when the role may not perform the action (the
        same table as the API's)."""
        engine = self.engine()
        if engine is None:
            raise Refused(self.unavailable(request))
        who = self.signed_in(request, engine)
        if who is None:
            raise Refused(self.to_login(request))
        session, caller = who
        if not may(caller.role, action):
            raise Refused(
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
        if not isinstance(exc, Refused):  # registered for Refused only
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

    def form_expired(
        self, request: Request, session: UiSession, caller: Caller, what: str = "form"
    ) -> Response:
        """The 403 page for a form whose CSRF token is not its session's (:meth:`csrf_ok`)."""
        return self.render(
            request,
            "error.html",
            403,
            title="Form expired",
            message=f"This {what} was not issued to your session; reload the page and try again.",
            session=session,
            caller=caller,
        )

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
