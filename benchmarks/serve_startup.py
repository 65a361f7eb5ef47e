"""Time from ``bentoml serve`` start to ``/readyz`` 200 for one code tree on one home (a fresh
store seeded from ``--seed``, or the store a previous run left: a restart).

    python benchmarks/serve_startup.py --code DIR --home HOME --seed DIR [--port 3921]
        [--label NAME] [--bentoml PATH]

``--code`` is the repository whose ``serving`` is served (the working directory and
``PYTHONPATH`` of ``bentoml serve``), so two versions of the code can be timed with one
environment on the same data: ``--home`` needs ``mlruns/`` with a champion (a symlink to the
quickstart's works) and is where the store and the service's log (``service-<label>.log``,
with the start-up steps and their durations) go. Prints one JSON line: seconds to ready, the
resident memory of the service's processes at ready, the load average at start and end. The
service is stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--seed", type=Path, required=True)
    parser.add_argument("--port", type=int, default=3921)
    parser.add_argument("--label", default="run")
    parser.add_argument("--bentoml", default=str(Path(sys.executable).parent / "bentoml"))
    args = parser.parse_args()
    env = dict(
        os.environ,
        CARGORISK_HOME=str(args.home),
        PYTHONPATH=str(args.code),
        BENTOML_DO_NOT_TRACK="true",
        CARGORISK_SERVE_SEED_DATA=str(args.seed),
    )
    load_start = os.getloadavg()
    started = time.monotonic()
    log = (args.home / f"service-{args.label}.log").open("w")
    command = [args.bentoml, "serve", "serving.service:CargoRisk", "--port", str(args.port),
               "--host", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=args.code, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    ready = None
    while time.monotonic() - started < 900 and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{args.port}/readyz", timeout=2).status_code == 200:
                ready = time.monotonic() - started
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    rss = 0.0
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            rss += p.memory_info().rss / 2**20
    except psutil.Error:
        pass
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    result = {
        "label": args.label,
        "ready_s": None if ready is None else round(ready, 1),
        "rss_mb_all_processes": round(rss),
        "load_start": load_start,
        "load_end": os.getloadavg(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
