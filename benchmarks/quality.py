"""Model quality and its noise: the same training over several simulated worlds and model seeds.

One training run's precision@1 % rests on a few dozen test seizures, and LightGBM's bagging and
feature sampling make two fits of the same data differ: a single figure says little. This runs
``cargorisk train`` (selection and challenger included, as shipped) for every (world seed, model
seed) pair and prints the test figures of each run and their spread, so a change to features or
training is judged against the noise, not against one lucky draw.

Usage:
    .venv/bin/python benchmarks/quality.py --worlds 42,1,2 --model-seeds 0,1,2 \
        [--days 120 --shipments-per-day 3000 --end 2026-11-25] [--out runs/quality]

Worlds are simulated once into ``--out`` and reused. Prints one JSON line per run, then a
table of mean / min / max per metric.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

METRICS = (
    ("test_precision_at_1pct", "precision@1%"),
    ("test_true_recall_at_1pct", "true recall@1%"),
    ("test_true_recall_at_5pct", "true recall@5%"),
    ("test_pr_auc", "PR-AUC"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="42,1,2")
    parser.add_argument("--model-seeds", default="0,1,2")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--shipments-per-day", type=int, default=3000)
    parser.add_argument("--end", default="2026-11-25")
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()

    from cargorisk.cli import main as cli
    from common.settings import load_settings
    from training.jobs.train import train_job

    rows = []
    for world in [int(w) for w in args.worlds.split(",")]:
        data = args.out / f"world-{world}-{args.days}x{args.shipments_per_day}"
        if not (data / "shipments.parquet").exists():
            code = cli(
                [
                    "simulate", "--out", str(data), "--seed", str(world), "--days",
                    str(args.days), "--shipments-per-day", str(args.shipments_per_day),
                    "--end", args.end,
                ]
            )  # fmt: skip
            if code:
                return code
        for model_seed in [int(s) for s in args.model_seeds.split(",")]:
            with tempfile.TemporaryDirectory() as home:
                os.environ["CARGORISK_HOME"] = home
                os.environ.pop("MLFLOW_TRACKING_URI", None)
                settings = load_settings(seed=model_seed)
                started = time.perf_counter()
                result = train_job(settings, data, register=False)
                row = {
                    "world": world,
                    "model_seed": model_seed,
                    "kind": result.model.metadata["kind"],
                    "families": result.model.metadata["families"],
                    "seconds": round(time.perf_counter() - started, 1),
                    **{name: round(result.metrics[key], 3) for key, name in METRICS},
                }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{len(rows)} runs   mean    min    max")
    for _, name in METRICS:
        values = [r[name] for r in rows]
        print(f"{name:16} {statistics.mean(values):.3f}  {min(values):.3f}  {max(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
