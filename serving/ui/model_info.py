"""What the model page shows: the champion in service and how it did on its test period.

The numbers come from the MLflow run that produced the serving version (the same run the
promotion gate judged): precision, recall and lift at each inspection capacity for the model,
the legacy rules baseline and random selection, and the capacity-curve plot logged as an
artifact. Reads are cached per model version (a reload to a new version reads again).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.registry_contract import (
    CAPACITY_CURVE_PLOT,
    capacity_metric,
    parse_capacity_metric,
)

log = logging.getLogger("cargorisk.serving")

WHO = (("test", "model"), ("rules", "rules baseline"), ("random", "random selection"))
KINDS = (
    ("precision", "Precision (hit rate of the inspected)"),
    ("recall", "Recall (share of seizures found)"),
    ("lift", "Lift (precision ÷ base rate)"),
    ("true_recall", "True recall over all traffic (simulated data only)"),
)


@dataclass
class ModelReport:
    """The champion's test-period report (empty parts when the run did not log them)."""

    name: str
    version: str
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    capacity_curve_png: bytes | None = None
    error: str | None = None

    def table(self) -> list[dict[str, Any]]:
        """Rows (metric, capacity) with the model's and both baselines' values."""
        whos = tuple(who for who, _ in WHO)
        caps: dict[str, set[float]] = {}
        for key in self.metrics:
            m = parse_capacity_metric(key, whos)
            if m:
                caps.setdefault(m.kind, set()).add(m.share)
        rows = []
        for kind, label in KINDS:
            for share in sorted(caps.get(kind, ())):
                values = {who: self.metrics.get(capacity_metric(kind, share, who)) for who in whos}
                if all(v is None for v in values.values()):
                    continue
                rows.append(
                    {
                        "kind": kind,
                        "label": label,
                        "capacity": f"{share * 100:g} %",
                        **values,
                    }
                )
        for kind, label in (("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC")):
            values = {who: self.metrics.get(f"{who}_{kind}") for who, _ in WHO}
            if any(v is not None for v in values.values()):
                rows.append({"kind": kind, "label": label, "capacity": "", **values})
        for i, row in enumerate(rows):  # the measure's name spans its capacities' rows
            first = i == 0 or rows[i - 1]["kind"] != row["kind"]
            row["span"] = sum(r["kind"] == row["kind"] for r in rows) if first else 0
        return rows


class ModelReports:
    """Reads (and caches) the report of each served model version from MLflow."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._cache: dict[tuple[str, str], ModelReport] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: str) -> ModelReport:
        key = (name, version)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        report = self._read(name, version)
        if report.error is None:
            with self._lock:
                self._cache[key] = report
        return report

    def _read(self, name: str, version: str) -> ModelReport:
        from mlflow import MlflowClient
        from mlflow.artifacts import download_artifacts

        report = ModelReport(name=name, version=version)
        try:
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            run_id = client.get_model_version(name, version).run_id
            report.run_id = run_id
            if not run_id:
                return report
            run = client.get_run(run_id)
            report.metrics = dict(run.data.metrics)
            report.params = dict(run.data.params)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    path = download_artifacts(
                        run_id=run_id,
                        artifact_path=CAPACITY_CURVE_PLOT,
                        dst_path=tmp,
                        tracking_uri=self.tracking_uri,
                    )
                    report.capacity_curve_png = Path(path).read_bytes()
            except Exception as exc:  # the run may simply not have logged plots
                log.info("no capacity curve for %s/%s: %s", name, version, exc)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("model report of %s/%s unavailable: %s", name, version, report.error)
        return report
