"""Signed session cookies of the worklist, and the secret that signs them.

A session is a small JSON payload (who signed in - by account or by officer API key, never the
key itself -, a CSRF token and when) followed by its HMAC-SHA256 signature, in an HttpOnly,
SameSite=Strict cookie scoped to ``/ui``. Nothing is kept server-side, so every worker of the
service accepts it; the account or key it names is re-checked against the store on every
request, so disabling an account or revoking a key ends its sessions at once.

The signing secret is 32 random bytes created once in ``<home>/ui-session.key`` (mode 0600)
and shared by all workers; deleting the file signs everyone out.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

COOKIE = "cargorisk_session"
MAX_AGE = 8 * 3600
"""A session lasts one shift (seconds)."""

SECRET_FILE = "ui-session.key"


def load_secret(home: Path) -> bytes:
    """The signing secret under ``home``, created (0600) on first use."""
    path = Path(home) / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its secret
        time.sleep(0.05)
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


@dataclass(frozen=True)
class Session:
    """Who is signed in: ``kind`` is ``user`` (account) or ``key`` (officer API key)."""

    kind: str
    ident: int
    name: str
    csrf: str
    issued: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Encodes sessions into signed cookie values and back."""

    def __init__(self, secret: bytes, max_age: int = MAX_AGE) -> None:
        self._secret = secret
        self.max_age = max_age

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())

    def new(self, kind: str, ident: int, name: str) -> Session:
        return Session(kind, int(ident), name, secrets.token_urlsafe(24), int(time.time()))

    def dumps(self, session: Session) -> str:
        payload = {
            "k": session.kind,
            "i": session.ident,
            "n": session.name,
            "c": session.csrf,
            "t": session.issued,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def loads(self, value: str | None) -> Session | None:
        """The session in a cookie value; None if absent, tampered with or expired."""
        if not value or len(value) > 4096 or "." not in value:
            return None
        body, signature = value.rsplit(".", 1)
        try:
            expected = self._sign(body)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(
                str(data["k"]), int(data["i"]), str(data["n"]), str(data["c"]), int(data["t"])
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.kind not in ("user", "key"):
            return None
        if not 0 <= time.time() - session.issued <= self.max_age:
            return None
        return session


class FailedSignIns:
    """Refuses sign-in from a client after too many failures in a short time (slows down
    password and key guessing; in memory, per worker)."""

    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def blocked(self, client: str) -> bool:
        return len(self._recent(client, time.monotonic())) >= self.limit

    def fail(self, client: str) -> None:
        now = time.monotonic()
        self._failures[client] = [*self._recent(client, now), now]
        if len(self._failures) > 10_000:
            self._failures.clear()

    def clear(self, client: str) -> None:
        self._failures.pop(client, None)
