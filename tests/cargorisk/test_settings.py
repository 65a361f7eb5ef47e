from __future__ import annotations

import pydantic
import pytest

from common.settings import load_settings


def test_defaults_live_under_home(home):
    settings = load_settings()
    assert settings.home == home.resolve()
    assert settings.tracking_uri == f"sqlite:///{home.resolve()}/mlruns/mlflow.db"
    assert settings.store == f"sqlite:///{home.resolve()}/cargorisk.db"


def test_mlflow_tracking_uri_env_wins(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_settings(mlflow_tracking_uri="sqlite:///x.db").tracking_uri == (
        "http://127.0.0.1:5999"
    )


def test_env_and_file(home, monkeypatch, tmp_path):
    config = tmp_path / "cargorisk.yaml"
    config.write_text("capacity: 0.02\nmodel_name: other\n")
    monkeypatch.setenv("CARGORISK_CONFIG", str(config))
    monkeypatch.setenv("CARGORISK_MODEL_NAME", "from-env")
    settings = load_settings()
    assert settings.capacity == 0.02
    assert settings.model_name == "from-env"


def test_frozen_and_strict(home):
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.capacity = 0.5
    with pytest.raises(pydantic.ValidationError, match="capacity"):
        load_settings(capacity=2)
    with pytest.raises(pydantic.ValidationError, match="unknown_knob"):
        load_settings(unknown_knob=1)


def test_embedded_tracking_survives_mlflow_exporting_the_uri(home, monkeypatch):
    settings = load_settings()
    assert settings.embedded_tracking
    # mlflow.set_tracking_uri exports the variable; the same URI is still the embedded store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    assert settings.embedded_tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert not settings.embedded_tracking


def test_feature_engine_and_its_bounds_from_the_environment(home, monkeypatch, tmp_path):
    from training.dataset import engine_options

    assert engine_options(load_settings())["engine"] == "duckdb"  # the default
    monkeypatch.setenv("CARGORISK_FEATURE_ENGINE", "pandas")
    assert engine_options(load_settings())["engine"] == "pandas"  # still selectable
    monkeypatch.setenv("CARGORISK_FEATURE_ENGINE", "duckdb")
    monkeypatch.setenv("CARGORISK_ENGINE_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("CARGORISK_ENGINE_THREADS", "1")
    monkeypatch.setenv("CARGORISK_ENGINE_TEMP_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("CARGORISK_SPARK_MASTER", "spark://cluster:7077")
    monkeypatch.setenv("CARGORISK_SPARK_SPLIT_DAYS", "7")
    options = engine_options(load_settings())
    assert options["engine"] == "duckdb"
    bounds = options["engine_settings"]
    assert (bounds.memory_limit, bounds.threads, bounds.temp_directory) == ("1GB", 1, str(tmp_path))
    assert bounds.spark_master == "spark://cluster:7077"
    assert bounds.spark_split_days == 7
    with pytest.raises(pydantic.ValidationError, match="feature_engine"):
        load_settings(feature_engine="polars")
    with pytest.raises(pydantic.ValidationError, match="engine_threads"):
        load_settings(engine_threads=0)
    with pytest.raises(pydantic.ValidationError, match="spark_split_days"):
        load_settings(spark_split_days=-1)
