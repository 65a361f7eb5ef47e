"""The champion model the service scores with, loaded from the MLflow registry.

:class:`ModelHolder` resolves ``models:/<name>@champion`` to a concrete version, loads that
version's :class:`features.scoring.ScoringModel` and keeps it. A reload loads the new version
*beside* the one serving, checks it can score a probe row, and only then swaps the reference
(one assignment, atomic for the threads serving requests): requests in flight finish on the
model they started with, and a model that fails to load or to score leaves the old one serving
with the reason recorded in :attr:`ModelHolder.last_error`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import CargoriskError
from features.scoring import ScoringModel


class ModelLoadError(CargoriskError):
    """The registry has no usable champion (none registered, unreadable, or unable to score)."""


class FastScorer:
    """The scoring model's numbers without pandas on the hot path.

    :meth:`ScoringModel.raw_score` and :meth:`ScoringModel.contributions` build a categorical
    DataFrame that LightGBM then converts back to a matrix - tens of milliseconds per call for
    one shipment. This builds the same float matrix directly: numeric features as float (NaN
    when missing), categorical features as the code LightGBM itself would use (the position in
    the booster's training vocabulary, restricted to the model's declared vocabulary; unseen or
    missing -> NaN). A test holds it to the ScoringModel's results on unseen categories and
    missing values.
    """

    def __init__(self, scoring: ScoringModel) -> None:
        self.scoring = scoring
        self.booster = scoring.booster
        self.names = list(scoring.feature_names)
        cat_names = [n for n in self.names if n in scoring.categories]
        trained = getattr(scoring.booster, "pandas_categorical", None) or None
        if trained is not None and len(trained) != len(cat_names):
            raise ModelLoadError(
                f"booster has {len(trained)} categorical features, the model declares "
                f"{len(cat_names)}"
            )
        self.codes: dict[str, dict[str, float]] = {}
        for k, name in enumerate(cat_names):
            declared = list(scoring.categories[name])
            vocabulary = list(trained[k]) if trained is not None else declared
            allowed = set(declared)
            self.codes[name] = {v: float(i) for i, v in enumerate(vocabulary) if v in allowed}
        self.numeric = [n for n in self.names if n not in self.codes]
        self._numeric_pos = np.array([self.names.index(n) for n in self.numeric], dtype=int)

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.names if c not in features.columns]
        if missing:
            raise KeyError(f"feature rows lack columns: {', '.join(missing)}")
        out = np.empty((len(features), len(self.names)), dtype="float64")
        numeric = features[self.numeric]
        try:
            out[:, self._numeric_pos] = numeric.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            out[:, self._numeric_pos] = np.column_stack(
                [pd.to_numeric(numeric[c], errors="coerce").to_numpy("float64") for c in numeric]
            )
        for name, codes in self.codes.items():
            j = self.names.index(name)
            out[:, j] = [
                codes.get(v, np.nan) if isinstance(v, str) else np.nan
                for v in features[name].tolist()
            ]
        return out

    def raw_score(self, features: pd.DataFrame, *, num_threads: int = 0) -> np.ndarray:
        return self.booster.predict(self.matrix(features), raw_score=True, num_threads=num_threads)

    def contributions(self, features: pd.DataFrame, *, num_threads: int = 0) -> np.ndarray:
        """Exact TreeSHAP: one column per feature, then the base value; rows sum to raw."""
        return self.booster.predict(
            self.matrix(features), pred_contrib=True, num_threads=num_threads
        )


@dataclass(frozen=True)
class LoadedModel:
    """A scoring model with where it came from."""

    scoring: ScoringModel
    name: str
    version: str
    uri: str
    loaded_at: dt.datetime
    fast: FastScorer | None = None

    @property
    def scorer(self) -> FastScorer:
        return self.fast if self.fast is not None else FastScorer(self.scoring)


def load_champion(tracking_uri: str, name: str, alias: str = "champion") -> LoadedModel:
    """Load the version the alias points to now (pinned by number, so a promotion racing with
    the load cannot mix two versions)."""
    with _tracking(tracking_uri):
        return _load_champion(tracking_uri, name, alias)


@contextlib.contextmanager
def _tracking(tracking_uri: str):
    """Use ``tracking_uri`` for tracking and the registry for this load only.
    ``mlflow.set_tracking_uri`` is process-wide and also sets (or, given None, deletes)
    ``MLFLOW_TRACKING_URI`` in the environment, which the settings read; so set MLflow's module
    values alone and put them back afterwards. The registry is pinned too: a registry URI set
    earlier in the process (or ``MLFLOW_REGISTRY_URI`` inherited from a parent) must never make
    the service load another registry's champion."""
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils

    previous, previous_registry = utils._tracking_uri, registry._registry_uri
    utils._tracking_uri = tracking_uri
    registry._registry_uri = tracking_uri
    try:
        yield
    finally:
        utils._tracking_uri = previous
        registry._registry_uri = previous_registry


def _load_champion(tracking_uri: str, name: str, alias: str) -> LoadedModel:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        raise ModelLoadError(
            f"no model {name}@{alias} in the registry at {tracking_uri}: {_short(exc)}"
        ) from exc
    uri = f"models:/{name}/{version.version}"
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
        scoring = pyfunc.unwrap_python_model().scoring_model
    except Exception as exc:
        raise ModelLoadError(f"cannot load {uri}: {_short(exc)}") from exc
    if not isinstance(scoring, ScoringModel):
        raise ModelLoadError(f"{uri} is not a cargorisk scoring model")
    return LoadedModel(
        scoring=scoring,
        name=name,
        version=str(version.version),
        uri=uri,
        loaded_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )


def with_fast_scorer(model: LoadedModel) -> LoadedModel:
    """The same model with its :class:`FastScorer` built (done once, at load)."""
    if model.fast is not None:
        return model
    return dataclasses.replace(model, fast=FastScorer(model.scoring))


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
                        candidate = with_fast_scorer(candidate)
                        self._probe(candidate.scoring)
                    except Exception as exc:
                        raise ModelLoadError(
                            f"{candidate.uri} loaded but cannot score: {_short(exc)}"
                        ) from exc
                candidate = with_fast_scorer(candidate)
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
    """Score and explain ``features`` with ``scoring`` both ways (ScoringModel and
    FastScorer); raises if the model cannot or the two disagree."""
    raw = scoring.raw_score(features, num_threads=1)
    fast = FastScorer(scoring)
    contrib = fast.contributions(features, num_threads=1)
    if len(raw) != len(features) or contrib.shape[0] != len(features):
        raise ModelLoadError("model returned the wrong number of rows")
    if not np.allclose(fast.raw_score(features, num_threads=1), raw, rtol=0, atol=1e-9):
        raise ModelLoadError("fast scoring path disagrees with the model's own scores")
