"""Snapshot and materialise benchmark (issues 14 and 15): the aggregates as of now per key
written by the engine, then bulk-loaded into the serving store.

Runs the real commands in child processes, each measured on its own (wall around the child,
CPU = user + sys and peak RSS from ``os.wait4`` rusage; DuckDB's threads and memory are in the
child):

1. ``cargorisk features snapshot --data DIR --out OUT`` (DuckDB by default, ``--engine spark``
   for Spark ``local[2]``), with the setting ``engine_threads`` / ``engine_memory_limit`` from
   ``--threads`` / ``--memory-limit``;
2. ``cargorisk features materialize --snapshot OUT --store URL`` into a fresh database on the
   local PostgreSQL (``COPY``) and into a new SQLite file (batched inserts).

    .venv/bin/python benchmarks/snapshot.py --data DIR [--engines duckdb,spark]
        [--stores postgresql,sqlite] [--threads 1] [--memory-limit 2GB]
    .venv/bin/python benchmarks/snapshot.py --snapshot SNAP [--stores postgresql,sqlite]

``DIR`` is a contract data directory (``cargorisk simulate --by-month`` writes one). The
1-minute load average is printed beside every row: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "cargorisk")
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run(cmd: list[str], env: dict[str, str]) -> dict:
    """``cmd`` measured with ``os.wait4`` (the child's own CPU and peak RSS)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({status}):\n{err.decode()[-2000:]}")
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "load_1m": round(os.getloadavg()[0], 1),
        "stdout": out.decode().strip(),
    }


def postgres_url() -> tuple[str, object]:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cargorisk_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", (admin, name)


def drop_postgres(handle) -> None:
    import sqlalchemy as sa

    admin, name = handle
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def store_mb(url: str) -> dict[str, int]:
    """Size of each aggregate table with its index (PostgreSQL), or of the SQLite file."""
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        return {"file": round(Path(url.split(":///", 1)[1]).stat().st_size / 2**20)}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: round(
                    conn.execute(sa.text(f"SELECT pg_total_relation_size('{table}')")).scalar()
                    / 2**20
                )
                for table in ("key_totals", "key_days", "key_pairs", "key_components")
            }
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="Contract data directory to snapshot.")
    parser.add_argument(
        "--snapshot", type=Path, help="Materialise this snapshot instead of writing one."
    )
    parser.add_argument("--engines", default="duckdb")
    parser.add_argument("--stores", default="postgresql,sqlite")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-limit", default="2GB")
    opts = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="cargorisk-bench-snapshot-") as tmp:
        env = {
            **os.environ,
            "CARGORISK_HOME": str(Path(tmp) / "home"),
            "CARGORISK_ENGINE_THREADS": str(opts.threads),
            "CARGORISK_ENGINE_MEMORY_LIMIT": opts.memory_limit,
        }
        snapshot_dir = opts.snapshot
        if snapshot_dir is None and opts.data is None:
            raise SystemExit("give --data (to snapshot) or --snapshot (to materialise)")
        for engine in [e for e in opts.engines.split(",") if e and opts.data]:
            out = Path(tmp) / f"snap-{engine}"
            row = run([CLI, "features", "snapshot", "--data", str(opts.data), "--out",
                       str(out), "--engine", engine], env)  # fmt: skip
            size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
            results.append({"step": f"snapshot ({engine})", "files_mb": round(size / 2**20), **row})
            snapshot_dir = snapshot_dir or out
        if snapshot_dir is None:
            raise SystemExit("--engines: give at least one engine")
        for store in [s for s in opts.stores.split(",") if s]:
            handle = None
            if store == "postgresql":
                url, handle = postgres_url()
            else:
                url = f"sqlite:///{Path(tmp) / 'store.db'}"
            try:
                row = run([CLI, "features", "materialize", "--snapshot", str(snapshot_dir),
                           "--store", url], env)  # fmt: skip
                row["store_mb"] = store_mb(url)
            finally:
                if handle is not None:
                    drop_postgres(handle)
            results.append({"step": f"materialize ({store})", **row})
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
