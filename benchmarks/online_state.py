"""The service's feature source (issue 15): the online aggregates per key in the store, no
history in the process - at first start (built from the store's history) and at a restart.

    .venv/bin/python benchmarks/online_state.py [--days 40] [--per-day 800] [--store URL]

Steps (one simulated world, ``cargorisk simulate``, seeded into one store; every figure is
measured in this run, each start in a fresh process so its RSS is its own):

1. ``store-first``: :meth:`ScoringEngine.start` on the seeded store without aggregates - built
   from its own history by the offline engine and materialised; seconds to ready and the
   process's peak RSS;
2. ``store-restart``: aggregates present: seconds to ready and peak RSS;
3. in each: features of ``--single`` shipments one at a time (the features step of a score:
   p50/p99) and of a ``--manifest``-shipment manifest, and the durable commit of one shipment
   with its aggregate deltas (``record_scoring``).

No model is involved. The in-memory feature state the service held before (``online_state:
memory``, removed) is no longer measured here: its figures, measured by this script's
earlier version, stay in ``benchmarks/README.md`` as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_mode(args) -> dict:
    """One mode in this process: start, then time features and commits."""
    import pandas as pd

    from common.settings import load_settings
    from features.tables import read_contract_dir
    from serving.engine import ScoringEngine
    from serving.model import ModelLoadError
    from serving.store import Caller

    def no_model():
        raise ModelLoadError("benchmark: no model")

    settings = load_settings(store_url=args.store, drift_refresh_minutes=0)
    started = time.perf_counter()
    engine = ScoringEngine(settings, model_loader=no_model)
    engine.start()
    ready = time.perf_counter() - started
    assert engine.history_loaded, engine.status()
    rss = peak_rss_mb()
    probes = read_contract_dir(Path(args.world), what="world").shipments
    probes = probes.sort_values("declared_at").tail(args.single + args.manifest)
    later = probes["declared_at"].max() + pd.Timedelta(days=1)
    probes = probes.assign(
        shipment_id=[f"BENCH-{i}" for i in range(len(probes))], declared_at=later
    )
    single = []
    for i in range(args.single):
        row = probes.iloc[[i]]
        t0 = time.perf_counter()
        engine.features(row, attributes={})
        single.append(time.perf_counter() - t0)
    manifest = probes.iloc[args.single :]
    t0 = time.perf_counter()
    engine.features(manifest, attributes={})
    manifest_s = time.perf_counter() - t0
    commits = []
    caller = Caller("bench", "system", 1)
    for i in range(min(200, args.single)):
        row = probes.iloc[[i]].assign(shipment_id=f"COMMIT-{args.mode}-{i}")
        t0 = time.perf_counter()
        engine.store.record_scoring(row, [], request_id=f"b{i}", caller=caller,
                                    model_name="m", model_version="1", online=True)  # fmt: skip
        commits.append(time.perf_counter() - t0)
    engine.store.close()
    return {
        "mode": args.mode,
        "ready_s": round(ready, 2),
        "peak_rss_mb": round(rss, 1),
        "features_single_p50_ms": round(pct(single, 50), 2),
        "features_single_p99_ms": round(pct(single, 99), 2),
        f"features_manifest_{args.manifest}_s": round(manifest_s, 3),
        "commit_single_p50_ms": round(pct(commits, 50), 2),
        "commit_single_p99_ms": round(pct(commits, 99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--per-day", type=int, default=800)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--manifest", type=int, default=1000)
    parser.add_argument(
        "--store", default=None, help="SQLAlchemy URL (default SQLite in a temp dir)"
    )
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--world", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    work = Path(tempfile.mkdtemp(prefix="cargorisk-online-bench-"))
    env = {**os.environ, "CARGORISK_HOME": str(work)}
    world = work / "world"
    subprocess.run([str(Path(sys.executable).parent / "cargorisk"), "simulate", "--out",
                    str(world), "--days", str(args.days), "--shipments-per-day",
                    str(args.per_day), "--seed", "7"], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    store = args.store or f"sqlite:///{work / 'store.db'}"
    # seed the store once (as serve_seed_data would), outside the timed runs
    sys.path.insert(0, str(REPO))
    from features.tables import read_contract_dir
    from serving.store import Store

    tables = read_contract_dir(world, what="world", keep_undeclared=True)
    seeded = Store(store)
    seeded.import_history(tables.shipments, tables.outcomes)
    seeded.close()
    results = []
    for mode in ("store-first", "store-restart"):
        out = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--world", str(world), "--store", store,
             "--single", str(args.single), "--manifest", str(args.manifest)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    summary = {
        "shipments": len(tables.shipments),
        "outcomes": len(tables.outcomes),
        "load_1min": os.getloadavg()[0],
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))


if __name__ == "__main__":
    main()
