"""Rate and history features must not hurt where they carry no signal: on a world in which
party history is random (no party is persistently riskier; the risk is in the manifest), the
registered model is at least the raw-columns challenger on validation, and the ablation table
says what happened to the history and rates families."""

from __future__ import annotations

import mlflow
import pytest

from common.settings import load_settings
from training.config import TrainConfig
from training.jobs.train import train_job

from .world import write_world

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(
    num_boost_round=1000,
    early_stopping_rounds=30,
    selection_min_positives=10,
    shap_sample=100,
    waterfalls=0,
)


def test_random_party_history_does_not_make_the_registered_model_worse(home, tmp_path):
    data = write_world(tmp_path / "d", days=60, per_day=400, seed=2, history_signal=False)
    lines: list[str] = []
    result = train_job(load_settings(), data, config=CONFIG, progress=lines.append)
    fitted, m = result.fitted, result.metrics
    assert fitted.challenger is not None and fitted.selection is not None
    registered = (m["valid_precision_at_5pct"], m["valid_pr_auc"])
    challenger = (m["valid_challenger_precision_at_5pct"], m["valid_challenger_pr_auc"])
    assert registered >= challenger
    assert fitted.registered.valid.key >= fitted.challenger.valid.key

    decisions = {d.family: d for d in fitted.selection.decisions}
    assert {"history", "rates"} <= set(decisions)
    for family in ("history", "rates"):
        d = decisions[family]
        # a family stayed only because validation was worse without it (on either measure)
        assert d.kept == (not d.without_family.no_worse_than(d.with_family)), family
    table = mlflow.artifacts.load_text(f"runs:/{result.run_id}/family_selection.md")
    for family in ("history", "rates"):
        assert f"| {family} |" in table
    print(table)  # what happened, in the test log
    print(fitted.why)
