"""One typed, frozen settings object for the CLI and the service.

Values come, strongest first, from: keyword arguments (tests), ``CARGORISK_*`` environment
variables, an optional YAML file named by ``CARGORISK_CONFIG``, and the defaults below.
``MLFLOW_TRACKING_URI``, when set, always wins for the tracking server.

All state cargorisk writes lives under ``home`` (the current directory unless
``CARGORISK_HOME`` says otherwise): ``mlruns/`` (MLflow's SQLite database and artifacts),
``cargorisk.db`` (the serving store), ``ui-session.key`` (the worklist's cookie secret) and,
after ``cargorisk quickstart``, ``data/`` and ``quickstart-keys.json``. Nothing is read at
import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARGORISK_", extra="forbid", frozen=True, validate_default=True
    )

    home: Path = Field(default_factory=Path.cwd, description="Directory holding all state.")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="Tracking server; default sqlite:///<home>/mlruns/mlflow.db. "
        "MLFLOW_TRACKING_URI overrides it.",
    )
    experiment: str = "cargorisk"
    model_name: str = "cargorisk-risk"
    champion_alias: str = "champion"

    capacity: float = Field(
        default=0.05, gt=0, le=0.5, description="Share of shipments officers can inspect."
    )
    exploration_share: float = Field(
        default=0.1, ge=0, le=0.5, description="Share of the capacity reserved for random picks."
    )
    unlabelled_policy: Literal["drop", "clean"] = Field(
        default="drop",
        description="How uninspected shipments enter training: 'drop' keeps only inspected "
        "shipments (labels as found); 'clean' treats every uninspected shipment as clean.",
    )
    seed: int = 42

    store_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the serving store; default SQLite in home."
    )
    serve_seed_data: Path | None = Field(
        default=None,
        description="Directory of contract tables (shipments, outcomes) copied into an empty "
        "serving store at start, so the first scores have history.",
    )
    auth_enabled: bool = True
    max_batch: int = Field(default=20_000, ge=1, le=200_000)
    explain_top_share: float = Field(default=0.1, ge=0, le=1)
    recent_scores_window: int = Field(default=20_000, ge=100)
    port: int = Field(default=3000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=16)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    # -- derived locations -------------------------------------------------------------
    @property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI in force: ``MLFLOW_TRACKING_URI`` > setting > embedded."""
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str:
        """Where new experiments put artifacts when tracking is embedded."""
        return (self.mlruns_dir / "artifacts").as_uri()

    @property
    def embedded_tracking(self) -> bool:
        """Whether tracking is the embedded SQLite store under ``<home>/mlruns``.

        Decided from the URI itself, not from the environment: ``mlflow.set_tracking_uri``
        exports ``MLFLOW_TRACKING_URI``, so the variable alone says nothing about who set it.
        """
        return self.tracking_uri == f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'cargorisk.db'}"

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.champion_alias}"

    def ensure_home(self) -> None:
        self.mlruns_dir.mkdir(parents=True, exist_ok=True)


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``CARGORISK_CONFIG``, if any."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("CARGORISK_CONFIG")
        if not path:
            return {}
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(f"CARGORISK_CONFIG={path}: cannot read ({exc.strerror})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"CARGORISK_CONFIG={path}: expected a mapping of setting: value")
        return data


def load_settings(**overrides: Any) -> Settings:
    """Build the settings in force now (environment + config file + overrides)."""
    return Settings(**overrides)
