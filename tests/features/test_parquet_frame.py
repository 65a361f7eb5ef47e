"""The training frame read lazily from Parquet (features/parquet_frame.py): only the kept rows
come out, each equal - feature by feature - to the whole frame's row for the same shipment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.engine import EngineSettings
from features.errors import ContractError
from features.parquet_frame import parquet_span, parquet_training_frame
from features.pipeline import build_training_frame
from features.tables import validate_table
from tests.features.helpers import ATTRIBUTES, assert_same_features, random_world
from tests.features.test_engine import edge_world, write_by_month

SETTINGS = EngineSettings(threads=1, memory_limit="512MB")


def whole_frame(shipments, outcomes, attributes=None) -> pd.DataFrame:
    """The current path: the whole sorted table through the numpy executor."""
    s = shipments.sort_values(["declared_at", "shipment_id"], kind="stable")
    return build_training_frame(s.reset_index(drop=True), outcomes, attributes=attributes)


def expected_rows(frame: pd.DataFrame, outcomes: pd.DataFrame, since) -> pd.DataFrame:
    """The rows training needs: inspected shipments and every one declared from ``since``."""
    keep = frame["shipment_id"].isin(outcomes["shipment_id"])
    if since is None:
        keep[:] = True
    else:
        keep |= frame["declared_at"] >= naive(since)
    return frame[keep.to_numpy()].reset_index(drop=True)


def naive(stamp) -> pd.Timestamp:
    """A time as tz-naive UTC (as feature frames hold ``declared_at``)."""
    stamp = pd.Timestamp(stamp)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def simulated_world():
    from simulator.config import SimConfig
    from simulator.core import simulate

    sim = simulate(
        SimConfig(
            days=40,
            shipments_per_day=50,
            seed=3,
            end=pd.Timestamp("2026-06-01"),
            prevalence=0.05,
            inspection_capacity=0.25,
        )
    )
    shipments = validate_table("shipments", sim.shipments)
    outcomes = validate_table("outcomes", sim.outcomes)
    return shipments, outcomes


@pytest.mark.parametrize("since", ["2026-05-20", None])
def test_kept_rows_equal_the_whole_frame_on_a_simulated_world_by_month(tmp_path, since):
    shipments, outcomes = simulated_world()
    assert (outcomes["result"] == "seized").sum() > 0
    since = pd.Timestamp(since) if since else None
    got = parquet_training_frame(
        write_by_month(shipments, tmp_path / "shipments", "declared_at"),
        write_by_month(outcomes, tmp_path / "outcomes", "result_at"),
        since=since,
        settings=SETTINGS,
    )
    expected = expected_rows(whole_frame(shipments, outcomes), outcomes, since)
    assert 0 < len(got.features) == len(expected)
    if since is not None:
        assert len(got.features) < len(shipments)  # some rows are really left out
    assert_same_features(expected, got.features)
    assert (got.features["declared_at"].to_numpy() == expected["declared_at"].to_numpy()).all()
    assert got.shipments["shipment_id"].tolist() == expected["shipment_id"].tolist()
    assert got.total == len(shipments)
    first, last = shipments["declared_at"].min(), shipments["declared_at"].max()
    assert (got.first, got.last) == (naive(first), naive(last))


def test_kept_rows_equal_on_a_messy_world_with_attributes_and_edge_cases(tmp_path):
    shipments, outcomes = random_world(900, days=20, seed=21, messy=True, attributes=True)
    shipments.to_parquet(tmp_path / "shipments.parquet", index=False)
    outcomes.to_parquet(tmp_path / "outcomes.parquet", index=False)
    since = pd.Timestamp("2026-01-15")
    got = parquet_training_frame(
        tmp_path / "shipments.parquet",
        tmp_path / "outcomes.parquet",
        since=since,
        attributes=ATTRIBUTES,
        settings=SETTINGS,
    )
    expected = expected_rows(whole_frame(shipments, outcomes, ATTRIBUTES), outcomes, since)
    assert len(got.features) < len(shipments)
    assert_same_features(expected, got.features)

    # ties at one instant, results at the boundary, duplicate and orphan outcomes, one huge key
    shipments, outcomes = edge_world()
    edge = tmp_path / "edge"
    edge.mkdir()
    start = shipments["declared_at"].min()
    since = start + pd.Timedelta(days=150)
    got = parquet_training_frame(
        write_by_month(shipments, edge / "shipments", "declared_at"),
        write_by_month(outcomes, edge / "outcomes", "result_at"),
        since=since,
        settings=SETTINGS,
    )
    expected = expected_rows(whole_frame(shipments, outcomes), outcomes, since)
    assert_same_features(expected, got.features)


def test_span_and_errors_are_named(tmp_path):
    shipments, _ = random_world(50, days=5, seed=2)
    shipments.to_parquet(tmp_path / "s.parquet", index=False)
    n, first, last = parquet_span(tmp_path / "s.parquet", SETTINGS)
    assert n == 50
    assert first == naive(shipments["declared_at"].min())
    assert last == naive(shipments["declared_at"].max())
    shipments.drop(columns=["mode"]).to_parquet(tmp_path / "no_mode.parquet", index=False)
    with pytest.raises(ContractError, match="mode"):
        parquet_training_frame(tmp_path / "no_mode.parquet", None, since=None, settings=SETTINGS)
    bad = shipments.assign(gross_weight_kg=-np.ones(len(shipments)))
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ContractError, match="gross_weight_kg"):
        parquet_training_frame(tmp_path / "bad.parquet", None, since=None, settings=SETTINGS)
