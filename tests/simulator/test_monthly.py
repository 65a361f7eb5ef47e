"""A world made by month (``cargorisk simulate --by-month``): month partitions on disk, unique
ids across months, campaigns that run across months, the same statistical character as the
in-memory world, read back by the one contract reader exactly like flat files, trainable."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from features.errors import CargoriskError
from features.tables import partition_path, read_contract_dir, read_frame, write_contract_dir
from simulator import SimConfig, simulate
from simulator.monthly import months_of, simulate_by_month

END = pd.Timestamp("2026-11-25")
# 3 calendar months (Sep 25 .. Nov 25: a partial, a whole and a partial month)
SIZE = {"days": 61, "shipments_per_day": 1500, "end": END}


@pytest.fixture(scope="module")
def by_month(tmp_path_factory):
    out = tmp_path_factory.mktemp("monthly") / "world"
    config = SimConfig(seed=11, **SIZE)
    summary = simulate_by_month(config, out)
    return config, out, summary


def _tables(out):
    return {t: read_frame(out / t) for t in ("shipments", "outcomes", "truth")}


def test_months_cover_the_period_once():
    config = SimConfig(seed=1, **SIZE)
    months = months_of(config)
    assert [m.label for m in months] == ["2026-09", "2026-10", "2026-11"]
    assert months[0].first == 0 and months[-1].end == config.days
    assert all(a.end == b.first for a, b in itertools.pairwise(months))
    # Sep 25 .. Oct 1 is 6 days; October has 31
    assert months[0].end == 6 and months[1].end - months[1].first == 31


def test_each_month_is_written_with_its_own_shipments(by_month):
    config, out, summary = by_month
    assert summary.months == ["2026-09", "2026-10", "2026-11"]
    t = _tables(out)
    ships, outs, truth = t["shipments"], t["outcomes"], t["truth"]
    assert len(ships) == summary.shipments == sum(summary.per_month.values())
    assert ships["shipment_id"].is_unique and ships["declared_at"].is_monotonic_increasing
    assert truth["shipment_id"].tolist() == ships["shipment_id"].tolist()
    assert len(outs) == summary.outcomes and outs["shipment_id"].isin(ships["shipment_id"]).all()
    for label in summary.months:
        month = pd.read_parquet(partition_path(out, "shipments", label))
        assert (month["declared_at"].dt.strftime("%Y-%m") == label).all()
        # an outcome is written with its shipment's month, even when its result came later
        month_outs = pd.read_parquet(partition_path(out, "outcomes", label))
        assert month_outs["shipment_id"].isin(month["shipment_id"]).all()
    late = outs.merge(ships[["shipment_id", "declared_at"]], on="shipment_id")
    crossed = late["result_at"].dt.to_period("M") != late["declared_at"].dt.to_period("M")
    assert crossed.any()  # results after their month's end are kept
    assert (outs["result_at"] < config.end).all()  # but only those known by the period's end


def test_campaigns_run_across_months(by_month):
    _, out, _ = by_month
    t = _tables(out)
    ships = t["shipments"].merge(t["truth"], on="shipment_id")
    illicit = ships[ships["illicit"]]
    months = illicit.groupby("scheme")["declared_at"].agg(lambda s: s.dt.to_period("M").nunique())
    assert months.max() >= 2  # a campaign's shipments fall in more than one month
    # a consignee of an express ring receives across a month boundary
    ring = illicit[illicit["scheme"].isin(["express_network", "borrowed_code"])]
    spread = ring.groupby("consignee_phone")["declared_at"].agg(
        lambda s: s.dt.to_period("M").nunique()
    )
    assert (spread >= 2).any()


def test_same_seed_same_files_and_a_used_directory_is_refused(tmp_path):
    small = SimConfig(seed=3, days=20, shipments_per_day=200, end=END)
    a, b = tmp_path / "a", tmp_path / "b"
    simulate_by_month(small, a)
    simulate_by_month(small, b)
    for table in ("shipments", "outcomes", "truth"):
        pd.testing.assert_frame_equal(read_frame(a / table), read_frame(b / table))
    with pytest.raises(CargoriskError, match="already holds a world"):
        simulate_by_month(small, a)


def test_same_character_as_the_in_memory_world(by_month):
    """Same config, other draw: rates agree within the noise of ~90,000 shipments.

    Tolerances: mode shares are ~90 k draws (binomial sd < 0.2 points, allowed 1.5); the
    inspection rate is fixed by capacity (3 %, allowed 0.3 points); prevalence is set
    (0.4 %) but the campaigns are few and lumpy (allowed a factor 1.5); the seizure rate per
    inspection rests on ~100-200 seizures (allowed a factor 1.6); the scheme mix within 10
    points per scheme (a few hundred illicit shipments, a few dozen rings)."""
    config, out, _ = by_month
    t = _tables(out)
    whole = simulate(config)

    def character(ships, outs, truth):
        illicit = truth["illicit"].astype(bool)
        return {
            "modes": ships["mode"].value_counts(normalize=True),
            "inspected": len(outs) / len(ships),
            "seizure_rate": (outs["result"] == "seized").mean(),
            "prevalence": illicit.mean(),
            "schemes": truth.loc[illicit, "scheme"].value_counts(normalize=True),
        }

    a = character(t["shipments"], t["outcomes"], t["truth"])
    b = character(whole.shipments, whole.outcomes, whole.truth)
    assert abs(len(t["shipments"]) / len(whole.shipments) - 1) < 0.02
    assert (a["modes"] - b["modes"]).abs().max() < 0.015
    assert abs(a["inspected"] - b["inspected"]) < 0.003
    assert 1 / 1.5 < a["prevalence"] / b["prevalence"] < 1.5
    assert 1 / 1.6 < a["seizure_rate"] / b["seizure_rate"] < 1.6
    schemes = pd.concat([a["schemes"], b["schemes"]], axis=1).fillna(0)
    assert (schemes.iloc[:, 0] - schemes.iloc[:, 1]).abs().max() < 0.10


def test_partitions_and_flat_files_read_back_identical(by_month, tmp_path):
    _, out, _ = by_month
    parted = read_contract_dir(out)
    flat = write_contract_dir(tmp_path / "flat", parted.shipments, parted.outcomes)
    again = read_contract_dir(flat)
    pd.testing.assert_frame_equal(parted.shipments, again.shipments)
    pd.testing.assert_frame_equal(parted.outcomes, again.outcomes)
    raw = pd.concat(
        [pd.read_parquet(p) for p in sorted((out / "shipments").glob("month=*/*.parquet"))],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(read_frame(out / "shipments"), raw)


def test_a_table_given_twice_or_a_directory_without_partitions_is_an_error(by_month, tmp_path):
    _, out, _ = by_month
    both = tmp_path / "both"
    parted = read_contract_dir(out)
    write_contract_dir(both, parted.shipments, parted.outcomes)
    (both / "shipments" / "month=2026-01").mkdir(parents=True)
    pd.read_parquet(partition_path(out, "shipments", "2026-10")).to_parquet(
        both / "shipments" / "month=2026-01" / "part-0.parquet"
    )
    with pytest.raises(CargoriskError, match=r"shipments table given twice"):
        read_contract_dir(both)
    (tmp_path / "empty" / "shipments").mkdir(parents=True)
    with pytest.raises(CargoriskError, match="without month partitions"):
        read_frame(tmp_path / "empty" / "shipments")


def test_a_messy_world_is_not_made_by_month(tmp_path):
    with pytest.raises(CargoriskError, match="by_month"):
        simulate_by_month(SimConfig(seed=1, messy=True, **SIZE), tmp_path / "w")


FAST = """
num_boost_round: 300
early_stopping_rounds: 20
shap_sample: 150
waterfalls: 1
selection_min_positives: 1
gate: {min_seizures: 1}
"""


@pytest.mark.slow
def test_the_cli_writes_by_month_and_train_reads_it_unchanged(tmp_path, home, capsys):
    """``cargorisk simulate --by-month`` then ``cargorisk train --data OUT`` as it is: the model
    finds hidden smuggling better than the legacy rules and than chance (true recall: over every
    illicit shipment of the test period, inspected or not)."""
    from cargorisk.cli import main

    out = tmp_path / "world"
    args = ["--days", "90", "--shipments-per-day", "1000", "--end", "2026-06-01", "--seed", "3"]
    assert main(["simulate", "--out", str(out), "--by-month", *args]) == 0
    printed = capsys.readouterr().out
    assert "by month (3 months)" in printed
    assert sorted(p.name for p in (out / "shipments").iterdir()) == [
        "month=2026-03", "month=2026-04", "month=2026-05",
    ]  # fmt: skip
    assert main(["simulate", "--out", str(tmp_path / "x"), "--by-month", "--report"]) == 2
    assert "by_month" in capsys.readouterr().err

    config = tmp_path / "fast.yaml"
    config.write_text(FAST)
    assert main(["train", "--data", str(out), "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "version 1" in printed
    rows = {
        line.split()[0]: [float(x) for x in line.split()[1:4]]
        for line in printed.splitlines()
        if line.startswith("true_recall@")
    }
    model, rules, chance = rows["true_recall@5%"]
    assert model > rules and model > 3 * chance
