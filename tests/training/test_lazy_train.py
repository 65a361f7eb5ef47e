"""Training that reads only the rows it needs (the duckdb engine on Parquet tables) trains the
same models as training on every shipment in pandas: same split, labels, baselines, metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from common.settings import load_settings
from features.tables import write_partition
from training.config import TrainConfig
from training.dataset import (
    build_dataset,
    build_dataset_from_parquet,
    load_tables,
    reads_lazily,
)
from training.jobs.train import REFERENCE_DAYS, kept_since, train_job
from training.split import temporal_split

from .world import make_world, write_world

FAST = TrainConfig(
    num_boost_round=300,
    early_stopping_rounds=20,
    shap_sample=150,
    waterfalls=1,
    selection_min_positives=1,
)


def by_month(out, **kwargs):
    """The world written as month partitions (``cargorisk simulate --by-month``'s layout)."""
    world = make_world(**kwargs)
    for name, time_column in (
        ("shipments", "declared_at"),
        ("outcomes", "result_at"),
        ("truth", None),
    ):
        frame = world[name]
        if time_column is None:
            frame = frame.merge(world["shipments"][["shipment_id", "declared_at"]])
            months = frame.pop("declared_at").dt.strftime("%Y-%m")
        else:
            months = frame[time_column].dt.strftime("%Y-%m")
        for month, part in frame.groupby(months):
            write_partition(out, name, month, part.reset_index(drop=True))
    return out


def test_the_lazy_dataset_holds_the_rows_training_needs_with_the_same_values(tmp_path):
    data = by_month(tmp_path / "data", days=80, per_day=80)
    settings = load_settings(feature_engine="duckdb", engine_threads=1)
    assert reads_lazily(settings, data)
    assert not reads_lazily(load_settings(feature_engine="pandas"), data)

    whole = build_dataset(load_tables(data), "drop")

    def since(first, last):
        return kept_since(first, last, FAST, valid_from=None, test_from=None, test_days=None)

    lazy = build_dataset_from_parquet(data, "drop", since=since)
    cut = since(*lazy.span)
    keep = whole.inspected | (whole.declared_at >= cut).to_numpy()
    assert lazy.total == len(whole.shipments) and len(lazy.shipments) == keep.sum()
    assert len(lazy.shipments) < 0.6 * len(whole.shipments)
    rows = whole.features[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, lazy.features, check_exact=False, rtol=1e-9)
    np.testing.assert_array_equal(whole.label[keep], lazy.label)
    np.testing.assert_array_equal(whole.illicit[keep], lazy.illicit)
    # the rules baseline's "new consignee" counts the whole history, not the kept rows
    from training.baselines import rules_score

    np.testing.assert_array_equal(
        rules_score(whole.shipments)[keep],
        rules_score(lazy.shipments, lazy.consignee_prior),
    )
    a = temporal_split(whole.declared_at)
    b = temporal_split(lazy.declared_at, span=lazy.span)
    assert (a.valid_from, a.test_from) == (b.valid_from, b.test_from)
    for period in ("train", "valid", "test"):
        mask = getattr(a, period) & keep if period == "train" else getattr(a, period)
        assert (mask[keep] == getattr(b, period)).all()
        if period != "train":
            assert not (getattr(a, period) & ~keep).any(), f"{period}: rows left out"
    last = whole.declared_at.max()
    assert not ((whole.declared_at > last - pd.Timedelta(days=REFERENCE_DAYS)) & ~keep).any()

    every = build_dataset_from_parquet(data, "clean", since=since)
    assert len(every.shipments) == len(whole.shipments)


@pytest.mark.slow
def test_training_lazily_gives_the_same_models_and_metrics(home, tmp_path):
    data = write_world(tmp_path / "data", days=40, per_day=150)
    said: list[str] = []
    eager = train_job(load_settings(feature_engine="pandas"), data, config=FAST, register=False)
    lazy = train_job(
        load_settings(feature_engine="duckdb", engine_threads=1),
        data,
        config=FAST,
        register=False,
        progress=said.append,
    )
    assert any(line.startswith("kept ") for line in said), said
    assert eager.metrics.keys() == lazy.metrics.keys()
    differ = {
        k: (v, lazy.metrics[k])
        for k, v in eager.metrics.items()
        if not (v == lazy.metrics[k] or (math.isnan(v) and math.isnan(lazy.metrics[k])))
        and not math.isclose(v, lazy.metrics[k], rel_tol=1e-9, abs_tol=1e-12)
    }
    assert not differ, differ
    assert eager.model.metadata["row_counts"] == lazy.model.metadata["row_counts"]
    for key in ("training_window", "valid_period", "test_period"):
        assert eager.model.metadata[key] == lazy.model.metadata[key]
