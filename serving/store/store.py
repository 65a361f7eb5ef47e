"""The store: one database, opened (tables made, earlier stores upgraded) and closed here, its
writes, reads and identities in the parts it is made of.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from serving.store.identity import IdentityStore
from serving.store.online import OnlineStore
from serving.store.queries import QueriesStore
from serving.store.records import RecordsStore
from serving.store.search import SearchStore, setup_search
from serving.store.shadow import ShadowStore
from serving.store.tables import (
    add_missing_columns,
    metadata,
    migrate_outcomes,
    migrate_versions,
    sqlite_pragmas,
)
from serving.store.watchlist import WatchlistStore


class Store(
    RecordsStore,
    QueriesStore,
    SearchStore,
    WatchlistStore,
    IdentityStore,
    ShadowStore,
    OnlineStore,
):
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
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)
        add_missing_columns(self.engine)
        migrate_versions(self.engine)
        migrate_outcomes(self.engine)
        setup_search(self.engine)
        self._bulk_sql: dict[tuple, tuple[str, list]] = {}

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Held while a service process seeds an empty store or builds its aggregates, so
        that the workers of one service (and replicas on one database) take turns: the second
        finds the work done instead of loading the same history twice or replacing
        aggregates the first has started to update. PostgreSQL: a session advisory lock on a
        connection of its own; SQLite: an exclusive ``flock`` on a file beside the database
        (an embedded database is shared by processes of one machine only)."""
        if self.is_sqlite:
            path = self.url.split(":///", 1)[1].split("?", 1)[0] if ":///" in self.url else ""
            if not path or path == ":memory:":
                yield
                return
            import fcntl
            import os

            # private like the database beside it (0600 from the start)
            fd = os.open(f"{path}.startup-lock", os.O_RDWR | os.O_CREAT, 0o600)
            with open(fd, "r+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": STARTUP_LOCK_ID})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": STARTUP_LOCK_ID})
                conn.commit()

    def close(self) -> None:
        self.engine.dispose()


STARTUP_LOCK_ID = 15_016
"""The PostgreSQL advisory lock of :meth:`Store.startup_lock` (15_015 serialises the
transactions that change the aggregates)."""
