"""The exploration-based recall estimate against the truth of a simulated world.

Through the real parts, in process: ``cargorisk simulate`` a world, ``cargorisk train`` and
``promote`` on what was known before the served period, then the scoring engine loads the
champion from the registry and, day by day for two weeks, scores the day's shipments as an
inspection system would, an officer opens the day's worklist (which draws and records the plan:
model picks above the cut line, random picks below it), and every pick is inspected - drugs
that are there are found with the simulator's own detection probability of a physical
inspection - and reported through the engine. The recall of the model's selection estimated
from the random picks (serving/health_outcomes.py) must hold the simulator's true recall (the
share of all illicit shipments of the period the model's picks cover) in its interval.

The world is denser than the default (prevalence 2 %) and half the capacity is exploration, so
that two weeks of random picks find enough seizures for an interval that says something; the
estimator does not depend on either.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from cargorisk.cli import main
from common.settings import load_settings
from serving.engine import ScoringEngine
from serving.health_outcomes import outcome_report
from serving.schemas import OutcomeIn, ShipmentIn
from serving.store import Caller
from serving.ui.app import create_app
from simulator.inspection import CONCEALMENT, DETECTION

pytestmark = [pytest.mark.integration, pytest.mark.slow]

END = "2026-11-24"
SERVED_DAYS = 14
FAST = (
    "num_boost_round: 80\nearly_stopping_rounds: 20\nshap_sample: 100\nwaterfalls: 1\n"
    "num_threads: 1\n"
)
GATE = Caller("gate-1", "system", 1)


def _records(frame: pd.DataFrame) -> list[dict]:
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    for record in records:
        for key, value in record.items():
            if key.endswith("_at") and isinstance(value, str):
                record[key] = value.removesuffix("Z")
    return records


def test_recall_estimate_holds_the_true_recall_of_a_simulated_world(home, tmp_path):
    world = tmp_path / "world"
    args = ["--days", "56", "--shipments-per-day", "1000", "--prevalence", "0.02"]
    assert main(["simulate", "--out", str(world), *args, "--end", END, "--seed", "5"]) == 0
    ships = pd.read_parquet(world / "shipments.parquet")
    outs = pd.read_parquet(world / "outcomes.parquet")
    truth = pd.read_parquet(world / "truth.parquet").set_index("shipment_id")
    first = ships["declared_at"].max().normalize() - pd.Timedelta(days=SERVED_DAYS - 1)

    # what was known before the served period: the training data and the service's seed
    known = tmp_path / "known"
    known.mkdir()
    history = ships[ships["declared_at"] < first]
    history.to_parquet(known / "shipments.parquet", index=False)
    seen = outs["shipment_id"].isin(history["shipment_id"]) & (outs["result_at"] < first)
    outs[seen].to_parquet(known / "outcomes.parquet", index=False)
    config = tmp_path / "fast.yaml"
    config.write_text(FAST)
    assert main(["train", "--data", str(known), "--test-days", "10", "--config", str(config)]) == 0
    assert main(["promote"]) == 0

    settings = load_settings(serve_seed_data=known, capacity=0.1, exploration_share=0.5)
    engine = ScoringEngine(settings)
    engine.start()
    officer_key = engine.store.create_key("Officer Kim", "officer")
    officer = engine.store.lookup_key(officer_key)
    rng = np.random.default_rng(11)
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: engine))])
    served = ships[ships["declared_at"] >= first]
    try:
        with TestClient(host, base_url="http://testserver") as client:
            page = client.get("/ui/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            client.post("/ui/login", data={"csrf": csrf, "method": "key", "api_key": officer_key})
            for offset in range(SERVED_DAYS):
                day = (first + pd.Timedelta(days=offset)).date()
                todays = served[served["declared_at"].dt.date == day]
                engine.score([ShipmentIn(**r) for r in _records(todays)], caller=GATE)
                r = client.get("/ui/worklist", params={"day": day.isoformat()})
                assert r.status_code == 200
                picks = engine.store.picks_frame(day, day + dt.timedelta(days=1))
                picks = picks[(picks["scope"] == "") & (picks["port"] == "")]
                assert len(picks) and set(picks["pick"]) == {"model", "random"}
                engine.record_outcomes(_inspect(picks, todays, truth, rng), caller=officer)
        report = outcome_report(engine.store, since=first.date())
        picks = engine.store.picks_frame()
    finally:
        engine.store.close()

    (estimate,) = [e for e in report.recall if (e.scope, e.port) == ("", "")]
    assert estimate.plans == SERVED_DAYS and estimate.random_inspected == estimate.random_picks
    # the truth: the share of the period's illicit shipments the model's picks cover
    picks = picks[(picks["scope"] == "") & (picks["port"] == "")]
    model_ids = picks.loc[picks["pick"] == "model", "shipment_id"]
    illicit = truth.loc[served["shipment_id"], "illicit"]
    true_recall = truth.loc[model_ids, "illicit"].sum() / illicit.sum()
    low, high = estimate.recall_interval
    print(
        f"true recall {true_recall:.3f}; estimated {estimate.recall:.3f} ({low:.3f}..{high:.3f}) "
        f"from {estimate.random_seizures} seizures in {estimate.random_inspected} random picks; "
        f"model picks {estimate.model_picks} found {estimate.model_seizures}"
    )
    assert estimate.random_seizures >= 3  # the interval rests on real seizures
    assert low <= true_recall <= high
    assert high - low < 0.6  # and says something
    # the outcome table of the served period counts the same inspections by selection
    by = {r.selected_by: 0 for r in report.rows}
    for r in report.rows:
        by[r.selected_by] += r.inspections
    assert by == {
        "model": estimate.model_picks,
        "random": estimate.random_picks,
    }


def _inspect(
    picks: pd.DataFrame, todays: pd.DataFrame, truth: pd.DataFrame, rng: np.random.Generator
) -> list[OutcomeIn]:
    """A physical inspection of every pick: drugs that are there are found with the
    simulator's detection probability (less for schemes that hide them well)."""
    arrival = todays.set_index("shipment_id")["declared_at"]
    reports = []
    for pick in picks.itertuples(index=False):
        row = truth.loc[pick.shipment_id]
        p_find = DETECTION["physical"] * CONCEALMENT.get(row["scheme"], 1.0)
        found = bool(row["illicit"]) and rng.random() < p_find
        inspected = arrival[pick.shipment_id] + pd.Timedelta(hours=20)
        reports.append(
            OutcomeIn(
                shipment_id=pick.shipment_id,
                inspected_at=inspected.isoformat(),
                result_at=(inspected + pd.Timedelta(days=2)).isoformat(),
                result="seized" if found else "clean",
                drug=(row["drug"] or "other") if found else None,
                quantity_kg=1.0 if found else None,
                method="physical",
                selected_by=pick.pick,
            )
        )
    return reports
