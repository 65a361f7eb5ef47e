"""``cargorisk promote``: the quality gate and the move of the champion alias.

The promotion gate compares candidate and champion on the **same** shipments: it re-reads the
candidate's data directory (recorded as run parameter ``data_dir``; ``--data`` overrides),
rebuilds the features, and scores both models on the candidate's held-out test period (model
metadata ``test_period``) at the configured inspection capacity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.errors import CargoriskError
from features.registry_contract import capacity_metric
from training import registry
from training.baselines import rules_score
from training.config import TrainConfig, load_config
from training.dataset import read_dataset
from training.jobs.shared import Progress, period_mask, quiet, timed_step
from training.metrics import (
    capacity_metrics,
    hits_at,
    n_selected,
    wilson_interval,
)
from training.report import plural


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

    noun = positive if positives == 1 else plural(positive)
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


def shadow_decision(
    shadow: dict[str, Any], version: int, champion: int | None, why: str
) -> tuple[bool, str]:
    """The live evidence from shadow scoring on top of a passed test-period gate.

    It must be about this candidate as the challenger of today's champion. Without a seizure
    among the shipments both scored there is no live evidence, and the test-period decision
    stands (said so). Otherwise the candidate is refused when the champion put more of the
    known seizures within capacity than the candidate would have; a tie or a candidate ahead
    passes. (The champion chose the inspections, so this evidence leans its way: a candidate
    that is not behind on it is not worse where it can be seen.)"""
    chall, champ = shadow.get("challenger") or {}, shadow.get("champion") or {}
    if str(chall.get("version")) != str(version):
        raise CargoriskError(
            f"the shadow comparison is about version {chall.get('version')}, not the candidate "
            f"{version}: set it as the challenger (cargorisk shadow set {version}) and let it "
            "score first"
        )
    if champion is not None and str(champ.get("version")) != str(champion):
        raise CargoriskError(
            f"the shadow comparison was made against version {champ.get('version')}, not the "
            f"champion {champion}"
        )
    if not shadow.get("seizures"):
        return True, f"{why}; shadow: no seizure among the shipments both scored yet"
    a, b = int(chall["seizures_within_capacity"]), int(champ["seizures_within_capacity"])
    live = (
        f"shadow: {a} known seizures within capacity vs champion {b} on "
        f"{shadow['shipments']:,} shipments both scored"
    )
    if a < b:
        return False, f"{why}; but {live}: the champion stays"
    return True, f"{why}; {live}"


def promote_job(
    settings,
    *,
    version: int | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    reason: str | None = None,
    config: TrainConfig | None = None,
    config_path: str | Path | None = None,
    progress: Progress = quiet,
    shadow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move the champion alias to ``version`` (default: the latest) if it passes the gate on the
    candidate's test period; with ``force`` (and a ``reason``) move it regardless and record
    why. Returns the gate record (also stored as tag ``gate`` on the candidate version).

    ``shadow``: the service's comparison of this version, scored as the shadow challenger,
    with the champion on the outcomes that arrived (``serving.shadow.compare(...).as_dict()``,
    which the CLI reads from the store). It is recorded, and it can refuse: see
    :func:`shadow_decision`."""
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
    with timed_step(progress, f"loading version {version}"):
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
        with timed_step(progress, f"rebuilding features from {source}"):
            dataset = read_dataset(source, settings, since=period["from"])
        mask = period_mask(dataset, period["from"], period["to"])
        labelled = mask & dataset.labelled
        y = dataset.label[labelled]
        if len(y) == 0:
            raise CargoriskError(f"the test period {period} has no labelled shipment to compare on")
        rules_all = rules_score(dataset.shipments, dataset.consignee_prior)
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
        unusable = None
        if champ_version is not None:
            champion = registry.load_scoring_model(settings.model_uri)
            unusable = champion.definitions_problem()
        if unusable is not None:
            # the service refuses this champion: comparing it on features it was not trained
            # on would be a wrong comparison, so the candidate faces the rules baseline alone
            record["champion_unusable"] = unusable
        elif champ_version is not None:
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
        if unusable is not None:
            why = (
                f"champion version {champ_version} cannot serve this code ({unusable}); judged "
                f"against the rules baseline alone: {why}"
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
    if shadow is not None:
        record["shadow"] = shadow
        if passed:
            passed, why = shadow_decision(shadow, version, champ_version, why)
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
