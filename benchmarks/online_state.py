"""The service's feature source (issue 15): the online aggregates per key in the store, no
history in the process - at first start (built from the store's history) and at a restart.

    .venv/bin/python benchmarks/online_state.py [--days 40] [--per-day 800] [--store URL]
    .venv/bin/python benchmarks/online_state.py --store postgresql --modes store-restart \
        --baseline main --repeats 2 --manifest 10000

Steps (one simulated world, ``cargorisk simulate``, seeded into one store; every figure is
measured in this run, each start in a fresh process so its RSS is its own):

1. ``store-first``: :meth:`ScoringEngine.start` on the seeded store without aggregates - built
   from its own history by the offline engine and materialised; seconds and peak RSS;
2. ``store-restart``: aggregates present: seconds to ready and peak RSS;
3. in each, in the shapes the service's ``score`` uses (one shipment as a mapping of its
   fields, a manifest as a frame, the commit from contract columns with one score row per
   shipment): the features of ``--single`` shipments one at a time (p50/p99) and of a
   ``--manifest``-shipment manifest, and the durable commit with the aggregate deltas
   (``record_scoring``) of 200 single shipments (p50/p99) and of the manifest.

``--store postgresql``: a fresh database on the local server (127.0.0.1:5432, trust auth),
dropped after the run. Each timed start runs on its own copy of the seeded store (an SQLite
file copy, a PostgreSQL ``CREATE DATABASE ... TEMPLATE``), so one run's commits do not change
the next one's history. ``--baseline REF``: every mode also runs on the code of the git ``REF``
(``git archive`` on ``sys.path``), alternating baseline and current ``--repeats`` times.
``--profile DIR``: cProfile of the timed phases, as text, in ``DIR``.

No model is involved. The in-memory feature state the service held before (``online_state:
memory``, removed) is no longer measured here: its figures, measured by this script's
earlier version, stay in ``benchmarks/README.md`` as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CODE = Path(os.environ.get("CARGORISK_BENCH_CODE") or REPO)
"""The code under test: this checkout, or a baseline's ``git archive`` (``--baseline``)."""
sys.path.insert(0, str(CODE))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Phases:
    """cProfile of named phases (``--profile``), written as text sorted by own time."""

    def __init__(self, folder: Path | None, label: str) -> None:
        self.folder, self.label = folder, label

    def run(self, name: str, fn):
        if self.folder is None:
            return fn()
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        out = prof.runcall(fn)
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{self.label}-{name}.txt").write_text(text.getvalue())
        return out


def run_mode(args) -> dict:
    """One mode in this process: start, then time features and commits."""
    import pandas as pd

    from common.settings import load_settings
    from features.contracts import SHIPMENT_COLUMNS, frame_columns
    from features.tables import read_contract_dir
    from serving.engine import ScoringEngine, prepare_shipments
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
    if args.label == "materialise":  # setting up a store for the restarts: nothing timed
        engine.store.close()
        return {"mode": args.mode, "ready_s": round(ready, 2)}
    phases = Phases(args.profile, args.label or args.mode)
    probes = read_contract_dir(Path(args.world), what="world").shipments
    probes = probes.sort_values("declared_at").tail(args.single + args.manifest)
    later = probes["declared_at"].max() + pd.Timedelta(days=1)
    probes = probes.assign(
        shipment_id=[f"BENCH-{i}" for i in range(len(probes))], declared_at=later
    ).reset_index(drop=True)
    columns = frame_columns(probes, SHIPMENT_COLUMNS)

    def one(i: int, sid: str | None = None) -> dict:
        row = {n: columns[n][i] for n in SHIPMENT_COLUMNS}
        return row if sid is None else {**row, "shipment_id": sid}

    def single_features() -> list[float]:
        times = []
        for i in range(args.single):
            row = one(i)
            t0 = time.perf_counter()
            # as ScoringEngine.score does for one shipment
            engine._store_features(row, prepare_shipments(row), {})
            times.append(time.perf_counter() - t0)
        return times

    single = phases.run("single-features", single_features)
    manifest = probes.iloc[args.single :].reset_index(drop=True)
    t0 = time.perf_counter()
    phases.run("manifest-features", lambda: engine.features(manifest, attributes={}))
    manifest_s = time.perf_counter() - t0
    caller = Caller("bench", "system", 1)

    def score_rows(ids: list[str]) -> list[dict]:
        return [{"shipment_id": s, "score": 0.5, "percentile": 50.0, "band": "medium",
                 "reasons": [{"feature": "bench", "text": "benchmark"}]} for s in ids]  # fmt: skip

    def single_commits() -> list[float]:
        times = []
        for i in range(min(200, args.single)):
            sid = f"COMMIT-{i}"
            cols = {n: [v] for n, v in one(i, sid).items()}
            cols["attributes"] = [None]
            t0 = time.perf_counter()
            engine.store.record_scoring(cols, score_rows([sid]), request_id=f"b{i}",
                                        caller=caller, model_name="m", model_version="1",
                                        online=True)  # fmt: skip
            times.append(time.perf_counter() - t0)
        return times

    commits = phases.run("single-commit", single_commits)
    ids = [f"MANIFEST-{i}" for i in range(len(manifest))]
    cols = {n: list(columns[n][args.single :]) for n in SHIPMENT_COLUMNS}
    cols["shipment_id"] = ids
    cols["attributes"] = [None] * len(ids)
    rows = score_rows(ids)

    def manifest_commit() -> None:
        engine.store.record_scoring(cols, rows, request_id="bm", caller=caller, model_name="m",
                                    model_version="1", online=True)  # fmt: skip

    t0 = time.perf_counter()
    phases.run("manifest-commit", manifest_commit)
    manifest_commit_s = time.perf_counter() - t0
    engine.store.close()
    return {
        "mode": args.mode,
        "code": args.label or "current",
        "ready_s": round(ready, 2),
        "peak_rss_mb": round(rss, 1),
        "features_single_p50_ms": round(pct(single, 50), 2),
        "features_single_p99_ms": round(pct(single, 99), 2),
        f"features_manifest_{args.manifest}_s": round(manifest_s, 3),
        "commit_single_p50_ms": round(pct(commits, 50), 2),
        "commit_single_p99_ms": round(pct(commits, 99), 2),
        f"commit_manifest_{args.manifest}_s": round(manifest_commit_s, 3),
    }


class Stores:
    """The seeded store and a copy of it per timed run (SQLite files or PostgreSQL
    databases made from a template), all removed by :meth:`close`."""

    def __init__(self, store: str | None, work: Path) -> None:
        self.work = work
        self.pg = store == "postgresql"
        self.admin = None
        self.made: list[str] = []
        if self.pg:
            import sqlalchemy as sa

            self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            self.base = self._create(None)
            self.url = self._url(self.base)
        elif store:
            self.url = store
        else:
            self.url = f"sqlite:///{work / 'store.db'}"

    @staticmethod
    def _url(name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    def _create(self, template: str | None) -> str:
        import sqlalchemy as sa

        name = f"cargorisk_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            extra = f' TEMPLATE "{template}"' if template else ""
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{extra}'))
        self.made.append(name)
        return name

    def copy(self, url: str | None = None) -> str:
        """A copy of the store at ``url`` (default the seeded one) for one run."""
        url = url or self.url
        if self.pg:
            return self._url(self._create(url.rsplit("/", 1)[1]))
        if not url.startswith("sqlite:///"):
            return url  # a given server URL: runs share it
        src = Path(url.removeprefix("sqlite:///"))
        dst = self.work / f"run-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(src, dst)
        for suffix in ("-wal", "-shm"):
            if Path(f"{src}{suffix}").exists():
                shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
        return f"sqlite:///{dst}"

    def close(self) -> None:
        if not self.pg:
            return
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            for name in reversed(self.made):
                conn.execute(
                    sa.text("select pg_terminate_backend(pid) from pg_stat_activity "
                            "where datname = :n"), {"n": name})  # fmt: skip
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        self.admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--per-day", type=int, default=800)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--manifest", type=int, default=1000)
    parser.add_argument(
        "--store",
        default=None,
        help="SQLAlchemy URL, or 'postgresql' (a fresh database on 127.0.0.1:5432, dropped "
        "after); default SQLite in a temp dir",
    )
    parser.add_argument("--modes", default="store-first,store-restart")
    parser.add_argument("--baseline", default=None, help="git ref to compare with")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--label", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--world", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="cargorisk-online-bench-"))
    env = {**os.environ, "CARGORISK_HOME": str(work)}
    codes = [("current", REPO)]
    if args.baseline:
        base = work / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline],
                                 check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        codes = [("baseline", base), ("current", REPO)]
    world = work / "world"
    subprocess.run([str(Path(sys.executable).parent / "cargorisk"), "simulate", "--out",
                    str(world), "--days", str(args.days), "--shipments-per-day",
                    str(args.per_day), "--seed", "7"], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    stores = Stores(args.store, work)
    try:
        # seed the store once (as serve_seed_data would), outside the timed runs
        from features.tables import read_contract_dir
        from serving.store import Store

        tables = read_contract_dir(world, what="world", keep_undeclared=True)
        seeded = Store(stores.url)
        seeded.import_history(tables.shipments, tables.outcomes)
        seeded.close()
        modes = args.modes.split(",")
        materialised = None
        if "store-restart" in modes:
            # materialised once on a copy of the seeded store (not timed): every restart runs
            # on a copy of that
            materialised = stores.copy()
            run_one(args, "store-first", materialised, world, env, REPO, "materialise")
        results = []
        for repeat in range(args.repeats):
            for mode in modes:
                for label, code in codes:
                    url = stores.copy(materialised if mode == "store-restart" else None)
                    out = run_one(args, mode, url, world, env, code, label)
                    out["repeat"] = repeat
                    results.append(out)
                    print(json.dumps(out), flush=True)
    finally:
        stores.close()
        shutil.rmtree(work, ignore_errors=True)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    summary = {
        "started_utc": started_at,
        "ended_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "commit": head,
        "baseline": args.baseline,
        "store": "postgresql" if stores.pg else ("sqlite" if not args.store else "url"),
        "shipments": len(tables.shipments),
        "outcomes": len(tables.outcomes),
        "single": args.single,
        "manifest": args.manifest,
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))


def run_one(args, mode: str, url: str, world: Path, env: dict, code: Path, label: str) -> dict:
    """One mode in a fresh process on ``code``."""
    command = [sys.executable, __file__, "--mode", mode, "--world", str(world), "--store", url,
               "--single", str(args.single), "--manifest", str(args.manifest),
               "--label", label]  # fmt: skip
    if args.profile:
        command += ["--profile", str(args.profile)]
    out = subprocess.run(command, env={**env, "CARGORISK_BENCH_CODE": str(code)}, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
