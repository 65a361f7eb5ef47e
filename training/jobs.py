"""The four jobs behind ``cargorisk train / evaluate / promote / score``: each orchestrates the
pure steps (dataset, split, fit, metrics, plots) and the MLflow side (registry).

The promotion gate compares candidate and champion on the **same** shipments: it re-reads the
candidate's data directory (recorded as run parameter ``data_dir``; ``--data`` overrides),
rebuilds the features, and scores both models on the candidate's held-out test period (model
metadata ``test_period``) at the configured inspection capacity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from features import registry_contract as rc
from features.contracts import (
    OUTCOME_COLUMNS,
    DatasetInfo,
    LabelMeaning,
    attribute_column,
    attribute_columns,
)
from features.errors import CargoriskError
from features.registry_contract import capacity_metric
from features.scoring import ScoringModel
from features.tables import read_frame, validate_table
from training import registry
from training.baselines import rules_score
from training.candidates import Fitted, feature_set, fit_candidates
from training.config import TrainConfig, load_config
from training.dataset import Dataset, build_dataset, engine_options, load_tables
from training.evaluate import (
    PeriodScores,
    model_metrics,
    period_curves,
    period_metrics,
    score_period,
)
from training.metrics import (
    capacity_metrics,
    hits_at,
    n_selected,
    wilson_interval,
)
from training.split import temporal_split
from training.train import prepare_fit
from training.tuning import parse_budget

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@contextmanager
def _step(progress: Progress, what: str):
    progress(f"{what} ...")
    start = time.perf_counter()
    yield
    progress(f"{what}: done in {time.perf_counter() - start:.1f} s")


# ------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------
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


def _plural(noun: str) -> str:
    return noun if noun.endswith("s") else noun + "s"


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
    rules = rules_score(dataset.shipments)
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
    from training import report

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
    progress: Progress = _quiet,
) -> TrainResult:
    """Train the full model (families selected on validation, tuned if ``tune`` gives a time
    budget such as ``"10m"``) and the raw-columns challenger, evaluate both against the
    baselines, log everything to MLflow and register the better on validation as a new version
    of ``settings.model_name``."""
    import mlflow

    from training import report

    config = config or load_config(config_path)
    budget_s = parse_budget(tune) if tune is not None else None
    if tune_trials is not None and budget_s is None:
        raise CargoriskError("--tune-trials needs --tune BUDGET (e.g. --tune 10m)")
    with_label(DatasetInfo(), label_name, label_positive)  # bad options fail before any work
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    with _step(progress, f"reading {data_dir}"):
        tables = load_tables(data_dir)
    tables = replace(tables, info=with_label(tables.info, label_name, label_positive))
    info = tables.info
    positives = _plural(info.label.positive)
    timings["read_s"] = time.perf_counter() - t0
    fs = feature_set(info.attributes)
    t = time.perf_counter()
    with _step(progress, "features"):
        dataset = build_dataset(
            tables, settings.unlabelled_policy, engine=engine_options(settings), progress=progress
        )
    timings["features_s"] = time.perf_counter() - t
    split = temporal_split(
        dataset.declared_at,
        valid_from=valid_from,
        test_from=test_from,
        test_days=test_days,
        test_share=config.test_share,
        valid_share=config.valid_share,
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

    registry.configure(settings)
    experiment_id = registry.ensure_experiment(settings, experiment)
    import matplotlib.pyplot as plt

    with mlflow.start_run(experiment_id=experiment_id) as run:
        t = time.perf_counter()
        with _step(progress, "training"):
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
        timings["train_s"] = time.perf_counter() - t
        chosen = fitted.registered
        model = chosen.scoring
        progress(f"registering the {chosen.kind.replace('_', ' ')} model: {fitted.why}")
        if chosen.info.at_cap:
            progress(
                f"warning: the registered model's best round {chosen.info.best_iteration} is at "
                f"the round cap (num_boost_round {config.num_boost_round}): early stopping did "
                "not act; raise num_boost_round or the learning rate"
            )

        t = time.perf_counter()
        with _step(progress, "evaluating on the validation and test periods"):
            evaluation = _evaluate(fitted, dataset, split, config.num_threads)
        metrics, curves = evaluation.metrics, evaluation.curves
        timings["evaluate_s"] = time.perf_counter() - t

        row_counts = {
            "shipments": len(dataset.shipments),
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
        model.metadata = {
            "training_window": split.period("train"),
            "valid_period": split.period("valid"),
            "test_period": split.period("test"),
            "row_counts": row_counts,
            "test_metrics": evaluation.test_metrics,
            "capacity": settings.capacity,
            "label_policy": settings.unlabelled_policy,
            "feature_catalog_version": fs.version,
            "data_source": tables.source,
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
            "data_dir": tables.source,
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

        t = time.perf_counter()
        with _step(progress, "logging to MLflow"):
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
            model_info = registry.log_scoring_model(
                model,
                model.input_example(test_rows),
                settings.model_name if register else None,
            )
        timings["log_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    version_number = getattr(model_info, "registered_model_version", None)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_version=int(version_number) if version_number is not None else None,
        metrics=metrics,
        model=model,
        timings=timings,
        fitted=fitted,
    )


def _beats(metrics: dict[str, float]) -> bool:
    from training.evaluate import beats_baselines

    return beats_baselines(metrics)


# ------------------------------------------------------------------------------------------
# evaluate
# ------------------------------------------------------------------------------------------
def _period_mask(dataset: Dataset, start: str | None, end: str | None) -> np.ndarray:
    times = dataset.declared_at
    mask = np.ones(len(times), dtype=bool)
    if start:
        mask &= (times >= pd.Timestamp(start)).to_numpy()
    if end:
        mask &= (times <= pd.Timestamp(end)).to_numpy()
    if not mask.any():
        raise CargoriskError(f"no shipment declared between {start or 'start'} and {end or 'end'}")
    return mask


def evaluate_job(
    settings,
    model_uri: str,
    data_dir: str | Path,
    *,
    start: str | None = None,
    end: str | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Score a registered model on any data directory; the same metrics as training, beside
    the baselines on the same shipments (``test_…`` = the model)."""
    registry.configure(settings)
    with _step(progress, f"loading {model_uri}"):
        model = registry.load_scoring_model(model_uri)
    with _step(progress, f"reading {data_dir}"):
        tables = load_tables(data_dir)
    with _step(progress, "features"):
        dataset = build_dataset(
            tables, settings.unlabelled_policy, engine=engine_options(settings), progress=progress
        )
    mask = _period_mask(dataset, start, end)
    labelled = mask & dataset.labelled
    if not labelled.any():
        raise CargoriskError("the chosen period has no labelled (inspected) shipment")
    with _step(progress, "scoring"):
        scores = score_period(model, dataset, mask, rules_score(dataset.shipments))
        metrics = period_metrics(scores)
    train_to = model.metadata.get("training_window", {}).get("to")
    times = dataset.declared_at[mask]
    overlap = bool(train_to and times.min() < pd.Timestamp(train_to))
    return {
        "model": model_uri,
        "period": {"from": times.min().isoformat(), "to": times.max().isoformat()},
        "overlaps_training": overlap,
        "metrics": metrics,
    }


# ------------------------------------------------------------------------------------------
# promote (the quality gate)
# ------------------------------------------------------------------------------------------
def gate_metrics(
    y: np.ndarray, score: np.ndarray, capacity: float, confidence: float = 0.95
) -> dict[str, Any]:
    """Precision and recall at capacity, PR-AUC, and the Wilson interval of the precision
    (hits among the ``selected`` shipments the capacity inspects)."""
    m = capacity_metrics(y, score, [capacity])
    selected = n_selected(len(y), capacity)
    hits = hits_at(y, score, selected) if len(y) else 0.0
    low, high = wilson_interval(hits, selected, confidence)
    return {
        "precision_at_capacity": m[capacity_metric("precision", capacity)],
        "recall_at_capacity": m[capacity_metric("recall", capacity)],
        "pr_auc": m["pr_auc"],
        "selected": selected,
        "hits": hits,
        "precision_interval": [low, high],
    }


def _with_interval(m: dict[str, Any]) -> str:
    low, high = m["precision_interval"]
    return f"{m['precision_at_capacity']:.4f} ({low:.4f}..{high:.4f})"


def _key(m: dict[str, Any]) -> tuple[float, float]:
    """Precision at capacity, then PR-AUC; NaN (no positive to rank) below every value."""
    precision, pr_auc = m["precision_at_capacity"], m["pr_auc"]
    return (precision if precision == precision else -1.0, pr_auc if pr_auc == pr_auc else -1.0)


def gate_decision(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    rules: dict[str, Any],
    config: TrainConfig,
    *,
    positives: int | None = None,
    positive: str = "seizure",
) -> tuple[bool, str]:
    """The gate itself. Returns (passed, reason).

    With evidence (``positives`` - positive labels among the compared rows - at least
    ``gate.min_seizures``, or not given): pass when the candidate's precision at capacity
    exceeds the champion's by more than ``gate.min_gain`` (or ties it with a higher PR-AUC),
    and - if ``gate.beat_rules`` - exceeds the rules baseline's.

    With too little evidence, point estimates cannot tell two rankings apart (one hit moves
    precision at 5 % of 150 rows by 0.125), so the gate says so and compares Wilson intervals
    (``gate.confidence``) of precision at capacity: the candidate is refused when it is
    clearly worse (its interval lies below the other's precision); the first model of a
    registry then goes through, stated as such; against a champion, the candidate must not be
    below it on the point estimates (precision, then PR-AUC), and with no positive at all
    there is nothing to compare and the champion stays.
    """
    gate = config.gate
    cp = candidate["precision_at_capacity"]
    if positives is None or positives >= gate.min_seizures:
        if gate.beat_rules and not cp > rules["precision_at_capacity"]:
            return False, (
                f"candidate precision at capacity {cp:.4f} does not beat the rules baseline "
                f"({rules['precision_at_capacity']:.4f})"
            )
        if champion is None:
            return True, "no champion yet; candidate beats the rules baseline"
        hp = champion["precision_at_capacity"]
        gain = cp - hp
        if gain > gate.min_gain:
            return True, f"precision at capacity {cp:.4f} vs champion {hp:.4f} (+{gain:.4f})"
        if gain == 0 and gate.min_gain == 0 and candidate["pr_auc"] > champion["pr_auc"]:
            return True, (
                f"precision at capacity tied ({cp:.4f}); PR-AUC {candidate['pr_auc']:.4f} vs "
                f"{champion['pr_auc']:.4f}"
            )
        return False, (
            f"candidate precision at capacity {cp:.4f} does not beat champion {hp:.4f} "
            f"by more than {gate.min_gain:g}"
        )

    noun = positive if positives == 1 else _plural(positive)
    little = (
        f"too little evidence to compare: {positives} {noun} among the labelled test "
        f"shipments (gate.min_seizures {gate.min_seizures}); precision at capacity with "
        f"{gate.confidence:.0%} Wilson intervals: candidate {_with_interval(candidate)}, "
        f"rules {_with_interval(rules)}"
    )
    high = candidate["precision_interval"][1]
    if gate.beat_rules and high < rules["precision_at_capacity"]:
        return False, f"{little}; the candidate is clearly below the rules baseline"
    if champion is None:
        return True, (
            f"{little}; first model of this registry: promoted without a measured gain "
            "(compare again when more inspection results are known)"
        )
    little += f", champion {_with_interval(champion)}"
    if positives == 0:
        return False, f"{little}; nothing to compare the champion with: it stays"
    if high < champion["precision_at_capacity"]:
        return False, f"{little}; the candidate is clearly below the champion"
    if _key(candidate) >= _key(champion):
        return True, (
            f"{little}; the candidate is not below the champion (precision at capacity, then "
            f"PR-AUC {candidate['pr_auc']:.4f} vs {champion['pr_auc']:.4f})"
        )
    return False, (
        f"{little}; the candidate is below the champion's point estimate and nothing shows it "
        "is better: the champion stays"
    )


def promote_job(
    settings,
    *,
    version: int | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    reason: str | None = None,
    config: TrainConfig | None = None,
    config_path: str | Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Move the champion alias to ``version`` (default: the latest) if it passes the gate on the
    candidate's test period; with ``force`` (and a ``reason``) move it regardless and record
    why. Returns the gate record (also stored as tag ``gate`` on the candidate version)."""
    config = config or load_config(config_path)
    registry.configure(settings)
    if force and not (reason and reason.strip()):
        raise CargoriskError("--force needs --reason TEXT: overriding the gate must be explained")
    version = version or registry.latest_version(settings)
    cand_info = registry.version_info(settings, version)
    champ_version = registry.champion_version(settings)
    record: dict[str, Any] = {
        "candidate": version,
        "champion_before": champ_version,
        "capacity": settings.capacity,
        "decided_at": pd.Timestamp.now("UTC").isoformat(),
    }
    if champ_version == version:
        record.update(promoted=False, reason=f"version {version} is already the champion")
        return record
    with _step(progress, f"loading version {version}"):
        candidate = registry.load_scoring_model(f"models:/{settings.model_name}/{version}")
    period = candidate.metadata.get("test_period")
    source = data_dir or cand_info.params.get("data_dir")
    measured = True
    try:
        if not period or not source:
            raise CargoriskError(
                f"version {version} records no test period or data directory; pass --data DIR"
            )
        if not Path(source).is_dir():
            raise CargoriskError(
                f"the data of version {version} ({source}) is not here; pass --data DIR"
            )
        with _step(progress, f"rebuilding features from {source}"):
            dataset = build_dataset(
                load_tables(source), settings.unlabelled_policy, engine=engine_options(settings)
            )
        mask = _period_mask(dataset, period["from"], period["to"])
        labelled = mask & dataset.labelled
        y = dataset.label[labelled]
        if len(y) == 0:
            raise CargoriskError(f"the test period {period} has no labelled shipment to compare on")
        rules_all = rules_score(dataset.shipments)
        features = dataset.features.loc[labelled]
        confidence = config.gate.confidence
        try:
            cand_scores = candidate.score(features)
        except KeyError as exc:
            raise CargoriskError(
                f"version {version} cannot score the feature rows of {source} ({exc.args[0]}); "
                "is this the data it was trained on?"
            ) from None
        cand_m = gate_metrics(y, cand_scores, settings.capacity, confidence)
        rules_m = gate_metrics(y, rules_all[labelled], settings.capacity, confidence)
        champ_m = None
        if champ_version is not None:
            champion = registry.load_scoring_model(settings.model_uri)
            try:
                champ_scores = champion.score(features)
            except KeyError as exc:
                raise CargoriskError(
                    f"champion version {champ_version} cannot score today's feature rows "
                    f"({exc.args[0]}); compare by hand and use --force --reason"
                ) from None
            champ_m = gate_metrics(y, champ_scores, settings.capacity, confidence)
            champ_train_to = champion.metadata.get("training_window", {}).get("to")
            record["champion_in_sample"] = bool(
                champ_train_to and pd.Timestamp(champ_train_to) > pd.Timestamp(period["from"])
            )
        positives = int(y.sum())
        passed, why = gate_decision(
            cand_m,
            champ_m,
            rules_m,
            config,
            positives=positives,
            positive=candidate.metadata.get("dataset", {})
            .get("label", {})
            .get("positive", dataset.info.label.positive),
        )
        record.update(
            period=period,
            data_dir=str(source),
            rows=int(labelled.sum()),
            seizures=positives,
            evidence="enough" if positives >= config.gate.min_seizures else "little",
            min_seizures=config.gate.min_seizures,
            candidate_metrics=cand_m,
            champion_metrics=champ_m,
            rules_metrics=rules_m,
        )
    except CargoriskError as exc:
        if not force:
            raise
        measured, passed, why = False, False, f"not measured: {exc}"
    record["gate_passed"] = passed
    record["gate_reason"] = why
    if passed or force:
        if force and not passed:
            record["forced"] = True
            record["force_reason"] = (reason or "").strip()
        record["promoted"] = True
        record["measured"] = measured
        registry.set_champion(settings, version, record)
    else:
        record["promoted"] = False
        registry.record_refusal(settings, version, record)
    return record


# ------------------------------------------------------------------------------------------
# score (batch)
# ------------------------------------------------------------------------------------------
def reasons_for(model: ScoringModel, features: pd.DataFrame) -> list[str]:
    """Each row's reasons as one line of the output file: the reasons every other view shows
    (:meth:`ScoringModel.explain` - same features, order and words), each with its
    contribution in log-odds, separated by "; "."""
    return [
        "; ".join(f"{r['text']} ({r['contribution']:+.2f})" for r in item["reasons"])
        for item in model.explain(features)
    ]


def score_job(
    settings,
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    explain_top: float = 10.0,
    history_dir: str | Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Score every shipment of a file; write shipment_id, score, band, rank and - for the top
    ``explain_top`` % - the reasons. The file holds contract columns (a file in a customs
    service's own column names is ingested first: ``cargorisk score --mapping`` does that).
    ``history_dir`` (contract tables) supplies the entities' past so
    history and network features are as of each shipment's time; without it they are computed
    from the file alone."""
    from features.pipeline import build_training_frame

    if not 0 <= explain_top <= 100:
        raise CargoriskError(f"--explain-top must be a percentage 0..100, got {explain_top}")
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() not in (".csv", ".parquet"):
        raise CargoriskError(f"--output {output_path}: expected a .csv or .parquet file")
    registry.configure(settings)
    model = registry.load_scoring_model(model_uri)
    raw = read_frame(input_path, what="--input")
    shipments = validate_table("shipments", raw)
    if len(shipments) == 0:
        raise CargoriskError(f"--input {input_path}: no shipment to score")
    if history_dir:
        tables = load_tables(history_dir)
        past = tables.shipments[~tables.shipments["shipment_id"].isin(shipments["shipment_id"])]
        all_shipments = pd.concat([past, shipments], ignore_index=True)
        outcomes = tables.outcomes
    else:
        all_shipments = shipments
        outcomes = validate_table(
            "outcomes", pd.DataFrame({c: pd.Series(dtype=object) for c in OUTCOME_COLUMNS})
        )
    all_shipments = all_shipments.sort_values(["declared_at", "shipment_id"], kind="stable")
    schema = model.attributes
    known = {attribute_column(name) for name in schema}
    unknown = [c for c in attribute_columns(all_shipments) if c not in known]
    if unknown:  # the model was trained without them: they cannot move its scores
        progress(f"not used by this model (not in its attribute schema): {', '.join(unknown)}")
        all_shipments = all_shipments.drop(columns=unknown)
    with _step(progress, f"features for {len(shipments):,} shipments"):
        frame = build_training_frame(
            all_shipments.reset_index(drop=True),
            outcomes,
            attributes=schema,
            **engine_options(settings),
        )
    frame = frame.set_index("shipment_id", drop=False).loc[shipments["shipment_id"]]
    frame = frame.reset_index(drop=True)
    score = model.score(frame)
    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(score), dtype=int)
    rank[order] = np.arange(1, len(score) + 1)
    out = pd.DataFrame(
        {
            "shipment_id": frame["shipment_id"].to_numpy(),
            "score": score,
            "band": model.band(score),
            "rank": rank,
            "reasons": "",
        }
    )
    n_explain = int(np.ceil(len(out) * explain_top / 100))
    if n_explain:
        chosen = order[:n_explain]
        out.loc[chosen, "reasons"] = reasons_for(model, frame.iloc[chosen])
    out = out.sort_values("rank").reset_index(drop=True)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".parquet":
        out.to_parquet(output_path, index=False)
    else:
        out.to_csv(output_path, index=False)
    return {
        "scored": len(out),
        "explained": n_explain,
        "high": int((out["band"] == "high").sum()),
        "medium": int((out["band"] == "medium").sum()),
        "output": str(output_path),
        "history": bool(history_dir),
    }
