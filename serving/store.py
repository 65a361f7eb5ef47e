"""The serving store: what the service saw, what it answered, what inspections found.

Tables (SQLAlchemy 2 Core, SQLite by default, PostgreSQL by URL):

* ``shipments`` - the full contract record of every shipment scored (latest declaration wins
  when a shipment is re-scored), with when it was first received;
* ``scores`` - the audit trail of every score served: request id, time, caller, shipment id,
  model name and version, score, percentile, band and the reasons given;
* ``outcome_reports`` - every inspection report received (the outcome contract), append-only:
  the first report of an inspection (shipment id, inspection time) is revision 1, a correction
  the next revision with its reason; the latest revision is the report in force. A store made
  before this held one overwritten row per inspection in ``outcomes``: it is migrated on open;
* ``audit_events`` - other actions (outcomes posted, model reloads, key changes, UI actions);
* ``api_keys`` - API keys, stored only as SHA-256 digests (keys are 256-bit random tokens, so
  a fast digest is enough; the key itself is shown once, at creation);
* ``users`` - worklist sign-in accounts (password hashes), used by the UI;
* ``ui_sessions`` - worklist sessions, server-side: the SHA-256 of the cookie's random token,
  who, the CSRF token, when it started and was last used, when and why it ended. Signing out,
  disabling the account or revoking the key ends a session at once (``ended_at``);
* ``sign_in_failures`` - failed worklist sign-ins (client address, account name tried) of the
  last minutes, counted by every worker to refuse guessing; pruned as they age out (the audit
  trail keeps every attempt).

Nothing acknowledged may be lost: every write is one transaction committed before the caller
answers. SQLite runs in WAL mode with ``synchronous=FULL`` so a commit survives power loss
and SIGKILL; PostgreSQL commits are durable by default.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.contracts import (
    ATTRIBUTE_PREFIX,
    OUTCOME_COLUMNS,
    SHIPMENT_COLUMNS,
    Outcomes,
    Shipments,
    as_contract,
    attribute_column,
    attribute_columns,
    changed_fields,
    column_kind,
    frame_columns,
    substantive,
)
from features.errors import CargoriskError

ROLES = ("system", "officer", "admin", "monitor")
"""API-key roles; what each may do is :data:`serving.auth.PERMISSIONS`."""
KEY_PREFIX = "crk_"


_SQL_TYPES = {
    "datetime": sa.DateTime,
    "int": sa.BigInteger,
    "float": sa.Float,
    "str": sa.Text,
}


def _contract_columns(schema) -> list[sa.Column]:
    return [
        sa.Column(name, _SQL_TYPES[column_kind(col)](), nullable=bool(col.nullable))
        for name, col in schema.columns.items()
    ]


metadata = sa.MetaData()


def _declaration_columns() -> list[sa.Column]:
    """A declaration as stored: the contract's shipment columns (the id not null) and the
    customs service's ``attributes`` (one JSON object)."""
    return [
        *(
            c if c.name != "shipment_id" else sa.Column("shipment_id", sa.Text, nullable=False)
            for c in _contract_columns(Shipments.to_schema())
        ),
        sa.Column("attributes", sa.Text),
    ]


shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *_declaration_columns(),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("version", sa.Integer),
    sa.UniqueConstraint("shipment_id", name="uq_shipments_shipment_id"),
)
"""The declaration in force of each shipment (its latest version in ``shipment_versions``,
``version``), kept for fast reads: the worklist, the shipment page, the export.
``attributes``: the shipment's own attributes of its customs service as one JSON object
(name -> text or number), null when it has none; frames carry them as ``attr.<name>``.
``received_at``: when the shipment was first received."""
sa.Index("ix_shipments_declared_at", shipments.c.declared_at)

shipment_versions = sa.Table(
    "shipment_versions",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *_declaration_columns(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("request_id", sa.String(120)),
    sa.Column("changed", sa.Text),
    sa.UniqueConstraint("shipment_id", "version", name="uq_shipment_versions_version"),
)
"""Every version of every declaration, never updated: version 1 as first received, then each
amendment (the same ``shipment_id`` declared again with other content) with who sent it,
when, and ``changed`` (a JSON list of the fields that differ from the version before). An
identical re-send is not a version. ``amendments_after_score`` (a contract column) counts the
versions that changed parties, goods, route or weight after the shipment had been scored."""
sa.Index("ix_shipment_versions_shipment_id", shipment_versions.c.shipment_id)

scores = sa.Table(
    "scores",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("shipment_id", sa.Text, nullable=False, index=True),
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("percentile", sa.Float),
    sa.Column("band", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text),
    sa.Column("shipment_version", sa.Integer),
)
"""``shipment_version``: the version of the declaration the score was computed from (null for
scores stored before versions were kept)."""

outcome_reports = sa.Table(
    "outcome_reports",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *_contract_columns(Outcomes.to_schema()),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("request_id", sa.String(120)),
    sa.Column("correction_reason", sa.Text),
    sa.UniqueConstraint(
        "shipment_id", "inspected_at", "revision", name="uq_outcome_reports_revision"
    ),
)
"""Every report of every inspection, never updated: ``revision`` 1 is the first report of an
inspection (``shipment_id``, ``inspected_at``), 2, 3... its corrections, each with the reason
given. The report in force is the latest revision (:func:`_reports_in_force`). The unique
revision makes two reports of one inspection arriving at once collide instead of both
becoming revision 2."""
sa.Index(
    "ix_outcome_reports_inspection", outcome_reports.c.shipment_id, outcome_reports.c.inspected_at
)

REPORT_FIELDS = (*OUTCOME_COLUMNS, "revision", "received_at", "caller", "request_id",
                 "correction_reason")  # fmt: skip
"""What the store (and the audit trail) keeps of each report."""


def _reports_in_force():
    """Reports in force: the latest revision of each inspection."""
    latest = sa.select(sa.func.max(outcome_reports.c.seq)).group_by(
        outcome_reports.c.shipment_id, outcome_reports.c.inspected_at
    )
    return outcome_reports.c.seq.in_(latest)


audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("request_id", sa.String(64)),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("disabled_at", sa.DateTime),
)


ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("key_id", sa.Integer),
    sa.Column("caller", sa.Text, nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime),
    sa.Column("end_reason", sa.String(32)),
)
sa.Index("ix_ui_sessions_user_id", ui_sessions.c.user_id)
sa.Index("ix_ui_sessions_key_id", ui_sessions.c.key_id)

sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("account", sa.String(200)),
)
sa.Index("ix_sign_in_failures_client", sign_in_failures.c.client, sign_in_failures.c.at)
sa.Index("ix_sign_in_failures_account", sign_in_failures.c.account, sign_in_failures.c.at)


def utcnow() -> dt.datetime:
    """Now, as the naive UTC timestamp the contract uses."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


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


WORKLIST_COLUMNS = (
    "shipment_id",
    "mode",
    "declared_at",
    "arrival_at",
    "shipper_id",
    "shipper_name",
    "consignee_id",
    "consignee_name",
    "origin_country",
    "loading_port",
    "transshipment_ports",
    "discharge_port",
    "vessel",
    "voyage",
    "flight",
    "bill_of_lading",
    "air_waybill",
    "container_type",
    "hs_code",
    "goods_description",
)
"""Columns of a shipment the worklist table shows or filters on."""


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


@dataclass(frozen=True)
class ShipmentVersion:
    """A declaration's version as stored (or about to be): its number, whether this request
    made it (``new``; False for an identical re-send), the fields it changed from the version
    before, and the amendment count in force with it."""

    version: int
    new: bool
    changed: tuple[str, ...]
    amendments: int


@dataclass(frozen=True)
class RecordedReports:
    """What :meth:`Store.record_outcomes` did with each outcome of a request (row numbers):
    ``stored`` as new reports (first reports and ``corrected`` ones) or ``unchanged``
    (identical to the report in force: nothing stored)."""

    stored: list[int]
    corrected: list[int]
    unchanged: list[int]


class ReportConflict(CargoriskError):
    """Reports that differ from the report in force of their inspection and may not replace
    it: ``conflicts`` holds (row number, report in force, whether a correction was asked)."""

    def __init__(self, conflicts: list[tuple[int, dict, bool]], message: str | None = None):
        self.conflicts = conflicts
        if message is None:
            i, old, _ = conflicts[0]
            message = (
                f"outcomes[{i}]: inspection of shipment {old['shipment_id']!r} at "
                f"{old['inspected_at']} already has a report ({old['result']}, revision "
                f"{old['revision']}, from {old['caller']} at {old['received_at']}); a different "
                "report of the same inspection is a correction: send it with "
                '"correction": {"reason": "..."} (officers only)'
            )
        super().__init__(message)


def _same_report(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two reports of an inspection say the same in every contract field."""
    for name in OUTCOME_COLUMNS:
        a, b = old.get(name), new.get(name)
        if isinstance(a, float) and isinstance(b, float):
            if not (a == b or (math.isnan(a) and math.isnan(b))):
                return False
        elif a != b:
            return False
    return True


_columns = frame_columns  # the contract's frame -> columns conversion


Rows = list[dict[str, Any]] | dict[str, list]
"""Rows to write: one dict per row, or one list per column (same names, same length)."""


_SQLITE_DATETIME = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
"""SQLAlchemy's default SQLite storage format of DATETIME columns."""


class _DatetimeColumn:
    """SQLAlchemy's SQLite DATETIME bind processor over a whole column: a naive datetime's
    ``isoformat(" ", "microseconds")`` is the very text of SQLAlchemy's storage format (tested)
    at a fifth of the cost of formatting its seven fields through a dict; anything else goes
    through SQLAlchemy's own processor."""

    def __init__(self, proc) -> None:
        self.proc = proc

    def __call__(self, value: Any) -> Any:
        return self.proc(value)

    def convert(self, values: list) -> list:
        proc, datetime = self.proc, dt.datetime
        return [
            None
            if v is None
            else v.isoformat(" ", "microseconds")
            if type(v) is datetime and v.tzinfo is None
            else proc(v)
            for v in values
        ]


def _as_columns(rows: Rows) -> dict[str, list]:
    if isinstance(rows, dict):
        return rows
    return {name: [r[name] for r in rows] for name in rows[0]} if rows else {}


def _inserted_id(result: Any) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise CargoriskError("the database returned no id for the new row")
    return int(key[0])


def _as_rows(rows: Rows) -> list[dict[str, Any]]:
    if not isinstance(rows, dict):
        return rows
    names = list(rows)
    return [dict(zip(names, values, strict=True)) for values in zip(*rows.values(), strict=True)]


def _count(rows: Rows) -> int:
    if isinstance(rows, dict):
        return len(next(iter(rows.values()), ()))
    return len(rows)


class Store:
    """Durable record of shipments, scores, outcomes, audit events, API keys and users."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
            if path and path != ":memory:":
                # 0600 before SQLite opens it; SQLite gives its -wal and -shm files the
                # database file's mode
                from common.settings import private_file

                private_file(Path(path))
            self.engine: Engine = sa.create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        _migrate_versions(self.engine)
        _migrate_outcomes(self.engine)
        self._bulk_sql: dict[tuple, tuple[str, list]] = {}

    def close(self) -> None:
        self.engine.dispose()

    # -- upserts ---------------------------------------------------------------------------
    def _sqlite_bulk(self, conn, table: sa.Table, rows: Rows, keys: list[str]) -> None:
        """SQLite fast path: one pre-rendered statement, values converted by SQLAlchemy's own
        bind processors (same stored format as the generic path), executemany on the driver.
        About 4x faster for a 10,000-shipment manifest than SQLAlchemy's executemany."""
        columns = _as_columns(rows)
        names = list(columns)
        cache_key = (table.name, tuple(names), tuple(keys))
        cached = self._bulk_sql.get(cache_key)
        if cached is None:
            cols = ", ".join(f'"{n}"' for n in names)
            marks = ", ".join("?" for _ in names)
            sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'
            if keys:
                updates = ", ".join(
                    f'"{n}" = excluded."{n}"'
                    for n in names
                    if n not in (*keys, "seq", "received_at")
                )
                sql += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            dialect = self.engine.dialect
            procs = []
            for n in names:
                impl = table.c[n].type.dialect_impl(dialect)
                proc = impl.bind_processor(dialect)
                if (
                    isinstance(impl, sa.DateTime) and impl._storage_format == _SQLITE_DATETIME  # type: ignore[attr-defined]
                ):
                    proc = _DatetimeColumn(proc)
                procs.append(proc)
            cached = (sql, procs)
            self._bulk_sql[cache_key] = cached
        sql, procs = cached
        # Column by column (one list comprehension each, a value repeated in every row -
        # received_at, scored_at, the model - converted once), then zipped into row tuples:
        # about 3x faster than a generator per row for a 10,000-shipment manifest.
        converted = []
        for n, proc in zip(names, procs, strict=True):
            values = columns[n]
            if proc is not None:
                first = values[0]
                if first is not None and all(v is first for v in values):
                    values = [proc(first)] * len(values)
                elif isinstance(proc, _DatetimeColumn):
                    values = proc.convert(values)
                else:
                    values = [None if v is None else proc(v) for v in values]
            converted.append(values)
        params = list(zip(*converted, strict=True))
        conn.exec_driver_sql(sql, params)

    def _upsert(self, conn, table: sa.Table, rows: Rows, keys: list[str]) -> None:
        if not _count(rows):
            return
        if self.is_sqlite:
            self._sqlite_bulk(conn, table, rows, keys)
            return
        from sqlalchemy.dialects.postgresql import insert

        rows = _as_rows(rows)
        stmt = insert(table)
        update_cols = {
            c.name: stmt.excluded[c.name]
            for c in table.columns
            if c.name not in (*keys, "seq", "received_at")
        }
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_=update_cols)
        # Chunk so huge manifests stay under driver parameter limits.
        per_row = len(rows[0])
        chunk = max(1, 30_000 // per_row)
        for start in range(0, len(rows), chunk):
            conn.execute(stmt, rows[start : start + chunk])

    # -- scoring ---------------------------------------------------------------------------
    def record_scoring(
        self,
        shipments_frame: pd.DataFrame | list[dict[str, Any]] | dict[str, list],
        score_rows: list[dict[str, Any]],
        *,
        request_id: str,
        caller: Caller,
        model_name: str,
        model_version: str,
        at: dt.datetime | None = None,
    ) -> dict[str, ShipmentVersion]:
        """Store the scored shipments (a contract frame, validated API records, or those
        records' columns: name -> list of plain values, plus ``attributes``: one JSON object or
        None per shipment) and the scores served, in one durable transaction; returns the
        version of each shipment the scores rest on.

        A shipment id not stored yet becomes version 1; one stored with other content becomes
        its next version (an amendment: ``amendments_after_score`` counted anew, see
        :meth:`plan_versions`), in force from now on; an identical re-send stores no version.
        Each score row records the version it was computed from.

        ``score_rows`` items carry ``shipment_id``, ``score``, ``percentile``, ``band`` and
        ``reasons`` (a list of dicts or None)."""
        at = at or utcnow()
        if isinstance(shipments_frame, pd.DataFrame):
            ship = _columns(shipments_frame, SHIPMENT_COLUMNS)
            ship["attributes"] = attributes_json(shipments_frame)
        elif isinstance(shipments_frame, dict):
            ship = {n: shipments_frame[n] for n in SHIPMENT_COLUMNS}
            ship["attributes"] = shipments_frame.get("attributes") or [None] * len(
                ship["shipment_id"]
            )
        else:  # validated API records: already plain Python values
            ship = {n: [r.get(n) for r in shipments_frame] for n in SHIPMENT_COLUMNS}
            ship["attributes"] = [
                json.dumps(r["attributes"], sort_keys=True) if r.get("attributes") else None
                for r in shipments_frame
            ]
        audit: dict[str, list[Any]] = {
            "request_id": [request_id] * len(score_rows),
            "scored_at": [at] * len(score_rows),
            "caller": [caller.label] * len(score_rows),
            "shipment_id": [r["shipment_id"] for r in score_rows],
            "model_name": [model_name] * len(score_rows),
            "model_version": [model_version] * len(score_rows),
            "score": [float(r["score"]) for r in score_rows],
            "percentile": [
                None if r.get("percentile") is None else float(r["percentile"]) for r in score_rows
            ],
            "band": [r["band"] for r in score_rows],
            "reasons": [
                None if r.get("reasons") is None else json.dumps(r["reasons"]) for r in score_rows
            ],
        }
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    versions = self._store_versions(conn, ship, at, caller.label, request_id)
                    audit["shipment_version"] = [
                        versions[sid].version if sid in versions else None
                        for sid in audit["shipment_id"]
                    ]
                    if score_rows and self.is_sqlite:
                        self._sqlite_bulk(conn, scores, audit, [])
                    elif score_rows:
                        conn.execute(scores.insert(), _as_rows(audit))
                return versions
            except sa.exc.IntegrityError as exc:
                # another request stored a version of one of these shipments at the same
                # moment: read again and number after it
                text = str(exc).lower()
                if attempt == 2 or not ("version" in text or "shipment_id" in text):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def plan_versions(self, ship: dict[str, list], conn=None) -> list[ShipmentVersion]:
        """What storing these shipments (contract columns and ``attributes``, one list each)
        would do to each, read from the store now: a new shipment (version 1, no amendment),
        an identical re-send (``new`` False: the version in force), or an amendment (the next
        version, with the fields ``changed``). ``amendments_after_score`` counts, for the version in
        force after this, the versions whose parties, goods, route or weight changed after
        the shipment had been scored (:func:`features.contracts.substantive`)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.plan_versions(ship, own)
        ids = ship["shipment_id"]
        current = self._current_shipments(conn, ids)
        scored = self._scored_ids(conn, list(current)) if current else set()
        plan: list[ShipmentVersion] = []
        names = (*SHIPMENT_COLUMNS, "attributes")
        for i, sid in enumerate(ids):
            old = current.get(sid)
            if old is None:
                plan.append(ShipmentVersion(1, True, (), 0))
                continue
            row = {n: ship[n][i] for n in names}
            changed = tuple(changed_fields(old, row))
            before = int(old["amendments_after_score"] or 0)
            if not changed:
                plan.append(ShipmentVersion(int(old["version"] or 1), False, (), before))
                continue
            counted = sid in scored and bool(substantive(list(changed)))
            plan.append(
                ShipmentVersion(int(old["version"] or 1) + 1, True, changed, before + counted)
            )
        return plan

    def _store_versions(
        self, conn, ship: dict[str, list], at: dt.datetime, caller: str, request_id: str
    ) -> dict[str, ShipmentVersion]:
        """Within ``conn``'s transaction: append the new versions among ``ship`` and make them
        the declarations in force."""
        plan = self.plan_versions(ship, conn)
        rows = [i for i, p in enumerate(plan) if p.new]
        if rows:
            names = (*SHIPMENT_COLUMNS, "attributes")
            if len(rows) == len(plan):
                current = {n: list(ship[n]) for n in names}
            else:
                current = {n: [ship[n][i] for i in rows] for n in names}
            current["amendments_after_score"] = [plan[i].amendments for i in rows]
            current["version"] = [plan[i].version for i in rows]
            current["received_at"] = [at] * len(rows)
            versions = {
                **current,
                "caller": [caller] * len(rows),
                "request_id": [request_id] * len(rows),
                "changed": [json.dumps(plan[i].changed) if plan[i].changed else None for i in rows],
            }
            if self.is_sqlite:
                self._sqlite_bulk(conn, shipment_versions, versions, [])
            else:
                conn.execute(shipment_versions.insert(), _as_rows(versions))
            self._upsert(conn, shipments, current, ["shipment_id"])
        return dict(zip(ship["shipment_id"], plan, strict=True))

    @staticmethod
    def _current_shipments(conn, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The declarations in force of the stored shipments among ``ids`` (contract columns,
        ``attributes``, ``version``)."""
        wanted = list(dict.fromkeys(ids))
        cols = [shipments.c[n] for n in (*SHIPMENT_COLUMNS, "attributes", "version")]
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 5_000):  # under every driver's parameter limit
            rows = conn.execute(
                sa.select(*cols).where(shipments.c.shipment_id.in_(wanted[start : start + 5_000]))
            ).mappings()
            out.update({r["shipment_id"]: dict(r) for r in rows})
        return out

    @staticmethod
    def _scored_ids(conn, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 5_000):
            out.update(
                conn.execute(
                    sa.select(scores.c.shipment_id)
                    .where(scores.c.shipment_id.in_(ids[start : start + 5_000]))
                    .distinct()
                ).scalars()
            )
        return out

    def record_outcomes(
        self,
        outcomes_frame: pd.DataFrame,
        *,
        request_id: str,
        caller: Caller,
        corrections: list[str | None] | None = None,
        may_correct: bool = False,
    ) -> RecordedReports:
        """Store inspection reports, append-only, in one durable transaction, by these rules
        per inspection (``shipment_id``, ``inspected_at``):

        * no report yet: stored as revision 1;
        * the same report as the one in force (every field equal): nothing stored (a re-send);
        * a different report: a correction, stored as the next revision with its reason only
          when ``corrections`` gives a reason for that row and ``may_correct``; otherwise
          :class:`ReportConflict` naming the report in force, and nothing of the request is
          stored.

        Every report received (stored or re-sent) goes to the audit trail with all its fields.
        """
        at = utcnow()
        n = len(outcomes_frame)
        reasons = list(corrections) if corrections is not None else [None] * n
        rows = _as_rows(_columns(outcomes_frame, OUTCOME_COLUMNS))
        try:
            with self.engine.begin() as conn:
                current = self._current_reports(conn, rows)
                new, unchanged, corrected, conflicts = [], [], [], []
                for i, (row, reason) in enumerate(zip(rows, reasons, strict=True)):
                    old = current.get((row["shipment_id"], row["inspected_at"]))
                    if old is None:
                        revision = 1
                    elif _same_report(old, row):
                        unchanged.append(i)
                        continue
                    elif reason is None or not may_correct:
                        conflicts.append((i, old, reason is not None))
                        continue
                    else:
                        revision = old["revision"] + 1
                        corrected.append(i)
                    new.append(
                        {
                            **row,
                            "revision": revision,
                            "received_at": at,
                            "caller": caller.label,
                            "request_id": request_id,
                            "correction_reason": reason if old is not None else None,
                        }
                    )
                if conflicts:
                    raise ReportConflict(conflicts)
                if new:
                    conn.execute(outcome_reports.insert(), new)
                conn.execute(
                    audit_events.insert(),
                    {
                        "at": at,
                        "request_id": request_id,
                        "caller": caller.label,
                        "action": "outcomes",
                        "detail": json.dumps(
                            {
                                "reports": new,
                                "unchanged": [rows[i] for i in unchanged],
                                "replaced": [
                                    current[(rows[i]["shipment_id"], rows[i]["inspected_at"])]
                                    for i in corrected
                                ],
                            },
                            default=str,
                        ),
                    },
                )
        except sa.exc.IntegrityError as exc:  # another report of the inspection came first
            if "revision" not in str(exc).lower():
                raise
            raise ReportConflict(
                [],
                message="another report of the same inspection was "
                "stored at the same moment; read it and send again",
            ) from None
        stored = [i for i in range(n) if i not in set(unchanged)]
        return RecordedReports(stored=stored, corrected=corrected, unchanged=unchanged)

    @staticmethod
    def _current_reports(conn, rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        """The report in force of each inspection among ``rows`` (by shipment id and
        inspection time), with its revision."""
        ids = list(dict.fromkeys(r["shipment_id"] for r in rows))
        wanted = {(r["shipment_id"], r["inspected_at"]) for r in rows}
        out: dict[tuple, dict[str, Any]] = {}
        for start in range(0, len(ids), 5_000):  # under every driver's parameter limit
            found = conn.execute(
                sa.select(*[outcome_reports.c[n] for n in REPORT_FIELDS])
                .where(outcome_reports.c.shipment_id.in_(ids[start : start + 5_000]))
                .order_by(outcome_reports.c.seq)
            ).mappings()
            for r in found:
                key = (r["shipment_id"], r["inspected_at"])
                if key in wanted:
                    out[key] = dict(r)  # later revisions overwrite earlier ones
        return out

    def import_history(self, shipments_frame: pd.DataFrame, outcomes_frame: pd.DataFrame) -> None:
        """Load seed history (contract frames) into an empty store, in one transaction."""
        at = utcnow()
        ship_rows = _columns(shipments_frame, SHIPMENT_COLUMNS, received_at=at, version=1)
        ship_rows["attributes"] = attributes_json(shipments_frame)
        version_rows = {**ship_rows, "caller": ["seed"] * len(shipments_frame)}
        outs = outcomes_frame.drop_duplicates(list(OUTCOME_COLUMNS))
        # a seed holding two different reports of one inspection: both kept, the later row
        # in force (as if the second had been sent as a correction)
        revision = outs.groupby(["shipment_id", "inspected_at"]).cumcount() + 1
        out_rows = _columns(outs, OUTCOME_COLUMNS, received_at=at, caller="seed", request_id=None)
        out_rows["revision"] = [int(r) for r in revision]
        out_rows["correction_reason"] = [
            None if r == 1 else "re-reported in the seed data" for r in out_rows["revision"]
        ]
        with self.engine.begin() as conn:
            if ship_rows["shipment_id"]:
                if self.is_sqlite:
                    self._sqlite_bulk(conn, shipment_versions, version_rows, [])
                else:
                    conn.execute(shipment_versions.insert(), _as_rows(version_rows))
            self._upsert(conn, shipments, ship_rows, ["shipment_id"])
            if out_rows["shipment_id"]:
                if self.is_sqlite:
                    self._sqlite_bulk(conn, outcome_reports, out_rows, [])
                else:
                    conn.execute(outcome_reports.insert(), _as_rows(out_rows))
            conn.execute(
                audit_events.insert(),
                {
                    "at": at,
                    "caller": "seed",
                    "action": "import_history",
                    "detail": json.dumps(
                        {"shipments": len(shipments_frame), "outcomes": len(outcomes_frame)}
                    ),
                },
            )

    def audit(
        self, action: str, caller: Caller | str, detail: dict | None = None, request_id=None
    ) -> None:
        """Record an action (reload, key change, UI action) with who did it."""
        label = caller.label if isinstance(caller, Caller) else caller
        with self.engine.begin() as conn:
            conn.execute(
                audit_events.insert(),
                {
                    "at": utcnow(),
                    "request_id": request_id,
                    "caller": label,
                    "action": action,
                    "detail": None if detail is None else json.dumps(detail, default=str),
                },
            )

    # -- reads -----------------------------------------------------------------------------
    def shipments_frame(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """Stored shipments, each as its declaration in force, as a contract frame (declared
        at or after ``since``), followed by their attributes as ``attr.<name>`` columns when
        any shipment has some."""
        cond = shipments.c.declared_at >= since if since is not None else None
        return self._shipments_frame(shipments, cond)

    def _shipments_frame(self, table: sa.Table, cond=None) -> pd.DataFrame:
        query = sa.select(*[table.c[n] for n in SHIPMENT_COLUMNS], table.c.attributes).order_by(
            table.c.seq
        )
        if cond is not None:
            query = query.where(cond)
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        out = as_contract("shipments", frame)
        if frame["attributes"].notna().any():
            out = pd.concat([out, attributes_frame(frame["attributes"], out.index)], axis=1)
        return out

    def history_frame(self) -> pd.DataFrame:
        """Every shipment as first declared (version 1), as a contract frame with its
        attributes, in the order received: what the history features count (an amendment
        moves a shipment's inspections, not its declaration, in the history of others; see
        :meth:`amended_frame` and docs/serving.md)."""
        return self._shipments_frame(shipment_versions, shipment_versions.c.version == 1)

    def amended_frame(self) -> tuple[pd.DataFrame, list[int]]:
        """The declarations in force of amended shipments (version 2 and up) as a contract
        frame, and their version numbers: what their inspections count against."""
        cond = shipments.c.version > 1
        frame = self._shipments_frame(shipments, cond)
        with self.engine.connect() as conn:
            versions = conn.execute(
                sa.select(shipments.c.version).where(cond).order_by(shipments.c.seq)
            ).scalars()
            return frame, [int(v) for v in versions]

    def shipment_versions(self, shipment_id: str) -> list[dict[str, Any]]:
        """Every version of a declaration, oldest first: its fields, ``version``,
        ``received_at``, ``caller``, ``request_id`` and ``changed`` (fields that differ from
        the version before; empty for version 1)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(shipment_versions)
                .where(shipment_versions.c.shipment_id == shipment_id)
                .order_by(shipment_versions.c.version)
            ).mappings()
            out = []
            for r in rows:
                record = dict(r)
                record.pop("seq", None)
                record["changed"] = json.loads(record["changed"]) if record["changed"] else []
                record["attributes"] = (
                    json.loads(record["attributes"]) if record["attributes"] else {}
                )
                out.append(record)
            return out

    def outcomes_frame(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """The reports in force (one per inspection, the latest correction) as a contract
        frame (inspected at or after ``since``), in the order they were received."""
        query = (
            sa.select(*[outcome_reports.c[n] for n in OUTCOME_COLUMNS])
            .where(_reports_in_force())
            .order_by(outcome_reports.c.seq)
        )
        if since is not None:
            query = query.where(outcome_reports.c.inspected_at >= since)
        with self.engine.connect() as conn:
            frame = pd.read_sql(query, conn)
        return as_contract("outcomes", frame)

    def outcome_reports(self, shipment_id: str) -> list[dict[str, Any]]:
        """Every report of a shipment's inspections (corrections and the reports they
        replaced), oldest first, each with ``in_force``."""
        with self.engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    sa.select(*[outcome_reports.c[n] for n in REPORT_FIELDS])
                    .where(outcome_reports.c.shipment_id == shipment_id)
                    .order_by(outcome_reports.c.inspected_at, outcome_reports.c.seq)
                ).mappings()
            ]
        latest = {}
        for r in rows:
            latest[r["inspected_at"]] = r["revision"]
        for r in rows:
            r["in_force"] = latest[r["inspected_at"]] == r["revision"]
        return rows

    def count(self, table: str) -> int:
        """Rows of a table; ``outcomes``: inspections (reports in force)."""
        query = sa.select(sa.func.count())
        if table == "outcomes":
            query = query.select_from(outcome_reports).where(_reports_in_force())
        else:
            query = query.select_from(metadata.tables[table])
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def shipment(self, shipment_id: str) -> dict[str, Any] | None:
        """The declaration in force of a shipment (with ``attributes`` and ``version``)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(
                        *[shipments.c[n] for n in SHIPMENT_COLUMNS],
                        shipments.c.attributes,
                        shipments.c.version,
                    ).where(shipments.c.shipment_id == shipment_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        record = dict(row)
        record["attributes"] = json.loads(record["attributes"]) if record["attributes"] else {}
        return record

    def declared_at(self, shipment_ids: Iterable[str]) -> dict[str, dt.datetime]:
        """When each of the stored shipments among ``shipment_ids`` was declared (the
        declaration in force); ids the store does not hold are absent."""
        ids = list(dict.fromkeys(shipment_ids))
        out: dict[str, dt.datetime] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5_000):  # under every driver's parameter limit
                rows = conn.execute(
                    sa.select(shipments.c.shipment_id, shipments.c.declared_at).where(
                        shipments.c.shipment_id.in_(ids[start : start + 5_000])
                    )
                )
                out.update({r.shipment_id: r.declared_at for r in rows})
        return out

    def latest_score(self, shipment_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(scores)
                    .where(scores.c.shipment_id == shipment_id)
                    .order_by(scores.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        out = dict(row)
        out["reasons"] = None if out["reasons"] is None else json.loads(out["reasons"])
        return out

    def scores_for(self, request_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(request_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(scores).where(scores.c.request_id.in_(ids))).mappings()
            return [dict(r) for r in rows]

    def outcomes_for(self, shipment_id: str) -> list[dict[str, Any]]:
        """The reports in force of a shipment's inspections (contract fields), by inspection
        time."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*[outcome_reports.c[n] for n in OUTCOME_COLUMNS])
                .where(outcome_reports.c.shipment_id == shipment_id, _reports_in_force())
                .order_by(outcome_reports.c.inspected_at)
            ).mappings()
            return [dict(r) for r in rows]

    def recent_scores(self, model_version: str, limit: int) -> np.ndarray:
        """The last ``limit`` scores served by one model version (oldest first)."""
        with self.engine.connect() as conn:
            values = conn.execute(
                sa.select(scores.c.score)
                .where(scores.c.model_version == model_version)
                .order_by(scores.c.id.desc())
                .limit(limit)
            ).scalars()
            return np.asarray(list(values), dtype=float)[::-1]

    def audit_events(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

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
            return _inserted_id(result)

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
        return token, UiSession(_inserted_id(result), caller, csrf, now, now)

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

    # -- worklist queries ------------------------------------------------------------------
    def declared_between(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None, *, last=True
    ) -> dt.datetime | None:
        """The latest (or, with ``last=False``, earliest) declaration time in [start, end)."""
        col = shipments.c.declared_at
        query = sa.select(sa.func.max(col) if last else sa.func.min(col))
        if start is not None:
            query = query.where(col >= start)
        if end is not None:
            query = query.where(col < end)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        if isinstance(value, str):  # SQLite aggregates return text
            value = dt.datetime.fromisoformat(value)
        return value

    def worklist(self, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
        """Shipments declared in [start, end) with their latest score (score, band,
        percentile, model version, whether reasons were given) and latest inspection
        (``result``, ``inspected_at``; null when never inspected). One row per shipment."""
        day = sa.select(shipments.c.shipment_id).where(
            shipments.c.declared_at >= start, shipments.c.declared_at < end
        )
        latest = (
            sa.select(sa.func.max(scores.c.id).label("score_id"))
            .where(scores.c.shipment_id.in_(day))
            .group_by(scores.c.shipment_id)
            .subquery()
        )
        score_q = sa.select(
            scores.c.shipment_id,
            scores.c.score,
            scores.c.band,
            scores.c.percentile,
            scores.c.model_version,
            scores.c.scored_at,
            scores.c.reasons.is_not(None).label("has_reasons"),
        ).join(latest, scores.c.id == latest.c.score_id)
        ship_q = sa.select(*[shipments.c[n] for n in WORKLIST_COLUMNS]).where(
            shipments.c.declared_at >= start, shipments.c.declared_at < end
        )
        out_q = sa.select(
            outcome_reports.c.shipment_id,
            outcome_reports.c.inspected_at,
            outcome_reports.c.result,
        ).where(outcome_reports.c.shipment_id.in_(day), _reports_in_force())
        with self.engine.connect() as conn:
            ships = pd.read_sql(ship_q, conn)
            scored = pd.read_sql(score_q, conn)
            inspected = pd.read_sql(out_q, conn)
        if not inspected.empty:
            inspected = (
                inspected.sort_values("inspected_at")
                .drop_duplicates("shipment_id", keep="last")
                .rename(columns={"result": "outcome"})
            )
        else:
            inspected = pd.DataFrame(columns=["shipment_id", "inspected_at", "outcome"])
        frame = ships.merge(scored, on="shipment_id", how="left").merge(
            inspected, on="shipment_id", how="left"
        )
        for col in ("declared_at", "arrival_at", "scored_at", "inspected_at"):
            frame[col] = pd.to_datetime(frame[col])
        frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
        frame["has_reasons"] = frame["has_reasons"].fillna(False).astype(bool)
        return frame


ADDED_COLUMNS = {
    "shipments": ("attributes", "amendments_after_score", "version"),
    "scores": ("shipment_version",),
}
"""Nullable columns added to tables after stores were first created: a store made by an
earlier version gains them when it is opened (``ALTER TABLE ... ADD COLUMN``), so a second
quickstart on an old home keeps its history."""


def _migrate_versions(engine: Engine) -> None:
    """A store made before declarations had versions holds only the latest declaration of
    each shipment: it becomes version 1 (the earlier ones were overwritten and are gone)."""
    with engine.begin() as conn:
        if conn.execute(sa.select(shipment_versions.c.seq).limit(1)).first() is not None:
            return
        if conn.execute(sa.select(shipments.c.seq).limit(1)).first() is None:
            return
        names = ", ".join(f'"{c}"' for c in (*SHIPMENT_COLUMNS, "attributes", "received_at"))
        conn.execute(
            sa.text(
                f"INSERT INTO shipment_versions ({names}, version, caller) "
                f"SELECT {names}, 1, 'stored before versions were kept' FROM shipments "
                "ORDER BY seq"
            )
        )
        conn.execute(shipments.update().where(shipments.c.version.is_(None)).values(version=1))


def _migrate_outcomes(engine: Engine) -> None:
    """A store made before outcome reports were append-only holds one row per inspection in
    ``outcomes`` (the last report sent, earlier ones overwritten): those rows become revision
    1 of their inspections in ``outcome_reports`` and the old table goes, in one
    transaction."""
    if not sa.inspect(engine).has_table("outcomes"):
        return
    names = ", ".join(f'"{c}"' for c in OUTCOME_COLUMNS)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO outcome_reports ({names}, revision, received_at, caller) "
                f"SELECT {names}, 1, received_at, caller FROM outcomes ORDER BY seq"
            )
        )
        conn.execute(sa.text("DROP TABLE outcomes"))


def _add_missing_columns(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    for table_name, names in ADDED_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table_name)}
        table = metadata.tables[table_name]
        for name in names:
            if name in present:
                continue
            column = table.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(sa.text(f'ALTER TABLE {table_name} ADD COLUMN "{name}" {kind}'))


def attributes_json(frame: pd.DataFrame) -> list[str | None]:
    """The ``attr.*`` columns of a frame as one JSON object per row (None without any)."""
    names = attribute_columns(frame)
    if not names:
        return [None] * len(frame)
    keys = [c.removeprefix(ATTRIBUTE_PREFIX) for c in names]
    columns = [frame[c].tolist() for c in names]
    out: list[str | None] = []
    for values in zip(*columns, strict=True):
        item = {k: _plain(v) for k, v in zip(keys, values, strict=True) if not _blank(v)}
        out.append(json.dumps(item, sort_keys=True) if item else None)
    return out


def _blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def attributes_frame(values: Iterable[str | None], index: pd.Index) -> pd.DataFrame:
    """Stored attribute objects back as ``attr.<name>`` columns (text or float as stored;
    absent where a shipment lacks one)."""
    parsed = [json.loads(v) if isinstance(v, str) and v else {} for v in values]
    names = sorted({k for item in parsed for k in item})
    data = {}
    for name in names:
        column = [item.get(name) for item in parsed]
        numeric = all(v is None or isinstance(v, (int, float)) for v in column)
        data[attribute_column(name)] = (
            pd.Series(column, index=index, dtype="float64")
            if numeric
            else pd.Series(column, index=index, dtype=object)
        )
    return pd.DataFrame(data, index=index)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
