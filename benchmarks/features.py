"""Feature pipeline benchmark: offline training frame at 100k / 1M / 3M shipments, online state.

Data come from the simulator (``cargorisk simulate``, a year of traffic, cached under
``--data``). Every measurement runs in a fresh child process so its peak RSS (``os.wait4``
rusage ``ru_maxrss`` of that child) is its own; this parent imports nothing heavy.

* **offline**: ``build_training_frame`` on the whole table, beside an in-process baseline
  measured in the same child on the same frame: a plain ``sort_values("declared_at")`` +
  ``groupby("consignee_id").cumcount()`` (the cheapest point-in-time feature there is).
  Peak RSS includes the input frame read from Parquet.
* **engines** (issue 14): the offline frame is built once per ``--engines`` entry, each in its
  own child: ``pandas`` (the numpy executor) and ``duckdb`` (the SQL definitions of
  ``features/engine.py`` bounded by ``--memory-limit`` and ``--threads``). Besides wall, CPU
  (``process_time``: every thread of the process, DuckDB's included) and peak RSS (DuckDB's
  memory is in the same process), each child reports the time of the raw-aggregate step alone
  and, for DuckDB, the peak bytes in its spill directory (polled every 0.1 s).
  ``--parquet-limits 2GB,512MB`` adds the raw aggregates read straight from the Parquet files
  by DuckDB (``features.engine.parquet_aggregates``, no pandas frame) at each memory limit;
  ``--write-limits 1GB`` the same written to Parquet files (``write_aggregates``: nothing held
  in the process), on the ``--sizes`` worlds or on ``--world DIR`` (e.g. a 10M world made by
  ``cargorisk simulate --by-month``); ``--lazy-limits 2GB`` (with ``--world``) the lazy
  training frame (``parquet_training_frame``: every aggregate and the link graph over the whole
  history, the inspected rows and the last ``--lazy-days`` days kept), with its spill.
* **online** (issue 15: the service holds no history): the snapshot of all history but the
  last ``--new`` shipments (``features.online.replay.snapshot_tables``: the DuckDB snapshot
  ``cargorisk features materialize`` loads), its rows held in memory
  (:class:`features.online.rows.MemoryRows`, in place of the store's tables: no database in
  the measurement), then those shipments replayed one by one as serving would (the rows of
  its keys, features from them, its deltas counted, reports counted once known): median /
  p90 / p99 of prepare + features for one shipment, beside the in-process cost of taking that
  one-row frame out of the table (``iloc[[i]].copy()``), the median CPU time of the call
  (``time.process_time``: what the call costs when other processes compete for the two
  cores), the same shipment passed as a mapping of contract fields (what an API body is), the
  time to count its deltas, the snapshot's time and the rows' memory (RSS growth while
  loading them) per million shipments.

    .venv/bin/python benchmarks/features.py [--sizes 100000,1000000,3000000] [--data DIR]
        [--engines pandas,duckdb] [--memory-limit 2GB] [--threads 2] [--parquet-limits 2GB,512MB]
        [--write-limits 1GB] [--lazy-limits 2GB] [--lazy-days 60] [--world DIR]
        [--online-size 1000000] [--new 2000] [--skip-offline] [--skip-online]

Targets (issue 4): offline 1,000,000 shipments with a year of history <= 90 s and <= 6 GB
peak; online <= 1 ms median per shipment in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this file is called features.py: keep its folder from shadowing the ``features`` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
DAYS = 365
END = "2026-11-25"


def ensure_data(data: Path, size: int) -> Path:
    """Simulated world of ``size`` shipments over a year (cached)."""
    out = data / f"n{size}"
    if (out / "shipments.parquet").exists():
        return out
    per_day = max(50, round(size / DAYS))
    cmd = [str(ROOT / ".venv" / "bin" / "cargorisk"), "simulate", "--out", str(out),
           "--days", str(DAYS), "--seed", "1", "--shipments-per-day", str(per_day),
           "--end", END]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def run_child(*args: str) -> tuple[dict, float]:
    """Run this file as a child; returns its JSON result and its peak RSS in MB."""
    proc = subprocess.Popen(
        [PYTHON, "-W", "ignore", __file__, "--child", *args],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args} failed with status {status}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


# -- children -----------------------------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SpillWatch:
    """Peak bytes of the files under a folder (DuckDB's spill directory), polled in a thread."""

    def __init__(self, folder: Path):
        import threading

        self.folder, self.peak = folder, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.folder):
            for name in files:
                with contextlib.suppress(OSError):  # removed between listing and stat
                    total += os.path.getsize(os.path.join(root, name))
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._size())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def child_offline(folder: str, engine: str = "pandas", memory_limit: str = "2GB",
                  threads: str = "2") -> dict:  # fmt: skip
    import tempfile

    import pandas as pd

    import features.pipeline as pipeline
    from features.engine import EngineSettings

    timing: dict[str, float] = {}

    def timed(fn):
        def run(*args, **kwargs):
            t, c = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            timing["aggregates_s"] = time.perf_counter() - t
            timing["aggregates_cpu_s"] = time.process_time() - c
            return out

        return run

    pipeline.duckdb_aggregates = timed(pipeline.duckdb_aggregates)
    pipeline.spark_aggregates = timed(
        pipeline.spark_aggregates
    )  # CPU: this process only, not the JVM
    pipeline.history.offline_aggregates = timed(pipeline.history.offline_aggregates)
    shipments = pd.read_parquet(Path(folder) / "shipments.parquet")
    outcomes = pd.read_parquet(Path(folder) / "outcomes.parquet")
    input_rss = _rss_mb()
    t = time.perf_counter()
    shipments.sort_values("declared_at", kind="stable").groupby("consignee_id").cumcount()
    baseline = time.perf_counter() - t
    spill_root = Path(tempfile.mkdtemp(prefix="bench-spill-"))
    settings = EngineSettings(
        memory_limit=memory_limit, threads=int(threads), temp_directory=str(spill_root)
    )
    watch = SpillWatch(spill_root)
    t, c = time.perf_counter(), time.process_time()
    frame = pipeline.build_training_frame(
        shipments, outcomes, engine=engine, engine_settings=settings
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    spilled = watch.stop()
    spill_root.rmdir()
    return {
        "engine": engine,
        "memory_limit": memory_limit if engine == "duckdb" else None,
        "threads": int(threads) if engine == "duckdb" else None,
        "aggregates_s": round(timing["aggregates_s"], 2),
        "aggregates_cpu_s": round(timing["aggregates_cpu_s"], 2),
        "spilled_mb": round(spilled / 2**20, 1) if engine == "duckdb" else None,
        "rows": len(shipments),
        "outcomes": len(outcomes),
        "features": frame.shape[1] - 2,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "baseline_s": round(baseline, 3),
        "ratio": round(wall / baseline, 1),
        "input_rss_mb": round(input_rss),
    }


def child_parquet(folder: str, memory_limit: str, threads: str) -> dict:
    """The raw aggregates straight from the Parquet files (DuckDB reads them; no pandas
    frame): the engine's own cost, its memory bounded by ``memory_limit``."""
    import tempfile

    from features.engine import EngineSettings, parquet_aggregates

    spill_root = Path(tempfile.mkdtemp(prefix="bench-spill-"))
    settings = EngineSettings(
        memory_limit=memory_limit, threads=int(threads), temp_directory=str(spill_root)
    )
    rss0 = _rss_mb()
    watch = SpillWatch(spill_root)
    t, c = time.perf_counter(), time.process_time()
    ids, _, raw = parquet_aggregates(
        Path(folder) / "shipments.parquet", Path(folder) / "outcomes.parquet", settings
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    spilled = watch.stop()
    spill_root.rmdir()
    return {
        "engine": "duckdb-parquet",
        "memory_limit": memory_limit,
        "threads": int(threads),
        "rows": len(ids),
        "raw_aggregates": len(raw),
        "raw_output_mb": round(sum(v.nbytes for v in raw.values()) / 2**20),
        "rss_before_mb": round(rss0),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "spilled_mb": round(spilled / 2**20, 1),
    }


def child_write(folder: str, memory_limit: str, threads: str) -> dict:
    """The raw aggregates straight from the Parquet files into Parquet files
    (``features.engine.write_aggregates``): nothing held in this process, so the peak is
    DuckDB's within ``memory_limit``. Reads ``shipments.parquet`` or a month-partitioned
    ``shipments/`` folder (``cargorisk simulate --by-month``)."""
    import shutil
    import tempfile

    from features.engine import EngineSettings, write_aggregates

    ships, outs = world_files(Path(folder))  # one file each or written by month
    spill_root = Path(tempfile.mkdtemp(prefix="bench-spill-"))
    out = Path(tempfile.mkdtemp(prefix="bench-aggregates-"))
    settings = EngineSettings(
        memory_limit=memory_limit, threads=int(threads), temp_directory=str(spill_root)
    )
    rss0 = _rss_mb()
    watch = SpillWatch(spill_root)
    t, c = time.perf_counter(), time.process_time()
    files = write_aggregates(ships, outs, out, settings)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    spilled = watch.stop()
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(files["shipments"]).metadata.num_rows
    written = sum(os.path.getsize(f) for f in files.values())
    shutil.rmtree(out)
    spill_root.rmdir()
    return {
        "engine": "duckdb-parquet-to-parquet",
        "memory_limit": memory_limit,
        "threads": int(threads),
        "rows": rows,
        "files": len(files),
        "written_mb": round(written / 2**20),
        "rss_before_mb": round(rss0),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "spilled_mb": round(spilled / 2**20, 1),
    }


def world_files(root: Path) -> tuple[Path | str, Path | str]:
    """The shipments and outcomes Parquet of a world: one file each, or month folders
    (``cargorisk simulate --by-month``) as globs."""
    if (root / "shipments.parquet").exists():
        return root / "shipments.parquet", root / "outcomes.parquet"
    return (str(root / "shipments" / "month=*" / "*.parquet"),
            str(root / "outcomes" / "month=*" / "*.parquet"))  # fmt: skip


def child_lazy(folder: str, memory_limit: str, threads: str, days: str) -> dict:
    """The lazy training frame (``features.parquet_frame.parquet_training_frame``) from the
    world's Parquet: every aggregate and the link graph over the whole history, the feature
    rows of the inspected shipments and of the last ``days`` days only (what ``cargorisk
    train --test-days N`` keeps with ``days`` = 2 N)."""
    import shutil
    import tempfile

    import pandas as pd

    from features.engine import EngineSettings
    from features.parquet_frame import parquet_span, parquet_training_frame

    ships, outs = world_files(Path(folder))
    spill_root = Path(tempfile.mkdtemp(prefix="bench-spill-"))
    settings = EngineSettings(
        memory_limit=memory_limit, threads=int(threads), temp_directory=str(spill_root)
    )
    rss0 = _rss_mb()
    watch = SpillWatch(spill_root)
    t, c = time.perf_counter(), time.process_time()
    total, _, last = parquet_span(ships, settings)
    since = last.normalize() - pd.Timedelta(days=int(days) - 1)
    frame = parquet_training_frame(ships, outs, since=since, settings=settings)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    spilled = watch.stop()
    shutil.rmtree(spill_root, ignore_errors=True)
    return {
        "engine": "duckdb-lazy-frame",
        "memory_limit": memory_limit,
        "threads": int(threads),
        "rows": int(total),
        "kept_rows": len(frame.features),
        "columns": frame.features.shape[1],
        "since": str(since),
        "rss_before_mb": round(rss0),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "spilled_mb": round(spilled / 2**20, 1),
    }


def child_online(folder: str, n_new: str) -> dict:
    """The service's online path without the service (issue 15): the snapshot of all history
    but the last ``n_new`` shipments (DuckDB, one thread, as ``cargorisk features
    materialize`` computes it), its rows held in :class:`features.online.rows.MemoryRows`,
    then the new shipments one by one as serving takes them: the rows of its keys, its
    features from them (``MemoryRows.features``: :func:`manifest_keys`, ``rows``,
    :func:`feature_rows`), then its deltas counted; the reports counted once known."""
    import gc

    import numpy as np
    import pandas as pd

    from features.manifest import prepare
    from features.online.replay import snapshot_tables
    from features.online.rows import MemoryRows

    shipments = pd.read_parquet(Path(folder) / "shipments.parquet")
    outcomes = pd.read_parquet(Path(folder) / "outcomes.parquet")
    shipments = shipments.sort_values("declared_at", kind="stable").reset_index(drop=True)
    n_new = int(n_new)
    cut = shipments["declared_at"].iloc[-n_new]
    past = shipments[shipments["declared_at"] < cut]
    new = shipments[shipments["declared_at"] >= cut]
    # the reports the snapshot does not count yet (known at or after the cut), in known order
    declared = pd.Series(shipments["declared_at"].to_numpy(), index=shipments["shipment_id"])
    reports = outcomes.drop_duplicates(["shipment_id", "inspected_at"], keep="first")
    reports = reports[reports["shipment_id"].isin(declared.index)].copy()
    reports["known"] = np.maximum(
        reports["result_at"].to_numpy(), declared.loc[reports["shipment_id"]].to_numpy()
    )
    later = reports[reports["known"] >= cut].sort_values("known", kind="stable")
    by_id = shipments.set_index("shipment_id")
    gc.collect()
    rss0 = _rss_mb()
    t = time.perf_counter()
    snap = snapshot_tables(past, outcomes, int(cut.value))
    snapshot_s = time.perf_counter() - t
    rows_of_tables = {name: len(frame) for name, frame in snap.tables.items()}
    t = time.perf_counter()
    rows = MemoryRows(snap.tables)
    load_s = time.perf_counter() - t
    del snap
    gc.collect()
    rows_mb = _rss_mb() - rss0

    times, cpus, adds, base, mapped = [], [], [], [], []
    due = later["known"].to_numpy()
    done = 0
    new_times = new["declared_at"].to_numpy()
    for i in range(len(new)):
        upto = int(np.searchsorted(due, new_times[i], "left"))
        if upto > done:  # known before this shipment: counted on their declarations first
            chunk = later.iloc[done:upto]
            p_reports = prepare(by_id.loc[chunk["shipment_id"]].reset_index(), tuple_keys=True)
            rows.add_reports(
                p_reports,
                chunk["known"].to_numpy(dtype="datetime64[ns]").astype("int64").tolist(),
                (chunk["result"].astype(str).str.casefold() == "seized").tolist(),
            )
            done = upto
        t0 = time.perf_counter()
        row = new.iloc[[i]].copy()
        record = {k: (None if pd.isna(v) else v) for k, v in row.iloc[0].to_dict().items()}
        tm = time.perf_counter()
        rows.features(record, prepare(record, tuple_keys=True))
        mapped.append(time.perf_counter() - tm)
        t1, c1 = time.perf_counter(), time.process_time()
        p = prepare(row, tuple_keys=True)
        rows.features(row, p)
        t2, c2 = time.perf_counter(), time.process_time()
        cpus.append(c2 - c1)
        rows.add_shipments(p)
        t3 = time.perf_counter()
        base.append(t1 - t0)
        times.append(t2 - t1)
        adds.append(t3 - t2)
    batch = new.iloc[:1000]
    t = time.perf_counter()
    rows.features(batch)
    per_row_batch = (time.perf_counter() - t) / len(batch)
    ms = np.array(times) * 1e3
    return {
        "path": "snapshot rows (MemoryRows) + features.online.rows",
        "history_shipments": len(past),
        "history_outcomes": int((reports["known"] < cut).sum()),
        "snapshot_s": round(snapshot_s, 1),
        "rows_load_s": round(load_s, 1),
        "snapshot_rows": rows_of_tables,
        "rows_rss_mb": round(rows_mb),
        "rows_mb_per_million": round(rows_mb / (len(past) / 1e6)),
        "scored": len(new),
        "reports_counted_online": done,
        "features_median_ms": round(float(np.median(ms)), 3),
        "features_p90_ms": round(float(np.percentile(ms, 90)), 3),
        "features_p99_ms": round(float(np.percentile(ms, 99)), 3),
        "features_cpu_median_ms": round(float(np.median(cpus)) * 1e3, 3),
        "features_cpu_p90_ms": round(float(np.percentile(cpus, 90)) * 1e3, 3),
        "features_cpu_p99_ms": round(float(np.percentile(cpus, 99)) * 1e3, 3),
        "features_mapping_median_ms": round(float(np.median(mapped)) * 1e3, 3),
        "features_mapping_p90_ms": round(float(np.percentile(mapped, 90)) * 1e3, 3),
        "add_shipment_median_ms": round(float(np.median(adds)) * 1e3, 3),
        "baseline_row_copy_median_ms": round(float(np.median(base)) * 1e3, 3),
        "ratio_median": round(float(np.median(ms)) / (float(np.median(base)) * 1e3), 1),
        "batch_1000_per_shipment_ms": round(per_row_batch * 1e3, 3),
    }


# -- parent -------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        child = {
            "offline": child_offline,
            "parquet": child_parquet,
            "write": child_write,
            "lazy": child_lazy,
            "online": child_online,
        }
        result = child[kind](*args)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--data", type=Path, default=Path("/tmp/cargorisk-bench-features"))
    parser.add_argument("--engines", default="pandas,duckdb")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB's memory limit.")
    parser.add_argument("--threads", default="2", help="DuckDB's threads.")
    parser.add_argument(
        "--parquet-limits",
        default="",
        help="Also the raw aggregates straight from Parquet at each of these memory limits "
        "(e.g. 2GB,512MB).",
    )
    parser.add_argument(
        "--write-limits",
        default="",
        help="Also the raw aggregates from Parquet written to Parquet (nothing held in the "
        "process) at each of these memory limits (e.g. 1GB).",
    )
    parser.add_argument(
        "--world",
        type=Path,
        default=None,
        help="With --write-limits / --lazy-limits: a world already made (e.g. by `cargorisk "
        "simulate --by-month`), instead of the --sizes worlds.",
    )
    parser.add_argument(
        "--lazy-limits",
        default="",
        help="Also the lazy training frame from Parquet (parquet_training_frame: the "
        "inspected rows and the last --lazy-days days kept) at each of these memory limits.",
    )
    parser.add_argument("--lazy-days", type=int, default=60)
    parser.add_argument("--online-size", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=2000)
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-online", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if args.world is not None:
        for limit in filter(None, args.write_limits.split(",")):
            load = os.getloadavg()[0]
            result, peak = run_child("write", str(args.world), limit, args.threads)
            result["peak_rss_mb"] = round(peak)
            result["load_1min_before"] = round(load, 2)
            print("write", json.dumps(result), flush=True)
        for limit in filter(None, args.lazy_limits.split(",")):
            load = os.getloadavg()[0]
            result, peak = run_child(
                "lazy", str(args.world), limit, args.threads, str(args.lazy_days)
            )
            result["peak_rss_mb"] = round(peak)
            result["load_1min_before"] = round(load, 2)
            print("lazy", json.dumps(result), flush=True)
    elif not args.skip_offline:
        for size in (int(s) for s in args.sizes.split(",")):
            folder = ensure_data(args.data, size)
            for engine in filter(None, args.engines.split(",")):
                load = os.getloadavg()[0]
                result, peak = run_child(
                    "offline", str(folder), engine, args.memory_limit, args.threads
                )
                result["peak_rss_mb"] = round(peak)
                result["load_1min_before"] = round(load, 2)
                print("offline", json.dumps(result), flush=True)
            for limit in filter(None, args.parquet_limits.split(",")):
                load = os.getloadavg()[0]
                try:
                    result, peak = run_child("parquet", str(folder), limit, args.threads)
                except SystemExit as exc:  # e.g. a limit below what the engine can work in
                    print("parquet", json.dumps({"memory_limit": limit, "failed": str(exc)}))
                    continue
                result["peak_rss_mb"] = round(peak)
                result["load_1min_before"] = round(load, 2)
                print("parquet", json.dumps(result), flush=True)
            for limit in filter(None, args.write_limits.split(",")):
                load = os.getloadavg()[0]
                result, peak = run_child("write", str(folder), limit, args.threads)
                result["peak_rss_mb"] = round(peak)
                result["load_1min_before"] = round(load, 2)
                print("write", json.dumps(result), flush=True)
    if not args.skip_online:
        folder = ensure_data(args.data, args.online_size)
        result, peak = run_child("online", str(folder), str(args.new))
        result["peak_rss_mb"] = round(peak)
        print("online", json.dumps(result), flush=True)
    print(f"load average at end: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
