"""Does the aggregates' lock matter? ``cargorisk serve --workers 2`` with ``online_state:
store`` on the local PostgreSQL: every transaction that changes the online aggregates takes
the advisory lock 15_015 first (:func:`serving.store.online.serialise`), so two manifests
committed at once take turns. This measures what that costs.

    .venv/bin/python benchmarks/store_lock.py [--manifest 1000] [--rounds 8] [--out FILE]

A fresh PostgreSQL database, a tiny model (the serving tests' LightGBM, 30 trees) and a
seed history of ``--history`` shipments; then, over HTTP, every shipment id new:

1. **alone**: ``--rounds`` manifests of ``--manifest`` shipments, one at a time;
2. **two at once**: ``--rounds`` pairs of such manifests sent at the same instant from two
   clients (the two workers take one each);
3. **singles alone**, then **singles beside manifests**: single-shipment ``POST /score``
   one after another, first on an idle service, then while another client sends manifests
   back to back.

During every step a sampler asks ``pg_stat_activity`` every 5 ms how many backends wait for
the advisory lock (``wait_event = 'advisory'``): waiting time ~ samples with a waiter x 5 ms.
Prints a table; raw figures to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.processes import postgres_database  # noqa: E402
from tests.serving.conftest import make_shipment  # noqa: E402
from tests.serving.helpers import (  # noqa: E402
    register_model,
    scoring_service,
    service_env,
    tiny_history,
    train_tiny_model,
)
from tests.serving.test_service_integration import keys_create  # noqa: E402


class LockSampler:
    """Counts, every ``every`` seconds, the backends of database ``name`` waiting for an
    advisory lock."""

    def __init__(self, url: str, every: float = 0.005) -> None:
        self.engine = sa.create_engine(url)
        self.name = url.rsplit("/", 1)[1]
        self.every = every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :n "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                self.samples.append(int(conn.execute(query, {"n": self.name}).scalar()))
                conn.rollback()
                time.sleep(self.every)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

    def summary(self, seconds: float) -> dict:
        s = np.asarray(self.samples or [0])
        return {
            "samples": len(s),
            "share_with_a_waiter": float((s > 0).mean()),
            "max_waiting": int(s.max()),
            # each sample stands for the interval since the previous one
            "waiting_s_estimate": float((s > 0).mean() * seconds),
        }


def shipments(prefix: str, n: int, start: int) -> list[dict]:
    """``n`` fresh shipments after the seed history: consignees and phones drawn from pools
    the history shares, so manifests touch the same keys."""
    rng = np.random.default_rng(start)
    march = dt.datetime(2026, 3, 1)
    out = []
    for i in range(n):
        k = start + i
        out.append(
            make_shipment(
                k,
                shipment_id=f"{prefix}{k:07d}",
                declared_at=(march + dt.timedelta(minutes=k % (27 * 1440))).isoformat(),
                booked_at=None,
                departed_at=None,
                arrival_at=None,
                consignee_id=f"CNS{int(rng.integers(0, 60))}",
                consignee_phone=f"+1 555 {int(rng.integers(0, 400)):04d}",
            )
        )
    return out


def timed_post(http: httpx.Client, url: str, path: str, body: dict) -> float:
    t0 = time.perf_counter()
    r = http.post(f"{url}{path}", json=body)
    took = time.perf_counter() - t0
    assert r.status_code == 200, r.text[:300]
    return took


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--singles", type=int, default=150)
    parser.add_argument("--history", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="cargorisk-lock-"))
    home = root / "home"
    os.environ["CARGORISK_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from common.settings import load_settings

    tracking = load_settings().tracking_uri
    ships, outs = tiny_history(n=args.history, days=60, seed=1)
    register_model(train_tiny_model(ships, outs), tracking, "cargorisk-risk", root / "m")
    seed = root / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    result: dict = {"started_utc": started_at, "args": vars(args) | {"out": str(args.out)}}
    with postgres_database() as url:
        env = service_env(home, tracking, store_url=url, online_state="store",
                          serve_seed_data=seed, drift_refresh_minutes=0,
                          aggregate_prune_minutes=0, max_batch=50_000)  # fmt: skip
        key = keys_create(env, "system", "bench")
        headers = {"Authorization": f"Bearer {key}"}
        with (
            scoring_service(home, env, workers=2) as (base, _),
            httpx.Client(timeout=300, headers=headers) as one,
            httpx.Client(timeout=300, headers=headers) as two,
        ):
            for _ in range(40):  # both workers answer (each warms its model)
                httpx.get(f"{base}/readyz", timeout=10).raise_for_status()
            timed_post(one, base, "/score/batch", {"shipments": shipments("W", 200, 0)})
            timed_post(two, base, "/score/batch", {"shipments": shipments("V", 200, 0)})
            n, counter = args.manifest, [1_000]

            def manifest() -> dict:
                counter[0] += n
                return {"shipments": shipments("M", n, counter[0])}

            # 1. alone
            alone = []
            t0 = time.perf_counter()
            with LockSampler(url) as sampler:
                for _ in range(args.rounds):
                    alone.append(timed_post(one, base, "/score/batch", manifest()))
            result["alone"] = {"seconds": alone, "lock": sampler.summary(time.perf_counter() - t0)}

            # 2. two at once
            pairs: list[float] = []
            t0 = time.perf_counter()
            with LockSampler(url) as sampler:
                for _ in range(args.rounds):
                    bodies = [manifest(), manifest()]
                    gate = threading.Barrier(2)
                    got: list[float] = []

                    def send(http, body, gate=gate, got=got):
                        gate.wait()
                        got.append(timed_post(http, base, "/score/batch", body))

                    threads = [threading.Thread(target=send, args=(h, b))
                               for h, b in zip((one, two), bodies, strict=True)]  # fmt: skip
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    pairs.extend(got)
            result["two_at_once"] = {"seconds": pairs,
                                     "lock": sampler.summary(time.perf_counter() - t0)}  # fmt: skip

            # 3. singles alone, then beside manifests
            singles = iter(shipments("S", 2 * args.singles, 5_000_000))

            def single_run() -> list[float]:
                return [timed_post(one, base, "/score", {"shipment": next(singles)})
                        for _ in range(args.singles)]  # fmt: skip

            t0 = time.perf_counter()
            with LockSampler(url) as sampler:
                quiet = single_run()
            result["singles_alone"] = {
                "seconds": quiet,
                "lock": sampler.summary(time.perf_counter() - t0),
            }
            stop = threading.Event()
            beside: list[float] = []

            def manifests_loop() -> None:
                while not stop.is_set():
                    beside.append(timed_post(two, base, "/score/batch", manifest()))

            loader = threading.Thread(target=manifests_loop)
            t0 = time.perf_counter()
            with LockSampler(url) as sampler:
                loader.start()
                time.sleep(0.5)
                busy = single_run()
                stop.set()
                loader.join()
            result["singles_beside_manifests"] = {
                "seconds": busy,
                "manifests_meanwhile_s": beside,
                "lock": sampler.summary(time.perf_counter() - t0),
            }
    result["load_start_end"] = [load_start, os.getloadavg()]

    def ms(values, q):
        return float(np.percentile(np.asarray(values) * 1000, q))

    print(f"started {started_at}; load average at start {load_start}, at end {os.getloadavg()}")
    for name in ("alone", "two_at_once", "singles_alone", "singles_beside_manifests"):
        r = result[name]
        lock = r["lock"]
        print(
            f"{name:26s} n={len(r['seconds']):4d} p50 {ms(r['seconds'], 50):8.1f} ms  p99 "
            f"{ms(r['seconds'], 99):8.1f} ms  median {statistics.median(r['seconds']):.3f} s  "
            f"lock waiters in {lock['share_with_a_waiter']:.1%} of {lock['samples']} samples "
            f"(~{lock['waiting_s_estimate']:.2f} s waited)"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
