"""The champion model the service scores with, loaded from the MLflow registry.

:class:`ModelHolder` resolves ``models:/<name>@champion`` to a concrete version, loads that
version's :class:`features.scoring.ScoringModel` and keeps it. A reload loads the new version
*beside* the one serving, checks it can score a probe row, and only then swaps the reference
(one assignment, atomic for the threads serving requests): requests in flight finish on the
model they started with, and a model that fails to load or to score leaves the old one serving
with the reason recorded in :attr:`ModelHolder.last_error`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import CargoriskError
from features.scoring import ScoringModel


class ModelLoadError(CargoriskError):
    """The registry has no usable champion (none registered, unreadable, or unable to score)."""


@dataclass(frozen=True)
class LoadedModel:
    """A scoring model with where it came from."""

    scoring: ScoringModel
    name: str
    version: str
    uri: str
    loaded_at: dt.datetime
    drift_reference: dict | None = None
    """The training window's per-stream histograms (:func:`features.drift.build_reference`),
    logged with the model; None for a model logged before references were recorded."""


def load_champion(tracking_uri: str, name: str, alias: str = "champion") -> LoadedModel:
    """Load the version the alias points to now (pinned by number, so a promotion racing with
    the load cannot mix two versions) from the registry at ``tracking_uri`` and nowhere else.

    Only public MLflow APIs, each given the URI explicitly: a client bound to ``tracking_uri``
    resolves the alias and the version's artifact location, ``download_artifacts`` (with that
    tracking and registry URI) copies the model to a local directory and ``pyfunc.load_model``
    loads it from there. So MLflow's process-wide URIs (``set_tracking_uri`` /
    ``set_registry_uri`` called earlier in the process, ``MLFLOW_REGISTRY_URI`` inherited from
    a parent) never decide which registry's champion the service loads, and nothing process-
    wide is changed."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        raise ModelLoadError(
            f"no model {name}@{alias} in the registry at {tracking_uri}: {_short(exc)}"
        ) from exc
    uri = f"models:/{name}/{version.version}"
    try:
        location = client.get_model_version_download_uri(name, str(version.version))
        with tempfile.TemporaryDirectory(prefix="cargorisk-champion-") as tmp:
            local = download_artifacts(
                artifact_uri=location,
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
            # load_context reads the booster and metadata into memory: the copy may go
            pyfunc = mlflow.pyfunc.load_model(local)
        wrapper = pyfunc.unwrap_python_model()
        scoring = wrapper.scoring_model
        reference = getattr(wrapper, "drift_reference", None)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {uri}: {_short(exc)}") from exc
    if not isinstance(scoring, ScoringModel):
        raise ModelLoadError(f"{uri} is not a cargorisk scoring model")
    problem = scoring.definitions_problem()
    if problem is not None:
        raise ModelLoadError(f"{uri} cannot serve: {problem}")
    return LoadedModel(
        scoring=scoring,
        name=name,
        version=str(version.version),
        uri=uri,
        loaded_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        drift_reference=reference,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class ModelHolder:
    """Holds the model in service; swaps it only for a model that loads and scores."""

    def __init__(
        self,
        loader: Callable[[], LoadedModel],
        probe: Callable[[ScoringModel], None] | None = None,
    ) -> None:
        self._loader = loader
        self._probe = probe
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None
        self.last_error: str | None = None

    @property
    def ready(self) -> bool:
        return self.current is not None

    def get(self) -> LoadedModel:
        model = self.current
        if model is None:
            raise ModelLoadError(f"no model loaded: {self.last_error or 'not loaded yet'}")
        return model

    def load(self) -> tuple[bool, str]:
        """Load the champion now; returns (swapped, message). Never raises for a bad model."""
        with self._lock:
            try:
                candidate = self._loader()
                if self._probe is not None:
                    try:
                        self._probe(candidate.scoring)
                    except Exception as exc:
                        raise ModelLoadError(
                            f"{candidate.uri} loaded but cannot score: {_short(exc)}"
                        ) from exc
            except ModelLoadError as exc:
                self.last_error = str(exc)
                keep = self.current
                kept = f"; still serving version {keep.version}" if keep else ""
                return False, f"{exc}{kept}"
            except Exception as exc:  # any other failure must not take the service down
                self.last_error = _short(exc)
                keep = self.current
                kept = f"; still serving version {keep.version}" if keep else ""
                return False, f"reload failed: {self.last_error}{kept}"
            self.current = candidate
            self.last_error = None
            return True, f"serving {candidate.name} version {candidate.version}"


def probe_frame(scoring: ScoringModel, features: pd.DataFrame) -> None:
    """Score and explain ``features`` with ``scoring``; raises if the model cannot, or if its
    contributions do not add up to its scores (a booster that does not match its metadata)."""
    matrix = scoring.matrix(features)
    raw = scoring.raw_score(matrix, num_threads=1)
    contrib = scoring.contributions(matrix, num_threads=1)
    expected = (len(features), len(scoring.feature_names) + 1)
    if len(raw) != len(features) or contrib.shape != expected:
        raise ModelLoadError("model returned the wrong number of rows or columns")
    if not np.allclose(contrib.sum(axis=1), raw, rtol=0, atol=1e-9):
        raise ModelLoadError("the model's contributions do not add up to its scores")
    scoring.explain(features, contributions=contrib)
