"""End-to-end training benchmark: N simulated shipments -> ``cargorisk train`` (read +
contract validation, features, LightGBM, evaluation vs baselines, plots, MLflow logging and
registration into a fresh embedded store).

The world is simulated first in its own child process (not timed). The training run is another
child: wall time is measured around it (Python start-up and imports included) and peak memory
is the child's own ``ru_maxrss`` from ``os.wait4``. The per-step times are the ones
``cargorisk train`` prints as progress. Also reports CPU time of the child (user + sys), which
is steadier than wall time on a shared machine, and the load average before and after.

    .venv/bin/python benchmarks/train.py                 # 1,000,000 shipments over 365 days
    .venv/bin/python benchmarks/train.py --shipments 200000 --days 120
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="Keep data and MLflow home in this directory.")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="cargorisk-bench-train-"))
    data, home = root / "data", root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "CARGORISK_CONFIG")
    }
    env["CARGORISK_HOME"] = str(home)
    per_day = max(1, round(args.shipments / args.days))

    if not (data / "shipments.parquet").is_file():
        print(f"simulating {args.shipments:,} shipments ({args.days} days x {per_day}/day) ...")
        code, wall, rss, _, text = _run_child(
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
            ],
            env,
            root / "simulate.log",
        )
        if code != 0:
            print(text[-3000:])
            return code
        print(f"  simulated in {wall:.1f} s (not counted)")

    load_before = os.getloadavg()[0]
    print("training (features + LightGBM + evaluation + plots + MLflow log + register) ...")
    code, wall, rss, cpu, text = _run_child(
        [str(BIN / "cargorisk"), "train", "--data", str(data)], env, root / "train.log"
    )
    load_after = os.getloadavg()[0]
    if code != 0:
        print(text[-3000:])
        return code
    steps = dict(re.findall(r"^(\S[^\n]*?): done in ([0-9.]+) s$", text, flags=re.M))
    shipments = int(
        re.search(r"building features for ([0-9,]+) shipments", text)[1].replace(",", "")
    )
    result = {
        "shipments": shipments,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(rss),
        "steps_s": {k.replace(f" {data}", ""): float(v) for k, v in steps.items()},
        "load_avg_before_after": [round(load_before, 1), round(load_after, 1)],
        "target_wall_s": 300,
        "met": wall <= 300,
    }
    table = [
        line
        for line in text.splitlines()
        if re.match(
            r"^(metric|-{5}|precision@|recall@|"
            r"lift@|true_recall@|pr_auc|roc_auc|"
            r"brier|test period)",
            line,
        )
    ]
    print("\n".join(table))
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
