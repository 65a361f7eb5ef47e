"""Test helpers of the serving tests: a small history, a tiny model registered in MLflow the way
training registers models, and real ``mlflow server`` / ``bentoml serve`` processes."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalog import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.contracts import validate_outcomes, validate_shipments
from features.scoring import FeatureEncoder, ScoringModel
from tests.processes import BIN, free_port, mlflow_server, start, stop, wait_http
from tests.serving.conftest import make_shipment

__all__ = ["BIN", "free_port", "mlflow_server", "start", "stop", "wait_http"]

REPO = Path(__file__).resolve().parents[2]
PYFUNC = REPO / "training" / "pyfunc_model.py"


def tiny_history(n: int = 600, seed: int = 0, days: int = 30):
    """``n`` sea shipments over ``days`` days with inspections; shipments from one risky
    route (EC, reefer, new consignees) are seized far more often. Contract frames."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01 06:00")
    rows, outs = [], []
    for i in range(n):
        declared = start + pd.Timedelta(minutes=int(i * days * 1440 / n))
        risky = rng.random() < 0.25
        country = "EC" if risky else rng.choice(["CN", "US", "DE", "BR"])
        rec = make_shipment(
            i,
            shipment_id=f"H{i:06d}",
            declared_at=declared.isoformat(),
            booked_at=(declared - pd.Timedelta(days=20)).isoformat(),
            departed_at=(declared - pd.Timedelta(days=15)).isoformat(),
            arrival_at=(declared + pd.Timedelta(days=1)).isoformat(),
            origin_country=country,
            departure_country=country,
            container_type="reefer" if risky else rng.choice(["dry", "open_top"]),
            consignee_id=f"NEW{i}" if risky and rng.random() < 0.5 else f"CNS{i % 40}",
            hs_code="080390" if risky else rng.choice(["847130", "940360", "610910"]),
            declared_value_usd=float(rng.uniform(2_000, 60_000)),
            payment_method="cash" if risky and rng.random() < 0.5 else "bank_transfer",
        )
        if rng.random() < 0.15:  # an express parcel to a private recipient
            rec.update(
                mode="express",
                container_id=None,
                container_type=None,
                load_type=None,
                bill_of_lading=None,
                vessel=None,
                voyage=None,
                transshipment_ports=None,
                air_waybill=f"AWB{i:08d}",
                platform="shopnow",
                order_ref=f"ORD{i}",
                recipient_customs_code=f"P{i % 30:08d}",
                packages=1,
                gross_weight_kg=float(rng.uniform(0.2, 3)),
                declared_value=float(rng.uniform(5, 200)),
                declared_value_usd=float(rng.uniform(5, 200)),
            )
        rows.append(rec)
        if rng.random() < 0.4:
            seized = rng.random() < (0.5 if risky else 0.03)
            inspected = declared + pd.Timedelta(days=2)
            outs.append(
                {
                    "shipment_id": rec["shipment_id"],
                    "inspected_at": inspected,
                    "result_at": inspected + pd.Timedelta(days=3),
                    "result": "seized" if seized else "clean",
                    "drug": "cocaine" if seized else None,
                    "quantity_kg": 20.0 if seized else None,
                    "method": "physical",
                    "selected_by": "rule",
                }
            )
    ships = pd.DataFrame(rows)
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        ships[col] = pd.to_datetime(ships[col])
    return validate_shipments(ships), validate_outcomes(pd.DataFrame(outs))


ATTRIBUTES = {
    "import_type": {"kind": "categorical", "label": "import type"},
    "tax_rate": {"kind": "numeric", "label": "tax rate"},
}
"""The attribute schema of :func:`with_attributes` (a customs service's own fields)."""


def with_attributes(ships: pd.DataFrame, outs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``ships`` with two attributes: an import type that is "B2" on most shipments later
    seized (a strong signal a model picks up), and a tax rate that carries none."""
    rng = np.random.default_rng(seed)
    seized = ships["shipment_id"].isin(outs.loc[outs["result"] == "seized", "shipment_id"])
    share = np.where(seized.to_numpy(), 0.9, 0.05)
    import_type = np.where(rng.random(len(ships)) < share, "B2", "A1")
    return ships.assign(
        **{
            "attr.import_type": import_type.astype(object),
            "attr.tax_rate": rng.choice([0.0, 8.0, 13.0], len(ships)),
        }
    )


def train_tiny_model(
    ships: pd.DataFrame,
    outs: pd.DataFrame,
    seed: int = 0,
    *,
    attributes: dict | None = None,
    label: dict | None = None,
) -> ScoringModel:
    """A small LightGBM on the real feature pipeline, fitted on the scoring model's own
    encoding (:class:`features.scoring.FeatureEncoder`) and packed as a ScoringModel; with an
    attribute schema (e.g. :data:`ATTRIBUTES`) and a label meaning when given."""
    from features.contracts import DatasetInfo, attribute_column
    from features.pipeline import build_training_frame

    info = DatasetInfo.model_validate({"attributes": attributes or {}, "label": label or {}})
    frame = build_training_frame(ships, outs, attributes=info.attributes or None)
    attr_names = [attribute_column(n) for n in info.attributes]
    attr_categorical = [
        attribute_column(n) for n, spec in info.attributes.items() if spec.kind == "categorical"
    ]
    labels = outs.drop_duplicates("shipment_id").set_index("shipment_id")["result"]
    y = frame["shipment_id"].map(labels)
    keep = y.notna().to_numpy()
    categorical = [*CATEGORICAL_FEATURES, *attr_categorical]
    categories = {
        c: sorted(frame.loc[keep, c].dropna().astype(str).unique().tolist()) for c in categorical
    }
    names = [*FEATURE_NAMES, *attr_names]
    x = FeatureEncoder(names, categories).frame(frame.loc[keep])
    target = (y[keep] == "seized").astype(int).to_numpy()
    data = lgb.Dataset(x, target, categorical_feature=categorical)
    params = {
        "objective": "binary",
        "num_leaves": 8,
        "min_data_in_leaf": 5,
        "learning_rate": 0.1,
        "verbose": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
    }
    model = ScoringModel(
        booster=lgb.train(params, data, num_boost_round=30),
        feature_names=names,
        categories=categories,
        metadata={
            "trained_on": len(frame),
            "purpose": "serving tests",
            "dataset": info.model_dump(),
        },
    )
    scores = model.score(frame)
    model.thresholds = {
        "high": float(np.quantile(scores, 0.95)),
        "medium": float(np.quantile(scores, 0.85)),
    }
    return model


def register_model(
    scoring: ScoringModel,
    tracking_uri: str,
    name: str,
    workdir: Path,
    *,
    champion: bool = True,
    meta_override: dict | None = None,
) -> str:
    """Register ``scoring`` under ``name`` at ``tracking_uri`` in the form training logs it
    (the models-from-code pyfunc of ``training/pyfunc_model.py`` with the booster and meta
    artifacts) and (optionally) point ``champion`` at it. Everything goes through a client
    bound to ``tracking_uri``: MLflow's process-wide URIs are neither used nor changed."""
    import mlflow
    from mlflow import MlflowClient

    text, meta = scoring.to_parts()
    if meta_override:
        meta = {**meta, **meta_override}
    workdir.mkdir(parents=True, exist_ok=True)
    booster_path = workdir / "booster.txt"
    meta_path = workdir / "scoring_meta.json"
    booster_path.write_text(text, encoding="utf-8")
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    )
    run_id = client.create_run(experiment_id).info.run_id
    saved = workdir / f"model-{run_id}"
    mlflow.pyfunc.save_model(
        path=str(saved),
        python_model=str(PYFUNC),
        artifacts={"booster": str(booster_path), "meta": str(meta_path)},
    )
    client.log_artifacts(run_id, str(saved), artifact_path="model")
    client.set_terminated(run_id)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    if champion:
        client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)


@functools.cache
def service_app():
    """``CargoRisk.to_asgi()``, once per process: BentoML registers its Prometheus metrics when
    the app is first called, and a second app would register them again (an error). Each test
    client's lifespan starts a fresh service instance on it, with the settings of the moment."""
    from serving.service import CargoRisk

    return CargoRisk.to_asgi()


def service_env(home: Path, tracking_uri: str, **settings) -> dict:
    env = {**os.environ}
    env.pop("CARGORISK_CONFIG", None)
    env.update(
        {
            "CARGORISK_HOME": str(home),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "BENTOML_DO_NOT_TRACK": "true",
            "BENTOML_HOME": str(home / "bentoml"),
        }
    )
    for key, value in settings.items():
        env[f"CARGORISK_{key.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def scoring_service(
    home: Path, env: dict, *, ready: bool = True, port: int | None = None, workers: int = 1
):
    """``cargorisk serve`` (-> ``bentoml serve``, ``workers`` worker processes) on a free
    loopback port; yields the URL."""
    port = port or free_port()
    cmd = [str(BIN / "cargorisk"), "serve", "--port", str(port), "--host", "127.0.0.1"]
    cmd += ["--workers", str(workers)] if workers != 1 else []
    proc = start(cmd, env, home / "service.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/{'readyz' if ready else 'livez'}", timeout=180, proc=proc)
        yield url, proc
    finally:
        stop(proc)


def started_engine(settings, model, loaded_at):
    """A started :class:`serving.engine.ScoringEngine` serving ``model`` (a ScoringModel) as
    version 1 of cargorisk-risk, loaded at ``loaded_at``, and ready."""
    from serving.engine import ScoringEngine
    from serving.model import LoadedModel

    loaded = LoadedModel(model, "cargorisk-risk", "1", "models:/cargorisk-risk/1", loaded_at)
    engine = ScoringEngine(settings, model_loader=lambda: loaded)
    engine.start()
    assert engine.ready, engine.status()
    return engine
