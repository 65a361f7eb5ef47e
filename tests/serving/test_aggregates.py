"""The online aggregate tables: a snapshot of the offline engine materialised into the real
local PostgreSQL (COPY) and into SQLite (batched inserts) reads back equal to the snapshot,
gives the same raw aggregates to a shipment declared at ``as_of``, and a second load replaces
the first in one transaction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from cargorisk.cli import main
from features import engine, manifest, snapshot
from features.errors import CargoriskError
from serving.store import Store, aggregate_loads, materialize, read_aggregates
from tests.features.helpers import random_world
from tests.features.test_engine import assert_same_raw
from tests.features.test_snapshot import probes_at


def write(tmp_path, name: str, as_of: int, n: int = 700, seed: int = 21):
    shipments, outcomes = random_world(n, days=30, seed=seed, messy=True)
    shipments.to_parquet(tmp_path / f"{name}-s.parquet", index=False)
    outcomes.to_parquet(tmp_path / f"{name}-o.parquet", index=False)
    snapshot.write_snapshot(
        tmp_path / f"{name}-s.parquet",
        tmp_path / f"{name}-o.parquet",
        tmp_path / name,
        as_of=as_of,
        settings=engine.EngineSettings(threads=1),
    )
    return shipments


def assert_same_tables(expected: snapshot.Snapshot, got: snapshot.Snapshot) -> None:
    assert expected.as_of == got.as_of
    for table in snapshot.TABLES:
        a, b = expected.tables[table], got.tables[table]
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        for column in a.columns:
            x, y = a[column].to_numpy(), b[column].to_numpy()
            if column in ("dim", "key", "partner", "value"):
                assert (x == y).all(), f"{table}.{column} differs"
            else:  # nullable numbers: NULL where the dimension does not define the column
                x, y = pd.to_numeric(a[column]), pd.to_numeric(b[column])
                assert (x.isna() == y.isna()).all(), f"{table}.{column}: NULLs differ"
                assert np.array_equal(x.dropna().to_numpy(float), y.dropna().to_numpy(float)), (
                    f"{table}.{column} differs"
                )


def test_materialized_aggregates_equal_the_snapshot(tmp_path, store_url):
    as_of = int(pd.Timestamp("2026-01-22 06:00").value)
    shipments = write(tmp_path, "snap", as_of)
    store = Store(store_url)
    try:
        result = materialize(store, tmp_path / "snap")
        on_disk = snapshot.read_snapshot(tmp_path / "snap")
        assert result.rows == {t: len(on_disk.tables[t]) for t in snapshot.TABLES}
        held = read_aggregates(store)
        assert_same_tables(on_disk, held)
        # the raw aggregates of a shipment declared at as_of, read from the store
        probes = manifest.prepare(probes_at(shipments, as_of, 60, seed=2), tuple_keys=True)
        assert_same_raw(snapshot.snapshot_raw(on_disk, probes), snapshot.snapshot_raw(held, probes))

        # a second load replaces the first (no row of the first survives), and is recorded
        later = int(pd.Timestamp("2026-01-29 00:00").value)
        write(tmp_path, "later", later, n=300, seed=5)
        materialize(store, tmp_path / "later")
        assert_same_tables(snapshot.read_snapshot(tmp_path / "later"), read_aggregates(store))
        with store.engine.connect() as conn:
            loads = conn.execute(sa.select(aggregate_loads).order_by(aggregate_loads.c.seq)).all()
        assert [row.as_of_ns for row in loads] == [as_of, later]
        assert json.loads(loads[0].rows) == result.rows
    finally:
        store.close()


def test_a_failed_load_leaves_the_previous_aggregates(tmp_path, store_url):
    as_of = int(pd.Timestamp("2026-01-22 06:00").value)
    write(tmp_path, "snap", as_of, n=300)
    store = Store(store_url)
    try:
        materialize(store, tmp_path / "snap")
        before = read_aggregates(store)
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / snapshot.SNAPSHOT_FILE).write_text(
            (tmp_path / "snap" / "snapshot.json").read_text()
        )
        for table in snapshot.TABLES:  # key_pairs is not Parquet: the load fails half way
            if table != "key_pairs":
                (broken / table).symlink_to(tmp_path / "snap" / table)
        (broken / "key_pairs" / "dim=shipper").mkdir(parents=True)
        (broken / "key_pairs" / "dim=shipper" / "part-0.parquet").write_text("not parquet")
        with pytest.raises(Exception, match=r"(?i)parquet"):
            materialize(store, broken)
        assert_same_tables(before, read_aggregates(store))
    finally:
        store.close()


def test_materialize_command(tmp_path, capsys):
    write(tmp_path, "snap", int(pd.Timestamp("2026-01-22").value), n=200)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["features", "materialize", "--snapshot", str(tmp_path / "snap"),
                 "--store", url]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "key_totals" in printed and "2026-01-22T00:00:00+00:00" in printed
    assert main(["features", "materialize", "--snapshot", str(tmp_path), "--store", url]) == 2
    assert "not a snapshot" in capsys.readouterr().err


def test_a_snapshot_without_a_table_is_refused(tmp_path):
    write(tmp_path, "snap", int(pd.Timestamp("2026-01-22").value), n=200)
    (tmp_path / "snap" / "key_days").rename(tmp_path / "elsewhere")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(CargoriskError, match="key_days"):
            materialize(store, tmp_path / "snap")
    finally:
        store.close()
