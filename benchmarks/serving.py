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

Also measured on every run: the time from starting ``cargorisk serve`` to ``/readyz`` and the
service's RSS (every process of it: the BentoML arbiter and its workers) after start and at the
end. Optional steps:

* ``--compare-route PATH`` (e.g. ``/asgi/score``): step 3 alternates, in blocks of
  ``--block`` requests, between ``/score`` and ``PATH`` (the same scoring behind another
  route), one keep-alive client each, so both see the same machine;
* ``--search``: the highest sustained rate at 0 errors and p99 <= ``--p99-limit`` ms, each
  trial ``--search-duration`` s of open-loop load with fresh shipments: rates grow by half
  until a trial fails (halve if the first fails), then two bisections (``--workers N``: N
  workers sharing the store's online aggregates);
* ``--overload X``: ``X`` times the rate the search found (or ``--rate``; ``--overload-rate R``:
  R req/s) over ``--overload-connections`` connections: how many 503s, how fast, and the 200s'
  latency.

``--only compare|search|batch`` runs just that step (plus start-up and RSS).

**A store-backed service on a large history** (issue 15): ``--store-url URL`` (PostgreSQL)
runs the in-process call and the service on that store with ``online_state: store``; the
store holds no shipments, only the online aggregates of a large world, loaded by
``--snapshot SNAP`` (``cargorisk features materialize`` run here in a child process and
timed: wall, CPU, peak RSS, then the tables' sizes) or earlier. ``--history DIR`` is that
world's contract data directory: the requests are shaped like its last month's shipments and
declared just after the aggregates' ``as_of``. The champion is still trained on the small
``--days`` x ``--per-day`` world of ``--home`` (the same feature definitions, another
world). ``--id-tag`` keeps the shipment ids of one run apart from another's on the same
store (a re-sent id would be an amendment).

Results print as a table and go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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


ID_TAG = ""
"""Put before every shipment id this run sends (``--id-tag``)."""
START_AFTER: pd.Timestamp | None = None
"""Requests are declared after this instant too (the aggregates' ``as_of``, ``--store-url``)."""


@functools.cache
def world_shipments(world: Path) -> pd.DataFrame:
    """The world's shipments; of a month-partitioned world (``simulate --by-month``), the last
    month's only (a 10 M history is not read into memory to shape the requests)."""
    if (world / "shipments.parquet").exists():
        return pd.read_parquet(world / "shipments.parquet")
    from features.tables import PARTITION_GLOB

    parts = sorted((world / "shipments").glob(PARTITION_GLOB))
    if not parts:
        raise SystemExit(f"{world}: no shipments.parquet nor shipments/{PARTITION_GLOB}")
    return pd.read_parquet(parts[-1])


def request_shipments(world: Path, n: int, prefix: str, seed: int = 0) -> list[dict]:
    """``n`` shipments shaped like the world's traffic, with fresh ids, declared after it."""
    ships = world_shipments(world)
    rng = np.random.default_rng(seed)
    sample = ships.iloc[rng.integers(0, len(ships), n)].reset_index(drop=True).copy()
    last = ships["declared_at"].max()
    if START_AFTER is not None:
        last = max(last, START_AFTER if last.tz is None else START_AFTER.tz_localize("UTC"))
    offsets = pd.to_timedelta(np.arange(n) * 50, unit="ms")
    shift = last + pd.Timedelta(minutes=1) + offsets - sample["declared_at"]
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        sample[col] = sample[col] + shift
    sample["shipment_id"] = [f"{ID_TAG}{prefix}{i:07d}" for i in range(n)]
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


def in_process(
    home: Path, world: Path, shipments: list[dict], store_url: str | None = None
) -> dict:
    """The endpoint's scoring function, called directly, on its own copy of the store; with
    ``store_url``, on that store (``online_state: store``, its aggregates as loaded; the
    shipments under ids of their own, ``BI`` for ``BS``, so the service's are new to it)."""
    os.environ["CARGORISK_HOME"] = str(home)
    from common.settings import load_settings
    from serving.engine import ScoringEngine
    from serving.schemas import ShipmentIn, shipments_frame
    from serving.store import Caller

    if store_url:
        settings = load_settings(store_url=store_url, online_state="store")
        shipments = [{**s, "shipment_id": s["shipment_id"].replace("BS", "BI", 1)}
                     for s in shipments]  # fmt: skip
    else:
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


def service_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the service so far (every process under ``pid``)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def alternating_http(
    url: str, key: str, shipments: list[dict], routes: list[str], block: int, pid: int
) -> dict:
    """The same single-shipment requests, one after another, alternating between ``routes`` in
    blocks of ``block`` (one keep-alive client per route): both routes see the same machine
    load. Each shipment goes to one route only (a re-send would be an amendment). Besides the
    latency, the service's CPU time per request on each route (from /proc, every process of
    the service): the steadier figure on a busy machine."""
    headers = {"Authorization": f"Bearer {key}"}
    clients = {r: httpx.Client(timeout=30, headers=headers) for r in routes}
    lat: dict[str, list[float]] = {r: [] for r in routes}
    cpu = dict.fromkeys(routes, 0.0)
    blocks: dict[str, list[float]] = {r: [] for r in routes}
    errors = dict.fromkeys(routes, 0)
    try:
        for i, s in enumerate(shipments[: 10 * len(routes)]):  # warm-up, every route
            clients[routes[i % len(routes)]].post(
                f"{url}{routes[i % len(routes)]}", json={"shipment": s}
            )
        rest = shipments[10 * len(routes) :]
        for k in range(0, len(rest), block):
            route = routes[(k // block) % len(routes)]
            before = service_cpu_s(pid)
            for s in rest[k : k + block]:
                t0 = time.perf_counter()
                r = clients[route].post(f"{url}{route}", json={"shipment": s})
                lat[route].append(time.perf_counter() - t0)
                errors[route] += r.status_code != 200
            used = service_cpu_s(pid) - before
            cpu[route] += used
            blocks[route].append(used / len(rest[k : k + block]))
    finally:
        for c in clients.values():
            c.close()
    return {
        route: {
            "requests": len(lat[route]),
            "errors": errors[route],
            "p50_ms": pct(lat[route], 50),
            "p90_ms": pct(lat[route], 90),
            "p99_ms": pct(lat[route], 99),
            "mean_ms": 1000 * float(np.mean(lat[route])),
            "service_cpu_ms_per_request": 1000 * cpu[route] / max(1, len(lat[route])),
            "service_cpu_ms_per_request_block_median": 1000 * float(np.median(blocks[route])),
            "block_p50_ms_median": float(
                np.median(
                    [pct(lat[route][j : j + block], 50) for j in range(0, len(lat[route]), block)]
                )
            ),
        }
        for route in routes
    }


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
    lat = np.asarray(res.latencies)
    status = np.asarray(res.statuses)
    out = {
        "target_rate": rate,
        "duration_s": duration,
        "connections": connections,
        "requests": res.sent,
        "ok": res.ok,
        "errors": len(res.errors),
        "error_kinds": sorted(set(res.errors))[:5],
        "achieved_rate": res.ok / res.elapsed,
        "elapsed_s": res.elapsed,
        "p50_ms": pct(res.latencies, 50),
        "p99_ms": pct(res.latencies, 99),
        "load_avg": os.getloadavg()[0],
    }
    shed = lat[status == 503] if len(status) == len(lat) else np.asarray([])
    if len(shed):
        out["shed"] = {
            "count": len(shed),
            "with_retry_after": res.retry_after,
            "p50_ms": pct(shed, 50),
            "p99_ms": pct(shed, 99),
            "max_ms": 1000 * float(shed.max()),
        }
        ok = lat[status == 200]
        out["ok_p50_ms"] = pct(ok, 50) if len(ok) else None
        out["ok_p99_ms"] = pct(ok, 99) if len(ok) else None
    return out


def passes(trial: dict, p99_limit: float) -> bool:
    return (
        trial["errors"] == 0
        and trial["p99_ms"] <= p99_limit
        and trial["achieved_rate"] >= 0.97 * trial["target_rate"]
    )


def rate_search(
    url: str, key: str, world: Path, start_rate: float, duration: float, connections: int,
    p99_limit: float, max_rate: float = 400.0,
) -> dict:  # fmt: skip
    """The highest sustained rate (req/s) at 0 errors (a 503 is an error) and p99 <=
    ``p99_limit`` ms: rates grow by half until a trial fails (or, if the first fails, halve
    until one passes), then two bisections."""
    trials: list[dict] = []

    def trial(rate: float) -> bool:
        n = int(rate * duration)
        ships = request_shipments(world, n, f"R{len(trials):02d}-", seed=100 + len(trials))
        result = sustained(url, key, ships, rate, duration, connections)
        result["passed"] = passes(result, p99_limit)
        trials.append(result)
        print(
            f"  search: {rate:.0f}/s -> achieved {result['achieved_rate']:.1f}/s, errors "
            f"{result['errors']}, p99 {result['p99_ms']:.1f} ms: "
            f"{'pass' if result['passed'] else 'fail'}",
            flush=True,
        )
        return result["passed"]

    good, bad = 0.0, None
    rate = start_rate
    while rate <= max_rate:
        if trial(rate):
            good = rate
            rate = round(rate * 1.5)
        else:
            bad = rate
            break
    while not good and rate >= 4:  # the first rate failed: halve until one passes
        rate = round(rate / 2)
        if trial(rate):
            good = rate
        else:
            bad = rate
    if bad is not None and good:
        for _ in range(2):
            mid = round((good + bad) / 2)
            if mid in (good, bad):
                break
            if trial(mid):
                good = mid
            else:
                bad = mid
    return {
        "best_rate": good,
        "first_failing_rate": bad,
        "p99_limit_ms": p99_limit,
        "trials": trials,
    }


def all_ready(url: str, workers: int, timeout: float) -> None:
    """With more than one worker, ``/readyz`` answers from whichever worker accepts the
    connection: wait until 20 answers in a row, each on a new connection, are 200 (a worker
    still building would answer 503 to the load)."""
    if workers == 1:
        return
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 20:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every worker ready after {timeout} s")
        ok = httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        streak = streak + 1 if ok else 0
        if not ok:
            time.sleep(0.5)


def materialize_timed(snapshot: Path, store_url: str, env: dict) -> dict:
    """``cargorisk features materialize --snapshot SNAP --store URL`` in a child process:
    wall, CPU and peak RSS of the child (``benchmarks/snapshot.py``'s measure), then the size
    of each aggregate table with its key."""
    from benchmarks.snapshot import run, store_mb

    cmd = [str(BIN / "cargorisk"), "features", "materialize", "--snapshot", str(snapshot),
           "--store", store_url]  # fmt: skip
    row = run(cmd, env)
    row["store_mb"] = store_mb(store_url)
    print(f"  {row['stdout']}", flush=True)
    return row


def store_state(store_url: str) -> dict:
    """The aggregates ``store_url`` holds: as of when, rows per table (latest load), and how
    many shipments the store itself holds (none after a bare materialise)."""
    import sqlalchemy as sa

    from serving.store import Store
    from serving.store.tables import aggregate_loads

    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(aggregate_loads.c.as_of_ns, aggregate_loads.c.rows)
                .order_by(aggregate_loads.c.seq.desc())
                .limit(1)
            ).first()
        if row is None:
            raise SystemExit(f"{store_url}: no aggregates loaded (give --snapshot)")
        return {
            "as_of_ns": int(row.as_of_ns),
            "as_of": pd.Timestamp(int(row.as_of_ns)).isoformat(),
            "aggregate_rows": json.loads(row.rows),
            "shipments_in_store": store.count("shipments"),
        }
    finally:
        store.close()


def service_rss_mb(proc: subprocess.Popen) -> dict:
    """RSS of the service: ``cargorisk serve`` and every process under it (MB)."""
    import psutil

    root = psutil.Process(proc.pid)
    procs = [root, *root.children(recursive=True)]
    each = {}
    for p in procs:
        try:
            each[f"{p.pid} {' '.join(p.cmdline()[1:3])[:60]}"] = p.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return {"total_mb": sum(each.values()), "processes": each}


def batch_http(url: str, key: str, shipments: list[dict], repeats: int = 5) -> dict:
    """``repeats`` manifests sent back to back (each as soon as the previous answer is read),
    all declared over the same minutes: every manifest after the first is late for the one
    before it, the costliest case for the state update the next manifest waits for."""
    times, explained, failed = [], None, []
    with httpx.Client(timeout=300, headers={"Authorization": f"Bearer {key}"}) as client:
        for k in range(repeats):
            batch = [{**s, "shipment_id": f"{s['shipment_id']}-{k}"} for s in shipments]
            t0 = time.perf_counter()
            r = client.post(f"{url}/score/batch", json={"shipments": batch})
            seconds = time.perf_counter() - t0
            if r.status_code != 200:  # e.g. BentoML's request timeout: recorded, not lost
                failed.append({"status": r.status_code, "seconds": seconds, "body": r.text[:300]})
                continue
            explained = r.json()["explained"]
            times.append(time.perf_counter() - t0)
    if not times:
        return {"size": len(shipments), "failed": failed}
    return {
        "size": len(shipments),
        "failed": failed,
        "seconds": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "worst_s": max(times),
        "explained": explained,
    }


def batch_line(ba: dict) -> str:
    if "seconds" not in ba:
        return f"batch {ba['size']} shipments: every manifest failed: {ba['failed']}"
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
    parser.add_argument("--compare-route", default=None, help="e.g. /asgi/score")
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--search-start", type=float, default=40)
    parser.add_argument("--search-duration", type=float, default=15)
    parser.add_argument("--p99-limit", type=float, default=100)
    parser.add_argument("--overload", type=float, default=0)
    parser.add_argument("--overload-connections", type=int, default=64)
    parser.add_argument("--overload-rate", type=float, default=0, help="req/s, instead of X")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "serving.json"
    )
    parser.add_argument("--label", default="default")
    parser.add_argument(
        "--store-url",
        default=None,
        help="PostgreSQL URL of a store holding a large history's online aggregates: the "
        "service and the in-process call use it with online_state store",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        help="with --store-url: materialise this snapshot into it first (timed)",
    )
    parser.add_argument(
        "--history",
        type=Path,
        default=None,
        help="contract data directory of the store's history: requests are shaped like it",
    )
    parser.add_argument("--id-tag", default=None, help="prefix of every shipment id sent")
    parser.add_argument(
        "--only",
        choices=("all", "batch", "compare", "search"),
        default="all",
        help="'batch': only the 10,000-shipment manifest; 'compare': only the alternating "
        "single-shipment step (needs --compare-route); 'search': only the rate search "
        "(and --overload)",
    )
    args = parser.parse_args(argv)

    global ID_TAG, START_AFTER
    if (args.snapshot or args.history) and not args.store_url:
        parser.error("--snapshot and --history go with --store-url")
    home = args.home or Path(tempfile.mkdtemp(prefix="cargorisk-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CARGORISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    model_world = ensure_world(home, args.days, args.per_day, env)
    world = args.history or model_world
    load_avg_start = os.getloadavg()
    store_info = None
    if args.store_url:
        ID_TAG = args.id_tag if args.id_tag is not None else f"T{int(time.time())}-"
        store_info = {}
        if args.snapshot:
            print(f"materialise {args.snapshot} ...", flush=True)
            store_info["materialize"] = materialize_timed(args.snapshot, args.store_url, env)
        store_info.update(store_state(args.store_url))
        START_AFTER = pd.Timestamp(store_info["as_of_ns"])
    elif args.id_tag:
        ID_TAG = args.id_tag
    only = args.only
    run_in_process = only in ("all", "compare")
    run_single = only in ("all", "compare")
    run_sustained = only == "all"
    run_search = args.search or only == "search"
    run_batch = only in ("all", "batch")
    singles = request_shipments(world, args.single + 20, "BS", seed=1)
    load = (
        request_shipments(world, int(args.rate * args.duration), "BL", seed=2)
        if run_sustained
        else []
    )
    manifest = request_shipments(world, args.batch, "BM", seed=3) if run_batch else []

    results: dict = {
        "label": args.label,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": load_avg_start,
        },
        "world": {"days": args.days, "per_day": args.per_day, "workers": args.workers},
    }
    if store_info is not None:
        results["store"] = {**store_info, "history": str(args.history), "id_tag": ID_TAG}
    if run_in_process:
        print("in-process ...", flush=True)
        results["in_process"] = in_process(home, model_world, singles, args.store_url)

    serve_home = home / "serve"
    if serve_home.exists():
        shutil.rmtree(serve_home)
    serve_home.mkdir()
    (serve_home / "mlruns").symlink_to(home / "mlruns")
    senv = {**env, "CARGORISK_HOME": str(serve_home)}
    from features.tables import read_contract_dir
    from serving.store import Store

    if args.store_url:  # the history is in the store's aggregates already
        senv["CARGORISK_STORE_URL"] = args.store_url
        senv["CARGORISK_ONLINE_STATE"] = "store"
        store = Store(args.store_url)
    else:
        # The store is seeded here, before the service starts, as the service's
        # serve_seed_data would (the same Store.import_history): with more than one worker
        # each would seed the empty store at once and all but one fail (a duplicate key),
        # and the start-up time measured is the service's own, without a one-off seeding.
        store = Store(f"sqlite:///{serve_home / 'cargorisk.db'}")
        seeded = time.perf_counter()
        tables = read_contract_dir(world, what="seed data", keep_undeclared=True)
        store.import_history(tables.shipments, tables.outcomes)
        results["store_seeding_s"] = time.perf_counter() - seeded
    key = store.create_key("bench", "system")
    store.close()
    port = free_port()
    started = time.perf_counter()
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
        results["start_to_first_readyz_s"] = time.perf_counter() - started
        all_ready(url, args.workers, timeout=300)
        results["start_to_readyz_s"] = time.perf_counter() - started
        results["rss_after_start"] = service_rss_mb(proc)
        print(
            f"ready after {results['start_to_readyz_s']:.1f} s, RSS "
            f"{results['rss_after_start']['total_mb']:.0f} MB",
            flush=True,
        )
        if run_single:
            print("single over HTTP ...", flush=True)
            ip_ = results["in_process"]
            if args.compare_route:
                routes = ["/score", args.compare_route]
                results["http_compare"] = alternating_http(
                    url, key, singles, routes, args.block, proc.pid
                )
                for r in results["http_compare"].values():
                    r["ratio_p50"] = r["p50_ms"] / ip_["p50_ms"]
                    r["ratio_p99"] = r["p99_ms"] / ip_["p99_ms"]
            else:
                results["http_single"] = sequential_http(url, key, singles)
                hs_ = results["http_single"]
                results["ratio_p50"] = hs_["p50_ms"] / ip_["p50_ms"]
                results["ratio_p99"] = hs_["p99_ms"] / ip_["p99_ms"]
        if run_sustained:
            print("sustained ...", flush=True)
            results["sustained"] = sustained(
                url, key, load, args.rate, args.duration, args.in_flight
            )
        if run_search:
            print("rate search ...", flush=True)
            results["search"] = rate_search(
                url, key, world, args.search_start, args.search_duration, args.in_flight,
                args.p99_limit,
            )  # fmt: skip
        if args.overload or args.overload_rate:
            base = results.get("search", {}).get("best_rate") or args.rate
            rate = args.overload_rate or args.overload * base
            print(f"overload {rate:.0f}/s ...", flush=True)
            ships = request_shipments(world, int(rate * args.search_duration), "OV", seed=7)
            results["overload"] = sustained(
                url, key, ships, rate, args.search_duration, args.overload_connections
            )
        if run_batch:
            print("batch ...", flush=True)
            results["batch"] = batch_http(url, key, manifest, args.batch_repeats)
        results["rss_at_end"] = service_rss_mb(proc)
    except BaseException as exc:  # the steps measured so far are kept, with the failure
        results["failed"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        stop(proc)
        results["machine"]["load_avg_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
    report(results)
    return 0


def report(results: dict) -> None:
    print(f"\n== serving benchmark ({results['label']}) ==")
    load = results["machine"]
    print(
        f"load average start {load['load_avg_start'][0]:.1f}, end {load['load_avg_end'][0]:.1f};"
        f" start to /readyz {results['start_to_readyz_s']:.1f} s; RSS after start "
        f"{results['rss_after_start']['total_mb']:.0f} MB, at end "
        f"{results['rss_at_end']['total_mb']:.0f} MB"
    )
    st = results.get("store")
    if st:
        rows = sum(st["aggregate_rows"].values())
        print(f"store: aggregates as of {st['as_of']}, {rows:,} rows; {st['history']}")
        ma = st.get("materialize")
        if ma:
            print(
                f"materialise: wall {ma['wall_s']:.1f} s, CPU {ma['cpu_s']:.1f} s (client), peak"
                f" RSS {ma['peak_rss_mb']} MB, load {ma['load_1m']}, tables {ma['store_mb']} MB"
            )
    ip = results.get("in_process")
    if ip:
        print(
            f"in-process score+reasons+commit  p50 {ip['p50_ms']:.2f} ms  p99 {ip['p99_ms']:.2f} ms"
            f"  (parts p50: {json.dumps({k: round(v, 3) for k, v in ip['parts_p50_ms'].items()})},"
            f" {ip['trees']} trees)"
        )
    hs = results.get("http_single")
    if hs:
        print(
            f"HTTP POST /score                 p50 {hs['p50_ms']:.2f} ms  p99 {hs['p99_ms']:.2f} ms"
            f"  errors {hs['errors']}  ratio p50 {results['ratio_p50']:.2f}x"
            f" p99 {results['ratio_p99']:.2f}x"
        )
    for route, r in results.get("http_compare", {}).items():
        print(
            f"HTTP POST {route:22} p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  mean"
            f" {r['mean_ms']:.2f} ms  CPU {r['service_cpu_ms_per_request']:.2f} ms/request"
            f" (median of blocks {r['service_cpu_ms_per_request_block_median']:.2f})"
            f"  errors {r['errors']}  ratio p50 {r['ratio_p50']:.2f}x"
            f" p99 {r['ratio_p99']:.2f}x  ({r['requests']} requests)"
        )
    su = results.get("sustained")
    if su:
        print(
            f"sustained {su['target_rate']:.0f}/s x {su['duration_s']:.0f}s      "
            f"achieved {su['achieved_rate']:.1f}/s  errors {su['errors']}  p50 {su['p50_ms']:.2f}"
            f" ms  p99 {su['p99_ms']:.2f} ms"
        )
    se = results.get("search")
    if se:
        print(
            f"highest sustained rate (0 errors, p99 <= {se['p99_limit_ms']:.0f} ms): "
            f"{se['best_rate']:.0f}/s (first failing {se['first_failing_rate']})"
        )
    ov = results.get("overload")
    if ov:
        shed = ov.get("shed", {})
        print(
            f"overload {ov['target_rate']:.0f}/s over {ov['connections']} connections: "
            f"{ov['ok']} answered 200 (p50 {ov.get('ok_p50_ms') or ov['p50_ms']:.1f} / p99 "
            f"{ov.get('ok_p99_ms') or ov['p99_ms']:.1f} ms), {shed.get('count', 0)} answered "
            f"503 (p50 {shed.get('p50_ms', 0):.1f} / p99 {shed.get('p99_ms', 0):.1f} ms, "
            f"{shed.get('with_retry_after', 0)} with Retry-After), other errors "
            f"{ov['errors'] - shed.get('count', 0)}"
        )
    ba = results.get("batch")
    if ba:
        print(batch_line(ba))


if __name__ == "__main__":
    sys.exit(main())
