"""The four jobs behind ``cargorisk train / evaluate / promote / score``: each orchestrates the
pure steps (dataset, split, fit, metrics, plots) and the MLflow side (registry).

The promotion gate compares candidate and champion on the **same** shipments: it re-reads the
candidate's data directory (recorded as run parameter ``data_dir``; ``--data`` overrides),
rebuilds the features, and scores both models on the candidate's held-out test period (model
metadata ``test_period``) at the configured inspection capacity.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import OUTCOME_COLUMNS
from features.errors import CargoriskError
from features.ingest import Mapping
from features.scoring import ScoringModel
from training import registry
from training.baselines import rules_score
from training.config import TrainConfig, load_config
from training.dataset import Dataset, build_dataset, load_tables, validate_table
from training.evaluate import period_curves, period_metrics, score_period
from training.metrics import capacity_label, capacity_metrics
from training.split import temporal_split
from training.train import fit_model

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@contextmanager
def _step(progress: Progress, what: str):
    progress(f"{what} ...")
    start = time.perf_counter()
    yield
    progress(f"{what}: done in {time.perf_counter() - start:.1f} s")


def catalog_version(names: list[str], kinds: list[str]) -> str:
    """A short fingerprint of the feature catalog (names and kinds, in order): two models with
    the same fingerprint read the same feature rows."""
    text = "\n".join(f"{n}:{k}" for n, k in zip(names, kinds, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _catalog() -> tuple[list[str], list[str], str]:
    from features import catalog

    names = list(catalog.FEATURE_NAMES)
    categorical = [n for n in names if n in set(catalog.CATEGORICAL_FEATURES)]
    kinds = [catalog.feature(n).kind for n in names]
    version = getattr(catalog, "CATALOG_VERSION", None) or catalog_version(names, kinds)
    return names, categorical, str(version)


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
    progress: Progress = _quiet,
) -> TrainResult:
    """Train, evaluate against the baselines, log everything to MLflow and register the model
    as a new version of ``settings.model_name``."""
    import mlflow

    from training import report

    config = config or load_config(config_path)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    with _step(progress, f"reading {data_dir}"):
        tables = load_tables(data_dir)
    timings["read_s"] = time.perf_counter() - t0
    names, categorical, version = _catalog()
    t = time.perf_counter()
    with _step(progress, "features"):
        dataset = build_dataset(tables, settings.unlabelled_policy, progress=progress)
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
            f"the test period ({split.test_from.date()} on) has no seizure among its "
            f"{int(test_labelled.sum())} labelled shipments; nothing to measure - move "
            "--test-from earlier or give more --test-days"
        )
    t = time.perf_counter()
    with _step(progress, "training"):
        model, info = fit_model(
            dataset.features,
            dataset.label,
            split,
            feature_names=names,
            categorical=categorical,
            config=config,
            seed=settings.seed,
            capacity=settings.capacity,
            progress=progress,
        )
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    with _step(progress, "evaluating on the test period"):
        rules = rules_score(dataset.shipments)
        scores = score_period(model, dataset, split.test, rules, num_threads=config.num_threads)
        metrics = period_metrics(scores)
        curves = period_curves(scores)
    timings["evaluate_s"] = time.perf_counter() - t

    row_counts = {
        "shipments": len(dataset.shipments),
        "inspected": int(dataset.inspected.sum()),
        "seized": int(np.nansum(dataset.label == 1)),
        "train_labelled": info.n_train,
        "valid_labelled": info.n_valid,
        "test_labelled": int(test_labelled.sum()),
        "test_shipments": int(split.test.sum()),
    }
    model.metadata = {
        "training_window": split.period("train"),
        "valid_period": split.period("valid"),
        "test_period": split.period("test"),
        "row_counts": row_counts,
        "test_metrics": metrics,
        "capacity": settings.capacity,
        "label_policy": settings.unlabelled_policy,
        "feature_catalog_version": version,
        "data_source": tables.source,
        "seed": settings.seed,
        "best_iteration": info.best_iteration,
        "trained_at": pd.Timestamp.now("UTC").isoformat(),
    }
    params = {
        **{f"lgb_{k}": v for k, v in config.lightgbm.items()},
        "num_boost_round": config.num_boost_round,
        "early_stopping_rounds": config.early_stopping_rounds,
        "stopping_metric": config.stopping_metric,
        "imbalance": config.imbalance,
        "scale_pos_weight": round(info.scale_pos_weight, 4),
        "best_iteration": info.best_iteration,
        "seed": settings.seed,
        "capacity": settings.capacity,
        "label_policy": settings.unlabelled_policy,
        "data_dir": tables.source,
        "train_from": split.period("train")["from"],
        "valid_from": split.period("valid")["from"],
        "test_from": split.period("test")["from"],
        "test_to": split.period("test")["to"],
        "n_features": len(names),
        "feature_catalog_version": version,
        **{f"rows_{k}": v for k, v in row_counts.items()},
    }

    t = time.perf_counter()
    with _step(progress, "logging to MLflow"):
        registry.configure(settings)
        experiment_id = registry.ensure_experiment(settings, experiment)
        import matplotlib.pyplot as plt

        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(params)
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            mlflow.set_tags(
                {
                    "cargorisk.kind": "train",
                    "cargorisk.test_period": json.dumps(split.period("test")),
                    "cargorisk.beats_baselines": str(_beats(metrics)).lower(),
                }
            )
            mlflow.log_dict({"features": names, "categorical": categorical}, "feature_list.json")
            mlflow.log_dict(curves, "capacity_curve.json")
            mlflow.log_dict(metrics, "metrics.json")
            figures = [
                ("plots/capacity_curve.png", report.capacity_plot(curves, settings.capacity)),
                ("plots/cumulative_gains.png", report.gains_plot(curves["gains"])),
                ("plots/calibration.png", report.calibration_plot(curves["reliability"])),
                ("plots/feature_importance.png", report.importance_plot(model)),
            ]
            test_rows = dataset.features.loc[split.test]
            sample = test_rows.sample(
                n=min(config.shap_sample, len(test_rows)), random_state=settings.seed
            )
            figures.append(("plots/shap_summary.png", report.shap_summary_plot(model, sample)))
            top = np.argsort(-scores.model_all, kind="stable")[: config.waterfalls]
            top_rows = test_rows.iloc[top]
            if len(top_rows):
                for shipment_id, fig in report.shap_waterfall_plots(
                    model, top_rows, top_rows["shipment_id"].tolist()
                ):
                    figures.append((f"plots/shap_waterfall_{shipment_id}.png", fig))
            for path, fig in figures:
                mlflow.log_figure(fig, path)
                plt.close(fig)
            gain = model.booster.feature_importance(importance_type="gain")
            top_features = [names[i] for i in np.argsort(-gain)[:5]]
            mlflow.log_text(
                report.model_card(
                    model_name=settings.model_name,
                    metadata=model.metadata,
                    metrics=metrics,
                    params=params,
                    feature_names=names,
                    top_features=top_features,
                ),
                "model_card.md",
            )
            model_info = registry.log_scoring_model(
                model,
                registry.input_example(model, test_rows),
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
        dataset = build_dataset(tables, settings.unlabelled_policy, progress=progress)
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
def gate_metrics(y: np.ndarray, score: np.ndarray, capacity: float) -> dict[str, float]:
    m = capacity_metrics(y, score, [capacity])
    label = capacity_label(capacity)
    return {
        "precision_at_capacity": m[f"precision_at_{label}"],
        "recall_at_capacity": m[f"recall_at_{label}"],
        "pr_auc": m["pr_auc"],
    }


def gate_decision(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    rules: dict[str, float],
    config: TrainConfig,
) -> tuple[bool, str]:
    """The gate itself: pass when the candidate's precision at capacity exceeds the champion's
    by more than ``gate.min_gain`` (or ties it with a higher PR-AUC), and - if
    ``gate.beat_rules`` - exceeds the rules baseline's. Returns (passed, reason)."""
    cp = candidate["precision_at_capacity"]
    if config.gate.beat_rules and not cp > rules["precision_at_capacity"]:
        return False, (
            f"candidate precision at capacity {cp:.4f} does not beat the rules baseline "
            f"({rules['precision_at_capacity']:.4f})"
        )
    if champion is None:
        return True, "no champion yet; candidate beats the rules baseline"
    hp = champion["precision_at_capacity"]
    gain = cp - hp
    if gain > config.gate.min_gain:
        return True, f"precision at capacity {cp:.4f} vs champion {hp:.4f} (+{gain:.4f})"
    if gain == 0 and config.gate.min_gain == 0 and candidate["pr_auc"] > champion["pr_auc"]:
        return True, (
            f"precision at capacity tied ({cp:.4f}); PR-AUC {candidate['pr_auc']:.4f} vs "
            f"{champion['pr_auc']:.4f}"
        )
    return False, (
        f"candidate precision at capacity {cp:.4f} does not beat champion {hp:.4f} "
        f"by more than {config.gate.min_gain:g}"
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
            dataset = build_dataset(load_tables(source), settings.unlabelled_policy)
        mask = _period_mask(dataset, period["from"], period["to"])
        labelled = mask & dataset.labelled
        y = dataset.label[labelled]
        if y.sum() == 0:
            raise CargoriskError(f"the test period {period} has no seizure to compare on")
        rules_all = rules_score(dataset.shipments)
        features = dataset.features.loc[labelled]
        cand_m = gate_metrics(y, candidate.predict(features), settings.capacity)
        rules_m = gate_metrics(y, rules_all[labelled], settings.capacity)
        champ_m = None
        if champ_version is not None:
            champion = registry.load_scoring_model(settings.model_uri)
            try:
                champ_scores = champion.predict(features)
            except KeyError as exc:
                raise CargoriskError(
                    f"champion version {champ_version} cannot score today's feature rows "
                    f"({exc.args[0]}); compare by hand and use --force --reason"
                ) from None
            champ_m = gate_metrics(y, champ_scores, settings.capacity)
            champ_train_to = champion.metadata.get("training_window", {}).get("to")
            record["champion_in_sample"] = bool(
                champ_train_to and pd.Timestamp(champ_train_to) > pd.Timestamp(period["from"])
            )
        passed, why = gate_decision(cand_m, champ_m, rules_m, config)
        record.update(
            period=period,
            data_dir=str(source),
            rows=int(labelled.sum()),
            seizures=int(y.sum()),
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
            record["force_reason"] = reason.strip()
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
def _read_any(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CargoriskError(f"--input {path}: no such file")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    raise CargoriskError(f"--input {path}: expected a .csv or .parquet file")


def reasons_for(model: ScoringModel, features: pd.DataFrame, top: int = 3) -> list[str]:
    """Officer-readable reasons: the ``top`` features pushing each score up the most, as
    catalog sentences with their contribution in log-odds."""
    from features import catalog

    contrib = model.contributions(features)[model.feature_names]
    out = []
    values = features[model.feature_names]
    for i in range(len(contrib)):
        row = contrib.iloc[i]
        up = row[row > 0].sort_values(ascending=False).head(top)
        out.append(
            "; ".join(
                f"{catalog.reason_text(name, values.iloc[i][name])} (+{size:.2f})"
                for name, size in up.items()
            )
        )
    return out


def score_job(
    settings,
    model_uri: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    explain_top: float = 10.0,
    mapping: Mapping | None = None,
    history_dir: str | Path | None = None,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Score every shipment of a file; write shipment_id, score, band, rank and - for the top
    ``explain_top`` % - the reasons. ``mapping`` (read by the caller, e.g. with
    :func:`cargorisk.ingestion.read_mapping`) reads a file in a customs service's own column
    names, labelled or not. ``history_dir`` (contract tables) supplies the entities' past so
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
    raw = _read_any(input_path)
    rejected = 0
    if mapping is not None:
        from features.ingest import ingest_chunk

        try:
            result = ingest_chunk(raw, mapping)
        except KeyError as exc:
            raise CargoriskError(f"--input {input_path}: {exc.args[0]}") from None
        shipments, rejected = result.shipments, result.rejected
        if len(result.quarantine):
            qpath = output_path.with_name(output_path.stem + ".rejected.csv")
            result.quarantine.to_csv(qpath, index=False)
            progress(f"{rejected} row(s) rejected; reasons in {qpath}")
        if len(result.blanked):
            bpath = output_path.with_name(output_path.stem + ".blanked.csv")
            result.blanked.to_csv(bpath, index=False)
            progress(f"{len(result.blanked)} value(s) left blank; reasons in {bpath}")
    else:
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
    with _step(progress, f"features for {len(shipments):,} shipments"):
        frame = build_training_frame(all_shipments.reset_index(drop=True), outcomes)
    frame = frame.set_index("shipment_id", drop=False).loc[shipments["shipment_id"]]
    frame = frame.reset_index(drop=True)
    score = model.predict(frame)
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
        "rejected": rejected,
        "explained": n_explain,
        "high": int((out["band"] == "high").sum()),
        "medium": int((out["band"] == "medium").sum()),
        "output": str(output_path),
        "history": bool(history_dir),
    }
