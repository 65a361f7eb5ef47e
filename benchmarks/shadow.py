"""Shadow challenger benchmark: single-shipment scoring latency with and without a challenger
scored beside the champion, in the same run (goal: with ≤ 1.3× without).

    .venv/bin/python benchmarks/shadow.py [--home DIR] [--single 1000] [--batch 1000]

Steps (every figure measured in this run):

1. the serving benchmark's world and champion (``benchmarks/serving.py``: ``cargorisk
   simulate``, 90 days x 1,500/day by default, ``train`` + ``promote``) in ``--home``, plus a
   second version trained on another split (``--test-days`` a third of the days) that
   becomes ``@challenger``;
2. two engines, each on its own copy of the store seeded with the world: one with no shadow
   alias (``shadow_alias`` set to an alias nobody has), one with the challenger;
3. ``--single`` shipments scored one at a time, alternating between the two engines (so both
   see the same machine noise), each call timed end to end (features, model, reasons, durable
   commit) - p50/p99 and the ratio; the shadow engine's queue is drained and its stored scores
   counted (scored, dropped) at the end;
4. a ``--batch``-shipment manifest on each, ``--batch-repeats`` times alternating.

Results print and go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _serving_bench():
    spec = importlib.util.spec_from_file_location("bench_serving", REPO / "benchmarks/serving.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=1500)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/shadow.json")
    args = parser.parse_args(argv)

    bench = _serving_bench()
    home = args.home or Path(tempfile.mkdtemp(prefix="cargorisk-bench-shadow-"))
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CARGORISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    world = bench.ensure_world(home, args.days, args.per_day, env)
    marker = home / "challenger.json"
    if not marker.exists():
        bench.sh(
            "train", "--data", str(world), "--test-days", str(max(10, args.days // 3)), env=env
        )
        marker.write_text(json.dumps({"trained": True}))

    os.environ["CARGORISK_HOME"] = str(home)
    from common.settings import load_settings
    from serving.engine import ScoringEngine
    from serving.schemas import ShipmentIn
    from serving.store import Caller
    from training import registry

    settings = load_settings()
    registry.configure(settings)
    challenger = registry.latest_version(settings)
    if registry.champion_version(settings) == challenger:
        raise SystemExit("the latest version is the champion: nothing to shadow")
    registry.set_shadow(settings, challenger)

    engines = {}
    for name, alias in (("without", "nobody-has-this-alias"), ("with", settings.shadow_alias)):
        db = home / f"shadow-bench-{name}.db"
        db.unlink(missing_ok=True)
        s = load_settings(store_url=f"sqlite:///{db}", serve_seed_data=world, shadow_alias=alias)
        engine = ScoringEngine(s)
        engine.start()
        assert engine.ready, engine.status()
        engines[name] = engine
    assert engines["without"].shadow.current is None
    assert engines["with"].shadow.current is not None
    caller = Caller("bench", "system")
    singles = bench.request_shipments(world, args.single + 20, "SS", seed=1)
    manifest = bench.request_shipments(world, args.batch, "SM", seed=3)
    load_start = os.getloadavg()

    timings: dict[str, list[float]] = {"without": [], "with": []}
    for name, engine in engines.items():  # warm-up, own ids per engine
        for s in singles[:20]:
            engine.score([ShipmentIn(**{**s, "shipment_id": f"W{name}{s['shipment_id']}"})],
                         caller=caller)  # fmt: skip
    engines["with"].shadow.wait_idle(60)
    for s in singles[20:]:
        body = ShipmentIn(**s)
        for name in ("without", "with"):
            t0 = time.perf_counter()
            engines[name].score([body], caller=caller)
            timings[name].append(time.perf_counter() - t0)
    drained_at = time.perf_counter()
    engines["with"].shadow.wait_idle(120)
    drain_s = time.perf_counter() - drained_at

    batch_t: dict[str, list[float]] = {"without": [], "with": []}
    for r in range(args.batch_repeats):
        bodies = [ShipmentIn(**{**s, "shipment_id": f"R{r}{s['shipment_id']}"}) for s in manifest]
        for name in ("without", "with"):
            t0 = time.perf_counter()
            engines[name].score(bodies, caller=caller, explain_share=0.05)
            batch_t[name].append(time.perf_counter() - t0)
    engines["with"].shadow.wait_idle(300)
    status = engines["with"].shadow_status()
    stored = engines["with"].store.count("shadow_scores")
    trees = {
        "champion": engines["with"].model_holder.get().scoring.booster.num_trees(),
        "challenger": engines["with"].shadow.current.scoring.booster.num_trees(),
    }
    for engine in engines.values():
        engine.store.close()
    registry.clear_shadow(settings)

    def pct(values, q):
        ordered = sorted(values)
        return 1000.0 * ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
        },
        "world": {"days": args.days, "per_day": args.per_day},
        "trees": trees,
        "single": {
            name: {"n": len(t), "p50_ms": pct(t, 50), "p99_ms": pct(t, 99)}
            for name, t in timings.items()
        },
        "batch_s": {name: t for name, t in batch_t.items()},
        "shadow": {**status, "stored": stored, "drain_after_singles_s": drain_s},
    }
    w, wo = results["single"]["with"], results["single"]["without"]
    results["ratio_p50"] = w["p50_ms"] / wo["p50_ms"]
    results["ratio_p99"] = w["p99_ms"] / wo["p99_ms"]
    results["ratio_batch_median"] = statistics.median(batch_t["with"]) / statistics.median(
        batch_t["without"]
    )
    print(f"== shadow benchmark (trees: {trees}) ==")
    for name in ("without", "with"):
        r = results["single"][name]
        print(
            f"single {name:8} challenger  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
            f"batch of {args.batch}: " + ", ".join(f"{x:.2f}" for x in batch_t[name]) + " s"
        )
    print(
        f"ratio with/without: p50 {results['ratio_p50']:.2f}x  p99 {results['ratio_p99']:.2f}x"
        f"  batch median {results['ratio_batch_median']:.2f}x"
    )
    print(
        f"shadow: scored {status['scored']:,} dropped {status['dropped']:,} errors "
        f"{status['errors']:,} stored {stored:,}; queue drained {drain_s:.2f} s after the "
        f"singles; load {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
