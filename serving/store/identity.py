"""Who may call: roles, API keys (SHA-256 digests), worklist accounts (scrypt hashes), the
callers they resolve to, UI sessions and the sign-in failures counted to refuse guessing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.errors import CargoriskError
from serving.store.rows import inserted_id, utcnow
from serving.store.tables import api_keys, audit_events, sign_in_failures, ui_sessions, users

ROLES = ("system", "officer", "admin", "monitor")
"""API-key roles; what each may do is :data:`serving.auth.PERMISSIONS`."""
KEY_PREFIX = "crk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 10
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A worklist password as ``scrypt$n$r$p$salt$hash`` (per-user random salt, memory-hard
    so a stolen store does not give away passwords cheaply)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify unknown user names against (computed once, on first use)."""
    return hash_password("not a password", salt=bytes(16))


@dataclass(frozen=True)
class Caller:
    """Who made a request: the API key's (or user's) name and role."""

    name: str
    role: str
    key_id: int | None = None
    user_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.name}"

    @property
    def tag(self) -> str:
        """A short name no other caller has (``k12`` for API key 12, ``u3`` for account 3):
        the namespace of the request ids this caller may choose."""
        if self.key_id is not None:
            return f"k{self.key_id}"
        if self.user_id is not None:
            return f"u{self.user_id}"
        return "anon"


@dataclass(frozen=True)
class UiSession:
    """A worklist session as the store holds it (the token itself is never stored)."""

    id: int
    caller: Caller
    csrf: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


class IdentityStore:
    """The store's keys, users, sessions and sign-in failures (a part of
    :class:`serving.store.Store`)."""

    engine: Engine

    # -- API keys --------------------------------------------------------------------------
    def create_key(self, name: str, role: str) -> str:
        """Create an API key; returns the key itself (only its digest is stored)."""
        if role not in ROLES:
            raise CargoriskError(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise CargoriskError("name: 1-200 printable characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.insert(),
                {
                    "name": name,
                    "role": role,
                    "key_hash": hash_key(key),
                    "prefix": key[: len(KEY_PREFIX) + 6],
                    "created_at": utcnow(),
                },
            )
            conn.execute(
                audit_events.insert(),
                {
                    "at": utcnow(),
                    "caller": "cli",
                    "action": "key_created",
                    "detail": json.dumps({"name": name, "role": role}),
                },
            )
        return key

    def list_keys(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    api_keys.c.id,
                    api_keys.c.name,
                    api_keys.c.role,
                    api_keys.c.prefix,
                    api_keys.c.created_at,
                    api_keys.c.revoked_at,
                ).order_by(api_keys.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def revoke_key(self, ident: str) -> int:
        """Revoke the active keys whose id, name or prefix is ``ident``; returns how many."""
        cond = sa.or_(api_keys.c.name == ident, api_keys.c.prefix == ident)
        if ident.isdigit():
            cond = sa.or_(cond, api_keys.c.id == int(ident))
        now = utcnow()
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(api_keys.c.id).where(cond, api_keys.c.revoked_at.is_(None))
                ).scalars()
            )
            if not ids:
                return 0
            conn.execute(api_keys.update().where(api_keys.c.id.in_(ids)).values(revoked_at=now))
            ended = self._end_sessions(conn, ui_sessions.c.key_id.in_(ids), "key revoked", now)
            conn.execute(
                audit_events.insert(),
                {
                    "at": now,
                    "caller": "cli",
                    "action": "key_revoked",
                    "detail": json.dumps({"key": ident, "count": len(ids), "sessions": ended}),
                },
            )
            return len(ids)

    def lookup_key(self, key: str) -> Caller | None:
        """The caller a presented key belongs to, or None if unknown or revoked."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.role).where(
                    api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else Caller(name=row.name, role=row.role, key_id=row.id)

    # -- worklist users (UI sign-in) ---------------------------------------------------------
    def create_user(self, username: str, password: str, role: str = "officer") -> int:
        """Create a worklist account; only a salted scrypt hash of the password is stored."""
        if role not in ("officer", "admin"):
            raise CargoriskError(f"role: worklist users are officer or admin, not {role!r}")
        if not USERNAME.match(username or ""):
            raise CargoriskError("username: 1-64 letters, digits or . _ @ -")
        if len(password) < MIN_PASSWORD or len(password) > 1024:
            raise CargoriskError(f"password: {MIN_PASSWORD}-1024 characters")
        with self.engine.begin() as conn:
            taken = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
            if taken is not None:
                raise CargoriskError(f"username: {username!r} already exists")
            result = conn.execute(
                users.insert(),
                {
                    "username": username,
                    "role": role,
                    "password_hash": hash_password(password),
                    "created_at": utcnow(),
                },
            )
            conn.execute(
                audit_events.insert(),
                {
                    "at": utcnow(),
                    "caller": "cli",
                    "action": "user_created",
                    "detail": json.dumps({"username": username, "role": role}),
                },
            )
            return inserted_id(result)

    def authenticate_user(self, username: str, password: str) -> Caller | None:
        """The caller of an active account whose password matches, else None. Unknown names
        cost the same hash as known ones, so timing does not tell which names exist."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users.c.id, users.c.username, users.c.role, users.c.password_hash).where(
                    users.c.username == username, users.c.disabled_at.is_(None)
                )
            ).first()
        stored = row.password_hash if row is not None else _dummy_hash()
        ok = verify_password(password, stored)
        if row is None or not ok:
            return None
        return Caller(name=row.username, role=row.role, user_id=row.id)

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    users.c.id,
                    users.c.username,
                    users.c.role,
                    users.c.created_at,
                    users.c.disabled_at,
                ).order_by(users.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def disable_user(self, username: str) -> int:
        """Disable an account and end its open sessions, in one transaction."""
        now = utcnow()
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    sa.select(users.c.id).where(
                        users.c.username == username, users.c.disabled_at.is_(None)
                    )
                ).scalars()
            )
            if not ids:
                return 0
            conn.execute(users.update().where(users.c.id.in_(ids)).values(disabled_at=now))
            ended = self._end_sessions(conn, ui_sessions.c.user_id.in_(ids), "user disabled", now)
            conn.execute(
                audit_events.insert(),
                {
                    "at": now,
                    "caller": "cli",
                    "action": "user_disabled",
                    "detail": json.dumps({"username": username, "sessions": ended}),
                },
            )
            return len(ids)

    def active_caller(self, *, key_id: int | None = None, user_id: int | None = None):
        """The caller behind a still-valid API key or account id (None once revoked or
        disabled): sessions are re-checked against this on every request."""
        with self.engine.connect() as conn:
            if key_id is not None:
                row = conn.execute(
                    sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.role).where(
                        api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)
                    )
                ).first()
                return None if row is None else Caller(row.name, row.role, key_id=row.id)
            if user_id is not None:
                row = conn.execute(
                    sa.select(users.c.id, users.c.username, users.c.role).where(
                        users.c.id == user_id, users.c.disabled_at.is_(None)
                    )
                ).first()
                return None if row is None else Caller(row.username, row.role, user_id=row.id)
        return None

    # -- worklist sessions ----------------------------------------------------------------
    def create_session(self, caller: Caller, client: str | None) -> tuple[str, UiSession]:
        """Open a worklist session for an account or an API key (``caller.user_id`` or
        ``caller.key_id``); returns the session token (256 random bits, for the cookie; only
        its SHA-256 is stored) and the session."""
        if (caller.user_id is None) == (caller.key_id is None):
            raise CargoriskError("session: exactly one of an account or an API key signs in")
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            result = conn.execute(
                ui_sessions.insert(),
                {
                    "token_hash": hash_key(token),
                    "user_id": caller.user_id,
                    "key_id": caller.key_id,
                    "caller": caller.label,
                    "csrf": csrf,
                    "client": (client or "")[:64] or None,
                    "created_at": now,
                    "last_seen_at": now,
                },
            )
        return token, UiSession(inserted_id(result), caller, csrf, now, now)

    SESSION_TOUCH = dt.timedelta(seconds=30)
    """A session's last use is written at most this often (each write is an fsync)."""

    def session(
        self,
        token: str,
        *,
        idle: dt.timedelta,
        lifetime: dt.timedelta,
        now: dt.datetime | None = None,
    ) -> UiSession | None:
        """The open session of a cookie token, with its account or key still active; None
        if unknown, ended, idle for ``idle``, older than ``lifetime``, or its account is
        disabled or key revoked. An expired session is ended (with the reason) on the way."""
        now = now or utcnow()
        query = (
            sa.select(
                ui_sessions,
                users.c.username,
                users.c.role.label("user_role"),
                users.c.disabled_at,
                api_keys.c.name.label("key_name"),
                api_keys.c.role.label("key_role"),
                api_keys.c.revoked_at,
            )
            .select_from(
                ui_sessions.outerjoin(users, users.c.id == ui_sessions.c.user_id).outerjoin(
                    api_keys, api_keys.c.id == ui_sessions.c.key_id
                )
            )
            .where(ui_sessions.c.token_hash == hash_key(token), ui_sessions.c.ended_at.is_(None))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if row.user_id is not None:
            caller = Caller(row.username, row.user_role, user_id=row.user_id)
            gone = row.username is None or row.disabled_at is not None
        else:
            caller = Caller(row.key_name, row.key_role, key_id=row.key_id)
            gone = row.key_name is None or row.revoked_at is not None
        reason = None
        if gone:
            reason = "user disabled" if row.user_id is not None else "key revoked"
        elif now - row.created_at >= lifetime:
            reason = "expired"
        elif now - row.last_seen_at >= idle:
            reason = "idle"
        if reason is not None:
            with self.engine.begin() as conn:
                self._end_sessions(conn, ui_sessions.c.id == row.id, reason, now)
            return None
        last_seen = row.last_seen_at
        if now - last_seen >= self.SESSION_TOUCH:
            with self.engine.begin() as conn:
                conn.execute(
                    ui_sessions.update()
                    .where(ui_sessions.c.id == row.id, ui_sessions.c.ended_at.is_(None))
                    .values(last_seen_at=now)
                )
            last_seen = now
        return UiSession(row.id, caller, row.csrf, row.created_at, last_seen)

    def end_session(self, session_id: int, reason: str = "signed out") -> int:
        """End one session (sign-out); returns 1 if it was open."""
        with self.engine.begin() as conn:
            return self._end_sessions(conn, ui_sessions.c.id == session_id, reason, utcnow())

    def end_sessions(self, username: str | None = None, reason: str = "ended by operator") -> int:
        """End every open session (or those of one account); returns how many."""
        cond = ui_sessions.c.ended_at.is_(None)
        if username is not None:
            cond = ui_sessions.c.user_id.in_(
                sa.select(users.c.id).where(users.c.username == username)
            )
        now = utcnow()
        with self.engine.begin() as conn:
            ended = self._end_sessions(conn, cond, reason, now)
            conn.execute(
                audit_events.insert(),
                {
                    "at": now,
                    "caller": "cli",
                    "action": "ui_sessions_ended",
                    "detail": json.dumps({"username": username, "count": ended}),
                },
            )
            return ended

    @staticmethod
    def _end_sessions(conn, cond, reason: str, now: dt.datetime) -> int:
        result = conn.execute(
            ui_sessions.update()
            .where(cond, ui_sessions.c.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
        return int(result.rowcount)

    def open_sessions(self) -> list[dict[str, Any]]:
        """Open sessions (who, from where, since when, last used) - never their tokens."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    ui_sessions.c.id,
                    ui_sessions.c.caller,
                    ui_sessions.c.client,
                    ui_sessions.c.created_at,
                    ui_sessions.c.last_seen_at,
                )
                .where(ui_sessions.c.ended_at.is_(None))
                .order_by(ui_sessions.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # -- sign-in throttling ----------------------------------------------------------------
    def record_sign_in_failure(self, client: str, account: str | None) -> None:
        """Count a failed worklist sign-in from ``client`` naming ``account`` (None for API
        keys); rows older than a day are pruned on the way."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                sign_in_failures.insert(),
                {"at": now, "client": client[:64], "account": (account or None) and account[:200]},
            )
            conn.execute(
                sign_in_failures.delete().where(sign_in_failures.c.at < now - dt.timedelta(days=1))
            )

    def sign_in_failures(self, client: str, account: str | None, since: dt.datetime):
        """Failed sign-ins since ``since`` from ``client`` and naming ``account``."""
        count = sa.select(sa.func.count()).select_from(sign_in_failures)
        with self.engine.connect() as conn:
            by_client = conn.execute(
                count.where(
                    sign_in_failures.c.client == client[:64], sign_in_failures.c.at >= since
                )
            ).scalar()
            by_account: int | None = 0
            if account:
                by_account = conn.execute(
                    count.where(
                        sign_in_failures.c.account == account[:200],
                        sign_in_failures.c.at >= since,
                    )
                ).scalar()
        return int(by_client or 0), int(by_account or 0)
