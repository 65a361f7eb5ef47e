"""The two candidates of every training run, and which one is registered.

* **full** - the project's features (manifest, rates, history, change, network, attributes),
  the families kept by :func:`training.selection.select_families` on the validation period,
  optionally with hyper-parameters found by :func:`training.tuning.tune`.
* **raw_challenger** - plain LightGBM on the ``raw`` and ``attributes`` families: the mapped
  fields as given (categoricals natively, numbers as they are), no history, no rates. What a
  data scientist would try first on a customs export; our model must not lose to it.

The registered model is the better of the two on the validation period (precision at capacity,
ties broken by average precision; an exact tie keeps the full model, whose reasons speak the
officers' language): never worse than the challenger on validation. The test period stays
untouched by every choice made here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, attribute_column
from features.scoring import ScoringModel
from training.config import TrainConfig
from training.selection import Selection, select_families
from training.split import TemporalSplit
from training.train import FitData, FitInfo, ValidScore, finish_model, fit_booster
from training.train import validation_score as score_on_validation
from training.tuning import TuneResult, tune

SELECTABLE = ("manifest", "rates", "history", "change", "network", "attributes")
"""Families the full model selects from, in the order they are tried."""
CHALLENGER = ("raw", "attributes")
"""Families of the raw-columns challenger."""
KINDS = ("full", "raw_challenger")


def catalog_version(names: list[str], kinds: list[str]) -> str:
    """A short fingerprint of the feature catalog (names and kinds, in order): two models with
    the same fingerprint read the same feature rows."""
    text = "\n".join(f"{n}:{k}" for n, k in zip(names, kinds, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class FeatureSet:
    """Every feature a model of this run may use (catalog then attributes, frame order), which
    are categorical, and the family of each."""

    names: list[str]
    categorical: list[str]
    family: dict[str, str]
    version: str

    def of(self, families: Sequence[str]) -> list[str]:
        """The features of ``families``, in frame order."""
        wanted = set(families)
        return [n for n in self.names if self.family[n] in wanted]

    def present(self, families: Sequence[str]) -> tuple[str, ...]:
        """Those of ``families`` (in that order) that have at least one feature."""
        have = set(self.family.values())
        return tuple(f for f in families if f in have)


def feature_set(attributes: Mapping[str, AttributeSpec] | None = None) -> FeatureSet:
    """The catalog's features and the attributes of the data's schema."""
    from features import catalog

    attributes = dict(attributes or {})
    names = list(catalog.FEATURE_NAMES)
    kinds = [catalog.feature(n).kind for n in names]
    version = catalog_version(names, kinds)
    names += [attribute_column(name) for name in attributes]
    categorical = [n for n in names if catalog.feature_kind(n, attributes) == "categorical"]
    family = {n: catalog.family_of(n) for n in names}
    return FeatureSet(names=names, categorical=categorical, family=family, version=str(version))


@dataclass
class Candidate:
    """One fitted model of the run, before and after calibration (``model``)."""

    kind: str
    families: tuple[str, ...]
    feature_names: list[str]
    booster: lgb.Booster
    info: FitInfo
    valid: ValidScore
    lightgbm: dict = field(default_factory=dict)
    """Hyper-parameters that differ from the configuration (tuning)."""
    model: ScoringModel | None = None

    @property
    def scoring(self) -> ScoringModel:
        """The calibrated model (:func:`fit_candidates` finishes every candidate it returns)."""
        if self.model is None:
            raise RuntimeError(f"the {self.kind} candidate was never finished")
        return self.model


@dataclass
class Fitted:
    """Everything the fits of one run decided."""

    full: Candidate
    challenger: Candidate | None
    registered: Candidate
    why: str
    selection: Selection | None
    tuning: TuneResult | None
    fits: int
    """LightGBM fits made (selection, challenger and tuning trials)."""


def _choose(
    full: Candidate, challenger: Candidate | None, capacity: float
) -> tuple[Candidate, str]:
    if challenger is None:
        return full, "no raw-columns challenger was fitted"
    versus = (
        f"validation {full.valid.text(capacity)} (full model) vs "
        f"{challenger.valid.text(capacity)} (raw-columns challenger)"
    )
    if challenger.valid.key > full.valid.key:
        return challenger, f"the raw-columns challenger is better on validation: {versus}"
    if challenger.valid.key == full.valid.key:
        return full, f"tied on validation; the full model is kept: {versus}"
    return full, f"the full model is better on validation: {versus}"


def fit_candidates(
    data: FitData,
    features: pd.DataFrame,
    split: TemporalSplit,
    fs: FeatureSet,
    *,
    config: TrainConfig,
    seed: int,
    capacity: float,
    tune_budget_s: float | None = None,
    tune_trials: int | None = None,
    on_trial: Callable = lambda _trial: None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Fitted:
    """Select the full model's families, tune it if asked, fit the challenger, choose, and
    calibrate both (each gets band thresholds and Platt scaling on validation)."""
    fitted: dict[frozenset[str], Candidate] = {}

    def fit(families: tuple[str, ...], kind: str = "full") -> Candidate:
        key = frozenset(families) | {f"kind:{kind}"}
        if key not in fitted:
            names = fs.of(families)
            booster, info = fit_booster(data, names, config=config, seed=seed)
            valid = score_on_validation(booster, data, names, capacity)
            cap = " - AT THE ROUND CAP" if info.at_cap else ""
            progress(
                f"  fit {len(fitted) + 1:2d} {kind:14} {'+'.join(families):48} "
                f"validation {valid.text(capacity)} (best round {info.best_iteration}{cap})"
            )
            fitted[key] = Candidate(kind, families, names, booster, info, valid)
        return fitted[key]

    extra_fits = 0

    def averaged(families: tuple[str, ...]) -> ValidScore:
        """The validation score of a family set averaged over ``selection_seeds`` fits (the
        first is the one kept if the set is chosen)."""
        nonlocal extra_fits
        scores = [fit(families).valid]
        names = fs.of(families)
        for extra in range(1, config.selection_seeds):
            booster, _ = fit_booster(data, names, config=config, seed=seed + extra)
            scores.append(score_on_validation(booster, data, names, capacity))
            extra_fits += 1
        if len(scores) == 1:
            return scores[0]
        score = ValidScore(
            float(np.nanmean([s.precision for s in scores])),
            float(np.nanmean([s.pr_auc for s in scores])),
        )
        progress(f"       mean of {len(scores)} fits: validation {score.text(capacity)}")
        return score

    present = fs.present(SELECTABLE)
    if not present:
        raise ValueError("the feature set has none of the full model's families")
    selection = None
    valid_positives = int(data.y_valid.sum())
    enough = valid_positives >= config.selection_min_positives
    if config.select_families and len(present) > 1 and not enough:
        progress(
            f"family selection skipped: the validation period holds {valid_positives} "
            f"positive labels (< selection_min_positives {config.selection_min_positives});"
            " on so few, one hit decides and selection would follow noise - every family kept"
        )
    if config.select_families and len(present) > 1 and enough:
        progress(f"selecting feature families on validation among {', '.join(present)}")
        selection = select_families(present, averaged, progress=progress)
        full = fit(selection.kept)
    else:
        full = fit(present)

    tuning = None
    if tune_budget_s is not None:
        progress(
            f"tuning hyper-parameters of the full model for up to {tune_budget_s:.0f} s"
            + (f" or {tune_trials} trials" if tune_trials else "")
        )
        tuning = tune(
            data,
            full.feature_names,
            config=config,
            seed=seed,
            capacity=capacity,
            budget_s=tune_budget_s,
            max_trials=tune_trials,
            on_trial=on_trial,
            progress=progress,
        )
        full = Candidate(
            "full",
            full.families,
            full.feature_names,
            tuning.booster,
            tuning.info,
            tuning.best.score,
            lightgbm=dict(tuning.best.params),
        )
        progress(
            f"  best trial {tuning.best.number} of {len(tuning.trials)}: "
            f"validation {full.valid.text(capacity)}"
        )

    challenger = None
    challenger_families = fs.present(CHALLENGER)
    if config.challenger and challenger_families:
        challenger = fit(challenger_families, "raw_challenger")
    elif config.challenger:
        progress("no raw columns or attributes in the feature set: no challenger fitted")

    registered, why = _choose(full, challenger, capacity)
    for candidate in (full, challenger):
        if candidate is not None:
            candidate.model = finish_model(
                candidate.booster,
                candidate.feature_names,
                data,
                features,
                split,
                capacity=capacity,
                num_threads=config.num_threads,
            )
    fits = len(fitted) + extra_fits + (len(tuning.trials) if tuning else 0)
    return Fitted(
        full=full,
        challenger=challenger,
        registered=registered,
        why=why,
        selection=selection,
        tuning=tuning,
        fits=fits,
    )
