"""Pruning the online aggregates' day buckets (:mod:`serving.store.prune`) in the real SQLite
and the real PostgreSQL: on a replay of 16 months, pruned every 60 days, the
features of the shipments declared next are the same before and after each pruning, the
table holds exactly the day buckets a fresh snapshot as of the end holds (no more: its size
is bounded by the windows, not by the history), and everything else equals that snapshot."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from features import manifest
from features.history import window_start
from features.online.rows import feature_rows, manifest_keys
from features.snapshot import MAX_WINDOW_DAYS
from serving.store import Store, materialize, prune, read_aggregates
from serving.store import online as store_online
from tests.features.helpers import random_world
from tests.serving.test_online_aggregates import assert_same, canonical, ns, replay, snap_of

pytestmark = pytest.mark.slow

DAY = manifest.NS_PER_DAY


def _features(store: Store, frame: pd.DataFrame) -> pd.DataFrame:
    """The features of ``frame`` from the store's rows, as the service reads them."""
    p = manifest.prepare(frame, tuple_keys=True)
    since = window_start(int(p["t"].min()), MAX_WINDOW_DAYS)
    with store.engine.connect() as conn:
        tables = store_online.fetch_rows(conn, manifest_keys(p), since)
    return feature_rows(frame, p, tables)


def _prune_all(store: Store, horizon: int, batch: int) -> int:
    """One whole sweep of ``key_days`` in runs of ``batch`` rows; rows deleted."""
    deleted, cursor = 0, None
    keep_from = prune.cutoffs(horizon)
    while True:
        with store.engine.begin() as conn:
            swept = prune.sweep(conn, keep_from, cursor, batch)
        assert swept.read <= batch
        deleted += swept.deleted
        cursor = swept.cursor
        if cursor is None:
            return deleted


def _days(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM key_days")).scalar())


def test_pruned_buckets_were_never_read_again(tmp_path, store_url):
    start = pd.Timestamp("2025-01-01")
    shipments, outcomes = random_world(350, days=480, seed=3, start=str(start.date()))
    outcomes = outcomes.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
    a = ns(start + pd.Timedelta(days=20))
    snap_of(shipments, outcomes, tmp_path / "a", a)
    store = Store(store_url)
    try:
        materialize(store, tmp_path / "a" / "snap")
        sizes, deleted = [], 0
        t = a
        while t < ns(start + pd.Timedelta(days=480)):
            nxt = t + 60 * DAY
            replay(store, shipments, outcomes, t, nxt)
            declared = shipments["declared_at"].astype("int64")
            probes = shipments[(declared >= nxt) & (declared < nxt + 10 * DAY)]
            if len(probes):
                before = _features(store, probes)
            held = _days(store)
            deleted += _prune_all(store, nxt, batch=97)
            if len(probes):
                pd.testing.assert_frame_equal(_features(store, probes), before)
            sizes.append((held, _days(store)))
            t = nxt
        print("key_days rows before/after each pruning:", sizes, "deleted", deleted)
        assert deleted > 0 and sizes[-1][1] > 0

        # what is left: exactly a fresh snapshot as of the end (its day buckets included)
        fresh = snap_of(shipments, outcomes, tmp_path / "b", t)
        held = read_aggregates(store)
        assert_same(canonical(fresh, t), canonical(held, t))
        kept = held.tables["key_days"]
        counts = kept[["shipments", "seizures"]].apply(pd.to_numeric).fillna(0)
        assert len(kept[(counts != 0).any(axis=1)]) == len(fresh.tables["key_days"])
        # a second sweep finds nothing more
        assert _prune_all(store, t, batch=10_000) == 0
    finally:
        store.close()


def test_the_horizon_follows_the_data_never_the_future(tmp_path):
    from tests.serving.helpers import tiny_history

    ships, outs = tiny_history(n=40, days=10)
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with store.engine.connect() as conn:
            assert prune.horizon(conn, 30) is None  # nothing stored: nothing to prune
        store.import_history(ships, outs)
        latest = ns(ships["declared_at"].max())
        with store.engine.connect() as conn:
            # replaying an old period: the data's own clock
            assert prune.horizon(conn, 30) == latest - 30 * DAY
            # a clock behind the data (a declaration dated ahead): the clock
            assert prune.horizon(conn, 2, now_ns=latest - DAY) == latest - 3 * DAY
        pruner = prune.DayPruner(store.engine, interval=0, grace_days=30)
        swept = pruner.run_once()
        assert pruner.horizon == latest - 30 * DAY and swept.cursor is None
    finally:
        store.close()
