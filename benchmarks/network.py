"""Network components benchmark (issue 14): the whole-network features at 1M and 3M shipments.

Measures, each in a fresh child process on the same prepared link graph:

* **replay**: the one-by-one replay of every shipment through :class:`features.network.LinkGraph`
  (what ``offline_components`` was before, and what the online state does; the reference of
  ``tests/features/test_network.py``);
* **persistent**: ``features.network.offline_components`` - a partially persistent union-find:
  only new parties, first links and seizures replayed, every shipment's roots as of its time
  found in numpy;
* **multi-numpy** / **multi-duckdb** (not in the default ``--methods``): the multi-valued keys
  (transshipment ports, description words) by ``history.multi_offline`` or by the engine's
  SQL on DuckDB (exploded tables from the prepared shipments, then the queries); they need
  the whole prepared world, so their child prepares it first (untimed) and the results are
  compared;
* **engine**: ``features.network.engine_components`` - the same union-find fed by DuckDB (what
  the lazy training frame runs): the child loads the world's Parquet files into the engine's
  tables first (``engine.load_parquet``, untimed: the aggregates need them anyway), then the
  engine de-duplicates the links, sorts the changes and streams them, and answers every
  shipment block by block; DuckDB is bounded by ``--memory-limit`` / ``--threads`` and its
  memory is in the peak. Compared equal to **persistent**;
* **csgraph**: ``scipy.sparse.csgraph.connected_components`` on the final graph (consignee -
  identifier links as of the end): not point in time, but what a snapshot as of one instant
  (or a cluster driver given the edge list) needs, for scale.

The link graph comes from a world made by ``cargorisk simulate --by-month`` (``--world DIR``,
several allowed): a first child reads it, runs ``manifest.prepare`` and the outcome events and
caches only the node codes, times and seizures (``<DIR>/network-input.npz``). Each method's
child loads that cache, resets its peak RSS (``/proc/self/clear_refs``), runs the method and
reports wall, CPU (``process_time``), its RSS before and its peak RSS during the method, and
the sizes of the graph (nodes, links, events). The persistent and replay results are compared
(equal or the run fails), and so are the persistent and engine results. The cache holds the
shipments in the engine's row order, ``(declared_at, shipment_id)``.

    .venv/bin/python benchmarks/network.py --world /tmp/network-bench/n1m \\
        --world /tmp/network-bench/n3m [--methods replay,persistent,csgraph,engine] \\
        [--memory-limit 1GB] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

CACHE = "network-input.npz"


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def prepare_child(world: Path) -> dict:
    """Read the world, prepare it and cache what the network needs."""
    import numpy as np
    import pandas as pd

    from features import manifest
    from features.network import IDENTIFIERS
    from features.pipeline import check_outcomes, check_shipments, outcome_events

    def table(name: str) -> pd.DataFrame:
        files = sorted((world / name).glob("month=*/*.parquet")) or [world / f"{name}.parquet"]
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    s = check_shipments(table("shipments"))
    # the engine's row order, so that its answers compare row by row
    s = s.sort_values(["declared_at", "shipment_id"], kind="stable").reset_index(drop=True)
    o = check_outcomes(table("outcomes"))
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(o, s["shipment_id"], p["t"])
    codes = {k: np.asarray(manifest.codes_of(p, k), dtype="int64")
             for k in ("consignee", *IDENTIFIERS)}  # fmt: skip
    np.savez(world / CACHE, t=p["t"], rows=rows, known=known, seized=seized, **codes)
    return {"shipments": len(p["t"]), "outcomes": len(rows), "seizures": int(seized.sum())}


def multi_child(world: Path, method: str) -> dict:
    """The multi-valued keys (``ports:max_rate``, ``desc:seen``, ``desc:tokens``) on the whole
    prepared world: numpy (``history.multi_offline``) or the engine's SQL on DuckDB
    (``engine.multi_tables`` + ``engine.multi_aggregates``, tables made from the prepared
    shipments included). The single-key aggregates they need (the prior) come first, untimed."""
    import numpy as np
    import pandas as pd

    from features import engine, history, manifest
    from features.pipeline import check_outcomes, check_shipments, outcome_events

    def table(name: str) -> pd.DataFrame:
        files = sorted((world / name).glob("month=*/*.parquet")) or [world / f"{name}.parquet"]
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    s = check_shipments(table("shipments"))
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(
        check_outcomes(table("outcomes")), s["shipment_id"], p["t"]
    )
    del s
    raw, axis = history.offline_aggregates(p, rows, known, seized)
    before = _rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "multi-numpy":
        out = history.multi_offline(p, axis, rows, known, seized, history.prior_rate(raw))
    else:
        out = dict(raw)
        ports, words = engine.multi_tables(p)
        outcomes = engine.outcomes_table(rows, known, seized)
        settings = engine.EngineSettings()
        with engine.duckdb_connection(settings) as con:
            for name, rel in (("ports", ports), ("words", words), ("outcomes", outcomes)):
                con.register(name, rel)
            engine.multi_aggregates(lambda sql: con.sql(sql).to_arrow_table(), len(p["t"]), out)
        out = {k: out[k] for k in ("ports:max_rate", "desc:seen", "desc:tokens")}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    np.savez(world / f"network-{method}.npz", **{k.replace(":", "_"): v for k, v in out.items()})
    with_ports = int(np.isfinite(out["ports:max_rate"]).sum())
    return {"method": method, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "rss_before_mb": round(before), "peak_mb": round(_rss_mb("VmHWM")),
            "shipments": len(p["t"]), "with_ports": with_ports}  # fmt: skip


def load(world: Path):
    import numpy as np

    data = np.load(world / CACHE)
    p = {k: data[k] for k in data.files if k not in ("rows", "known", "seized")}
    p = {("codes:" + k if k != "t" else k): v for k, v in p.items()}
    return p, data["rows"], data["known"], data["seized"]


def world_files(world: Path) -> tuple[str | Path, str | Path]:
    """The shipments and outcomes Parquet of a world (one file each or by month)."""
    if (world / "shipments.parquet").exists():
        return world / "shipments.parquet", world / "outcomes.parquet"
    return (str(world / "shipments" / "month=*" / "*.parquet"),
            str(world / "outcomes" / "month=*" / "*.parquet"))  # fmt: skip


def engine_child(world: Path, memory_limit: str, threads: int) -> dict:
    """``network.engine_components`` for every shipment, on the engine's tables loaded from
    the world's Parquet (untimed); peak and spill of the timed part."""
    import shutil
    import tempfile

    import numpy as np

    from benchmarks.features import SpillWatch
    from features import engine, network

    spill_root = Path(tempfile.mkdtemp(prefix="network-bench-spill-"))
    settings = engine.EngineSettings(memory_limit=memory_limit, threads=threads,
                                     temp_directory=str(spill_root))  # fmt: skip
    with engine.duckdb_connection(settings) as con:
        n = engine.load_parquet(con, *world_files(world))
        con.execute("DROP TABLE IF EXISTS ports; DROP TABLE IF EXISTS words")
        before = _rss_mb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        watch = SpillWatch(spill_root)
        wall, cpu = time.perf_counter(), time.process_time()
        out = network.engine_components(con)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        spilled = watch.stop()
    shutil.rmtree(spill_root, ignore_errors=True)
    np.savez(world / "network-engine.npz", **{k.replace(":", "_"): v for k, v in out.items()})
    return {"method": "engine", "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "rss_before_mb": round(before), "peak_mb": round(_rss_mb("VmHWM")),
            "spilled_mb": round(spilled / 2**20, 1), "memory_limit": memory_limit,
            "threads": threads, "shipments": int(n)}  # fmt: skip


def method_child(world: Path, method: str) -> dict:
    import numpy as np

    from features import network

    p, rows, known, seized = load(world)
    before = _rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM: the peak below is this method's
    wall, cpu = time.perf_counter(), time.process_time()
    info: dict = {}
    if method == "persistent":
        out = network.offline_components(p, rows, known, seized)
    elif method == "replay":
        from tests.features.test_network import replay_components

        out = replay_components(p, rows, known, seized)
    else:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        node, n_nodes = network.link_nodes(p)
        cons = node["consignee"]
        heads, tails = [], []
        for ident in network.IDENTIFIERS:
            ok = (cons >= 0) & (node[ident] >= 0)
            pair = np.unique(cons[ok] * n_nodes + node[ident][ok])
            heads.append(pair // n_nodes)
            tails.append(pair % n_nodes)
        head, tail = np.concatenate(heads), np.concatenate(tails)
        graph = sp.coo_matrix((np.ones(len(head), dtype="int8"), (head, tail)),
                              shape=(n_nodes, n_nodes)).tocsr()  # fmt: skip
        count, labels = connected_components(graph, directed=False)
        parties = np.bincount(labels[np.unique(cons[cons >= 0])], minlength=count)
        info = {"components": int(count), "largest_parties": int(parties.max()),
                "links": len(head), "nodes": int(n_nodes)}  # fmt: skip
        out = {}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"method": method, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "rss_before_mb": round(before), "peak_mb": round(_rss_mb("VmHWM")),
              "shipments": len(p["t"]), **info}  # fmt: skip
    if out:
        arrays = {k.replace(":", "_"): v for k, v in out.items()}
        np.savez(world / f"network-{method}.npz", **arrays)
    return result


def run(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", __file__, "--child", *args],
        stdout=subprocess.PIPE,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, action="append", default=[])
    parser.add_argument("--methods", default="replay,persistent,csgraph")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's (method engine)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB's (method engine)")
    parser.add_argument("--child", nargs=2, metavar=("WORLD", "METHOD"))
    args = parser.parse_args()
    if args.child:
        world, method = Path(args.child[0]), args.child[1]
        if method == "prepare":
            result = prepare_child(world)
        elif method == "engine":
            result = engine_child(world, args.memory_limit, args.threads)
        elif method.startswith("multi-"):
            result = multi_child(world, method)
        else:
            result = method_child(world, method)
        print(json.dumps(result))
        return
    import numpy as np

    for world in args.world:
        if not (world / CACHE).exists():
            print(json.dumps({"world": str(world), **run(str(world), "prepare")}), flush=True)
        load_avg = os.getloadavg()[0]
        for method in args.methods.split(","):
            extra = ("--memory-limit", args.memory_limit, "--threads", str(args.threads))
            result = run(str(world), method, *(extra if method == "engine" else ()))
            print(json.dumps({"world": str(world), "load": round(load_avg, 1), **result}),
                  flush=True)  # fmt: skip
            load_avg = os.getloadavg()[0]
        pairs = (("replay", "persistent"), ("persistent", "engine"),
                 ("multi-numpy", "multi-duckdb"))  # fmt: skip
        for first, second in pairs:
            files = [world / f"network-{m}.npz" for m in (first, second)]
            if all(f.exists() for f in files):
                a, b = (np.load(f) for f in files)
                for name in a.files:
                    if not np.array_equal(a[name], b[name], equal_nan=True):
                        raise SystemExit(f"{world}: {name} differs between {first} and {second}")
                print(json.dumps({"world": str(world), f"{first}_equals_{second}": True}))


if __name__ == "__main__":
    main()
