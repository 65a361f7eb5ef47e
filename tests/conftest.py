"""Shared fixtures: every test gets its own cargorisk home (MLflow, stores) under tmp_path."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty cargorisk home; settings and MLflow point inside it, never at the repo."""
    monkeypatch.setenv("CARGORISK_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CARGORISK_CONFIG", raising=False)
    return tmp_path
