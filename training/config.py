"""Training hyper-parameters: ``config/train.yaml`` (defaults below mirror it), overridable with
``cargorisk train --config FILE``. Settings that the service also needs (capacity, seed, label
policy, model name) live in :mod:`common.settings`, not here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import CargoriskError

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "train.yaml"


class GateConfig(BaseModel):
    """The promotion gate (see :func:`training.jobs.promote.gate_decision`).

    ``min_seizures``: below this many seizures among the labelled rows of the test period the
    point estimates cannot tell two rankings apart; the gate then says so and decides on
    intervals (``confidence``) instead of demanding a strict gain."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_gain: float = Field(default=0.0, ge=0)
    beat_rules: bool = True
    min_seizures: int = Field(default=10, ge=0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lightgbm: dict[str, Any] = Field(
        default_factory=lambda: {
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 40,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "cat_smooth": 20,
            "min_data_per_group": 50,
            "max_cat_to_onehot": 8,
        }
    )
    num_boost_round: int = Field(default=5000, ge=1, le=100_000)
    early_stopping_rounds: int = Field(default=50, ge=1)
    stopping_metric: Literal["average_precision", "auc", "binary_logloss"] = "binary_logloss"
    imbalance: Literal["sqrt", "balanced", "none"] = "sqrt"
    num_threads: int = Field(default=1, ge=1, le=64)
    test_share: float = Field(default=0.2, gt=0, lt=0.5)
    valid_share: float = Field(default=0.15, gt=0, lt=0.5)
    shap_sample: int = Field(default=2000, ge=10)
    waterfalls: int = Field(default=3, ge=0, le=20)
    gate: GateConfig = Field(default_factory=GateConfig)
    select_families: bool = True
    """Backward elimination of feature families on the validation period."""
    selection_min_positives: int = Field(default=20, ge=1)
    """Fewer positive labels than this in the validation period: selection would follow noise
    (one hit moves precision at capacity by a whole step), so every family is kept."""
    selection_seeds: int = Field(default=3, ge=1, le=10)
    """Fits (model seeds) averaged for each family set during selection: two fits of the same
    features differ by bagging and feature sampling about as much as a family's effect, so a
    decision on one fit follows that noise."""
    challenger: bool = True
    """Fit the raw-columns challenger and register it when it is better on validation."""


_RESERVED = {"objective", "seed", "deterministic", "num_threads", "verbosity"}


def load_config(path: str | Path | None = None) -> TrainConfig:
    """The training configuration: ``path`` if given, else ``config/train.yaml`` when present,
    else the defaults."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return TrainConfig()
        path = DEFAULT_CONFIG
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise CargoriskError(f"--config {path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise CargoriskError(f"--config {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise CargoriskError(f"--config {path}: expected a mapping of key: value")
    try:
        config = TrainConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CargoriskError(f"--config {path}: {where}: {first['msg']}") from None
    clash = _RESERVED & set(config.lightgbm)
    if clash:
        raise CargoriskError(
            f"--config {path}: lightgbm.{sorted(clash)[0]} is set by cargorisk itself "
            "(objective, seed from settings, determinism, threads from num_threads)"
        )
    return config
