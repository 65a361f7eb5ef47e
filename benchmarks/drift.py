"""Cost of one drift refresh of the service (:meth:`serving.drift.DriftMonitor.refresh`): the
features of every stored shipment recomputed from the store, the served week's rows
compared with the training reference, the gauges set.

    .venv/bin/python benchmarks/drift.py [--days 60] [--per-day 1500]

A simulated world (``--days`` x ``--per-day``); a small champion (the tests' tiny LightGBM on
the real feature pipeline, ``tests.serving.helpers.train_tiny_model``) and its reference on
all but the last week; the engine seeded with that history scores the last week in 5,000-
shipment manifests; then one refresh is timed (wall and this process's CPU) with the peak
resident memory before and after it and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from common.settings import load_settings
    from features.drift import build_reference, split_points
    from features.pipeline import build_training_frame
    from serving.engine import ScoringEngine
    from serving.model import LoadedModel
    from serving.schemas import ShipmentIn
    from serving.store import Caller
    from simulator import SimConfig, simulate
    from tests.serving.helpers import train_tiny_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=1500)
    args = parser.parse_args()
    config = SimConfig(
        days=args.days, shipments_per_day=args.per_day, seed=11, end=pd.Timestamp("2026-11-16")
    )
    world = simulate(config)
    ships, outs = world.shipments, world.outcomes
    cut = config.end - pd.Timedelta(days=7)
    history = ships[ships["declared_at"] < cut]
    known = outs[outs["shipment_id"].isin(history["shipment_id"])]
    model = train_tiny_model(history, known)
    frame = build_training_frame(history, known)
    reference = build_reference(
        frame,
        frame["mode"],
        model.feature_names,
        model.categories,
        scores=model.score(frame, num_threads=1),
        splits=split_points(model.booster.dump_model(), model.feature_names),
    )
    del frame
    home = Path(tempfile.mkdtemp(prefix="cargorisk-drift-bench-"))
    seed = home / "seed"
    seed.mkdir()
    history.to_parquet(seed / "shipments.parquet")
    known.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(home=home, serve_seed_data=seed, drift_refresh_minutes=0)
    loaded = LoadedModel(model, "bench", "1", "models:/bench/1", None, reference)
    engine = ScoringEngine(settings, model_loader=lambda: loaded)
    engine.start()
    new = json.loads(
        ships[ships["declared_at"] >= cut].to_json(orient="records", date_format="iso")
    )
    for record in new:
        for key, value in record.items():
            if key.endswith("_at") and isinstance(value, str):
                record[key] = value.removesuffix("Z")
    batch = [ShipmentIn(**r) for r in new]
    for i in range(0, len(batch), 5000):
        engine.score(batch[i : i + 5000], caller=Caller("bench", "system", 1), explain_share=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall, cpu = time.perf_counter(), time.process_time()
    report = engine.drift.refresh()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if report is None:
        raise SystemExit(f"refresh failed: {engine.drift.error}")
    print(
        f"store {len(ships):,} shipments, {report.served:,} served: refresh {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU; peak RSS {before:.0f} MB before, {after:.0f} MB after; "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
