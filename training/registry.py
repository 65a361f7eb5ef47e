"""The MLflow side: tracking location, logging a ScoringModel, the model registry and the
promotion gate's bookkeeping.

Tracking is embedded by default (SQLite database and artifacts under ``<home>/mlruns``); set
``MLFLOW_TRACKING_URI`` to use a tracking server instead - every function here works the same
against both. A trained model is logged as an MLflow "models from code" pyfunc (the code is
``training/pyfunc_model.py``, copied into the artifact) and registered as a new version of
``settings.model_name``. Serving loads ``models:/<name>@champion``; only
:func:`set_champion` moves that alias, and only the gate in :mod:`training.jobs.promote` calls it
(or ``--force`` with a recorded reason).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features import registry_contract as rc
from features.errors import CargoriskError
from features.scoring import ScoringModel

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")


def configure(settings) -> str:
    """Point MLflow at the tracking URI in force; create the embedded home if needed."""
    import mlflow

    if settings.embedded_tracking:
        settings.ensure_home()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return settings.tracking_uri


def ensure_experiment(settings, name: str | None = None) -> str:
    """The id of experiment ``name`` (default ``settings.experiment``), created if missing -
    with its artifacts under ``<home>/mlruns/artifacts`` when tracking is embedded."""
    import mlflow

    name = name or settings.experiment
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise CargoriskError(f"experiment {name!r} is deleted; restore it or pick another")
        return found.experiment_id
    location = settings.artifact_location if settings.embedded_tracking else None
    return client.create_experiment(name, artifact_location=location)


def model_requirements() -> list[str]:
    """Pinned requirements of the logged model: what ``pyfunc_model.py`` and
    :class:`features.scoring.ScoringModel` import, at the versions installed now. Given
    explicitly so MLflow does not spend seconds inferring them in a subprocess; the model code
    also needs the ``cargorisk`` package itself (``features.scoring``) on the loading side."""
    from importlib.metadata import version

    return [f"{dist}=={version(dist)}" for dist in ("mlflow", "lightgbm", "pandas", "numpy")]


def model_signature(model: ScoringModel):
    """Input: every feature, optional (a parcel has no container type; a new party has no
    history) - categoricals as strings, the rest as doubles. Output: the calibrated risk."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string" if name in model.categories else "double", name, required=False)
            for name in model.feature_names
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))


def log_scoring_model(
    model: ScoringModel,
    example: pd.DataFrame,
    registered_model_name: str | None,
    drift_reference: dict[str, Any] | None = None,
) -> Any:
    """Log ``model`` into the active run as ``model`` (and register it when a name is given),
    with its drift reference (``rc.DRIFT_REFERENCE``) when given; returns MLflow's
    ``ModelInfo``."""
    import mlflow

    booster_text, meta = model.to_parts()
    with tempfile.TemporaryDirectory(prefix="cargorisk-model-") as tmp:
        booster_path = Path(tmp) / "booster.txt"
        meta_path = Path(tmp) / "scoring_meta.json"
        booster_path.write_text(booster_text, encoding="utf-8")
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        artifacts = {"booster": str(booster_path), "meta": str(meta_path)}
        if drift_reference is not None:
            ref_path = Path(tmp) / rc.DRIFT_REFERENCE_FILE
            ref_path.write_text(json.dumps(drift_reference), encoding="utf-8")
            artifacts[rc.DRIFT_REFERENCE] = str(ref_path)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts=artifacts,
            input_example=example,
            signature=model_signature(model),
            registered_model_name=registered_model_name,
            pip_requirements=model_requirements(),
        )


def load_scoring_model(uri: str) -> ScoringModel:
    """The ScoringModel behind a model URI (``models:/name@alias``, ``models:/name/3``,
    ``runs:/…/model``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model().scoring_model
    except MlflowException as exc:
        raise CargoriskError(f"cannot load model {uri}: {exc.message}") from None


def load_drift_reference(uri: str) -> tuple[ScoringModel, dict[str, Any] | None]:
    """The ScoringModel behind a model URI and its drift reference (None for a model logged
    before references were recorded)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as exc:
        raise CargoriskError(f"cannot load model {uri}: {exc.message}") from None
    return wrapper.scoring_model, getattr(wrapper, "drift_reference", None)


def resolve_model_uri(settings, model: str | None) -> str:
    """Accept a full URI, a version number (``3``) or an alias (``champion``) of
    ``settings.model_name``; default the champion."""
    if not model:
        return settings.model_uri
    if ":/" in model:
        return model
    if model.isdigit():
        return f"models:/{settings.model_name}/{model}"
    return f"models:/{settings.model_name}@{model}"


@dataclass
class VersionInfo:
    version: int
    run_id: str
    aliases: list[str]
    created: pd.Timestamp
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]


def _client():
    import mlflow

    return mlflow.MlflowClient()


def version_info(settings, version: int | str) -> VersionInfo:
    """A registered version with its aliases, tags and its run's metrics and params."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        mv = client.get_model_version(settings.model_name, str(version))
    except MlflowException:
        raise CargoriskError(
            f"model {settings.model_name!r} has no version {version} "
            f"(tracking: {settings.tracking_uri}); see `cargorisk models`"
        ) from None
    run = client.get_run(mv.run_id) if mv.run_id else None
    return VersionInfo(
        version=int(mv.version),
        run_id=mv.run_id or "",
        aliases=list(mv.aliases or []),
        created=pd.Timestamp(mv.creation_timestamp, unit="ms"),
        tags=dict(mv.tags or {}),
        metrics=dict(run.data.metrics) if run else {},
        params=dict(run.data.params) if run else {},
    )


def list_versions(settings) -> list[VersionInfo]:
    """Every registered version of ``settings.model_name``, newest first."""
    client = _client()
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    return sorted(
        (version_info(settings, mv.version) for mv in versions),
        key=lambda v: v.version,
        reverse=True,
    )


def latest_version(settings) -> int:
    versions = _client().search_model_versions(f"name='{settings.model_name}'")
    if not versions:
        raise CargoriskError(
            f"no registered version of {settings.model_name!r} (tracking: "
            f"{settings.tracking_uri}); run `cargorisk train` first"
        )
    return max(int(mv.version) for mv in versions)


def champion_version(settings) -> int | None:
    """The version behind the champion alias, or None when there is no champion yet."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(settings.model_name, settings.champion_alias)
    except MlflowException:
        return None
    return int(mv.version)


def set_champion(settings, version: int, record: dict[str, Any]) -> None:
    """Move the champion alias to ``version`` and record why on that version (tag
    ``gate`` = the gate's report as JSON) and on the version it replaces."""
    client = _client()
    previous = champion_version(settings)
    client.set_registered_model_alias(settings.model_name, settings.champion_alias, str(version))
    client.set_model_version_tag(
        settings.model_name, str(version), rc.VERSION_TAG_GATE, json.dumps(record)
    )
    client.set_model_version_tag(
        settings.model_name, str(version), "promoted_at", pd.Timestamp.now("UTC").isoformat()
    )
    if previous is not None and previous != version:
        client.set_model_version_tag(
            settings.model_name, str(previous), "replaced_by", str(version)
        )


def shadow_version(settings) -> int | None:
    """The version behind the shadow alias (``settings.shadow_alias``), or None."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(settings.model_name, settings.shadow_alias)
    except MlflowException:
        return None
    return int(mv.version)


def set_shadow(settings, version: int) -> None:
    """Point the shadow alias at ``version``: after a reload the service scores every request
    with it beside the champion (stored, never served). The champion cannot be its own
    challenger."""
    info = version_info(settings, version)  # raises naming the version when there is none
    if settings.champion_alias in info.aliases:
        raise CargoriskError(
            f"version {version} is the champion (@{settings.champion_alias}); a challenger "
            "must be another version"
        )
    client = _client()
    client.set_registered_model_alias(settings.model_name, settings.shadow_alias, str(version))
    client.set_model_version_tag(
        settings.model_name, str(version), "shadow_since", pd.Timestamp.now("UTC").isoformat()
    )


def clear_shadow(settings) -> int | None:
    """Remove the shadow alias; returns the version it pointed at (None: there was none)."""
    previous = shadow_version(settings)
    if previous is not None:
        _client().delete_registered_model_alias(settings.model_name, settings.shadow_alias)
    return previous


def record_refusal(settings, version: int, record: dict[str, Any]) -> None:
    """Keep the gate's refusal on the candidate version (tag ``gate``)."""
    _client().set_model_version_tag(
        settings.model_name, str(version), rc.VERSION_TAG_GATE, json.dumps(record)
    )
