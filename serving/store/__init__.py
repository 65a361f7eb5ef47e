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
* ``exploration_picks`` - every pick of every inspection plan drawn on the worklist (model or
  random, its selection probability, rank and score), append-only: what the unbiased recall
  estimate stands on;
* ``audit_events`` - other actions (outcomes posted, model reloads, key changes, UI actions);
* ``api_keys`` - API keys, stored only as SHA-256 digests (keys are 256-bit random tokens, so
  a fast digest is enough; the key itself is shown once, at creation);
* ``users`` - worklist sign-in accounts (password hashes), used by the UI;
* ``ui_sessions`` - worklist sessions, server-side: the SHA-256 of the cookie's random token,
  who, the CSRF token, when it started and was last used, when and why it ended. Signing out,
  disabling the account or revoking the key ends a session at once (``ended_at``);
* ``search_keys``, ``search_terms`` - the officers' search index: every party, identifier,
  reference and name of every declaration version, normalised as the features normalise it,
  and which shipments carry it; written in the transaction that stores the declaration
  (:mod:`~serving.store.search`);
* ``watchlist_events`` - the officers' watchlist, append-only: entries added, changed and
  removed with who, when and why (:mod:`~serving.store.watchlist`);
* ``sign_in_failures`` - failed worklist sign-ins (client address, account name tried) of the
  last minutes, counted by every worker to refuse guessing; pruned as they age out (the audit
  trail keeps every attempt).

Nothing acknowledged may be lost: every write is one transaction committed before the caller
answers. SQLite runs in WAL mode with ``synchronous=FULL`` so a commit survives power loss
and SIGKILL; PostgreSQL commits are durable by default.

The package's rooms, one job each: :mod:`~serving.store.tables` (the tables, typed from the
contract, and the upgrades of older stores), :mod:`~serving.store.rows` (rows between Python and
SQL), :mod:`~serving.store.records` (writes: declarations and versions, scores, outcome reports,
audit events), :mod:`~serving.store.queries` (reads: frames, a shipment's history, the
worklist), :mod:`~serving.store.identity` (roles, keys, users, callers, sessions, sign-in
throttling), :mod:`~serving.store.aggregates` (the online aggregates per key, bulk-loaded from
a snapshot and read back) and :mod:`~serving.store.store` (:class:`Store`, opened on one
database and made of the three parts). This module is the public face: import from here.
"""

from serving.store.aggregates import LoadResult, materialize, read_aggregates
from serving.store.identity import (
    KEY_PREFIX,
    MIN_PASSWORD,
    ROLES,
    USERNAME,
    Caller,
    UiSession,
    hash_key,
    hash_password,
    verify_password,
)
from serving.store.queries import WORKLIST_COLUMNS
from serving.store.records import RecordedReports, ReportConflict, ShipmentVersion
from serving.store.rows import Rows, attributes_frame, attributes_json, utcnow
from serving.store.search import SEARCH_KINDS, SearchError, SearchHit, SearchPage
from serving.store.store import Store
from serving.store.tables import (
    PICK_KINDS,
    REPORT_FIELDS,
    aggregate_loads,
    api_keys,
    audit_events,
    exploration_picks,
    key_components,
    key_days,
    key_pairs,
    key_totals,
    metadata,
    outcome_reports,
    scores,
    search_keys,
    search_terms,
    shipment_versions,
    shipments,
    sign_in_failures,
    ui_sessions,
    users,
    watchlist_events,
)
from serving.store.watchlist import WatchEntry, WatchlistError

__all__ = [
    "KEY_PREFIX",
    "MIN_PASSWORD",
    "PICK_KINDS",
    "REPORT_FIELDS",
    "ROLES",
    "SEARCH_KINDS",
    "USERNAME",
    "WORKLIST_COLUMNS",
    "Caller",
    "LoadResult",
    "RecordedReports",
    "ReportConflict",
    "Rows",
    "SearchError",
    "SearchHit",
    "SearchPage",
    "ShipmentVersion",
    "Store",
    "UiSession",
    "WatchEntry",
    "WatchlistError",
    "aggregate_loads",
    "api_keys",
    "attributes_frame",
    "attributes_json",
    "audit_events",
    "exploration_picks",
    "hash_key",
    "hash_password",
    "key_components",
    "key_days",
    "key_pairs",
    "key_totals",
    "materialize",
    "metadata",
    "outcome_reports",
    "read_aggregates",
    "scores",
    "search_keys",
    "search_terms",
    "shipment_versions",
    "shipments",
    "sign_in_failures",
    "ui_sessions",
    "users",
    "utcnow",
    "verify_password",
    "watchlist_events",
]
