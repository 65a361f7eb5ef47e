"""Search benchmark (issue 17): the officers' search over a store of N simulated shipments.

A year of simulated traffic (``cargorisk simulate --by-month``, cached under ``--data``) is
loaded into a fresh serving store (SQLite by default, or ``--store-url`` e.g. PostgreSQL) with
:meth:`serving.store.Store.import_history`, 100,000 shipments per transaction - the same
write path that keeps the search index, so the load time includes indexing. Then queries
drawn from the stored data are timed one by one through :meth:`Store.search` (normalising,
matching, ranking and counting the first page of 20, as ``GET /search`` does):

* ``container``, ``bill_of_lading``, ``air_waybill``, ``consignee_id``: a real value, in lower
  case (the index normalises case);
* ``phone``: a real consignee phone re-written as ``+<digits>`` with spaces;
* ``address``: a real address in capitals, its punctuation written as spaces;
* ``name_typo``: a real consignee name with one letter dropped (found by trigram similarity;
  counted as found only when that very name is on the first page);
* ``id_prefix``: the first 8 characters of a shipment id (a prefix of thousands).

Reports p50 / p95 / max per kind and over all queries, the CPU time per query, the load time
and the store's size on disk, and the 1-minute load average (the machine is shared).

``--manifest-cost`` measures instead what keeping the index costs the scoring path: a store
holding 20,000 shipments records a 10,000-shipment manifest (``Store.record_scoring``, one
transaction) with the index and, in a second store, without it (its write disabled); CPU and
wall time of each, alternating, three times.

    .venv/bin/python benchmarks/search.py [--rows 1000000] [--queries 200] [--data DIR]
        [--store-url URL]
    .venv/bin/python benchmarks/search.py --manifest-cost [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DAYS = 365
END = "2026-11-25"
TYPO_OF: dict[str, str] = {}
"""Each misspelt name query -> the name it was made from (found = on the first page)."""


def ensure_data(data: Path, rows: int) -> Path:
    out = data / f"search-n{rows}"
    if (out / "shipments").exists() or (out / "shipments.parquet").exists():
        return out
    per_day = max(50, round(rows / DAYS))
    cmd = [
        str(ROOT / ".venv" / "bin" / "cargorisk"),
        "simulate",
        "--out",
        str(out),
        "--days",
        str(DAYS),
        "--seed",
        "3",
        "--shipments-per-day",
        str(per_day),
        "--end",
        END,
        "--by-month",
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def load(store, folder: Path) -> tuple[int, float, float]:
    import pandas as pd

    from features.tables import read_contract_dir

    tables = read_contract_dir(folder, what="benchmark world", keep_undeclared=True)
    ships = tables.shipments
    empty = tables.outcomes.iloc[0:0]
    t, c = time.perf_counter(), time.process_time()
    for start in range(0, len(ships), 100_000):
        store.import_history(ships.iloc[start : start + 100_000], empty)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    del pd
    return len(ships), wall, cpu


def queries(store, n: int, seed: int = 0) -> dict[str, list[str]]:
    """Queries drawn from what the store holds."""
    import sqlalchemy as sa

    rng = random.Random(seed)

    def sample(column: str) -> list[str]:
        with store.engine.connect() as conn:
            values = conn.execute(
                sa.text(
                    f"SELECT {column} FROM shipments WHERE {column} IS NOT NULL "
                    f"ORDER BY seq LIMIT 200000"
                )
            ).scalars()
            pool = list(dict.fromkeys(values))
        return rng.sample(pool, min(n, len(pool)))

    def typo(name: str) -> str:
        i = rng.randrange(1, max(2, len(name) - 1))
        TYPO_OF[name[:i] + name[i + 1 :]] = name
        return name[:i] + name[i + 1 :]

    def phone(value: str) -> str:
        digits = "".join(ch for ch in value if ch.isdigit())
        return "+" + " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))

    import re

    names = [v for v in sample("consignee_name") if len(v) >= 6]
    TYPO_OF.clear()
    return {
        "container": [v.lower() for v in sample("container_id")],
        "bill_of_lading": [v.lower() for v in sample("bill_of_lading")],
        "air_waybill": [v.lower() for v in sample("air_waybill")],
        "consignee_id": [v.lower() for v in sample("consignee_id")],
        "phone": [phone(v) for v in sample("consignee_phone")],
        "address": [re.sub(r"[^\w ]", " ", v).upper() for v in sample("consignee_address")],
        "name_typo": [typo(v) for v in names],
        "id_prefix": [v[:8] for v in sample("shipment_id")],
    }


def manifest_cost(folder: Path) -> None:
    """CPU and wall time of storing a 10,000-shipment manifest with and without the index."""
    import serving.store.records as records
    from features.tables import read_contract_dir
    from serving.store import Caller, Store

    tables = read_contract_dir(folder, what="benchmark world", keep_undeclared=True)
    ships, empty = tables.shipments, tables.outcomes.iloc[0:0]
    batch = ships.iloc[20_000:30_000]
    rows = [
        {"shipment_id": sid, "score": 0.1, "percentile": 50.0, "band": "low"}
        for sid in batch["shipment_id"]
    ]
    real = records.write_index
    for _ in range(3):
        for indexed in (True, False):
            records.write_index = real if indexed else (lambda conn, ship, rows=None: None)
            store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='crk-search-')}/store.db")
            store.import_history(ships.iloc[:20_000], empty)
            t, c = time.perf_counter(), time.process_time()
            store.record_scoring(
                batch,
                rows,
                request_id="bench",
                caller=Caller("gate", "system", 1),
                model_name="m",
                model_version="1",
            )
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            store.close()
            print(
                json.dumps(
                    {
                        "index": indexed,
                        "cpu_s": round(cpu, 3),
                        "wall_s": round(wall, 3),
                        "load_avg_1m": os.getloadavg()[0],
                    }
                ),
                flush=True,
            )
    records.write_index = real


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="per kind")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "crk-bench")
    parser.add_argument("--store-url", default=None)
    parser.add_argument("--manifest-cost", action="store_true")
    parser.add_argument(
        "--loaded",
        action="store_true",
        help="--store-url already holds the world: only run the queries",
    )
    args = parser.parse_args()

    from serving.store import Store

    if args.manifest_cost:
        manifest_cost(ensure_data(args.data, 30_000))
        return
    folder = ensure_data(args.data, args.rows)
    store_dir = Path(tempfile.mkdtemp(prefix="crk-search-"))
    url = args.store_url or f"sqlite:///{store_dir / 'store.db'}"
    store = Store(url)
    if args.loaded:
        loaded, load_wall, load_cpu = store.count("shipments"), float("nan"), float("nan")
        if url.startswith("sqlite"):
            store_dir = Path(url.split(":///", 1)[1]).parent
    else:
        loaded, load_wall, load_cpu = load(store, folder)
    print(f"loaded {loaded:,} shipments in {load_wall:.1f} s (CPU {load_cpu:.1f} s)", flush=True)
    asked = queries(store, args.queries)
    for qs in asked.values():  # warm the page cache as a running service has it
        for q in qs[:5]:
            store.search(q)
    results: dict[str, dict] = {}
    every: list[float] = []
    for kind, qs in asked.items():
        times, cpus, found = [], [], 0
        for q in qs:
            t, c = time.perf_counter(), time.process_time()
            page = store.search(q)
            times.append(1000 * (time.perf_counter() - t))
            cpus.append(1000 * (time.process_time() - c))
            if kind == "name_typo":  # the name the typo was made from is on the first page
                wanted = " ".join(TYPO_OF[q].split()).casefold()  # as the index keys it
                found += any(h.term == wanted for h in page.hits)
            else:
                found += bool(page.hits)
        every += times
        results[kind] = {
            "queries": len(qs),
            "found": found,
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1),
            "cpu_p50_ms": round(percentile(cpus, 50), 1),
        }
        print(kind, results[kind], flush=True)
    size = sum(f.stat().st_size for f in store_dir.glob("*")) / 1e6
    summary = {
        "rows": loaded,
        "store": "sqlite" if url.startswith("sqlite") else url.split(":", 1)[0],
        "load_s": round(load_wall, 1),
        "load_cpu_s": round(load_cpu, 1),
        "store_mb": round(size, 0) if url.startswith("sqlite") else None,
        "all_p50_ms": round(percentile(every, 50), 1),
        "all_p95_ms": round(percentile(every, 95), 1),
        "load_avg_1m": os.getloadavg()[0],
        "kinds": results,
    }
    store.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
