"""Serving benchmark: the real ``bentoml serve`` process against the same scoring function
in-process, sustained load, and a 10,000-shipment manifest.

    .venv/bin/python benchmarks/serving.py [--home DIR] [--duration 60] [--rate 100]

Steps (all on loopback, every figure measured in this run):

1. a simulated world (``cargorisk simulate``) and a champion trained on it (``cargorisk train``
   + ``promote``) in ``--home`` unless it already holds a champion;
2. **in-process**: :meth:`ScoringEngine.score` - features as of now, model, exact SHAP
   reasons, durable store commit - the very function the endpoint calls, for ``--single``
   shipments one at a time (p50/p99), with its parts timed separately;
3. the real service (``cargorisk serve`` -> ``bentoml serve``) on a free port; the same
   number of single-shipment ``POST /score`` calls one after another over one keep-alive
   connection (p50/p99) - ratio to in-process;
4. **sustained load**: an open-loop raw-socket generator (``loadgen.py``) sends ``--rate``
   requests/s for ``--duration`` seconds over ``--in-flight`` keep-alive connections and
   counts errors, p50/p99 (from each request's scheduled time) and the achieved rate;
5. **batch**: a ``--batch``-shipment manifest to ``POST /score/batch``, end to end as the
   client sees it (JSON encode, HTTP, validation, scoring, reasons for the top share, store
   commit, JSON decode), ``--batch-repeats`` times back to back.

Results print as a table and go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from tests.serving.helpers import free_port, start, stop, wait_http  # noqa: E402


def sh(*args: str, env: dict) -> None:
    subprocess.run([str(BIN / "cargorisk"), *args], env=env, check=True)


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def ensure_world(home: Path, days: int, per_day: int, env: dict) -> Path:
    """A simulated world and a promoted champion trained on it."""
    world = home / "world"
    if not (world / "shipments.parquet").exists():
        sh(
            "simulate",
            "--out",
            str(world),
            "--days",
            str(days),
            "--seed",
            "1",
            "--shipments-per-day",
            str(per_day),
            env=env,
        )
    marker = home / "champion.json"
    if not marker.exists():
        sh("train", "--data", str(world), "--test-days", str(max(7, days * 2 // 5)), env=env)
        sh("promote", "--version", "1", env=env)
        marker.write_text(json.dumps({"trained": True}))
    return world


def request_shipments(world: Path, n: int, prefix: str, seed: int = 0) -> list[dict]:
    """``n`` shipments shaped like the world's traffic, with fresh ids, declared after it."""
    ships = pd.read_parquet(world / "shipments.parquet")
    rng = np.random.default_rng(seed)
    sample = ships.iloc[rng.integers(0, len(ships), n)].reset_index(drop=True).copy()
    last = ships["declared_at"].max()
    offsets = pd.to_timedelta(np.arange(n) * 50, unit="ms")
    shift = last + pd.Timedelta(minutes=1) + offsets - sample["declared_at"]
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        sample[col] = sample[col] + shift
    sample["shipment_id"] = [f"{prefix}{i:07d}" for i in range(n)]
    out = []
    for rec in sample.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
                clean[k] = None
            elif isinstance(v, pd.Timestamp):
                clean[k] = v.isoformat()
            elif isinstance(v, (np.integer,)):
                clean[k] = int(v)
            elif isinstance(v, (np.floating,)):
                clean[k] = float(v)
            else:
                clean[k] = v
        out.append(clean)
    return out


def in_process(home: Path, world: Path, shipments: list[dict]) -> dict:
    """The endpoint's scoring function, called directly, on its own copy of the store."""
    os.environ["CARGORISK_HOME"] = str(home)
    from common.settings import load_settings
    from serving.engine import ScoringEngine
    from serving.schemas import ShipmentIn, shipments_frame
    from serving.store import Caller

    bench_store = home / "inprocess.db"
    bench_store.unlink(missing_ok=True)
    settings = load_settings(store_url=f"sqlite:///{bench_store}", serve_seed_data=world)
    engine = ScoringEngine(settings)
    engine.start()
    assert engine.ready, engine.status()
    caller = Caller("bench", "system")
    models = [ShipmentIn(**s) for s in shipments]
    for m in models[:20]:  # warm-up
        engine.score([m], caller=caller)
    total, validate, feats_t, model_t, explain_t, slow_t = [], [], [], [], [], []
    scoring = engine.model_holder.get().scoring
    for s, m in zip(shipments[20:], models[20:], strict=True):
        t0 = time.perf_counter()
        ShipmentIn(**s)
        t1 = time.perf_counter()
        engine.score([m], caller=caller)
        t2 = time.perf_counter()
        validate.append(t1 - t0)
        total.append(t2 - t0)
        frame = shipments_frame([m])
        t3 = time.perf_counter()
        f = engine.features(frame)
        t4 = time.perf_counter()
        contrib = scoring.contributions(scoring.matrix(f), num_threads=1)
        t5 = time.perf_counter()
        scoring.explain(f, contributions=contrib)
        t6 = time.perf_counter()
        scoring.score(f, num_threads=1)
        scoring.explain(f)
        t7 = time.perf_counter()
        feats_t.append(t4 - t3)
        model_t.append(t5 - t4)
        explain_t.append(t6 - t5)
        slow_t.append(t7 - t6)
    n_trees = scoring.booster.num_trees()
    engine.store.close()
    return {
        "requests": len(total),
        "p50_ms": pct(total, 50),
        "p99_ms": pct(total, 99),
        "parts_p50_ms": {
            "validate_body": pct(validate, 50),
            "features": pct(feats_t, 50),
            "model_and_treeshap": pct(model_t, 50),
            "reason_sentences": pct(explain_t, 50),
            "ScoringModel_score_then_explain": pct(slow_t, 50),
        },
        "trees": n_trees,
    }


def sequential_http(url: str, key: str, shipments: list[dict]) -> dict:
    lat, errors = [], 0
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for s in shipments[:20]:
            client.post(f"{url}/score", json={"shipment": s})
        for s in shipments[20:]:
            t0 = time.perf_counter()
            r = client.post(f"{url}/score", json={"shipment": s})
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200
    return {"requests": len(lat), "errors": errors, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}


def sustained(
    url: str, key: str, shipments: list[dict], rate: float, duration: float, connections: int
) -> dict:
    """Open-loop load with the raw-socket generator (``benchmarks/loadgen.py``)."""
    from benchmarks.loadgen import encode_post, run_load

    host, port = url.removeprefix("http://").split(":")
    payloads = [
        encode_post(host, int(port), "/score", {"shipment": s}, {"Authorization": f"Bearer {key}"})
        for s in shipments
    ]
    res = asyncio.run(run_load(host, int(port), payloads, rate, duration, connections))
    return {
        "target_rate": rate,
        "duration_s": duration,
        "requests": res.sent,
        "ok": res.ok,
        "errors": len(res.errors),
        "error_kinds": sorted(set(res.errors))[:5],
        "achieved_rate": res.ok / res.elapsed,
        "elapsed_s": res.elapsed,
        "p50_ms": pct(res.latencies, 50),
        "p99_ms": pct(res.latencies, 99),
    }


def batch_http(url: str, key: str, shipments: list[dict], repeats: int = 5) -> dict:
    """``repeats`` manifests sent back to back (each as soon as the previous answer is read),
    all declared over the same minutes: every manifest after the first is late for the one
    before it, the costliest case for the state update the next manifest waits for."""
    times, explained = [], None
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {key}"}) as client:
        for k in range(repeats):
            batch = [{**s, "shipment_id": f"{s['shipment_id']}-{k}"} for s in shipments]
            t0 = time.perf_counter()
            r = client.post(f"{url}/score/batch", json={"shipments": batch})
            body = r.json()
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:300]
            explained = body["explained"]
    return {
        "size": len(shipments),
        "seconds": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "worst_s": max(times),
        "explained": explained,
    }


def batch_line(ba: dict) -> str:
    runs = ", ".join(f"{t:.2f}" for t in ba["seconds"])
    return (
        f"batch {ba['size']} shipments         best {ba['best_s']:.2f} s  median"
        f" {ba['median_s']:.2f} s  worst {ba['worst_s']:.2f} s  (runs {runs};"
        f" {ba['explained']} explained)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--per-day", type=int, default=800)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "serving.json"
    )
    parser.add_argument("--label", default="default")
    parser.add_argument(
        "--only",
        choices=("all", "batch"),
        default="all",
        help="'batch': only the 10,000-shipment manifest runs (fast iteration on it)",
    )
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix="cargorisk-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CARGORISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    world = ensure_world(home, args.days, args.per_day, env)
    singles = request_shipments(world, args.single + 20, "BS", seed=1)
    only_batch = args.only == "batch"
    load = (
        [] if only_batch else request_shipments(world, int(args.rate * args.duration), "BL", seed=2)
    )
    manifest = request_shipments(world, args.batch, "BM", seed=3)

    results: dict = {
        "label": args.label,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": os.getloadavg(),
        },
        "world": {"days": args.days, "per_day": args.per_day},
    }
    if not only_batch:
        print("in-process ...", flush=True)
        results["in_process"] = in_process(home, world, singles)

    serve_home = home / "serve"
    if serve_home.exists():
        shutil.rmtree(serve_home)
    serve_home.mkdir()
    (serve_home / "mlruns").symlink_to(home / "mlruns")
    senv = {**env, "CARGORISK_HOME": str(serve_home), "CARGORISK_SERVE_SEED_DATA": str(world)}
    from serving.store import Store

    store = Store(f"sqlite:///{serve_home / 'cargorisk.db'}")
    key = store.create_key("bench", "system")
    store.close()
    port = free_port()
    proc = start(
        [
            str(BIN / "cargorisk"),
            "serve",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--workers",
            str(args.workers),
        ],
        senv,
        serve_home / "service.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=300, proc=proc)
        if not only_batch:
            print("single over HTTP ...", flush=True)
            results["http_single"] = sequential_http(url, key, singles)
            ip_, hs_ = results["in_process"], results["http_single"]
            results["ratio_p50"] = hs_["p50_ms"] / ip_["p50_ms"]
            results["ratio_p99"] = hs_["p99_ms"] / ip_["p99_ms"]
            print("sustained ...", flush=True)
            results["sustained"] = sustained(
                url, key, load, args.rate, args.duration, args.in_flight
            )
        print("batch ...", flush=True)
        results["batch"] = batch_http(url, key, manifest, args.batch_repeats)
    finally:
        stop(proc)
    results["machine"]["load_avg_end"] = os.getloadavg()

    print(f"\n== serving benchmark ({args.label}) ==")
    ba = results["batch"]
    if only_batch:
        print(batch_line(ba))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
        return 0
    ip, hs, su = (results[k] for k in ("in_process", "http_single", "sustained"))
    print(
        f"in-process score+reasons+commit  p50 {ip['p50_ms']:.2f} ms  p99 {ip['p99_ms']:.2f} ms"
        f"  (parts p50: {json.dumps({k: round(v, 3) for k, v in ip['parts_p50_ms'].items()})},"
        f" {ip['trees']} trees)"
    )
    print(
        f"HTTP POST /score                 p50 {hs['p50_ms']:.2f} ms  p99 {hs['p99_ms']:.2f} ms"
        f"  errors {hs['errors']}  ratio p50 {results['ratio_p50']:.2f}x"
        f" p99 {results['ratio_p99']:.2f}x"
    )
    print(
        f"sustained {su['target_rate']:.0f}/s x {su['duration_s']:.0f}s      "
        f"achieved {su['achieved_rate']:.1f}/s  errors {su['errors']}  p50 {su['p50_ms']:.2f}"
        f" ms  p99 {su['p99_ms']:.2f} ms"
    )
    print(batch_line(ba))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
