"""From a data directory of contract tables to a labelled, time-ordered feature frame.

A data directory holds ``shipments`` and ``outcomes`` (``.parquet`` or ``.csv``) in the
contract's shape (simulated or ingested), optionally ``dataset.json`` (a
:class:`~features.contracts.DatasetInfo`: what a positive label means - narcotics seizure, duty
fraud - and the schema of the source's own attributes; absent means narcotics and no
attributes) and, for simulated worlds only, ``truth.parquet`` (which shipments really were
positive). Truth is never a feature and never a training label: it is used only to measure
*true* recall over all shipments.

Labels come from inspections. A shipment is **positive** when any of its inspections ended in
a ``seized`` result - whatever the label means for this data: a seizure, a fraud finding -
(results known by the end of the data), **negative** when it was inspected and every
inspection was clean, and **unlabelled** when it was never inspected. How unlabelled shipments
enter training is ``settings.unlabelled_policy``:

* ``drop`` (default) - train, calibrate and evaluate on inspected shipments only. The labelled
  set is biased by past selection, but every label is a real result.
* ``clean`` - every uninspected shipment counts as clean. More rows, but smuggling that was
  never inspected becomes a false negative.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
from pydantic import ValidationError

from features.contracts import (
    REQUIRED_SHIPMENT_COLUMNS,
    AttributeSpec,
    DatasetInfo,
    Outcomes,
    validate_outcomes,
    validate_shipments,
)
from features.errors import CargoriskError, ContractError

TABLES = ("shipments", "outcomes")
REQUIRED_OUTCOME_COLUMNS = tuple(
    name for name, col in Outcomes.to_schema().columns.items() if not col.nullable
)
LABEL_POLICIES = ("drop", "clean")


@dataclass(frozen=True)
class Tables:
    """The contract tables of one data directory (validated), what its labels mean and its
    attribute schema (``info``) and, if present, the truth."""

    shipments: pd.DataFrame
    outcomes: pd.DataFrame
    truth: pd.DataFrame | None
    source: str
    info: DatasetInfo = field(default_factory=DatasetInfo)


@dataclass
class Dataset:
    """Every shipment of the data, in declaration order, with its features and labels.

    ``label`` is 1.0 (seized), 0.0 (clean, or uninspected under the ``clean`` policy) or NaN
    (not used for training or evaluation). ``illicit`` is the hidden truth when the data is
    simulated, else None.
    """

    shipments: pd.DataFrame
    features: pd.DataFrame
    label: np.ndarray
    inspected: np.ndarray
    illicit: np.ndarray | None
    policy: str
    info: DatasetInfo = field(default_factory=DatasetInfo)

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.label)

    @property
    def declared_at(self) -> pd.Series:
        return self.shipments["declared_at"]


def _find(data_dir: Path, table: str) -> Path:
    for suffix in (".parquet", ".csv"):
        path = data_dir / f"{table}{suffix}"
        if path.is_file():
            return path
    raise CargoriskError(f"{data_dir}: no {table} table (expected {table}.parquet or {table}.csv)")


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # unreadable file: corrupt parquet, bad CSV
        raise CargoriskError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def _contract_error(table: str, exc: pa_errors.SchemaErrors) -> ContractError:
    cases = exc.failure_cases
    parts = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        example = group["failure_case"].iloc[0]
        parts.append(f"{column}: {check} ({len(group)} rows, e.g. {example!r})")
        if len(parts) == 5:
            break
    more = "" if len(parts) < 5 else " ..."
    return ContractError(f"{table} table breaks the contract - " + "; ".join(parts) + more)


def validate_table(
    table: str, frame: pd.DataFrame, attributes: dict[str, AttributeSpec] | None = None
) -> pd.DataFrame:
    """Validate one contract table; missing required columns and bad values become a
    :class:`ContractError` naming the fields. Shipments keep their ``attr.*`` columns, checked
    against ``attributes`` when given."""
    if table == "shipments":
        required = REQUIRED_SHIPMENT_COLUMNS

        def validate(f: pd.DataFrame) -> pd.DataFrame:
            return validate_shipments(f, attributes=attributes)
    else:
        validate, required = validate_outcomes, REQUIRED_OUTCOME_COLUMNS
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ContractError(f"{table} table lacks required column(s): {', '.join(missing)}")
    try:
        return validate(frame)
    except pa_errors.SchemaErrors as exc:
        raise _contract_error(table, exc) from None
    except pa_errors.SchemaError as exc:
        raise ContractError(f"{table} table breaks the contract - {exc}") from None
    except ContractError as exc:  # an attribute column the schema does not declare, a bad value
        raise ContractError(
            f"{table} table breaks the contract - {exc} (attributes are declared in dataset.json)"
        ) from None


def read_info(data_dir: Path) -> DatasetInfo:
    """``data_dir/dataset.json`` (what the label means, the attribute schema); the default
    (narcotics seizures, no attributes) when the file is absent."""
    path = data_dir / "dataset.json"
    if not path.is_file():
        return DatasetInfo()
    try:
        return DatasetInfo.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise CargoriskError(f"{path}: cannot read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise CargoriskError(f"{path}: not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise CargoriskError(f"{path}: {where}: {first['msg']}") from None


def load_tables(data_dir: str | Path) -> Tables:
    """Read and validate the contract tables of ``data_dir`` (and ``dataset.json`` and
    ``truth.parquet`` if there)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CargoriskError(f"--data {data_dir}: not a directory")
    info = read_info(data_dir)
    frames = {t: validate_table(t, _read(_find(data_dir, t)), info.attributes) for t in TABLES}
    truth = None
    truth_path = data_dir / "truth.parquet"
    if truth_path.is_file():
        truth = _read(truth_path)
        missing = {"shipment_id", "illicit"} - set(truth.columns)
        if missing:
            raise CargoriskError(f"{truth_path}: lacks column(s) {', '.join(sorted(missing))}")
    return Tables(frames["shipments"], frames["outcomes"], truth, str(data_dir.resolve()), info)


def inspection_labels(shipments: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per shipment (in ``shipments`` order): ``inspected`` and ``seized`` (any inspection
    ended in a positive result). Outcomes of unknown shipments are ignored."""
    ids = shipments["shipment_id"]
    seized_ids = outcomes.loc[outcomes["result"] == "seized", "shipment_id"]
    return pd.DataFrame(
        {
            "inspected": ids.isin(outcomes["shipment_id"]).to_numpy(),
            "seized": ids.isin(seized_ids).to_numpy(),
        },
        index=shipments.index,
    )


def training_label(labels: pd.DataFrame, policy: str) -> np.ndarray:
    """1.0 positive (seized), 0.0 clean, NaN unlabelled, according to the unlabelled policy."""
    if policy not in LABEL_POLICIES:
        raise CargoriskError(f"unlabelled_policy must be one of {LABEL_POLICIES}, got {policy!r}")
    label = labels["seized"].to_numpy().astype(float)
    if policy == "drop":
        label[~labels["inspected"].to_numpy()] = np.nan
    return label


def truth_for(shipments: pd.DataFrame, truth: pd.DataFrame | None) -> np.ndarray | None:
    """The hidden ``illicit`` flag aligned on ``shipments``; None when truth is absent or does
    not cover every shipment (then true recall is simply not reported)."""
    if truth is None:
        return None
    flags = truth.drop_duplicates("shipment_id").set_index("shipment_id")["illicit"]
    aligned = flags.reindex(shipments["shipment_id"])
    if aligned.isna().any():
        return None
    return aligned.astype(bool).to_numpy()


def engine_options(settings) -> dict[str, Any]:
    """Keyword arguments of ``build_training_frame`` for the feature engine the settings name
    (``feature_engine``) and its bounds (``engine_memory_limit``, ``engine_threads``,
    ``engine_temp_directory``, ``spark_master``)."""
    from features.engine import EngineSettings

    temp = settings.engine_temp_directory
    return {
        "engine": settings.feature_engine,
        "engine_settings": EngineSettings(
            memory_limit=settings.engine_memory_limit,
            threads=settings.engine_threads,
            temp_directory=None if temp is None else str(temp),
            spark_master=settings.spark_master,
        ),
    }


def build_dataset(
    tables: Tables,
    policy: str = "drop",
    *,
    engine: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Dataset:
    """Features as of each shipment's time, plus labels; shipments sorted by declaration time.

    ``engine``: the feature engine's keyword arguments (:func:`engine_options`); default the
    numpy executor. Raises :class:`CargoriskError` for data a model cannot be trained on: no
    shipments, no inspections, or no positive label at all.
    """
    from features.pipeline import build_training_frame

    shipments = tables.shipments
    if len(shipments) == 0:
        raise CargoriskError(f"{tables.source}: the shipments table is empty")
    shipments = shipments.sort_values(["declared_at", "shipment_id"], kind="stable")
    shipments = shipments.reset_index(drop=True)
    labels = inspection_labels(shipments, tables.outcomes)
    if not labels["inspected"].any():
        raise CargoriskError(
            f"{tables.source}: no shipment has an inspection outcome; nothing to learn from"
        )
    if not labels["seized"].any():
        label = tables.info.label
        raise CargoriskError(
            f"{tables.source}: no inspection ended in a {label.positive} (no 'seized' result "
            f"in outcomes; the label is {label.name}); a risk model needs positive labels"
        )
    progress(f"building features for {len(shipments):,} shipments")
    features = build_training_frame(
        shipments, tables.outcomes, attributes=tables.info.attributes, **(engine or {})
    )
    if (
        len(features) != len(shipments)
        or not (features["shipment_id"].to_numpy() == shipments["shipment_id"].to_numpy()).all()
    ):
        raise RuntimeError("feature pipeline did not return one row per shipment in order")
    return Dataset(
        shipments=shipments,
        features=features,
        label=training_label(labels, policy),
        inspected=labels["inspected"].to_numpy(),
        illicit=truth_for(shipments, tables.truth),
        policy=policy,
        info=tables.info,
    )
