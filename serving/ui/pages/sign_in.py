"""The sign-in page, signing in (accounts and officer keys, throttled) and signing out."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from serving.auth import may
from serving.ui.session import (
    COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_MAX_AGE,
    new_nonce,
)
from serving.ui.session_gate import PageBase, safe_next


class SignInPages(PageBase):
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
            next=safe_next(request.query_params.get("next"), self.root(request)) or "",
            signed_out=request.query_params.get("signed_out") == "1",
        )

    async def login(self, request: Request) -> Response:
        engine = self.engine()
        if engine is None:
            return self.unavailable(request)
        form = await request.form()
        method = "key" if form.get("method") == "key" else "password"
        username = str(form.get("username") or "").strip()[:200]
        target = safe_next(str(form.get("next") or ""), self.root(request))
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
                return self.form_expired(request, session, caller, "sign-out form")
            await run_in_threadpool(engine.store.end_session, session.id, "signed out")
            await run_in_threadpool(
                engine.store.audit, "ui_sign_out", caller, {"session": session.id}
            )
        response = RedirectResponse(self.path(request, "login", {"signed_out": "1"}), 303)
        response.delete_cookie(COOKIE, path=self.cookie_path(request))
        return response
