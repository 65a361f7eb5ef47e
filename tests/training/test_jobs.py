"""The training commands end to end on a tiny world: train logs and registers, the gate refuses
a worse model and accepts a better one, evaluate/score/models work, bad input is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from cargorisk.cli import main
from common.settings import load_settings
from training import registry
from training.config import load_config
from training.jobs.evaluate import evaluate_job
from training.jobs.promote import promote_job
from training.jobs.score import score_job

from .world import make_world, write_world

# The tiny world's periods hold a handful of seizures: these configs let family selection run
# on them and keep the gate strict (its little-evidence path has its own tests).
FAST = """
num_boost_round: 300
early_stopping_rounds: 20
shap_sample: 150
waterfalls: 1
selection_min_positives: 1
gate: {min_seizures: 1}
"""
WEAK = """
lightgbm: {num_leaves: 2, learning_rate: 0.001, min_data_in_leaf: 200}
num_boost_round: 1
early_stopping_rounds: 1
shap_sample: 50
waterfalls: 0
select_families: false
gate: {min_seizures: 1}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("world") / "data", days=40, per_day=150)


@pytest.fixture
def configs(tmp_path):
    fast, weak = tmp_path / "fast.yaml", tmp_path / "weak.yaml"
    fast.write_text(FAST)
    weak.write_text(WEAK)
    return fast, weak


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_train_logs_everything_and_the_gate_guards_the_champion(home, data, configs, capsys):
    fast, weak = configs
    # a weak model first: it cannot beat the rules baseline, so only --force promotes it
    code, out, _ = _run(capsys, "train", "--data", str(data), "--config", str(weak))
    assert code == 0 and "version 1" in out
    assert "best round 1 is at the round cap" in out  # one round allowed: the cap decided
    code, out, err = _run(capsys, "promote", "--config", str(weak))
    assert code == 1 and "NOT promoted" in out and "rules baseline" in out
    code, _, err = _run(capsys, "promote", "--force")
    assert code == 2 and "--reason" in err
    code, out, _ = _run(
        capsys, "promote", "--force", "--reason", "bootstrap the registry", "--config", str(weak)
    )
    assert code == 0 and "forced: bootstrap the registry" in out

    # a real model beats the weak champion on the candidate's test period
    code, out, _ = _run(capsys, "train", "--data", str(data), "--config", str(fast))
    assert code == 0 and "precision@1%" in out and "version 2" in out
    assert "feature families" in out and "registered     " in out and "fits  " in out
    code, out, _ = _run(capsys, "promote", "--version", "2", "--config", str(fast))
    assert code == 0 and "promoted version 2" in out and "champion" in out

    # the weak model again is refused against the strong champion
    _run(capsys, "train", "--data", str(data), "--config", str(weak))
    code, out, _ = _run(capsys, "promote", "--version", "3", "--config", str(fast))
    assert code == 1 and "NOT promoted" in out

    settings = load_settings()
    registry.configure(settings)
    assert registry.champion_version(settings) == 2
    gate = json.loads(registry.version_info(settings, 3).tags["gate"])
    assert gate["promoted"] is False and gate["period"]["from"].startswith("2026-04")
    assert (
        gate["candidate_metrics"]["precision_at_capacity"]
        < (gate["champion_metrics"]["precision_at_capacity"])
    )
    forced = json.loads(registry.version_info(settings, 1).tags["gate"])
    assert forced["forced"] is True and forced["force_reason"] == "bootstrap the registry"

    # run contents: metrics, baselines, plots, curve data, model card, model metadata
    info = registry.version_info(settings, 2)
    m = info.metrics
    for key in (
        "test_precision_at_1pct",
        "test_recall_at_5pct",
        "test_lift_at_1pct",
        "test_pr_auc",
        "test_roc_auc",
        "test_brier",
        "rules_precision_at_1pct",
        "random_precision_at_1pct",
        "test_true_recall_at_5pct",
        "valid_precision_at_5pct",
        "valid_pr_auc",
        "full_precision_at_5pct",
        "valid_full_precision_at_5pct",
        "full_true_recall_at_5pct",
    ):
        assert key in m, key
    assert m["random_lift_at_5pct"] == pytest.approx(1.0)
    kind = "full" if m["valid_full_precision_at_5pct"] == m["valid_precision_at_5pct"] else None
    client = mlflow.MlflowClient()
    tags = client.get_run(info.run_id).data.tags
    assert tags["cargorisk.registered_kind"] in ("full", "raw_challenger")
    assert kind is None or tags["cargorisk.registered_kind"] == kind
    assert tags["cargorisk.label"] == "narcotics seizure"
    assert tags["cargorisk.best_round_at_cap"] == "false"
    if tags["cargorisk.registered_kind"] == "full":
        assert m["test_precision_at_5pct"] == m["full_precision_at_5pct"]
    artifacts = {a.path for a in client.list_artifacts(info.run_id)}
    assert {
        "capacity_curve.json",
        "model_card.md",
        "metrics.json",
        "feature_list.json",
        "family_selection.json",
        "family_selection.md",
    } <= artifacts
    selection = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=info.run_id, artifact_path="family_selection.json"
            )
        ).read_text()
    )
    assert selection["kept"] and len(selection["fits"]) <= 2 * len(selection["decisions"])
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(info.run_id, "plots")}
    for name in (
        "capacity_curve",
        "cumulative_gains",
        "calibration",
        "feature_importance",
        "shap_summary",
    ):
        assert f"plots/{name}.png" in plots
    model = registry.load_scoring_model(f"models:/{settings.model_name}/2")
    assert model.metadata["test_metrics"]["test_precision_at_1pct"] == m["test_precision_at_1pct"]
    assert set(model.metadata["test_period"]) == {"from", "to"}
    assert model.metadata["label_policy"] == "drop"
    assert model.metadata["kind"] == tags["cargorisk.registered_kind"]
    assert model.metadata["families"] == selection["kept"] or model.metadata["kind"] != "full"
    assert model.metadata["dataset"] == {
        "label": {"name": "narcotics seizure", "positive": "seizure"},
        "attributes": {},
    }

    code, out, _ = _run(capsys, "models")
    assert code == 0 and "champion" in out and "refused" in out and "forced" in out


@pytest.mark.slow
def test_evaluate_and_score(home, data, configs, capsys, tmp_path):
    fast, _ = configs
    assert _run(capsys, "train", "--data", str(data), "--config", str(fast))[0] == 0
    code, out, _ = _run(
        capsys, "evaluate", "--model", "1", "--data", str(data), "--from", "2026-04-01", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["model"].endswith("/1") and "test_precision_at_5pct" in result["metrics"]
    assert "rules_precision_at_5pct" in result["metrics"]
    # the DuckDB engine gives the same features, so the same metrics
    code, out, _ = _run(
        capsys, "evaluate", "--model", "1", "--data", str(data), "--from", "2026-04-01",
        "--json", "--engine", "duckdb",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["metrics"] == pytest.approx(result["metrics"], rel=1e-9)
    code, _, err = _run(capsys, "evaluate", "--data", str(data), "--engine", "polars")
    assert code == 2 and "--engine" in err and "pandas, duckdb" in err

    # score the last days of the data with the earlier days as history
    world = make_world(days=40, per_day=150)
    ships = world["shipments"]
    last = ships[ships["declared_at"] >= "2026-04-08"]
    inp = tmp_path / "today.csv"
    last.to_csv(inp, index=False)
    out_path = tmp_path / "scores.parquet"
    code, out, _ = _run(
        capsys,
        "score",
        "--model",
        "1",
        "--input",
        str(inp),
        "--output",
        str(out_path),
        "--explain-top",
        "5",
        "--history",
        str(data),
        "--engine",
        "duckdb",
    )
    assert code == 0, out
    scores = pd.read_parquet(out_path)
    assert len(scores) == len(last) and scores["rank"].tolist() == list(range(1, len(last) + 1))
    assert scores["score"].is_monotonic_decreasing
    explained = scores["reasons"].str.len() > 0
    assert explained.sum() == -(-len(last) * 5 // 100)
    assert explained.iloc[: explained.sum()].all()

    # a file in a customs service's own column names, through an ingest mapping
    examples = Path(__file__).resolve().parents[2] / "examples"
    out_csv = tmp_path / "kcs_scores.csv"
    code, out, err = _run(
        capsys,
        "score",
        "--model",
        "1",
        "--input",
        str(examples / "kcs_declarations.csv"),
        "--mapping",
        str(examples / "kcs_mapping.yaml"),
        "--output",
        str(out_csv),
    )
    assert code == 0 and "scored" in out
    # the mapping's attributes are not the model's (trained without any): said, not used
    assert "not used by this model" in err and "attr.customs_office" in err
    scored = pd.read_csv(out_csv)
    assert len(scored) > 0 and scored["band"].isin(["high", "medium", "low"]).all()
    if "rejected" in out:  # the example holds deliberately broken rows, kept with reasons
        assert (tmp_path / "kcs_scores.rejected.csv").is_file()

    # the same (labelled) mapping scores a file without the label column
    unlabelled = tmp_path / "kcs_unlabelled.csv"
    kcs = pd.read_csv(examples / "kcs_declarations.csv", dtype=str, keep_default_na=False)
    kcs.drop(columns="SEIZ_YN").to_csv(unlabelled, index=False)
    code, out, err = _run(
        capsys,
        "score",
        "--model",
        "1",
        "--input",
        str(unlabelled),
        "--mapping",
        str(examples / "kcs_mapping.yaml"),
        "--output",
        str(tmp_path / "kcs_unlabelled_scores.csv"),
    )
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "kcs_unlabelled_scores.csv")) == len(scored)


def _write(tmp_path, shipments, outcomes):
    tmp_path.mkdir(parents=True, exist_ok=True)
    if shipments is not None:
        shipments.to_parquet(tmp_path / "shipments.parquet", index=False)
    if outcomes is not None:
        outcomes.to_parquet(tmp_path / "outcomes.parquet", index=False)
    return tmp_path


@pytest.fixture(scope="module")
def small():
    return make_world(days=12, per_day=60)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "shipments table is empty"),
        ("no_positive", "no inspection ended in a seizure"),
        ("no_inspection", "no shipment has an inspection outcome"),
        ("single_day", "1 day(s)"),
        ("missing_column", "lacks required column(s): mode"),
        ("missing_table", "no outcomes table"),
        ("bad_value", "origin_country"),
        ("not_a_dir", "not a directory"),
    ],
)
def test_bad_input_is_one_clear_error(home, tmp_path, small, capsys, case, message):
    s, o = small["shipments"], small["outcomes"]
    if case == "empty":
        s = s.head(0)
    elif case == "no_positive":
        o = o.assign(result="clean", drug=None, quantity_kg=float("nan"))
    elif case == "no_inspection":
        o = o.head(0)
    elif case == "single_day":
        s = s.assign(declared_at=pd.Timestamp("2026-03-05 10:00"), arrival_at=pd.NaT)
    elif case == "missing_column":
        s = s.drop(columns=["mode"])
    elif case == "missing_table":
        o = None
    elif case == "bad_value":
        s = s.assign(origin_country="Ecuador")
    data = tmp_path / "d"
    if case != "not_a_dir":
        _write(data, s, o)
    code, _, err = _run(capsys, "train", "--data", str(data))
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err


@pytest.mark.slow
def test_duty_fraud_label_and_tuning_trials_as_nested_runs(home, tmp_path, configs, capsys):
    fast, _ = configs
    data = write_world(tmp_path / "fraud", days=40, per_day=150)
    code, out, err = _run(
        capsys,
        "train",
        "--data",
        str(data),
        "--config",
        str(fast),
        "--label-name",
        "duty fraud",
        "--label-positive",
        "fraud finding",
        "--tune",
        "10m",
        "--tune-trials",
        "3",
    )
    assert code == 0, err
    assert "positive = fraud finding" in out and "fraud findings" in out
    assert "tuning hyper-parameters" in err and "trial   2" in err
    settings = load_settings()
    registry.configure(settings)
    info = registry.version_info(settings, 1)
    client = mlflow.MlflowClient()
    run = client.get_run(info.run_id)
    assert run.data.tags["cargorisk.label"] == "duty fraud"
    assert run.data.tags["cargorisk.label_positive"] == "fraud finding"
    assert run.data.params["tune_trials"] == "3"
    # every trial a nested run of the training run, with its parameters and validation metric
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{info.run_id}'",
    )
    assert len(children) == 3
    for child in children:
        assert child.data.tags["cargorisk.kind"] == "tuning_trial"
        assert "lgb_learning_rate" in child.data.params
        assert "valid_precision_at_5pct" in child.data.metrics
    trials = mlflow.artifacts.load_dict(f"runs:/{info.run_id}/tuning_trials.json")
    assert len(trials["trials"]) == 3 and trials["budget_s"] == 600
    card = mlflow.artifacts.load_text(f"runs:/{info.run_id}/model_card.md")
    assert "fraud finding" in card and "duty fraud" in card
    assert "narcotic" not in card.lower()
    model = registry.load_scoring_model(f"models:/{settings.model_name}/1")
    assert model.metadata["dataset"]["label"] == {
        "name": "duty fraud",
        "positive": "fraud finding",
    }
    # the registered full model carries the best trial's parameters
    if model.metadata["kind"] == "full":
        best = trials["trials"][trials["best"]]["params"]
        assert float(run.data.params["lgb_num_leaves"]) == best["num_leaves"]


def _register_subset_model(settings, data, families, definitions=None):
    """Train a model on some families only and register it as ``train`` would (metadata, run
    parameter ``data_dir``)."""
    from training.candidates import feature_set
    from training.dataset import build_dataset, load_tables
    from training.split import temporal_split
    from training.train import fit_model

    tables = load_tables(data)
    dataset = build_dataset(tables)
    fs = feature_set(tables.info.attributes)
    names = fs.of(families)
    split = temporal_split(dataset.declared_at)
    model, _ = fit_model(
        dataset.features,
        dataset.label,
        split,
        feature_names=names,
        categorical=[n for n in names if n in fs.categorical],
        config=load_config(None).model_copy(update={"num_boost_round": 200}),
        seed=1,
        capacity=settings.capacity,
    )
    model.metadata = {
        "test_period": split.period("test"),
        "training_window": split.period("train"),
        "dataset": tables.info.model_dump(mode="json"),
        "families": list(families),
        "kind": "full",
    }
    if definitions is not None:
        model.definitions = definitions
    registry.configure(settings)
    experiment_id = registry.ensure_experiment(settings)
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_param("data_dir", str(data))
        registry.log_scoring_model(
            model, model.input_example(dataset.features), settings.model_name
        )
    return model, names


@pytest.mark.slow
def test_evaluate_promote_score_with_a_model_on_some_families(home, data, tmp_path):
    settings = load_settings()
    model, names = _register_subset_model(settings, data, ["history", "change"])
    from features.catalog import FEATURE_NAMES

    assert names and set(names) < set(FEATURE_NAMES)  # a strict subset of the catalog
    assert model.feature_names == names
    result = evaluate_job(settings, f"models:/{settings.model_name}/1", data)
    assert result["metrics"]["test_n_rows"] > 0
    record = promote_job(settings, version=1)
    assert record["promoted"] is True
    ships = make_world(days=40, per_day=150)["shipments"]
    inp = tmp_path / "last.parquet"
    ships[ships["declared_at"] >= "2026-04-08"].to_parquet(inp)
    out = score_job(settings, settings.model_uri, inp, tmp_path / "s.csv", history_dir=data)
    assert out["scored"] > 0 and out["explained"] > 0
    scored = pd.read_csv(tmp_path / "s.csv")
    assert scored["reasons"].notna().any()


@pytest.mark.slow
def test_a_champion_on_other_feature_definitions_is_not_compared(home, data):
    """A champion trained on older feature definitions (the same names meant other values)
    cannot serve this code: the gate does not score it on today's features (a wrong
    comparison) but judges the candidate against the rules baseline alone, and says so."""
    settings = load_settings()
    _register_subset_model(settings, data, ["history", "change"], definitions=1)
    assert promote_job(settings, version=1, force=True, reason="an older champion")["promoted"]
    _register_subset_model(settings, data, ["history", "change"])
    record = promote_job(settings, version=2)
    assert "trained on feature definitions 1" in record["champion_unusable"]
    assert record["champion_metrics"] is None and record["rules_metrics"] is not None
    assert record["gate_reason"].startswith("champion version 1 cannot serve this code")
    assert "rules baseline alone" in record["gate_reason"]


def test_bad_tuning_options_are_one_clear_error(home, tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--data", str(tmp_path), "--tune", "10")
    assert code == 2 and "--tune '10'" in err and "90s, 10m or 1h" in err
    code, _, err = _run(capsys, "train", "--data", str(tmp_path), "--tune-trials", "3")
    assert code == 2 and "--tune-trials needs --tune" in err
    code, _, err = _run(capsys, "train", "--data", str(tmp_path), "--label-name", "")
    assert code == 2 and "--label-name" in err


@pytest.mark.slow
def test_attributes_through_train_evaluate_promote_score(home, tmp_path, configs, capsys):
    fast, _ = configs
    data = write_world(tmp_path / "attr", days=40, per_day=150, attributes=True)
    code, out, err = _run(capsys, "train", "--data", str(data), "--config", str(fast))
    assert code == 0, err
    settings = load_settings()
    registry.configure(settings)
    info = registry.version_info(settings, 1)
    m = info.metrics
    assert "challenger_precision_at_5pct" in m and "valid_challenger_pr_auc" in m
    model = registry.load_scoring_model(f"models:/{settings.model_name}/1")
    assert list(model.metadata["dataset"]["attributes"]) == ["import_type", "office", "tax_rate"]
    if model.metadata["kind"] == "raw_challenger":
        assert "attr.import_type" in model.feature_names
    # a model on the manifest and the attributes only, through every command
    model, names = _register_subset_model(settings, data, ["manifest", "attributes"])
    assert {"attr.import_type", "attr.office", "attr.tax_rate"} <= set(names)
    assert model.categories["attr.import_type"] == ["A", "B", "C"]
    uri = f"models:/{settings.model_name}/2"
    assert evaluate_job(settings, uri, data)["metrics"]["test_n_rows"] > 0
    assert promote_job(settings, version=2, force=True, reason="attributes test")["promoted"]
    ships = make_world(days=40, per_day=150, attributes=True)["shipments"]
    inp = tmp_path / "last.parquet"
    ships[ships["declared_at"] >= "2026-04-08"].to_parquet(inp)
    out = score_job(settings, uri, inp, tmp_path / "s.csv", history_dir=data, explain_top=100)
    assert out["scored"] == int((ships["declared_at"] >= "2026-04-08").sum())
    reasons = " ".join(pd.read_csv(tmp_path / "s.csv")["reasons"].dropna())
    assert "import type" in reasons  # the attribute, worded from its spec
