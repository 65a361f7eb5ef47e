"""Retraining closes the loop: what the service stored is exported as contract tables and
``cargorisk train`` trains on exactly that."""

from __future__ import annotations

import datetime as dt
import subprocess

import pandas as pd
import pytest

from common.settings import load_settings
from features.contracts import RECORDED_SHIPMENT_COLUMNS, validate_outcomes, validate_shipments
from serving.engine import ScoringEngine
from serving.model import LoadedModel
from serving.schemas import OutcomeIn, ShipmentIn
from serving.store import Caller
from tests.serving.helpers import BIN, train_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def cli(*args, env) -> str:
    out = subprocess.run(
        [str(BIN / "cargorisk"), *args], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_export_then_train_on_what_the_service_saw(home, tmp_path, monkeypatch):
    import os

    env = {**os.environ, "CARGORISK_HOME": str(home)}
    world = tmp_path / "world"
    cli(
        "simulate",
        "--out",
        str(world),
        "--days",
        "40",
        "--seed",
        "1",
        "--shipments-per-day",
        "800",
        # ending ten days ago: the "new traffic" below and its inspections (two and three days
        # after the period) must not lie in the future, which the service refuses
        "--end",
        (dt.date.today() - dt.timedelta(days=10)).isoformat(),
        env=env,
    )
    ships = pd.read_parquet(world / "shipments.parquet")
    outs = pd.read_parquet(world / "outcomes.parquet")
    model = train_tiny_model(ships, outs)

    settings = load_settings(serve_seed_data=world)
    engine = ScoringEngine(
        settings,
        model_loader=lambda: LoadedModel(model, settings.model_name, "1", "models:/x/1", None),
    )
    engine.start()
    assert engine.ready
    caller = Caller("gate", "system")
    # New traffic after the simulated period, scored by the service, and inspection results.
    last = ships["declared_at"].max()
    # what a caller declares: the contract without what the store records (amendment count)
    fresh = ships.tail(200).drop(columns=list(RECORDED_SHIPMENT_COLUMNS))
    fresh["shipment_id"] = [f"LIVE{i:05d}" for i in range(len(fresh))]
    shift = last + pd.Timedelta(hours=1) - fresh["declared_at"].min()
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        fresh[col] = fresh[col] + shift
    records = [
        {
            k: (None if pd.isna(v) else (v.isoformat() if isinstance(v, pd.Timestamp) else v))
            for k, v in rec.items()
        }
        for rec in fresh.to_dict("records")
    ]
    engine.score([ShipmentIn(**r) for r in records], caller=caller, explain_share=0.1)
    inspected = fresh["shipment_id"].head(20).tolist()
    t0 = (last + pd.Timedelta(days=2)).isoformat()
    t1 = (last + pd.Timedelta(days=3)).isoformat()
    engine.record_outcomes(
        [
            OutcomeIn(
                shipment_id=sid,
                inspected_at=t0,
                result_at=t1,
                result="seized" if k % 5 == 0 else "clean",
                drug="cocaine" if k % 5 == 0 else None,
                quantity_kg=3.0 if k % 5 == 0 else None,
                method="x-ray",
                selected_by="model",
            )
            for k, sid in enumerate(inspected)
        ],
        caller=caller,
    )
    engine.store.close()

    out = tmp_path / "export"
    cli("export", "--out", str(out), env=env)
    exported = validate_shipments(pd.read_parquet(out / "shipments.parquet"))
    exported_outs = validate_outcomes(pd.read_parquet(out / "outcomes.parquet"))
    assert len(exported) == len(ships) + 200
    assert set(exported["shipment_id"]) == set(ships["shipment_id"]) | set(fresh["shipment_id"])
    assert len(exported_outs) == len(outs) + 20
    assert set(inspected) <= set(exported_outs["shipment_id"])

    since = tmp_path / "since"
    cli("export", "--out", str(since), "--since", last.date().isoformat(), env=env)
    recent = pd.read_parquet(since / "shipments.parquet")
    assert set(fresh["shipment_id"]) <= set(recent["shipment_id"])
    assert len(recent) < len(exported)

    summary = cli("train", "--data", str(out), "--test-days", "16", env=env)
    assert "version 1" in summary
