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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contracts import DatasetInfo
from features.errors import CargoriskError
from features.tables import (
    PARTITION_GLOB,
    find_table,
    read_contract_dir,
    read_frame,
    read_info,
    table_path,
    validate_table,
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
    total: int | None = None
    """Shipments in the whole history when the rows here are only those training needs
    (:func:`build_dataset_from_parquet`); None when every shipment is here."""
    span: tuple[pd.Timestamp, pd.Timestamp] | None = None
    """First and last declaration time of the whole history (tz-naive UTC) when only some
    rows are here: the temporal split's boundaries come from it."""
    consignee_prior: np.ndarray | None = None
    """Earlier shipments of each row's consignee over the whole history (the rules baseline's
    "new consignee") when only some rows are here; None: counted within ``shipments``."""

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.label)

    @property
    def declared_at(self) -> pd.Series:
        return self.shipments["declared_at"]

    @property
    def shipment_count(self) -> int:
        """Shipments of the whole history (kept or not)."""
        return len(self.shipments) if self.total is None else self.total


def read_truth(data_dir: str | Path) -> pd.DataFrame | None:
    """The simulator's truth table of ``data_dir`` (``truth.parquet`` or month partitions
    ``truth/month=*/``), None where there is none; it must say which shipment was illicit."""
    truth_path = table_path(Path(data_dir), "truth")
    if truth_path is None:
        return None
    truth = read_frame(truth_path)
    missing = {"shipment_id", "illicit"} - set(truth.columns)
    if missing:
        raise CargoriskError(f"{truth_path}: lacks column(s) {', '.join(sorted(missing))}")
    return truth


def load_tables(data_dir: str | Path) -> Tables:
    """Read and validate the contract tables of ``data_dir``
    (:func:`features.tables.read_contract_dir`) and its truth table if there (``truth.parquet``
    or month partitions ``truth/month=*/``, as a world made by month has it)."""
    tables = read_contract_dir(data_dir, what="--data")
    truth = read_truth(data_dir)
    return Tables(tables.shipments, tables.outcomes, truth, tables.source, tables.info)


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
    (:func:`common.settings.engine_options`)."""
    from common.settings import engine_options as options

    return options(settings)


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


def parquet_inputs(data_dir: str | Path) -> tuple[str, str] | None:
    """The shipments and outcomes of ``data_dir`` as Parquet files or month-partition globs
    (what the engine reads lazily); None when either table is CSV (read whole, as before)."""
    if not Path(data_dir).is_dir():
        raise CargoriskError(f"--data {data_dir}: not a directory")
    found = []
    for table in ("shipments", "outcomes"):
        path = table_path(Path(data_dir), table)
        if path is None:
            raise CargoriskError(
                f"--data {data_dir}: no {table} table (expected {table}.parquet, {table}.csv or "
                f"{table}/{PARTITION_GLOB})"
            )
        if path.is_dir():
            found.append(str(path / PARTITION_GLOB))
        elif path.suffix.lower() == ".parquet":
            found.append(str(path))
        else:
            return None
    return found[0], found[1]


def build_dataset_from_parquet(
    data_dir: str | Path,
    policy: str = "drop",
    *,
    since: Callable[[pd.Timestamp, pd.Timestamp], pd.Timestamp | None],
    engine_settings=None,
    info: DatasetInfo | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Dataset:
    """:func:`build_dataset` for a data directory of Parquet tables, reading only the rows
    training needs: the inspected shipments (the labelled ones under ``drop``) and every
    shipment declared from ``since(first, last)`` on (given the whole history's first and last
    declaration: the evaluation periods; None keeps every shipment), their features computed
    by DuckDB over the whole history (:func:`features.parquet_frame.parquet_training_frame`).
    Under the ``clean`` policy every shipment is labelled, so every one is read. ``info``:
    what the labels mean and the attribute schema (default the directory's
    ``dataset.json``)."""
    from features.parquet_frame import parquet_span, parquet_training_frame

    if policy not in LABEL_POLICIES:  # before any work
        raise CargoriskError(f"unlabelled_policy must be one of {LABEL_POLICIES}, got {policy!r}")
    inputs = parquet_inputs(data_dir)
    if inputs is None:
        raise CargoriskError(f"--data {data_dir}: the lazy reader needs Parquet tables, not CSV")
    shipment_files, outcome_files = inputs
    info = info or read_info(Path(data_dir)) or DatasetInfo()
    source = str(Path(data_dir).resolve())
    total, first, last = parquet_span(shipment_files, engine_settings)
    cut = None if policy == "clean" else since(first, last)
    outcomes = validate_table("outcomes", read_frame(find_table(Path(data_dir), "outcomes")))
    if len(outcomes) == 0:
        raise CargoriskError(
            f"{source}: no shipment has an inspection outcome; nothing to learn from"
        )
    progress(f"building features for {total:,} shipments")
    frame = parquet_training_frame(
        shipment_files,
        outcome_files,
        since=cut,
        attributes=info.attributes,
        settings=engine_settings,
        earlier=("consignee_id",),
    )
    shipments = frame.shipments
    labels = inspection_labels(shipments, outcomes)
    if not labels["inspected"].any():
        raise CargoriskError(
            f"{source}: no shipment has an inspection outcome; nothing to learn from"
        )
    if not labels["seized"].any():
        raise CargoriskError(
            f"{source}: no inspection ended in a {info.label.positive} (no 'seized' result "
            f"in outcomes; the label is {info.label.name}); a risk model needs positive labels"
        )
    progress(
        f"kept {len(shipments):,} of {total:,} shipments (inspected, or declared from "
        f"{'the start' if cut is None else cut.isoformat()})"
    )
    truth = read_truth(data_dir)
    return Dataset(
        shipments=shipments,
        features=frame.features,
        label=training_label(labels, policy),
        inspected=labels["inspected"].to_numpy(),
        illicit=truth_for(shipments, truth),
        policy=policy,
        info=info,
        total=frame.total,
        span=(frame.first, frame.last),
        consignee_prior=frame.earlier["consignee_id"],
    )


def reads_lazily(settings, data_dir: str | Path) -> bool:
    """Whether a job reads ``data_dir`` through the engine, only the rows it needs
    (:func:`build_dataset_from_parquet`): with the ``duckdb`` engine on Parquet tables. CSV
    tables and the other engines read every shipment into pandas."""
    return settings.feature_engine == "duckdb" and parquet_inputs(data_dir) is not None


def read_dataset(
    data_dir: str | Path,
    settings,
    *,
    since: str | pd.Timestamp | None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Dataset:
    """The dataset a job measures from ``since`` on (None: from the start): lazily
    (:func:`reads_lazily`: the labelled shipments and every one declared from ``since``), else
    every shipment of the tables (:func:`load_tables`, :func:`build_dataset`)."""
    if not reads_lazily(settings, data_dir):
        return build_dataset(
            load_tables(data_dir),
            settings.unlabelled_policy,
            engine=engine_options(settings),
            progress=progress,
        )
    cut = None
    if since is not None:
        cut = pd.Timestamp(since)
        if cut.tzinfo is not None:
            cut = cut.tz_convert("UTC").tz_localize(None)
    return build_dataset_from_parquet(
        data_dir,
        settings.unlabelled_policy,
        since=lambda _first, _last: cut,
        engine_settings=engine_options(settings)["engine_settings"],
        progress=progress,
    )
