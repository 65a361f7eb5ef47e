"""``cargorisk train``: the full model and the raw-columns challenger fitted, evaluated
against the baselines, logged to MLflow and the better one registered."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from features import registry_contract as rc
from features.contracts import (
    DatasetInfo,
    LabelMeaning,
)
from features.errors import CargoriskError
from features.registry_contract import capacity_metric
from features.scoring import ScoringModel
from features.tables import read_info
from training import registry, report
from training.baselines import rules_score
from training.candidates import FeatureSet, Fitted, feature_set, fit_candidates
from training.config import TrainConfig, load_config
from training.dataset import (
    Dataset,
    Tables,
    build_dataset,
    build_dataset_from_parquet,
    engine_options,
    load_tables,
    reads_lazily,
)
from training.evaluate import (
    PeriodScores,
    model_metrics,
    period_curves,
    period_metrics,
    score_period,
)
from training.jobs.shared import Progress, quiet, timed_step
from training.report import plural
from training.split import TemporalSplit, split_bounds, temporal_split
from training.train import FitData, prepare_fit
from training.tuning import parse_budget


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    model_version: int | None
    metrics: dict[str, float]
    model: ScoringModel
    timings: dict[str, float] = field(default_factory=dict)
    fitted: Fitted | None = None
    """The candidates, the family selection and the tuning trials of the run."""


def with_label(info: DatasetInfo, name: str | None, positive: str | None) -> DatasetInfo:
    """``info`` with the label meaning given on the command line (``--label-name``,
    ``--label-positive``). The positive noun defaults to ``"<name> finding"`` when only a name
    is given."""
    if name is None and positive is None:
        return info
    if name is not None and positive is None:
        positive = f"{name.strip()} finding"
        option = "--label-name (and the positive noun derived from it; give --label-positive)"
    else:
        option = "--label-positive"
    try:
        label = LabelMeaning(
            name=(name if name is not None else info.label.name).strip(),
            positive=(positive or "").strip(),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--label-name" if first["loc"][0] == "name" else option
        raise CargoriskError(f"{where}: {first['msg']}") from None
    return info.model_copy(update={"label": label})


def _log_trial(experiment_id: str, capacity: float):
    """Each tuning trial as a nested MLflow run of the training run: its parameters and its
    validation metric."""
    import mlflow

    def log(trial) -> None:
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"trial-{trial.number:03d}", nested=True
        ):
            mlflow.log_params({f"lgb_{k}": v for k, v in trial.params.items()})
            values = {
                capacity_metric("precision", capacity, "valid"): trial.score.precision,
                "valid_pr_auc": trial.score.pr_auc,
                "best_iteration": float(trial.best_iteration),
                "fit_seconds": trial.seconds,
            }
            mlflow.log_metrics({k: float(v) for k, v in values.items() if v == v})
            mlflow.set_tags(
                {
                    rc.TAG_KIND: "tuning_trial",
                    rc.TAG_TRIAL: str(trial.number),
                    rc.TAG_BEST_ROUND_AT_CAP: str(trial.at_cap).lower(),
                }
            )

    return log


def _candidate_rows(metrics: dict[str, float], capacity: float) -> list[tuple[str, ...]]:
    """(candidate, validation precision@capacity / PR-AUC, test ...) for the console and the
    model card."""

    def cell(prefix: str) -> str:
        p = metrics.get(capacity_metric("precision", capacity, prefix))
        a = metrics.get(f"{prefix}_pr_auc")
        if p is None:
            return "-"
        return f"{p:.4f} / {a:.4f}" if a == a else f"{p:.4f} / -"

    return [
        (who, cell(f"valid_{prefix}"), cell(prefix))
        for who, prefix in (("full model", "full"), ("raw-columns challenger", "challenger"))
        if capacity_metric("precision", capacity, prefix) in metrics
    ]


@dataclass
class _Evaluation:
    metrics: dict[str, float]
    """Every metric of the run (registered, both candidates, baselines; validation and test)."""
    test_metrics: dict[str, float]
    """The registered model and the baselines on the test period (``test_/rules_/random_``)."""
    scores: PeriodScores
    """The registered model on the test period."""
    curves: dict
    others: dict[str, list[dict]]
    """Capacity curve (labelled test rows) of the candidate that was not registered."""


def _evaluate(fitted: Fitted, dataset: Dataset, split, num_threads: int) -> _Evaluation:
    """Both candidates and the baselines on the validation and test periods: the registered
    model as ``test_…`` / ``valid_…`` beside ``rules_…`` / ``random_…``, each candidate as
    ``full_…`` / ``challenger_…`` and ``valid_full_…`` / ``valid_challenger_…``."""
    rules = rules_score(dataset.shipments, dataset.consignee_prior)
    chosen = fitted.registered

    def period(model: ScoringModel, mask: np.ndarray) -> PeriodScores:
        return score_period(model, dataset, mask, rules, num_threads=num_threads)

    scores = period(chosen.scoring, split.test)
    metrics = period_metrics(scores)
    test_metrics = dict(metrics)
    metrics.update(model_metrics(period(chosen.scoring, split.valid), "valid"))
    others = {}
    for candidate, prefix in ((fitted.full, "full"), (fitted.challenger, "challenger")):
        if candidate is None:
            continue
        test = scores if candidate is chosen else period(candidate.scoring, split.test)
        if candidate is not chosen:
            others[prefix] = period_curves(test)["labelled"]["test"]
        metrics.update(model_metrics(test, prefix))
        metrics.update(model_metrics(period(candidate.scoring, split.valid), f"valid_{prefix}"))
    return _Evaluation(metrics, test_metrics, scores, period_curves(scores), others)


def _log_fits(fitted: Fitted, capacity: float) -> None:
    """The ablation table and the tuning trials, as run artifacts."""
    import mlflow

    if fitted.selection is not None:
        mlflow.log_dict(fitted.selection.as_dict(capacity), rc.FAMILY_SELECTION_DATA)
        mlflow.log_text(fitted.selection.markdown(capacity), rc.FAMILY_SELECTION_TEXT)
    if fitted.tuning is not None:
        trials = [
            {
                "number": tr.number,
                "params": tr.params,
                "precision_at_capacity": tr.score.precision,
                "pr_auc": tr.score.pr_auc,
                "best_iteration": tr.best_iteration,
                "seconds": tr.seconds,
            }
            for tr in fitted.tuning.trials
        ]
        mlflow.log_dict(
            {
                "budget_s": fitted.tuning.budget_s,
                "elapsed_s": fitted.tuning.elapsed_s,
                "best": fitted.tuning.best.number,
                "trials": trials,
            },
            "tuning_trials.json",
        )


def _figures(
    model: ScoringModel,
    evaluation: _Evaluation,
    test_rows: pd.DataFrame,
    settings,
    config: TrainConfig,
    *,
    positive: str,
) -> list[tuple[str, Any]]:
    """Every plot of the run (artifact path, figure), worded for the label's ``positive``."""
    others = {
        {"full": "full model", "challenger": "raw-columns challenger"}[k] + " (not registered)": v
        for k, v in evaluation.others.items()
    }
    curves = evaluation.curves
    figures = [
        (
            rc.CAPACITY_CURVE_PLOT,
            report.capacity_plot(curves, settings.capacity, positive=positive, others=others),
        ),
        (rc.GAINS_PLOT, report.gains_plot(curves["gains"], positive=positive)),
        (
            rc.CALIBRATION_PLOT,
            report.calibration_plot(curves["reliability"], positive=positive),
        ),
        (rc.IMPORTANCE_PLOT, report.importance_plot(model)),
    ]
    sample = test_rows.sample(n=min(config.shap_sample, len(test_rows)), random_state=settings.seed)
    figures.append((rc.SHAP_SUMMARY_PLOT, report.shap_summary_plot(model, sample)))
    top = np.argsort(-evaluation.scores.model_all, kind="stable")[: config.waterfalls]
    top_rows = test_rows.iloc[top]
    if len(top_rows):
        for shipment_id, fig in report.shap_waterfall_plots(
            model, top_rows, top_rows["shipment_id"].tolist()
        ):
            figures.append((rc.shap_waterfall_plot(shipment_id), fig))
    return figures


def _read(
    data_dir: str | Path,
    label_name: str | None,
    label_positive: str | None,
    progress: Progress,
) -> Tables:
    """The contract tables of ``data_dir``, with the label meaning given on the command line."""
    with timed_step(progress, f"reading {data_dir}"):
        tables = load_tables(data_dir)
    return replace(tables, info=with_label(tables.info, label_name, label_positive))


def _features(tables: Tables, settings, progress: Progress) -> Dataset:
    """Every shipment's point-in-time features and label."""
    with timed_step(progress, "features"):
        return build_dataset(
            tables, settings.unlabelled_policy, engine=engine_options(settings), progress=progress
        )


def kept_since(
    first: pd.Timestamp,
    last: pd.Timestamp,
    config: TrainConfig,
    *,
    valid_from: str | None,
    test_from: str | None,
    test_days: int | None,
) -> pd.Timestamp:
    """From when training needs every shipment, labelled or not: the validation period's start
    (the evaluation periods: capacity metrics, baselines and true recall count all their
    shipments) or the drift reference's first day (:data:`REFERENCE_DAYS` before the last
    declaration), whichever is earlier. Before it, only labelled rows are used."""
    valid, _ = split_bounds(
        first,
        last,
        valid_from=valid_from,
        test_from=test_from,
        test_days=test_days,
        test_share=config.test_share,
        valid_share=config.valid_share,
    )
    return min(valid, last - pd.Timedelta(days=REFERENCE_DAYS))


def _features_from_parquet(
    data_dir: str | Path,
    info: DatasetInfo,
    settings,
    config: TrainConfig,
    *,
    valid_from: str | None,
    test_from: str | None,
    test_days: int | None,
    progress: Progress,
) -> Dataset:
    """The labelled shipments and every shipment of the evaluation periods, their features
    computed by the engine over the whole history of ``data_dir``."""

    def since(first: pd.Timestamp, last: pd.Timestamp) -> pd.Timestamp:
        return kept_since(
            first, last, config, valid_from=valid_from, test_from=test_from, test_days=test_days
        )

    with timed_step(progress, "features"):
        return build_dataset_from_parquet(
            data_dir,
            settings.unlabelled_policy,
            since=since,
            engine_settings=engine_options(settings)["engine_settings"],
            info=info,
            progress=progress,
        )


def _split(
    dataset: Dataset,
    fs: FeatureSet,
    config: TrainConfig,
    *,
    valid_from: str | None,
    test_from: str | None,
    test_days: int | None,
    progress: Progress,
) -> tuple[TemporalSplit, np.ndarray, FitData]:
    """The train/validation/test periods, the labelled test rows (refused when they hold no
    positive: nothing to measure) and the training and validation rows encoded for fitting."""
    info = dataset.info
    positives = plural(info.label.positive)
    split = temporal_split(
        dataset.declared_at,
        valid_from=valid_from,
        test_from=test_from,
        test_days=test_days,
        test_share=config.test_share,
        valid_share=config.valid_share,
        span=dataset.span,
    )
    test_labelled = split.test & dataset.labelled
    if dataset.label[test_labelled].sum() == 0:
        raise CargoriskError(
            f"the test period ({split.test_from.date()} on) has no {info.label.positive} among "
            f"its {int(test_labelled.sum())} labelled shipments; nothing to measure - move "
            "--test-from earlier or give more --test-days"
        )
    data = prepare_fit(
        dataset.features,
        dataset.label,
        split,
        feature_names=fs.names,
        categorical=fs.categorical,
        config=config,
    )
    progress(
        f"{len(data.y_train):,} labelled training shipments ({int(data.y_train.sum()):,} "
        f"{positives}), {len(data.y_valid):,} labelled validation shipments "
        f"({int(data.y_valid.sum()):,} {positives})"
    )
    return split, test_labelled, data


def _fit(
    data: FitData,
    dataset: Dataset,
    split: TemporalSplit,
    fs: FeatureSet,
    settings,
    config: TrainConfig,
    *,
    budget_s: float | None,
    tune_trials: int | None,
    experiment_id: str,
    progress: Progress,
) -> Fitted:
    """The candidates fitted (families selected, tuned when there is a budget) and the one to
    register chosen; warns when its best round is at the round cap."""
    with timed_step(progress, "training"):
        fitted = fit_candidates(
            data,
            dataset.features,
            split,
            fs,
            config=config,
            seed=settings.seed,
            capacity=settings.capacity,
            tune_budget_s=budget_s,
            tune_trials=tune_trials,
            on_trial=_log_trial(experiment_id, settings.capacity),
            progress=progress,
        )
    chosen = fitted.registered
    progress(f"registering the {chosen.kind.replace('_', ' ')} model: {fitted.why}")
    if chosen.info.at_cap:
        progress(
            f"warning: the registered model's best round {chosen.info.best_iteration} is at "
            f"the round cap (num_boost_round {config.num_boost_round}): early stopping did "
            "not act; raise num_boost_round or the learning rate"
        )
    return fitted


def _describe(
    fitted: Fitted,
    evaluation: _Evaluation,
    dataset: Dataset,
    source: str,
    split: TemporalSplit,
    test_labelled: np.ndarray,
    fs: FeatureSet,
    settings,
    config: TrainConfig,
    *,
    budget_s: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The registered model's metadata (what serving and the gate read) and the run's
    parameters."""
    chosen = fitted.registered
    info = dataset.info
    row_counts = {
        "shipments": dataset.shipment_count,
        "inspected": int(dataset.inspected.sum()),
        "seized": int(np.nansum(dataset.label == 1)),  # positives; the name serving reads
        "train_labelled": chosen.info.n_train,
        "valid_labelled": chosen.info.n_valid,
        "test_labelled": int(test_labelled.sum()),
        "test_shipments": int(split.test.sum()),
    }
    validation = {
        c.kind: {"precision_at_capacity": c.valid.precision, "pr_auc": c.valid.pr_auc}
        for c in (fitted.full, fitted.challenger)
        if c is not None
    }
    metadata = {
        "training_window": split.period("train"),
        "valid_period": split.period("valid"),
        "test_period": split.period("test"),
        "row_counts": row_counts,
        "test_metrics": evaluation.test_metrics,
        "capacity": settings.capacity,
        "label_policy": settings.unlabelled_policy,
        "feature_catalog_version": fs.version,
        "data_source": source,
        "seed": settings.seed,
        "best_iteration": chosen.info.best_iteration,
        "best_round_at_cap": chosen.info.at_cap,
        "trained_at": pd.Timestamp.now("UTC").isoformat(),
        "dataset": info.model_dump(mode="json"),
        "families": list(chosen.families),
        "kind": chosen.kind,
        "registered_why": fitted.why,
        "validation": validation,
    }
    lightgbm = {**config.lightgbm, **chosen.lightgbm}
    params = {
        **{f"lgb_{k}": v for k, v in lightgbm.items()},
        "num_boost_round": config.num_boost_round,
        "early_stopping_rounds": config.early_stopping_rounds,
        "stopping_metric": config.stopping_metric,
        "imbalance": config.imbalance,
        "scale_pos_weight": round(chosen.info.scale_pos_weight, 4),
        "best_iteration": chosen.info.best_iteration,
        "seed": settings.seed,
        "capacity": settings.capacity,
        "label_policy": settings.unlabelled_policy,
        "label_name": info.label.name,
        "label_positive": info.label.positive,
        "attributes": ",".join(info.attributes) or "-",
        "data_dir": source,
        "train_from": split.period("train")["from"],
        "valid_from": split.period("valid")["from"],
        "test_from": split.period("test")["from"],
        "test_to": split.period("test")["to"],
        "n_features": len(chosen.feature_names),
        "families": ",".join(chosen.families),
        "kind": chosen.kind,
        "select_families": config.select_families,
        "challenger": config.challenger,
        "fits": fitted.fits,
        "tune_budget_s": budget_s if budget_s is not None else "-",
        "tune_trials": len(fitted.tuning.trials) if fitted.tuning else 0,
        "feature_catalog_version": fs.version,
        **{f"rows_{k}": v for k, v in row_counts.items()},
    }
    return metadata, params


def _log(
    fitted: Fitted,
    evaluation: _Evaluation,
    params: dict[str, Any],
    dataset: Dataset,
    split: TemporalSplit,
    fs: FeatureSet,
    settings,
    config: TrainConfig,
    *,
    register: bool,
    progress: Progress,
) -> Any:
    """Parameters, metrics, tags, feature list, fits, curves, plots and the model card to the
    active MLflow run, and the model itself (registered as a new version when ``register``).
    Returns MLflow's model info."""
    import matplotlib.pyplot as plt
    import mlflow

    chosen = fitted.registered
    model = chosen.scoring
    info = dataset.info
    metrics, curves = evaluation.metrics, evaluation.curves
    with timed_step(progress, "logging to MLflow"):
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        mlflow.set_tags(
            {
                rc.TAG_KIND: "train",
                rc.TAG_TEST_PERIOD: json.dumps(split.period("test")),
                rc.TAG_BEATS_BASELINES: str(_beats(metrics)).lower(),
                rc.TAG_REGISTERED_KIND: chosen.kind,
                rc.TAG_REGISTERED_WHY: fitted.why[:5000],
                rc.TAG_FAMILIES: ",".join(chosen.families),
                rc.TAG_LABEL: info.label.name,
                rc.TAG_LABEL_POSITIVE: info.label.positive,
                rc.TAG_BEST_ROUND_AT_CAP: str(chosen.info.at_cap).lower(),
                rc.TAG_FITS: str(fitted.fits),
            }
        )
        mlflow.log_dict(
            {
                "features": chosen.feature_names,
                "categorical": [n for n in chosen.feature_names if n in model.categories],
                "families": {n: fs.family[n] for n in chosen.feature_names},
                "kind": chosen.kind,
            },
            "feature_list.json",
        )
        _log_fits(fitted, settings.capacity)
        mlflow.log_dict(curves, rc.CAPACITY_CURVE_DATA)
        mlflow.log_dict(metrics, rc.METRICS_DATA)
        test_rows = dataset.features.loc[split.test]
        figures = _figures(
            model, evaluation, test_rows, settings, config, positive=info.label.positive
        )
        for path, fig in figures:
            mlflow.log_figure(fig, path)
            plt.close(fig)
        gain = model.booster.feature_importance(importance_type="gain")
        top_features = [model.feature_names[i] for i in np.argsort(-gain)[:5]]
        mlflow.log_text(
            report.model_card(
                model_name=settings.model_name,
                metadata=model.metadata,
                metrics=metrics,
                params=params,
                feature_names=model.feature_names,
                top_features=top_features,
                candidates=_candidate_rows(metrics, settings.capacity),
                selection=(
                    fitted.selection.markdown(settings.capacity) if fitted.selection else None
                ),
            ),
            "model_card.md",
        )
        return registry.log_scoring_model(
            model,
            model.input_example(test_rows),
            settings.model_name if register else None,
            drift_reference=_drift_reference(model, dataset, split, settings, config),
        )


REFERENCE_ROWS = 200_000
"""At most this many shipments (a seeded sample) make the drift reference: quantile edges and
category shares are stable long before, and it bounds the cost."""
REFERENCE_DAYS = 28
"""The drift reference covers the last this many days of the data the run saw (the traffic as
of the model's release, validation and test periods included, labelled or not): the history
features of a dataset's first weeks are immature (every party new, every rate at 1),
and history features keep moving while time passes, so a reference taken from the training
window alone - which ends the validation and test periods before release - made the served
traffic of the quickstart's 40-day world alarm on 88 feature-streams on its first day."""


def _drift_reference(
    model: ScoringModel, dataset: Dataset, split: TemporalSplit, settings, config: TrainConfig
) -> dict[str, Any]:
    """Per stream, the histogram of every model feature and of the score over *all* shipments
    of the last :data:`REFERENCE_DAYS` of the data (inspected or not: the service scores all
    traffic, so that is the population its traffic is compared with). It describes inputs and
    trains nothing: the test period's rows leak no label into the model."""
    from features.drift import build_reference, split_points

    del split  # the reference is the latest traffic the run saw, whatever the split
    rows = dataset.features
    start = rows["declared_at"].max() - pd.Timedelta(days=REFERENCE_DAYS)
    rows = rows[rows["declared_at"] > start]
    if len(rows) > REFERENCE_ROWS:
        rows = rows.sample(n=REFERENCE_ROWS, random_state=settings.seed)
    scores = model.score(rows, num_threads=config.num_threads)
    return build_reference(
        rows,
        rows["mode"],
        model.feature_names,
        model.categories,
        scores=scores,
        splits=split_points(model.booster.dump_model(), model.feature_names),
        window={
            "from": rows["declared_at"].min().isoformat(),
            "to": rows["declared_at"].max().isoformat(),
            "shipments": len(rows),
        },
    )


def train_job(
    settings,
    data_dir: str | Path,
    *,
    experiment: str | None = None,
    valid_from: str | None = None,
    test_from: str | None = None,
    test_days: int | None = None,
    config: TrainConfig | None = None,
    config_path: str | Path | None = None,
    register: bool = True,
    label_name: str | None = None,
    label_positive: str | None = None,
    tune: str | None = None,
    tune_trials: int | None = None,
    run_tags: dict[str, str] | None = None,
    progress: Progress = quiet,
) -> TrainResult:
    """Train the full model (families selected on validation, tuned if ``tune`` gives a time
    budget such as ``"10m"``) and the raw-columns challenger, evaluate both against the
    baselines, log everything to MLflow and register the better on validation as a new version
    of ``settings.model_name``.

    The steps: :func:`_read`, :func:`_features`, :func:`_split`, :func:`_fit`,
    :func:`_evaluate`, :func:`_describe`, :func:`_log`. ``run_tags`` are added to the run
    (``cargorisk retrain`` records where the data came from)."""
    import mlflow

    config = config or load_config(config_path)
    budget_s = parse_budget(tune) if tune is not None else None
    if tune_trials is not None and budget_s is None:
        raise CargoriskError("--tune-trials needs --tune BUDGET (e.g. --tune 10m)")
    with_label(DatasetInfo(), label_name, label_positive)  # bad options fail before any work
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    if reads_lazily(settings, data_dir):
        info = with_label(read_info(Path(data_dir)) or DatasetInfo(), label_name, label_positive)
        source = str(Path(data_dir).resolve())
        timings["read_s"] = 0.0  # the engine reads the tables while building the features
        t = time.perf_counter()
        dataset = _features_from_parquet(
            data_dir,
            info,
            settings,
            config,
            valid_from=valid_from,
            test_from=test_from,
            test_days=test_days,
            progress=progress,
        )
    else:
        tables = _read(data_dir, label_name, label_positive, progress)
        timings["read_s"] = time.perf_counter() - t0
        source = tables.source
        t = time.perf_counter()
        dataset = _features(tables, settings, progress)
    timings["features_s"] = time.perf_counter() - t
    fs = feature_set(dataset.info.attributes)
    split, test_labelled, data = _split(
        dataset,
        fs,
        config,
        valid_from=valid_from,
        test_from=test_from,
        test_days=test_days,
        progress=progress,
    )

    registry.configure(settings)
    experiment_id = registry.ensure_experiment(settings, experiment)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        if run_tags:
            mlflow.set_tags(run_tags)
        t = time.perf_counter()
        fitted = _fit(
            data,
            dataset,
            split,
            fs,
            settings,
            config,
            budget_s=budget_s,
            tune_trials=tune_trials,
            experiment_id=experiment_id,
            progress=progress,
        )
        timings["train_s"] = time.perf_counter() - t
        model = fitted.registered.scoring

        t = time.perf_counter()
        with timed_step(progress, "evaluating on the validation and test periods"):
            evaluation = _evaluate(fitted, dataset, split, config.num_threads)
        timings["evaluate_s"] = time.perf_counter() - t

        model.metadata, params = _describe(
            fitted,
            evaluation,
            dataset,
            source,
            split,
            test_labelled,
            fs,
            settings,
            config,
            budget_s=budget_s,
        )
        t = time.perf_counter()
        model_info = _log(
            fitted,
            evaluation,
            params,
            dataset,
            split,
            fs,
            settings,
            config,
            register=register,
            progress=progress,
        )
        timings["log_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    version_number = getattr(model_info, "registered_model_version", None)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_version=int(version_number) if version_number is not None else None,
        metrics=evaluation.metrics,
        model=model,
        timings=timings,
        fitted=fitted,
    )


def _beats(metrics: dict[str, float]) -> bool:
    from training.evaluate import beats_baselines

    return beats_baselines(metrics)
