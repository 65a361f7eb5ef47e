"""The quickstart's data and model steps on a small world, run twice: the second run reuses
the world, the champion and the officer key (serving itself is covered by tests/e2e).

The world is the one issue 11 reported: 40 days x 800 shipments at the simulator's own
prevalence, whose test period holds about one seizure - too little evidence to compare models
on, so the gate must say so and let the first model of the registry through."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cargorisk.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ARGS = ["quickstart", "--no-serve", "--days", "40", "--shipments-per-day", "800"]


def test_quickstart_builds_once_and_reuses(home, capsys):
    assert main(ARGS) == 0
    first = capsys.readouterr()
    data = home / "data"
    world = pd.read_parquet(data / "world" / "shipments.parquet")
    history = pd.read_parquet(data / "history" / "shipments.parquet")
    today = pd.read_parquet(data / "today" / "shipments.parquet")
    last_day = world["declared_at"].max().normalize()
    # history ends before today's arrivals; together they are the whole world, no overlap
    assert history["declared_at"].max() < last_day <= today["declared_at"].min()
    assert len(history) + len(today) == len(world)
    assert not set(history["shipment_id"]) & set(today["shipment_id"])
    truth = pd.read_parquet(data / "history" / "truth.parquet")
    assert set(truth["shipment_id"]) == set(history["shipment_id"])
    outcomes = pd.read_parquet(data / "history" / "outcomes.parquet")
    assert outcomes["shipment_id"].isin(history["shipment_id"]).all()
    # both halves are contract directories written by the one writer (today has no outcomes)
    from features.tables import read_contract_dir

    arrivals = read_contract_dir(data / "today")
    assert len(arrivals.shipments) == len(today) and arrivals.outcomes.empty

    keys = json.loads((home / "quickstart-keys.json").read_text())
    assert (home / "quickstart-keys.json").stat().st_mode & 0o077 == 0
    assert keys["officer"] in first.out
    assert "promoting the new version to champion" in first.err
    assert "promoted version 1" in first.out
    # the gate says why it let a model through on so little evidence, and records it
    from common.settings import load_settings
    from training import registry

    settings = load_settings()
    registry.configure(settings)
    gate = json.loads(registry.version_info(settings, 1).tags["gate"])
    if gate["evidence"] == "little":
        assert "too little evidence" in gate["gate_reason"]
        assert "first model of this registry" in gate["gate_reason"]
    assert gate["promoted"] is True and not gate.get("forced")

    assert main(ARGS) == 0
    second = capsys.readouterr()
    assert "reusing the simulated world" in second.err
    assert "reusing the champion" in second.err
    assert "training" not in second.err
    assert keys["officer"] in second.out

    # an older quickstart's champion, trained on other feature definitions (the same names
    # meant other values): the service would refuse it, so the quickstart trains anew
    from tests.serving.helpers import register_model

    current = registry.load_scoring_model(settings.model_uri)
    register_model(current, settings.tracking_uri, settings.model_name, home / "old-art",
                   meta_override={"feature_definitions": 1})  # fmt: skip
    assert registry.load_scoring_model(settings.model_uri).definitions == 1
    assert main(ARGS) == 0
    third = capsys.readouterr()
    assert "cannot serve this code: trained on feature definitions 1" in third.err
    assert "training on the history" in third.err
    assert "reusing the champion" not in third.err
    assert registry.load_scoring_model(settings.model_uri).definitions_problem() is None
