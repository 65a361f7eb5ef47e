"""Shared fixtures: every test gets its own cargorisk home (MLflow, stores) under tmp_path,
and leaves MLflow's process-wide state as it found it."""

from __future__ import annotations

import contextlib
import os

import pytest

_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def kept_mlflow_uris():
    """In-process training (``train_job``, the quickstart) calls ``mlflow.set_tracking_uri`` and
    ``set_registry_uri``, which are process-wide and exported to the environment that served
    subprocesses inherit: a later test would then read or register in an earlier test's store.
    Put the module values and the variables back afterwards (a module-scoped fixture that
    trains uses this itself: it is set up before the per-test guard takes its snapshot)."""
    import mlflow.tracking._model_registry.utils as registry
    import mlflow.tracking._tracking_service.utils as tracking

    uri, registry_uri = tracking._tracking_uri, registry._registry_uri
    env = {name: os.environ.get(name) for name in _MLFLOW_VARIABLES}
    try:
        yield
    finally:
        tracking._tracking_uri = uri
        registry._registry_uri = registry_uri
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _restore_mlflow_uris():
    """Every test leaves MLflow's process-wide URIs as it found them (:func:`kept_mlflow_uris`)."""
    with kept_mlflow_uris():
        yield


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty cargorisk home; settings and MLflow point inside it, never at the repo."""
    monkeypatch.setenv("CARGORISK_HOME", str(tmp_path))
    for name in _MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CARGORISK_CONFIG", raising=False)
    return tmp_path
