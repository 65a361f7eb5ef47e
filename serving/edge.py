"""The service's edge: what every HTTP request meets before any route runs.

One ASGI middleware (:class:`Edge`), outermost of ours, in this order:

1. **client address** - the connection's peer, or, only when the peer is a reverse proxy named
   in the setting ``trusted_proxies``, the last address in ``X-Forwarded-For`` that is not one
   of those proxies (and ``X-Forwarded-Proto``). uvicorn's own rewriting is switched off
   (``FORWARDED_ALLOW_IPS``, see :mod:`serving.service`): by default it believes any client
   on loopback, so a local caller could pose as any address in the audit trail and dodge the
   sign-in throttle;
2. **body size** - a declared ``Content-Length`` over ``max_body_mb`` is refused with 413
   before a byte of the body is read; a body without one (chunked) is counted as it streams
   and refused when it passes the limit, so no request makes the worker hold more than the
   limit;
3. **overload** - past ``max_scoring_in_flight`` scoring requests (``POST /score``,
   ``/score/batch``, ``/outcomes``) or ``max_concurrent_requests`` requests of any kind in
   progress in this worker, the next is answered 503 with ``Retry-After`` at once, before its
   body is read, instead of queueing behind the others (probes and metrics are always
   answered); each refusal is counted in ``cargorisk_shed_requests_total``;
4. **the page at /** - BentoML's API explorer loads Google Tag Manager from outside and would
   run beside the worklist on the same origin; it is replaced by a plain page naming the API
   description and the worklist, or, with the setting ``api_explorer``, by the Swagger UI
   built from BentoML's local files only;
5. **security headers** on every response: a strict Content-Security-Policy (nothing from
   another origin, no framing), ``X-Content-Type-Options``, ``X-Frame-Options``,
   ``Referrer-Policy``, ``Cross-Origin-Opener-Policy`` / ``-Resource-Policy``;
6. **one log line per refused request** - 4xx (and deliberate 503s) at WARNING with method,
   path, status, client, caller, request id and the error message; other 5xx at ERROR (their
   traceback is logged where the exception is caught).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("cargorisk.requests")

HERE = Path(__file__).resolve().parent

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
"""Content-Security-Policy of every response: scripts, styles, images and connections from
this origin only (no inline script), no plugins, never inside a frame."""

EXPLORER_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
"""The Swagger UI sets inline styles on the elements it draws; scripts stay 'self' only."""

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def with_headers(start: dict, extra: dict[str, str]) -> dict:
    """An ASGI ``http.response.start`` message with each of ``extra``'s headers added unless the
    response sets it already (the edge's security headers; the worklist adds its own)."""
    headers = list(start.get("headers", []))
    present = {k.lower() for k, _ in headers}
    for key, value in extra.items():
        if key.encode() not in present:
            headers.append((key.encode(), value.encode()))
    return {**start, "headers": headers}


API_DESCRIPTION = (
    "Narcotics risk targeting for customs: scores maritime, air-cargo and express shipments "
    "by how likely they are to hide narcotics, says why, keeps an audit trail and records "
    "inspection outcomes. API keys: `Authorization: Bearer <key>`. The targeting officers' "
    "worklist is at /ui/."
)
"""The description at the top of the OpenAPI document (instead of BentoML's badges)."""

SCORING_PATHS = {"/score": "score", "/score/batch": "batch", "/outcomes": "outcomes"}
"""The scoring requests (``POST``) and their label in ``cargorisk_shed_requests_total``: the
work the setting ``max_scoring_in_flight`` bounds."""

ALWAYS_ANSWERED = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
"""Paths outside the concurrency limit: an orchestrator must see a busy service alive."""

EXPLORER_PREFIXES = ("/static_content/", "/assets/")
"""BentoML's explorer assets: served only when the explorer is on."""

EXPLORER_SCRIPT = "/static_content/cargorisk-explorer.js"
"""Our Swagger UI start-up script (BentoML's asks for a validator badge from outside)."""


UVICORN_PROXIES = "none"
"""``FORWARDED_ALLOW_IPS`` for uvicorn under ``bentoml serve`` (the service declares it): trust
no one. uvicorn's default (127.0.0.1, ::1) lets any local client choose its own address with
X-Forwarded-For; reverse proxies are named in the setting ``trusted_proxies`` and handled
here instead."""


@dataclass(frozen=True)
class EdgePolicy:
    """The edge settings in force (see :class:`common.settings.Settings`)."""

    max_body_bytes: int = 64 * 2**20
    max_concurrent: int = 16
    max_scoring: int = 8
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    api_explorer: bool = False

    @classmethod
    def from_settings(cls, settings) -> EdgePolicy:
        return cls(
            max_body_bytes=settings.max_body_mb * 2**20,
            max_concurrent=settings.max_concurrent_requests,
            max_scoring=settings.max_scoring_in_flight,
            trusted_proxies=tuple(
                ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies
            ),
            api_explorer=settings.api_explorer,
        )

    def is_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted_proxies)


def client_address(policy: EdgePolicy, scope) -> tuple[tuple[str, int] | None, str | None]:
    """The real client (host, port) and scheme of a request: the connection's peer unless the
    peer is a trusted proxy, in which case ``X-Forwarded-For`` is read from the right, skipping
    trusted proxies (each proxy appends the address it saw)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not policy.is_proxy(peer):
        return client, None
    forwarded: list[str] = []
    proto = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded += [p.strip() for p in value.decode("latin-1").split(",")]
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip().lower()
    for hop in reversed([f for f in forwarded if f]):
        host = hop
        if host.startswith("[") and "]" in host:  # [v6]:port
            host = host[1 : host.index("]")]
        elif host.count(":") == 1:  # v4:port
            host = host.split(":", 1)[0]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            break  # garbage from further out: stop at the last address we can vouch for
        if not policy.is_proxy(host):
            return (host, 0), proto if proto in ("http", "https") else None
    return client, proto if proto in ("http", "https") else None


class Edge:
    """The ASGI middleware of this module; ``resolve`` returns the :class:`EdgePolicy` in
    force (None while the service starts: the defaults apply)."""

    def __init__(self, app, resolve: Callable[[], EdgePolicy | None]) -> None:
        self.app = app
        self.resolve = resolve
        self.in_progress = 0
        self.scoring = 0
        self._explorer_page = (HERE / "explorer.html").read_bytes()
        self._explorer_script = (HERE / "explorer.js").read_bytes()
        self._index_page = (HERE / "index.html").read_bytes()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.resolve() or EdgePolicy()
        client, proto = client_address(policy, scope)
        scope["client"] = client
        if proto:
            scope["scheme"] = proto
        path = scope.get("path", "")
        started = time.perf_counter()
        seen: dict = {"status": None, "request_id": None, "error": b""}

        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                message = with_headers(message, SECURITY_HEADERS)
                seen["status"] = message["status"]
                for key, value in message["headers"]:
                    if key.lower() == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            elif (seen["status"] or 0) >= 400 and len(seen["error"]) < 2048:
                seen["error"] += message.get("body", b"")[:2048]
            await send(message)

        try:
            await self._route(policy, scope, receive, send_secured, path)
        finally:
            self._log(scope, seen, time.perf_counter() - started)

    async def _route(self, policy: EdgePolicy, scope, receive, send, path: str) -> None:
        refused = self._too_large(policy, scope)
        if refused is not None:
            await _answer(send, 413, refused)
            return
        if any(name == b"transfer-encoding" for name, _ in scope.get("headers", [])):
            receive = await _bounded_body(receive, policy.max_body_bytes)
            if receive is None:
                await _answer(
                    send, 413, f"request body over the limit of {policy.max_body_bytes} bytes"
                )
                return
        if path == "/" and scope.get("method") in ("GET", "HEAD"):
            page = self._explorer_page if policy.api_explorer else self._index_page
            csp = EXPLORER_CSP if policy.api_explorer else CSP
            await _page(send, page, b"text/html; charset=utf-8", csp)
            return
        if path == EXPLORER_SCRIPT and policy.api_explorer:
            await _page(send, self._explorer_script, b"text/javascript; charset=utf-8", CSP)
            return
        if path.startswith(EXPLORER_PREFIXES) and not policy.api_explorer:
            await _answer(send, 404, "not found (the API explorer is off: setting api_explorer)")
            return
        if path in ALWAYS_ANSWERED:
            await self.app(scope, receive, send)
            return
        if path == "/docs.json" and scope.get("method") == "GET":
            await self._description(scope, receive, send)
            return
        endpoint = SCORING_PATHS.get(path) if scope.get("method") == "POST" else None
        if endpoint is not None and self.scoring >= policy.max_scoring:
            await _shed(
                send,
                endpoint,
                "max_scoring_in_flight",
                f"the service is busy ({self.scoring} scoring requests in progress, the limit "
                "of this worker: setting max_scoring_in_flight); retry in a moment",
            )
            return
        if self.in_progress >= policy.max_concurrent:
            await _shed(
                send,
                endpoint or "other",
                "max_concurrent_requests",
                f"the service is busy ({self.in_progress} requests in progress); retry in a moment",
            )
            return
        self.in_progress += 1
        self.scoring += endpoint is not None
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
            self.scoring -= endpoint is not None

    async def _description(self, scope, receive, send) -> None:
        """The OpenAPI description with our own words on top: BentoML's default description
        is Markdown with badge images from img.shields.io and others, which every viewer of
        the description (the explorer among them) would fetch from outside."""
        start: dict = {}
        chunks: list[bytes] = []

        async def collect(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        body = b"".join(chunks)
        if start.get("status") == 200:
            try:
                spec = json.loads(body)
                spec["info"]["description"] = API_DESCRIPTION
                spec["info"].pop("contact", None)
                body = json.dumps(spec).encode()
            except (ValueError, KeyError, TypeError):
                pass
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _too_large(policy: EdgePolicy, scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                text = value.decode("latin-1").strip()
                if not text.isdigit():
                    return "Content-Length: not a byte count"
                if int(text) > policy.max_body_bytes:
                    return (
                        f"request body of {int(text)} bytes over the limit of "
                        f"{policy.max_body_bytes} bytes (setting max_body_mb)"
                    )
        return None

    @staticmethod
    def _log(scope, seen: dict, seconds: float) -> None:
        status = seen["status"]
        if status is None or status < 400:
            return
        caller = (scope.get("state") or {}).get("caller")
        client = scope.get("client")
        message = _error_text(seen["error"])
        args = (
            scope.get("method"),
            scope.get("path"),
            status,
            client[0] if client else "-",
            getattr(caller, "label", "-"),
            seen["request_id"] or "-",
            1000 * seconds,
            message,
        )
        line = "%s %s -> %d client=%s caller=%s request_id=%s %.0f ms: %s"
        if status < 500 or status == 503:
            log.warning(line, *args)
        else:
            log.error(line, *args)


def _error_text(body: bytes) -> str:
    """The error message of a refused request's body, on one line."""
    text = body[:2048].decode("utf-8", "replace")
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "error" in data:
            text = str(data["error"])
            detail = data.get("detail")
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                loc = detail[0].get("loc")
                if loc and str(loc) not in text:
                    text += f" at {'.'.join(map(str, loc))}"
    except ValueError:
        if text.lstrip().startswith("<"):
            text = "(html page)"
    return " ".join(text.split())[:300] or "-"


async def _bounded_body(receive, limit: int):
    """Read a streamed body up to ``limit`` bytes; a ``receive`` that replays it, or None if
    the body passed the limit (reading stops there)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            chunks.append(b"")
            tail = message
            break
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            return None
        chunks.append(body)
        if not message.get("more_body", False):
            tail = None
            break
    replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    if tail is not None:
        replay = [tail]

    async def replayed():
        if replay:
            return replay.pop(0)
        return await receive()

    return replayed


async def _shed(send, endpoint: str, limit: str, message: str) -> None:
    """503 at once with ``Retry-After``, counted in ``cargorisk_shed_requests_total``."""
    from serving.metrics import get_metrics

    get_metrics().shed.labels(endpoint=endpoint, limit=limit).inc()
    await _answer(send, 503, message, [(b"retry-after", b"1")])


async def _answer(send, status: int, message: str, extra: list | None = None) -> None:
    body = json.dumps({"error": message, "detail": [{"loc": [], "msg": message}]}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close") if status == 413 else (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _page(send, page: bytes, content_type: bytes, csp: str) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(page)).encode()),
        (b"content-security-policy", csp.encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})
