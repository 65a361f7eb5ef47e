"""Hyper-parameter search with Optuna under a time budget (``cargorisk train --tune 10m``).

Every trial is one LightGBM fit on the same temporal split as any training run: train on the
training period, early stopping on the validation period, scored by the validation metric the
rest of training uses (precision at the inspection capacity, ties broken by average precision;
:class:`training.train.ValidScore`). The test period is never looked at. The first trial is the
configured hyper-parameters, so a search never ends below an untuned fit on validation.

Deterministic as far as Optuna allows: the sampler is ``TPESampler(seed=settings.seed)`` and
the fits are deterministic, so the same trials propose the same parameters and score the same;
how many trials fit in a time budget depends on the machine (``--tune-trials N`` caps the count
for a reproducible search). The budget is checked between trials: a trial started before the
end runs to its end.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb

from features.errors import CargoriskError
from training.config import TrainConfig
from training.train import FitData, FitInfo, ValidScore, fit_booster, validation_score

_UNITS = {"s": 1, "m": 60, "h": 3600}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")

SPACE: dict[str, tuple[str, float, float]] = {
    "learning_rate": ("float_log", 0.005, 0.3),
    "num_leaves": ("int_log", 4, 256),
    "min_data_in_leaf": ("int_log", 5, 500),
    "feature_fraction": ("float", 0.3, 1.0),
    "bagging_fraction": ("float", 0.5, 1.0),
    "lambda_l2": ("float_log", 1e-3, 100.0),
    "cat_smooth": ("float_log", 1.0, 100.0),
    "min_data_per_group": ("int_log", 5, 500),
}
"""The LightGBM hyper-parameters searched, with their kind and range. Everything else
(``bagging_freq``, ``max_cat_to_onehot``, ...) keeps its configured value."""


def parse_budget(text: str) -> float:
    """``"90s"`` / ``"10m"`` / ``"1h"`` / ``"1.5h"`` in seconds."""
    match = _BUDGET.match(text or "")
    if not match:
        raise CargoriskError(
            f"--tune {text!r}: give a time budget like 90s, 10m or 1h (a number and s, m or h)"
        )
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise CargoriskError(f"--tune {text!r}: the time budget must be more than zero")
    return seconds


@dataclass(frozen=True)
class Trial:
    """One fit of the search."""

    number: int
    params: dict[str, Any]
    score: ValidScore
    best_iteration: int
    at_cap: bool
    seconds: float


@dataclass
class TuneResult:
    trials: list[Trial]
    best: Trial
    booster: lgb.Booster
    info: FitInfo
    budget_s: float
    elapsed_s: float


def _suggest(trial, name: str) -> Any:
    kind, low, high = SPACE[name]
    if kind == "int_log":
        return trial.suggest_int(name, int(low), int(high), log=True)
    return trial.suggest_float(name, low, high, log=kind == "float_log")


def _configured(config: TrainConfig) -> dict[str, Any]:
    """The configured value of each searched parameter, clipped into the search range (the
    first trial)."""
    out = {}
    for name, (kind, low, high) in SPACE.items():
        if name not in config.lightgbm:
            continue
        value = min(max(float(config.lightgbm[name]), low), high)
        out[name] = round(value) if kind == "int_log" else value
    return out


def tune(
    data: FitData,
    feature_names: Sequence[str],
    *,
    config: TrainConfig,
    seed: int,
    capacity: float,
    budget_s: float,
    max_trials: int | None = None,
    on_trial: Callable[[Trial], None] = lambda _trial: None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> TuneResult:
    """Search the hyper-parameters of a model on ``feature_names`` for ``budget_s`` seconds
    (and at most ``max_trials`` trials); returns every trial and the best one's booster."""
    import optuna

    if max_trials is not None and max_trials < 1:
        raise CargoriskError(f"--tune-trials must be at least 1, got {max_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(_configured(config))
    trials: list[Trial] = []
    best: dict[str, Any] = {}

    def objective(trial) -> float:
        params = {name: _suggest(trial, name) for name in SPACE}
        start = time.perf_counter()
        booster, info = fit_booster(data, feature_names, config=config, seed=seed, lightgbm=params)
        score = validation_score(booster, data, feature_names, capacity)
        done = Trial(
            number=trial.number,
            params=params,
            score=score,
            best_iteration=info.best_iteration,
            at_cap=info.at_cap,
            seconds=time.perf_counter() - start,
        )
        trials.append(done)
        if not best or score.key > best["trial"].score.key:
            best.update(trial=done, booster=booster, info=info)
        progress(
            f"  trial {trial.number:3d}: validation {score.text(capacity)} "
            f"(best round {info.best_iteration}, {done.seconds:.1f} s)"
        )
        on_trial(done)
        value = score.precision
        return value if math.isfinite(value) else 0.0

    start = time.perf_counter()
    study.optimize(objective, n_trials=max_trials, timeout=budget_s)
    return TuneResult(
        trials=trials,
        best=best["trial"],
        booster=best["booster"],
        info=best["info"],
        budget_s=budget_s,
        elapsed_s=time.perf_counter() - start,
    )
