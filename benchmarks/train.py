"""End-to-end training benchmark: N simulated shipments -> ``cargorisk train`` (read +
contract validation, features, LightGBM, evaluation vs baselines, plots, MLflow logging and
registration into a fresh embedded store), in two variants on the same world, one after the
other in the same invocation:

* ``today`` - training as it was before issue 11: one LightGBM fit on every family, no
  raw-columns challenger, no family selection, round cap 600;
* ``new`` - the repository's ``config/train.yaml``: family selection on validation (at most
  2 x families fits), the raw-columns challenger, round cap 5000 with early stopping.

The world is simulated first in its own child process (not timed). Each training run is another
child with its own MLflow home: wall time is measured around it (Python start-up and imports
included) and peak memory is the child's own ``ru_maxrss`` from ``os.wait4``. The per-step
times are the ones ``cargorisk train`` prints as progress. Also reports CPU time of the child
(user + sys), which is steadier than wall time on a shared machine, the load average before and
after, the number of LightGBM fits, which candidate was registered and its test precision at
capacity.

    .venv/bin/python benchmarks/train.py                 # 1,000,000 shipments over 365 days
    .venv/bin/python benchmarks/train.py --shipments 200000 --days 120
    .venv/bin/python benchmarks/train.py --shipments 20000 --days 40 --variants new
    .venv/bin/python benchmarks/train.py --variants new --engines pandas,duckdb  # before/after
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _run_child(cmd: list[str], env: dict, log: Path) -> tuple[int, float, float, float, str]:
    """Run ``cmd``; return (status, wall s, peak RSS MB, CPU s, captured stderr+stdout)."""
    start = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text(errors="replace")
    rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
    return os.waitstatus_to_exitcode(status), wall, rss_mb, usage.ru_utime + usage.ru_stime, text


VARIANTS = {
    "today": "num_boost_round: 600\nselect_families: false\nchallenger: false\n",
    "new": None,  # the repository's config/train.yaml
}


def _train(
    variant: str,
    data: Path,
    root: Path,
    env: dict,
    engine: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[int, dict | str]:
    """One ``cargorisk train`` child in its own home, with the feature engine ``engine``
    (``CARGORISK_FEATURE_ENGINE``; None: the settings' default); (status, result or the log's
    tail)."""
    name = variant if engine is None else f"{variant}-{engine}"
    home = root / f"home-{name}"
    home.mkdir(parents=True, exist_ok=True)
    if engine is not None:
        env = {**env, "CARGORISK_FEATURE_ENGINE": engine}
    cmd = [str(BIN / "cargorisk"), "train", "--data", str(data), *extra]
    if VARIANTS[variant] is not None:
        config = root / f"train-{variant}.yaml"
        config.write_text(VARIANTS[variant])
        cmd += ["--config", str(config)]
    load_before = os.getloadavg()[0]
    code, wall, rss, cpu, text = _run_child(
        cmd, {**env, "CARGORISK_HOME": str(home)}, root / f"train-{name}.log"
    )
    load_after = os.getloadavg()[0]
    if code != 0:
        return code, text[-3000:]
    steps = dict(re.findall(r"^(\S[^\n]*?): done in ([0-9.]+) s$", text, flags=re.M))
    shipments = int(
        re.search(r"building features for ([0-9,]+) shipments", text)[1].replace(",", "")
    )
    fits = re.search(r"^fits\s+(\d+) LightGBM fits", text, flags=re.M)
    kind = re.search(r"^registered\s+(\S+)", text, flags=re.M)
    precision = re.search(r"^precision@5%\s+([0-9.]+)", text, flags=re.M)
    table = [
        line
        for line in text.splitlines()
        if re.match(
            r"^(metric|-{5}|precision@|recall@|lift@|true_recall@|pr_auc|roc_auc|brier|"
            r"test period|candidate|full model|raw challenger|family|manifest|rates|history|"
            r"change|network|attributes|registered|why|fits|warning)",
            line,
        )
    ]
    kept = re.search(r"^kept ([0-9,]+) of", text, flags=re.M)
    return 0, {
        "variant": name,
        "kept_rows": int(kept[1].replace(",", "")) if kept else shipments,
        "shipments": shipments,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(rss),
        "steps_s": {k.replace(f" {data}", ""): float(v) for k, v in steps.items()},
        "fits": int(fits[1]) if fits else None,
        "registered": kind[1] if kind else None,
        "test_precision_at_5pct": float(precision[1]) if precision else None,
        "load_avg_before_after": [round(load_before, 1), round(load_after, 1)],
        "table": table,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--variants",
        default="today,new",
        help="Comma-separated, run in this order: today (one fit), new (selection+challenger).",
    )
    parser.add_argument(
        "--engines",
        default="",
        help="Comma-separated feature engines to run each variant with, in this order "
        "(pandas: every shipment in pandas; duckdb: only the rows training needs, read lazily "
        "from Parquet); default the settings' engine.",
    )
    parser.add_argument(
        "--by-month",
        action="store_true",
        help="Simulate the world by month (cargorisk simulate --by-month: bounded memory).",
    )
    parser.add_argument(
        "--test-days",
        type=int,
        help="Pass --test-days N to cargorisk train (N test days and N validation days).",
    )
    parser.add_argument("--keep", type=Path, help="Keep data and MLflow homes in this directory.")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"--variants: choose from {', '.join(VARIANTS)} (got {args.variants!r})")

    root = args.keep or Path(tempfile.mkdtemp(prefix="cargorisk-bench-train-"))
    data = root / "data"
    root.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "CARGORISK_CONFIG")
    }
    per_day = max(1, round(args.shipments / args.days))

    if not (data / "shipments.parquet").is_file() and not (data / "shipments").is_dir():
        print(f"simulating {args.shipments:,} shipments ({args.days} days x {per_day}/day) ...")
        code, wall, _, _, text = _run_child(
            [
                str(BIN / "cargorisk"),
                "simulate",
                "--out",
                str(data),
                "--days",
                str(args.days),
                "--shipments-per-day",
                str(per_day),
                "--seed",
                str(args.seed),
                "--end",
                "2026-11-24",
                *(["--by-month"] if args.by_month else []),
            ],
            {**env, "CARGORISK_HOME": str(root)},
            root / "simulate.log",
        )
        if code != 0:
            print(text[-3000:])
            return code
        print(f"  simulated in {wall:.1f} s (not counted)")

    engines: list[str | None] = [e.strip() for e in args.engines.split(",") if e.strip()]
    results = []
    for variant, engine in [(v, e) for v in variants for e in (engines or [None])]:
        print(f"training, variant {variant}, engine {engine or 'default'} ...")
        extra = ("--test-days", str(args.test_days)) if args.test_days else ()
        code, result = _train(variant, data, root, env, engine, extra)
        if code != 0:
            print(result)
            return code
        print("\n".join(result.pop("table")))
        print(json.dumps(result, indent=1))
        results.append(result)
    summary = {"world": {"shipments": args.shipments, "days": args.days, "seed": args.seed}}
    summary["runs"] = results
    if len(results) == 2:
        a, b = results
        summary[f"{b['variant']}_over_{a['variant']}"] = {
            "wall": round(b["wall_s"] / a["wall_s"], 2),
            "cpu": round(b["cpu_s"] / a["cpu_s"], 2),
            "peak_rss": round(b["peak_rss_mb"] / a["peak_rss_mb"], 2),
        }
        print(json.dumps(summary[f"{b['variant']}_over_{a['variant']}"]))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
