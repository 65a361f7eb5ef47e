"""Model behaviour on a small simulated world (the simulator is a data source, driven through
its CLI like any other): risky newcomers outrank established clean importers, letter case of a
name does not move a score, and training is reproducible from the same data and seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cargorisk.cli import main
from features.catalog import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.pipeline import build_training_frame
from training.config import TrainConfig
from training.dataset import build_dataset, load_tables
from training.split import temporal_split
from training.train import fit_model

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(num_boost_round=150, early_stopping_rounds=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "data"
    # a small world with a raised prevalence, so 40 days hold enough seizures to learn from
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--days",
            "40",
            "--shipments-per-day",
            "800",
            "--seed",
            "11",
            "--end",
            "2026-06-30",
            "--prevalence",
            "0.02",
        ]
    )
    assert code == 0
    tables = load_tables(out)
    dataset = build_dataset(tables, "drop")
    # truth is read only to pick a probe that is really clean; it never reaches the model
    truth = pd.read_parquet(out / "truth.parquet")
    return tables, dataset, truth


def _fit(dataset, seed=42):
    split = temporal_split(dataset.declared_at, test_days=8)
    return fit_model(
        dataset.features,
        dataset.label,
        split,
        feature_names=list(FEATURE_NAMES),
        categorical=[c for c in FEATURE_NAMES if c in CATEGORICAL_FEATURES],
        config=CONFIG,
        seed=seed,
        capacity=0.05,
    )[0]


@pytest.fixture(scope="module")
def model(world):
    return _fit(world[1])


def _score_appended(model, tables, probes: pd.DataFrame) -> np.ndarray:
    """Features of ``probes`` as of their time, with all the world's history before them."""
    shipments = pd.concat([tables.shipments, probes], ignore_index=True)
    frame = build_training_frame(shipments, tables.outcomes)
    return model.score(frame.tail(len(probes)))


def _really_clean_consignees(s: pd.DataFrame, truth: pd.DataFrame) -> pd.Index:
    """Consignees with no illicit shipment in truth and no phone or address shared with another
    consignee (so no network exposure either): clean in every sense a feature could see."""
    illicit = set(truth.loc[truth["illicit"], "shipment_id"])
    dirty = set(s.loc[s["shipment_id"].isin(illicit), "consignee_id"])
    shared = set()
    for column in ("consignee_phone", "consignee_address"):
        owners = s.dropna(subset=[column]).groupby(column)["consignee_id"].nunique()
        shared_values = owners[owners > 1].index
        shared |= set(s.loc[s[column].isin(shared_values), "consignee_id"])
    everyone = pd.Index(s["consignee_id"].unique())
    return everyone[~everyone.isin(dirty | shared)]


def test_new_consignee_on_a_risky_route_outranks_a_long_clean_consignee(world, model):
    tables, _, truth = world
    s, o = tables.shipments, tables.outcomes
    seized_ids = o.loc[o["result"] == "seized", "shipment_id"]
    sea = s[s["mode"] == "sea"]
    # the riskiest route of the world: where sea seizures came from
    risky = sea[sea["shipment_id"].isin(seized_ids)]
    route = risky.groupby(["origin_country", "loading_port"]).size().idxmax()
    # a long-established sea consignee, clean in truth and unlinked, with the most history
    counts = sea.groupby("consignee_id").size()
    clean = counts[counts.index.isin(_really_clean_consignees(s, truth))].sort_values(
        ascending=False
    )
    assert clean.iloc[0] >= 20, "the world should have a regular, clean sea importer"
    regular = sea[sea["consignee_id"] == clean.index[0]].iloc[-1]
    end = s["declared_at"].max() + pd.Timedelta(hours=1)
    base = regular.to_frame().T.assign(
        declared_at=end,
        origin_country=route[0],
        departure_country=route[0],
        loading_port=route[1],
        booked_at=pd.NaT,
        departed_at=pd.NaT,
        arrival_at=pd.NaT,
    )
    established = base.assign(shipment_id="PROBE-OLD")
    newcomer = base.assign(
        shipment_id="PROBE-NEW",
        consignee_id="NEWCO-0001",
        consignee_name="Newco Trading",
        consignee_address="1 Nowhere Street",
        consignee_phone="+82 10-0000-0001",
    )
    scores = _score_appended(model, tables, pd.concat([established, newcomer]))
    assert scores[1] > scores[0], f"newcomer {scores[1]:.4f} vs established {scores[0]:.4f}"


def test_letter_case_of_names_does_not_change_scores(world, model):
    tables, _, _ = world
    s = tables.shipments
    recent = s["declared_at"] >= s["declared_at"].max() - pd.Timedelta(days=3)
    base = build_training_frame(s, tables.outcomes)[recent.to_numpy()]
    for change in (str.upper, str.lower, str.title):
        shouted = s.assign(
            shipper_name=s["shipper_name"].map(change, na_action="ignore"),
            consignee_name=s["consignee_name"].map(change, na_action="ignore"),
            consignee_address=s["consignee_address"].map(change, na_action="ignore"),
        )
        frame = build_training_frame(shouted, tables.outcomes)[recent.to_numpy()]
        np.testing.assert_array_equal(model.score(frame), model.score(base))


def test_training_is_reproducible_under_the_seed(world, model):
    again = _fit(world[1])
    assert again.booster.model_to_string() == model.booster.model_to_string()
    assert again.calibration == model.calibration and again.thresholds == model.thresholds
