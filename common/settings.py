"""One typed, frozen settings object for the CLI and the service.

Values come, strongest first, from: keyword arguments (tests), ``CARGORISK_*`` environment
variables, an optional YAML file named by ``CARGORISK_CONFIG``, and the defaults below.
``MLFLOW_TRACKING_URI``, when set, always wins for the tracking server.

All state cargorisk writes lives under ``home`` (the current directory unless
``CARGORISK_HOME`` says otherwise): ``mlruns/`` (MLflow's SQLite database and artifacts),
``cargorisk.db`` (the serving store), ``ui-session.key`` (the worklist's cookie secret) and,
after ``cargorisk quickstart``, ``data/`` and ``quickstart-keys.json``. What cargorisk creates
there is private to its user: folders 0700, files 0600 (they hold password hashes, names,
phone numbers and addresses). Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:
    from features.drift import Thresholds


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
    shadow_alias: str = Field(
        default="challenger",
        min_length=1,
        description="Registry alias of the shadow challenger: scored beside the champion on "
        "every request, stored, never served (none registered: shadow scoring is off).",
    )
    shadow_max_pending: int = Field(
        default=64,
        ge=1,
        description="Requests the shadow challenger may have queued; beyond it a request is "
        "not shadow-scored (counted in cargorisk_shadow_dropped_total), never delayed.",
    )

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

    feature_engine: Literal["pandas", "duckdb", "spark"] = Field(
        default="duckdb",
        description="What computes the offline point-in-time aggregates for train, evaluate, "
        "promote and score: DuckDB (the default: train reads Parquet data lazily and keeps "
        "only the rows it needs), the numpy executor (pandas) or Spark (needs pyspark); all "
        "give the same features.",
    )
    spark_master: str = Field(
        default="local[2]",
        min_length=1,
        description="Where the spark engine runs: local[N] or a cluster's master URL.",
    )
    spark_driver_memory: str = Field(
        default="4g",
        min_length=1,
        description="The Spark driver's heap and largest result (spark.driver.memory and "
        "maxResultSize): the aggregates come back to the driver.",
    )
    spark_split_days: int = Field(
        default=30,
        ge=0,
        description="Spark computes the running sums of the few huge keys (global, HS chapter, "
        "origin) in two stages over buckets of this many days, so one key is not one task; "
        "0 = one stage.",
    )
    engine_memory_limit: str = Field(
        default="2GB",
        min_length=1,
        description="DuckDB's memory limit (it spills beyond it to engine_temp_directory).",
    )
    engine_threads: int = Field(default=2, ge=1, le=256, description="DuckDB's threads.")
    engine_temp_directory: Path | None = Field(
        default=None,
        description="Where DuckDB spills (a private folder made and removed per run); default "
        "the system's temp folder.",
    )

    drift_psi_warn: float = Field(
        default=0.1, gt=0, description="Drift: a feature's PSI from which it warns."
    )
    drift_psi_alert: float = Field(
        default=0.25, gt=0, description="Drift: a feature's PSI from which it alarms."
    )
    drift_unseen_alert: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Drift: rise of the share of a categorical feature's values unknown to the "
        "model (outside its vocabulary) over the training window's share from which it alarms.",
    )
    drift_missing_alert: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Drift: rise of a feature's missing share over training's from which it "
        "alarms (0.1 = ten points).",
    )
    drift_window_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Drift: the /metrics gauges compare the last this many days of served "
        "traffic with training.",
    )
    drift_weeks: int = Field(
        default=8,
        ge=1,
        le=104,
        description="Drift: ISO weeks of served traffic the health page and `cargorisk "
        "monitor` show.",
    )
    drift_refresh_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="Drift: how often the service recomputes drift in the background (0: "
        "never; the health page and /metrics then show none).",
    )
    aggregate_prune_minutes: float = Field(
        default=10,
        ge=0,
        le=24 * 60,
        description="Online aggregates: how often the service deletes "
        "a bounded batch of day buckets (`key_days`) no window can read any more (0: never); "
        "docs/serving.md, 'What the store keeps'.",
    )
    aggregate_prune_grace_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Online aggregates: day buckets are kept for the windows of declarations "
        "dated up to this many days before the latest declaration stored (and the clock), "
        "for declarations that arrive late.",
    )

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
    host: str = Field(
        default="127.0.0.1",
        description="Interface `cargorisk serve` listens on: loopback unless told otherwise "
        "(0.0.0.0 in a container, where the port mapping is the boundary).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Worker processes of `cargorisk serve`: they share the store's online "
        "aggregates (no history in any process), so any number gives the same scores.",
    )
    online_state: Literal["store"] = Field(
        default="store",
        description="Where the service's online features come from: always `store`, the "
        "online aggregates kept in the store (`cargorisk features materialize`, or built at "
        "start from the store's own history), updated in the transaction that stores each "
        "declaration and report and shared by every worker and replica. The former `memory` "
        "(a copy of the whole history in each worker process) is gone (issue 15): setting it "
        "is refused with an error saying so.",
    )

    # -- the service's edge: what it accepts before any work ------------------------------
    max_body_mb: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Largest request body (MiB): refused with 413 from Content-Length before "
        "it is read; a body without Content-Length is cut when it passes the limit. A "
        "20,000-shipment manifest is about 25 MiB.",
    )
    max_concurrent_requests: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="Requests one worker process works on at once; more are answered 503 "
        "with Retry-After at once instead of queueing (probes excepted).",
    )
    max_scoring_in_flight: int = Field(
        default=8,
        ge=1,
        le=1_000,
        description="Scoring requests (POST /score, /score/batch, /outcomes) one worker "
        "process works on at once; more are answered 503 with Retry-After at once, before "
        "their body is read, instead of queueing (counted in cargorisk_shed_requests_total).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; comma-separated in the environment. None by "
        "default: the client address is the connection's.",
    )
    metrics_require_key: bool = Field(
        default=True,
        description="/metrics (seizure counts among them) needs an API key of role monitor "
        "or admin.",
    )
    api_explorer: bool = Field(
        default=False,
        description="Serve BentoML's API explorer (Swagger UI, from local files only) at /. "
        "Off by default: a developer tool sharing the worklist's origin.",
    )

    # -- worklist sessions and sign-in ----------------------------------------------------
    ui_secret: SecretStr | None = Field(
        default=None,
        description="The worklist's cookie-signing secret as base64 (standard or URL-safe, "
        "padding optional) of at least 32 random bytes, e.g. `openssl rand -base64 32`. "
        "Default: created once in <home>/ui-session.key.",
    )
    ui_session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A session unused this long ends."
    )
    ui_session_max_minutes: int = Field(
        default=8 * 60,
        ge=1,
        le=7 * 24 * 60,
        description="A session ends this long after sign-in, however busy (one shift).",
    )
    sign_in_max_failures: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed sign-ins within sign_in_window_minutes after which a client "
        "address, and separately an account name, is refused (429) until they age out.",
    )
    sign_in_window_minutes: int = Field(default=5, ge=1, le=24 * 60)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("online_state", mode="before")
    @classmethod
    def _no_memory_state(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "memory":
            raise ValueError(
                "'memory' is no longer supported: the service holds no history in memory; its "
                "features come from the store's online aggregates, shared by every worker "
                "(issue 15). Remove the setting (CARGORISK_ONLINE_STATE / online_state); its "
                "only value is 'store'."
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from exc
        return value

    @model_validator(mode="after")
    def _drift_order(self) -> Settings:
        if self.drift_psi_warn > self.drift_psi_alert:
            raise ValueError(
                f"drift_psi_warn ({self.drift_psi_warn}) must not exceed drift_psi_alert "
                f"({self.drift_psi_alert})"
            )
        return self

    @property
    def drift_thresholds(self) -> Thresholds:
        """The drift settings as :class:`features.drift.Thresholds`."""
        from features.drift import Thresholds

        return Thresholds(
            psi_warn=self.drift_psi_warn,
            psi_alert=self.drift_psi_alert,
            unseen_alert=self.drift_unseen_alert,
            missing_alert=self.drift_missing_alert,
        )

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
        """Create ``mlruns/`` (0700) and, for embedded tracking, its database file (0600)
        before MLflow does, so neither is readable by other users of the machine."""
        private_dir(self.mlruns_dir)
        if self.embedded_tracking:
            private_file(self.mlruns_dir / "mlflow.db")


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700 (an existing folder is left as
    it is: it may be the current directory, or shared on purpose)."""
    path = Path(path)
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode is cut by the umask; be exact
    return path


def private_file(path: Path) -> Path:
    """Create an empty file (0600) if none exists, so a library that opens it later (SQLite,
    MLflow) writes into a file only its owner can read. An existing file is left alone."""
    path = Path(path)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


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


def engine_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``features.pipeline.build_training_frame`` for the feature engine
    the settings name (``feature_engine``) and its bounds (``engine_memory_limit``,
    ``engine_threads``, ``engine_temp_directory``, ``spark_master``, ``spark_driver_memory``,
    ``spark_split_days``):
    one place for training's jobs and the service's drift monitor."""
    from features.engine import EngineSettings

    temp = settings.engine_temp_directory
    return {
        "engine": settings.feature_engine,
        "engine_settings": EngineSettings(
            memory_limit=settings.engine_memory_limit,
            threads=settings.engine_threads,
            temp_directory=None if temp is None else str(temp),
            spark_master=settings.spark_master,
            spark_driver_memory=settings.spark_driver_memory,
            spark_split_days=settings.spark_split_days,
        ),
    }


def load_settings(**overrides: Any) -> Settings:
    """Build the settings in force now (environment + config file + overrides)."""
    return Settings(**overrides)
