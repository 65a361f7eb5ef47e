"""Performance from outcomes (serving/health_outcomes.py): the picks of inspection plans
recorded with their selection probabilities, the outcome table, and the inverse-propensity
recall estimate with its Wilson interval, computed by hand on small plans."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.errors import CargoriskError
from serving.health_outcomes import (
    outcome_report,
    outcome_table,
    recall_estimates,
    wilson_interval,
)
from serving.store import Store
from serving.ui import worklist as wl

DAY = dt.date(2026, 3, 2)


def _picks(day: dt.date, model: list[str], random: list[str], pool: int) -> pd.DataFrame:
    """Recorded picks of one plan: model picks (probability 1) and random picks drawn from
    ``pool`` shipments below the cut line."""
    rows = [(s, "model", 1.0) for s in model] + [(s, "random", len(random) / pool) for s in random]
    return pd.DataFrame(
        {
            "plan_day": day,
            "scope": "",
            "port": "",
            "shipment_id": [r[0] for r in rows],
            "pick": [r[1] for r in rows],
            "probability": [r[2] for r in rows],
            "rank": range(1, len(rows) + 1),
            "score": 0.5,
            "scored": len(model) + pool,
            "pool": pool,
            "model_version": "1",
            "drawn_at": pd.Timestamp("2026-03-02 07:00"),
            "caller": "officer",
        }
    )


def _outcomes(seized: list[str], clean: list[str], by: str = "model") -> pd.DataFrame:
    ids = [*seized, *clean]
    at = pd.Timestamp("2026-03-03 10:00")
    return pd.DataFrame(
        {
            "shipment_id": ids,
            "inspected_at": at,
            "result_at": at + pd.Timedelta(days=2),
            "result": ["seized"] * len(seized) + ["clean"] * len(clean),
            "drug": ["cocaine"] * len(seized) + [None] * len(clean),
            "quantity_kg": [1.0] * len(seized) + [np.nan] * len(clean),
            "method": "physical",
            "selected_by": by,
        }
    )


def test_wilson_interval_matches_the_formula_and_is_not_a_point_at_zero():
    low, high = wilson_interval(0, 100)
    assert low == 0.0 and 0.03 < high < 0.04  # 1.96² / (100 + 1.96²) = 0.0370
    assert wilson_interval(0, 100)[1] == pytest.approx(3.8415 / 103.8415, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1 - high) and 0.23 < low < 0.24
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_recall_is_model_seizures_over_those_plus_the_inverse_propensity_estimate():
    # day 1: 2 model picks (1 seizure), 2 random picks of a pool of 100 (1 seizure):
    #   below the line 1 / (2/100) = 50 seizures
    # day 2: 3 model picks (3 seizures), 4 random picks of 200, 2 inspected, none seized
    picks = pd.concat(
        [
            _picks(DAY, ["A1", "A2"], ["R1", "R2"], 100),
            _picks(DAY + dt.timedelta(days=1), ["B1", "B2", "B3"], ["Q1", "Q2", "Q3", "Q4"], 200),
        ]
    )
    outcomes = pd.concat(
        [
            _outcomes(["A1", "B1", "B2", "B3"], ["A2"]),
            _outcomes(["R1"], ["R2", "Q1", "Q2"], by="random"),
        ]
    )
    (est,) = recall_estimates(picks, outcomes)
    assert (est.plans, est.plans_without_exploration) == (2, 0)
    assert (est.model_picks, est.model_seizures) == (5, 4)
    assert (est.random_picks, est.random_inspected, est.random_seizures) == (6, 4, 1)
    assert est.pool == 300
    assert est.below_seizures == pytest.approx(50.0)
    assert est.recall == pytest.approx(4 / 54)
    low, high = wilson_interval(1, 4)
    assert est.below_interval == pytest.approx((300 * low, 300 * high))
    assert est.recall_interval == pytest.approx((4 / (4 + 300 * high), 4 / (4 + 300 * low)))
    assert est.recall_interval[0] <= est.recall <= est.recall_interval[1]


def test_uninspected_random_picks_are_missing_at_random_and_plans_without_them_left_out():
    # 4 random picks of a pool of 40, 2 inspected, 1 seized: 1 / (4/40) * (4/2) = 20
    picks = pd.concat(
        [
            _picks(DAY, ["A1"], ["R1", "R2", "R3", "R4"], 40),
            _picks(DAY + dt.timedelta(days=1), ["B1"], ["Q1"], 30),  # Q1 not inspected
        ]
    )
    outcomes = pd.concat([_outcomes(["A1", "B1"], []), _outcomes(["R1"], ["R2"], by="random")])
    (est,) = recall_estimates(picks, outcomes)
    assert est.below_seizures == pytest.approx(20.0)
    assert (est.plans, est.plans_without_exploration) == (1, 1)
    assert est.model_seizures == 1  # B1 is in a plan left out
    assert est.recall == pytest.approx(1 / 21)


def test_no_seizure_anywhere_gives_no_recall_but_an_interval_of_what_is_possible():
    picks = _picks(DAY, ["A1"], ["R1"], 50)
    (est,) = recall_estimates(picks, _outcomes([], ["A1", "R1"]))
    assert est.recall is None and est.below_seizures == 0.0
    assert est.recall_interval == (0.0, 1.0)


def test_outcome_table_by_week_stream_and_selection():
    outs = pd.concat(
        [
            _outcomes(["S1"], ["S2", "S3"], by="model"),
            _outcomes([], ["S4"], by="random"),
            _outcomes(["S5"], [], by="rule"),
        ]
    )
    outs.loc[outs["shipment_id"] == "S5", "inspected_at"] = pd.Timestamp("2026-03-10 09:00")
    outs.loc[outs["shipment_id"] == "S5", "result_at"] = pd.Timestamp("2026-03-11 09:00")
    modes = {"S1": "sea", "S2": "sea", "S3": "sea", "S4": "express", "S5": "air"}
    rows = outcome_table(outs.reset_index(drop=True), modes)
    got = [(r.week, r.stream, r.selected_by, r.inspections, r.seizures) for r in rows]
    assert got == [
        ("2026-W10", "express", "random", 1, 0),
        ("2026-W10", "sea", "model", 3, 1),
        ("2026-W11", "air", "rule", 1, 1),
    ]
    assert rows[1].hit_rate == pytest.approx(1 / 3)
    assert rows[1].median_days_to_result == 2.0 and rows[2].median_days_to_result == 1.0


def test_scope_keys_read_as_the_worklist_names_them():
    from serving.health_outcomes import scope_words

    assert scope_words("") == "all streams"
    assert scope_words("sea:") == "sea" and scope_words("sea:inland_waterway") == "inland_waterway"
    assert scope_words("air") == "air"
    for stream, mode in (("sea", ""), ("express", "post"), ("", "air")):
        key = wl.Filters(stream=stream, mode=mode).scope_key
        assert scope_words(key) == (mode or stream)


def test_plan_picks_carry_their_selection_probability():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "shipment_id": [f"S{i:03d}" for i in range(200)],
            "score": rng.random(200),
            "model_version": "7",
        }
    )
    planned, summary = wl.plan(frame, capacity=0.05, exploration_share=0.2, seed=1)
    picks = wl.picks(planned, summary)
    assert summary.pool == 200 - summary.model_picks
    assert list(picks["pick"].value_counts().sort_index()) == [8, 2]
    assert (picks.loc[picks["pick"] == "model", "probability"] == 1.0).all()
    assert np.allclose(picks.loc[picks["pick"] == "random", "probability"], 2 / 192)
    assert set(picks["model_version"]) == {"7"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, home):
    if request.param == "sqlite":
        yield f"sqlite:///{home / 'store.db'}"
    else:
        from tests.serving.test_durability_integration import postgres_database

        with postgres_database() as url:
            yield url


def test_store_records_each_pick_once_and_refuses_bad_probabilities(store_url):
    store = Store(store_url)
    picks = _picks(DAY, ["A1", "A2"], ["R1"], 30)[list(wl.PICK_COLUMNS)]
    args = {"scored": 32, "pool": 30, "caller": "officer Kim"}
    assert store.record_picks(DAY, "sea:", "KRPUS", picks, **args) == 3
    assert store.record_picks(DAY, "sea:", "KRPUS", picks, **args) == 0  # a re-render
    assert store.record_picks(DAY, "", "", picks, **args) == 3  # another scope
    more = _picks(DAY, ["A1", "A2"], ["R1", "R9"], 31)[list(wl.PICK_COLUMNS)]
    assert store.record_picks(DAY, "sea:", "KRPUS", more, **args) == 1  # the day grew
    frame = store.picks_frame()
    assert len(frame) == 7 and frame["plan_day"].eq(DAY).all()
    sea = frame[frame["scope"] == "sea:"].set_index("shipment_id")
    assert sea.loc["R1", "probability"] == pytest.approx(1 / 30)  # as first drawn
    assert sea.loc["R9", "probability"] == pytest.approx(2 / 31)
    assert store.picks_frame(DAY + dt.timedelta(days=1)).empty
    bad = picks.assign(probability=0.0)
    with pytest.raises(CargoriskError, match=r"^probability:"):
        store.record_picks(DAY, "air:", "", bad, **args)
    with pytest.raises(CargoriskError, match=r"^pick:"):
        store.record_picks(DAY, "air:", "", picks.assign(pick="rule"), **args)
    store.close()


def test_outcome_report_reads_the_store_and_refuses_a_backwards_window(home):
    store = Store(f"sqlite:///{home / 'store.db'}")
    with pytest.raises(ValueError, match=r"^until:"):
        outcome_report(store, since=DAY, until=DAY)
    report = outcome_report(store)
    assert report.rows == [] and report.recall == []
    body = report.as_dict()
    assert body["rows"] == [] and body["generated_at"]
    store.close()


def test_the_page_section_shows_the_estimate_its_interval_and_the_table():
    from serving.health_outcomes import OutcomeReport
    from serving.ui.app import create_app

    template = create_app(lambda: None).templates.get_template("_outcomes_section.html")
    picks = _picks(DAY, ["A1", "A2"], ["R1", "R2"], 100)
    outcomes = pd.concat([_outcomes(["A1"], ["A2"]), _outcomes(["R1"], ["R2"], by="random")])
    report = OutcomeReport(
        since=None,
        until=None,
        generated_at=dt.datetime(2026, 3, 9),
        rows=outcome_table(outcomes.reset_index(drop=True), {"A1": "sea"}),
        recall=recall_estimates(picks, outcomes),
    )
    html = template.render(outcomes=report)
    (est,) = report.recall
    assert f"{est.recall:.2f}" in html and "50.0" in html  # 1 / (2/100) below the line
    low, high = est.recall_interval
    assert f'aria-label="recall interval {low:.2f} to {high:.2f}"' in html
    assert "2 of 2 (1)" in html and "all streams" in html
    assert "2026-W10" in html and "unknown" in html  # A2 and the random picks: no mode known
    empty = template.render(outcomes=OutcomeReport(None, None, dt.datetime(2026, 3, 9)))
    assert "No inspection plan has been drawn" in empty and "No inspection result" in empty


@pytest.mark.slow
def test_the_interval_covers_the_true_recall_about_as_often_as_it_says():
    """Monte Carlo over many two-week periods of plans: each day 975 shipments below the cut
    line hold a known number of seizures (about 1 %), 25 of them are drawn at random; the
    model's picks found 150 seizures in the period. The 95 % interval must hold the true
    recall (150 / (150 + seizures below the line)) in about 95 % of the periods, and the
    point estimate must be unbiased for the seizures below the line."""
    rng = np.random.default_rng(0)
    days, pool, drawn, m_found = 14, 975, 25, 150
    plan_day = np.repeat([DAY + dt.timedelta(days=d) for d in range(days)], drawn + 1)
    kind = np.tile(["model"] + ["random"] * drawn, days)
    covered, below_true, below_est = 0, [], []
    reps = 200
    for _ in range(reps):
        truth = rng.binomial(pool, 0.01, days)  # seizures below the line, per day
        # each random pick finds one with the chance of drawing it (hypergeometric draws)
        found = rng.hypergeometric(truth, pool - truth, drawn)
        seized = np.zeros((days, drawn + 1), dtype=bool)
        for d in range(days):
            seized[d, 1 : 1 + found[d]] = True
        picks = pd.DataFrame(
            {
                "plan_day": plan_day,
                "scope": "",
                "port": "",
                "shipment_id": [f"S{i}" for i in range(len(plan_day))],
                "pick": kind,
                "probability": np.where(kind == "model", 1.0, drawn / pool),
                "pool": pool,
                "scored": pool + 1,
                "drawn_at": pd.Timestamp("2026-03-02"),
            }
        )
        outcomes = pd.DataFrame(
            {
                "shipment_id": picks["shipment_id"],
                "result": np.where(seized.ravel(), "seized", "clean"),
            }
        )
        (est,) = recall_estimates(picks, outcomes)
        # the model's seizures of the period: fixed, as a census of its picks would count
        recall_true = m_found / (m_found + truth.sum())
        low = m_found / (m_found + est.below_interval[1])
        high = m_found / (m_found + est.below_interval[0])
        covered += low <= recall_true <= high
        below_true.append(truth.sum())
        below_est.append(est.below_seizures)
    print(f"coverage {covered / reps:.3f}, seizures below the line "
          f"{np.mean(below_est):.1f} estimated vs {np.mean(below_true):.1f} true")  # fmt: skip
    assert 0.90 <= covered / reps <= 0.995
    assert abs(np.mean(below_est) - np.mean(below_true)) < 0.1 * np.mean(below_true)
