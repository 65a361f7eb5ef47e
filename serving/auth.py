"""Who may do what: one authority table for the API and the worklist, and API keys checked by
an ASGI middleware.

Roles:

* ``system`` - inspection systems: score shipments, post outcomes;
* ``officer`` - targeting officers: score, read shipments, post outcomes, use the worklist;
* ``admin`` - operators: reload the model, see its status, manage keys; may sign in to the
  worklist to see the model page, but neither reads shipments nor records outcomes there,
  because the API refuses them both (separation of duties: who runs the service does not
  target or report inspections);
* ``monitor`` - a metrics scraper (Prometheus): ``/metrics`` only.

:data:`PERMISSIONS` says which roles may perform each action; the API routes (:data:`RULES`)
and the worklist pages (:mod:`serving.ui.app`) both name their action and ask
:func:`may`, so a role the API refuses cannot do the same through the UI (a test holds both
surfaces to the table).

A key is presented as ``Authorization: Bearer <key>`` (or ``X-API-Key: <key>``). No key or an
unknown/revoked key gets 401; a valid key whose role may not use the route gets 403. Probes and
the API description stay open; ``/metrics`` needs a monitor or admin key unless the setting
``metrics_require_key`` is off; the worklist UI (``/ui``) runs its own sign-in. Keys are stored
as SHA-256 digests only (see :mod:`serving.store`); lookups are cached for a few seconds, so a
revoked key stops working within :attr:`ApiKeyAuth.ttl` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from serving.store import Caller, Store, hash_key

PERMISSIONS: dict[str, frozenset[str]] = {
    "score": frozenset({"system", "officer"}),
    "record_outcomes": frozenset({"system", "officer"}),
    "correct_outcomes": frozenset({"officer"}),
    "read_shipments": frozenset({"officer"}),
    "manage_watchlist": frozenset({"officer"}),
    "operate": frozenset({"admin"}),
    "read_metrics": frozenset({"monitor", "admin"}),
    "view_model": frozenset({"officer", "admin"}),
    "sign_in_to_worklist": frozenset({"officer", "admin"}),
}
"""The one authority table: action -> roles that may perform it, on every surface.
``correct_outcomes`` (replacing the report in force of an inspection by a different one, with
a reason) is asked by ``POST /outcomes`` and the outcome form on top of ``record_outcomes``:
a person answers for a correction, so a system key may not make one, and an admin, who
records no outcomes, corrects none either.
``view_model``: the worklist's model page and ``GET /performance`` (how the model's selection
is doing); ``manage_watchlist``: flag, change and remove watchlist entries, in the UI and through
``/watchlist`` (officers only: an entry marks shipments for inspection, so a person answers
for it); ``sign_in_to_worklist`` exists only in the UI;
``sign_in_to_worklist`` keeps machine roles (system, monitor) out of the people's pages."""


def may(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action`` (an unknown action is refused)."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


OPEN_PATHS = frozenset({"/", "/livez", "/healthz", "/readyz", "/schema.json", "/docs.json"})
OPEN_PREFIXES = ("/static_content/", "/assets/", "/ui")
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    action: str
    prefix: bool = False

    @property
    def roles(self) -> frozenset[str]:
        return PERMISSIONS[self.action]

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


RULES: tuple[Rule, ...] = (
    Rule("POST", "/score", "score"),
    Rule("POST", "/score/batch", "score"),
    Rule("POST", "/outcomes", "record_outcomes"),
    Rule("GET", "/shipments/", "read_shipments", prefix=True),
    Rule("GET", "/performance", "view_model"),
    Rule("GET", "/search", "read_shipments"),
    Rule("GET", "/watchlist", "manage_watchlist"),
    Rule("POST", "/watchlist", "manage_watchlist"),
    Rule("POST", "/watchlist/", "manage_watchlist", prefix=True),
    Rule("POST", "/admin/", "operate", prefix=True),
    Rule("GET", "/admin/", "operate", prefix=True),
    Rule("GET", METRICS_PATH, "read_metrics"),
)
"""API routes and the action each performs."""


@dataclass
class ApiKeyAuth:
    """Resolves API keys to callers and decides which roles may use which route."""

    store: Store
    enabled: bool = True
    ttl: float = 5.0
    rules: tuple[Rule, ...] = RULES
    metrics_require_key: bool = True
    _cache: dict[str, tuple[Caller | None, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(self, key: str | None) -> Caller | None:
        """The caller owning ``key``, or None (missing, unknown or revoked)."""
        if not key:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[1] > now:
                return hit[0]
        caller = self.store.lookup_key(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (caller, now + self.ttl)
        return caller

    def is_open(self, path: str) -> bool:
        if path == METRICS_PATH:
            return not self.metrics_require_key
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def allowed_roles(self, method: str, path: str) -> frozenset[str] | None:
        """Roles allowed on a route; None = any authenticated caller (unknown routes 404)."""
        for rule in self.rules:
            if rule.matches(method, path):
                return rule.roles
        return None


def _key_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        lname = name.lower()
        if lname == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
        elif lname == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


class AuthMiddleware:
    """ASGI middleware enforcing :class:`ApiKeyAuth` on every HTTP request.

    ``resolver`` returns the :class:`ApiKeyAuth` in force (the service creates it at start)."""

    def __init__(self, app, resolver: Callable[[], ApiKeyAuth | None]) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        auth = self.resolver()
        if auth is None:  # no service instance (yet): only what is open anyway gets through
            if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
                await self.app(scope, receive, send)
            else:
                await _reject(send, 503, "the service is starting", [])
            return
        if auth.is_open(path):
            await self.app(scope, receive, send)
            return
        if not auth.enabled:
            scope.setdefault("state", {})["caller"] = Caller("anonymous", "admin")
            await self.app(scope, receive, send)
            return
        key = _key_from_headers(scope.get("headers", []))
        caller = auth.authenticate(key) if key else None
        if caller is None:
            msg = "missing API key" if not key else "invalid or revoked API key"
            await _reject(send, 401, msg, ["header", "authorization"])
            return
        roles = auth.allowed_roles(method, path)
        if roles is not None and caller.role not in roles:
            await _reject(
                send,
                403,
                f"role {caller.role!r} may not {method} {path} "
                f"(allowed: {', '.join(sorted(roles))})",
                ["header", "authorization"],
            )
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


async def _reject(send, status: int, message: str, loc: list[str]) -> None:
    body = json.dumps({"error": message, "detail": [{"loc": loc, "msg": message}]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
