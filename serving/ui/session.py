"""Worklist sessions: the signing secret, the cookies, and the sign-in throttle.

**Sessions live in the store** (``ui_sessions``, :meth:`serving.store.Store.session`). The
cookie ``cargorisk_session`` carries only a random 256-bit token, signed with the secret
(``<token>.<HMAC-SHA256>``); the store keeps the token's SHA-256, who signed in (an account or
an officer API key, never the key itself), the CSRF token of the session's forms, and when it
started and was last used. Every request looks the session up, so signing out, disabling the
account (``cargorisk users disable``) or revoking the key (``cargorisk keys revoke``) ends it
at once, on every worker; a session also ends after ``ui_session_idle_minutes`` without use
and ``ui_session_max_minutes`` after sign-in.

The cookie is ``HttpOnly; SameSite=Lax; Path=/ui`` (``Secure`` over HTTPS). Lax rather than
Strict: a link to a shipment from another internal system (a ticket, an e-mail) opens it
without a second sign-in, while cross-site POSTs - every action of the worklist is a POST -
carry no cookie, and each form carries the session's CSRF token besides. The sign-in form has
its own CSRF token, bound to a short-lived ``SameSite=Strict`` cookie (:data:`SIGN_IN_COOKIE`),
so another site cannot sign a browser in under an account of its choosing.

**The secret** is at least 32 random bytes: ``CARGORISK_UI_SECRET`` (base64) or
``<home>/ui-session.key``, created once - written to a temporary file, fsynced and linked into
place, mode 0600, so a crash never leaves a short or empty key and two workers starting at
once agree on one. A shorter secret is refused: the service does not start and says why.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from features.errors import CargoriskError

log = logging.getLogger("cargorisk.serving")

COOKIE = "cargorisk_session"
SIGN_IN_COOKIE = "cargorisk_sign_in"
SIGN_IN_MAX_AGE = 3600
"""The sign-in form's token lasts an hour (then the page is reloaded)."""

SECRET_FILE = "ui-session.key"
MIN_SECRET_BYTES = 32


class SecretError(CargoriskError):
    """The signing secret is missing, malformed or too short to trust."""


def decode_secret(text: str) -> bytes:
    """``CARGORISK_UI_SECRET``: base64, standard or URL-safe alphabet, padding optional."""
    cleaned = "".join(text.split())
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(cleaned.encode("ascii"))
        return base64.b64decode(cleaned.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise SecretError(
            "ui_secret (CARGORISK_UI_SECRET): not base64; give at least 32 random bytes as "
            "base64, e.g. the output of `openssl rand -base64 32`"
        ) from exc


def load_secret(home: Path, configured: str | None = None) -> bytes:
    """The worklist's signing secret: ``configured`` (base64, from ``CARGORISK_UI_SECRET``)
    or ``<home>/ui-session.key``, created on first use. Raises :class:`SecretError` for a
    secret shorter than 32 bytes, naming where it came from and what to do."""
    if configured is not None:
        secret = decode_secret(configured)
        if len(secret) < MIN_SECRET_BYTES:
            raise SecretError(
                f"ui_secret (CARGORISK_UI_SECRET): {len(secret)} bytes; the worklist's "
                f"signing secret needs at least {MIN_SECRET_BYTES} random bytes "
                "(`openssl rand -base64 32`)"
            )
        return secret
    path = Path(home) / SECRET_FILE
    if not path.exists():
        _create_secret(path)
    secret = path.read_bytes()
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{path}: {len(secret)} bytes; the worklist's signing secret needs at least "
            f"{MIN_SECRET_BYTES} random bytes. Delete the file to have a new one created at "
            "the next start (open sessions end), or set CARGORISK_UI_SECRET"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); chmod 600 it", path, mode)
    return secret


def _create_secret(path: Path) -> None:
    """Write 32 fresh random bytes to ``path`` atomically (0600): a temporary file, fsynced,
    then hard-linked to the final name, which fails if another process got there first (its
    secret is kept, so all workers sign alike). The folder is fsynced so the name survives a
    crash too."""
    from common.settings import private_dir

    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(MIN_SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another worker won the race: use its secret
    except OSError:  # a file system without hard links: rename (no other writer expected)
        if not path.exists():
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("created the worklist's signing secret %s (0600)", path)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CookieSigner:
    """Signs the session token for the cookie, and makes the sign-in form's CSRF token."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise SecretError(
                f"signing secret of {len(secret)} bytes; at least {MIN_SECRET_BYTES} needed"
            )
        self._secret = secret

    def _mac(self, purpose: str, text: str) -> str:
        message = f"{purpose}:{text}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign(self, token: str) -> str:
        """The cookie value of a session token."""
        return f"{token}.{self._mac('session', token)}"

    def unsign(self, value: str | None) -> str | None:
        """The session token of a cookie value; None if absent, malformed or tampered with."""
        if not value or len(value) > 200 or value.count(".") != 1:
            return None
        token, signature = value.split(".")
        try:
            expected = self._mac("session", token)
        except UnicodeEncodeError:
            return None
        return token if hmac.compare_digest(expected, signature) else None

    def sign_in_csrf(self, nonce: str) -> str:
        """The CSRF token of the sign-in form shown to the browser holding ``nonce`` (in
        :data:`SIGN_IN_COOKIE`): only this service can make it."""
        return self._mac("sign-in", nonce)

    def sign_in_ok(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given or len(nonce) > 100 or len(given) > 100:
            return False
        try:
            return hmac.compare_digest(self.sign_in_csrf(nonce), given)
        except UnicodeEncodeError:
            return False


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class SignInThrottle:
    """Refuses sign-in after too many failures, counted in the store (so every worker and a
    restart see them) separately per client address and per account name. A success clears
    nothing: failures only age out of the window, so an insider signing in to their own
    account does not reset the count of guesses at someone else's, and guessing from many
    addresses still runs into the account's count. (The price: someone who knows a user name
    can keep that account refused for a while; the audit trail shows from where.)"""

    def __init__(self, store, max_failures: int = 10, window_minutes: int = 5) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window = dt.timedelta(minutes=window_minutes)

    def refusal(self, client: str, account: str | None) -> str | None:
        """Why a sign-in from ``client`` naming ``account`` is refused now, or None."""
        from serving.store import utcnow

        by_client, by_account = self.store.sign_in_failures(
            client, account, since=utcnow() - self.window
        )
        minutes = int(self.window.total_seconds() // 60)
        if by_client >= self.max_failures:
            return f"Too many failed sign-ins from this computer; wait {minutes} minutes."
        if by_account >= self.max_failures:
            return f"Too many failed sign-ins for this account; wait {minutes} minutes."
        return None

    def fail(self, client: str, account: str | None) -> None:
        self.store.record_sign_in_failure(client, account)
