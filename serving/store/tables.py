"""The store's tables (SQLAlchemy 2 Core metadata, typed from the contract), the upgrades a
store made by an earlier version gets when it is opened, and SQLite's durability settings.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from features.contracts import (
    OUTCOME_COLUMNS,
    SHIPMENT_COLUMNS,
    Outcomes,
    Shipments,
    column_kind,
)
from features.snapshot import TABLE_COLUMNS, TABLE_KEYS

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
given. The report in force is the latest revision (:func:`reports_in_force`). The unique
revision makes two reports of one inspection arriving at once collide instead of both
becoming revision 2."""
sa.Index(
    "ix_outcome_reports_inspection", outcome_reports.c.shipment_id, outcome_reports.c.inspected_at
)

REPORT_FIELDS = (*OUTCOME_COLUMNS, "revision", "received_at", "caller", "request_id",
                 "correction_reason")  # fmt: skip
"""What the store (and the audit trail) keeps of each report."""


def reports_in_force():
    """Reports in force: the latest revision of each inspection."""
    latest = sa.select(sa.func.max(outcome_reports.c.seq)).group_by(
        outcome_reports.c.shipment_id, outcome_reports.c.inspected_at
    )
    return outcome_reports.c.seq.in_(latest)


PICK_KINDS = ("model", "random")
"""How a shipment of an inspection plan was picked: above the cut line by the model, or drawn
at random below it (exploration)."""

exploration_picks = sa.Table(
    "exploration_picks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("plan_day", sa.Date, nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("port", sa.String(8), nullable=False),
    sa.Column("shipment_id", sa.Text, nullable=False),
    sa.Column("pick", sa.String(16), nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("scored", sa.Integer, nullable=False),
    sa.Column("pool", sa.Integer, nullable=False),
    sa.Column("model_version", sa.Text),
    sa.Column("drawn_at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
    sa.UniqueConstraint("plan_day", "scope", "port", "shipment_id", name="uq_exploration_picks"),
)
"""Every pick of every inspection plan drawn on the worklist, never updated: the plan's day
and scope (``scope``: the stream and/or mode key of the worklist's filters, ``""`` for all
streams; ``port``: ``""`` for all ports), the shipment, ``pick`` (:data:`PICK_KINDS`), its
``probability`` of selection (1 for a model pick; for a random pick the random picks of the
plan divided by ``pool``, the scored shipments below the cut line they were drawn from), its
``rank`` and ``score`` in the plan, ``scored`` (shipments the plan ranked), the model version
that scored it, when the plan was first drawn and by whom. A pick is recorded the first time
a plan shows it (a re-render draws the same picks and adds nothing; a plan redrawn over more
shipments of the day adds its new picks): the selection probabilities of the random picks are
what makes the recall estimate of :mod:`serving.health_outcomes` unbiased."""
sa.Index("ix_exploration_picks_day", exploration_picks.c.plan_day)
sa.Index("ix_exploration_picks_shipment_id", exploration_picks.c.shipment_id)


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


# -- online aggregates per key (issue 15): the offline engine's snapshot, materialised -----------
_AGGREGATE_TYPES = {"VARCHAR": sa.Text, "BIGINT": sa.BigInteger, "DOUBLE": sa.Float}


def _aggregate_table(name: str) -> sa.Table:
    """One snapshot table of :mod:`features.snapshot` as a store table: the partition column
    ``dim`` first, the snapshot's columns and types, its key as the primary key."""
    columns = [("dim", "VARCHAR"), *TABLE_COLUMNS[name]]
    return sa.Table(
        name,
        metadata,
        *(sa.Column(column, _AGGREGATE_TYPES[kind]()) for column, kind in columns),
        sa.PrimaryKeyConstraint(*TABLE_KEYS[name], name=f"pk_{name}"),
    )


key_totals = _aggregate_table("key_totals")
key_days = _aggregate_table("key_days")
key_pairs = _aggregate_table("key_pairs")
key_components = _aggregate_table("key_components")
"""Per key dimension and key: totals (shipments, first seen, value sums, known inspections and
seizures, distinct partners), day buckets of the windowed counts, first times of partner
pairs, and the link graph's component of each consignee and identifier - as of the ``as_of``
of the last load (:data:`aggregate_loads`). Times are int64 ns."""

sa.Index("ix_key_pairs_value", key_pairs.c.dim, key_pairs.c.partner, key_pairs.c.value)
"""The officers' views walk partner pairs both ways: a consignee's phones, addresses and
recipient codes (``(phone, consignee, <phone>, <consignee>)`` found by its value)."""
sa.Index("ix_key_components_component", key_components.c.component)
"""Merging two components relabels every node of one, and a seizure updates every node of its
component: both find the nodes by component."""

applied_events = sa.Table(
    "applied_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)
"""The ledger of events counted in the online aggregates (append-only), written in the
transaction that stores them: ``shipment:<id>:<version>`` (a declaration or an amendment),
``report:<id>:<inspected_at>:<revision>`` (an inspection report or its correction). An event
already in it is never counted again (:mod:`serving.store.online`)."""

pending_reports = sa.Table(
    "pending_reports",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("shipment_id", sa.Text, nullable=False),
    sa.Column("inspected_at", sa.DateTime, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("due_ns", sa.BigInteger, nullable=False),
)
sa.Index("ix_pending_reports_due", pending_reports.c.due_ns)
"""Inspection reports stored but not counted in the online aggregates yet: their result is
known (``max(result_at, first declared_at)``, int64 ns) later than when they arrived (a clock
a few minutes ahead). Folded in once due (:func:`serving.store.online.fold_due`) and then
removed: a queue, not a record (the reports themselves are in ``outcome_reports``)."""

aggregate_loads = sa.Table(
    "aggregate_loads",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("as_of_ns", sa.BigInteger, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("rows", sa.Text, nullable=False),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
)
"""Each materialisation of a snapshot into the aggregate tables (append-only): as of when,
from where, rows per table (JSON). The latest row says what the tables hold."""
search_keys = sa.Table(
    "search_keys",
    metadata,
    sa.Column("term", sa.Text().with_variant(sa.Text(collation="C"), "postgresql")),
    sa.Column("kind", sa.String(24)),
    sa.Column("display", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("term", "kind", name="pk_search_keys"),
    sqlite_with_rowid=False,
)
"""Every distinct searchable value once (:mod:`serving.store.search`): its normalised ``term``,
its kind (container, consignee, phone...) and how it was first written. Never updated. Its
primary key, in term order (byte order on PostgreSQL too, so a prefix is one range), serves
exact and prefix lookups; on SQLite the table is that key (``WITHOUT ROWID``)."""

search_terms = sa.Table(
    "search_terms",
    metadata,
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("term", sa.Text, nullable=False),
    sa.Column("shipment_id", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("kind", "term", "shipment_id", name="pk_search_terms"),
    sqlite_with_rowid=False,
)
"""Which shipments carry each searchable value, in any version of their declaration: written
in the transaction that stores the version. Never updated. On SQLite the table is its primary
key (``WITHOUT ROWID``): one B-tree, looked up by kind and term."""


watchlist_events = sa.Table(
    "watchlist_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("entry", sa.String(32), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("term", sa.Text, nullable=False),
    sa.Column("display", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("caller", sa.Text, nullable=False),
)
"""The officers' watchlist, append-only: each ``entry`` (a party or identifier flagged:
``kind`` and ``term`` as the search index keys it) is ``added``, then perhaps ``changed``
(another reason or expiry) and ``removed``, every step with who, when and why. An entry is in
force while its latest event is not a removal and its expiry lies ahead."""
sa.Index("ix_watchlist_events_entry", watchlist_events.c.entry)


ADDED_COLUMNS = {
    "shipments": ("attributes", "amendments_after_score", "version"),
    "scores": ("shipment_version",),
}
"""Nullable columns added to tables after stores were first created: a store made by an
earlier version gains them when it is opened (``ALTER TABLE ... ADD COLUMN``), so a second
quickstart on an old home keeps its history."""


def migrate_versions(engine: Engine) -> None:
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


def migrate_outcomes(engine: Engine) -> None:
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


def add_missing_columns(engine: Engine) -> None:
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


def sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


shadow_scores = sa.Table(
    "shadow_scores",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("scored_at", sa.DateTime, nullable=False),
    sa.Column("shipment_id", sa.Text, nullable=False, index=True),
    sa.Column("shipment_version", sa.Integer),
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("champion_version", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("raw_score", sa.Float, nullable=False),
)
"""Scores of the shadow challenger (``serving/shadow.py``): computed beside the champion's for
the same request and declaration version, stored, never served. Append-only."""
