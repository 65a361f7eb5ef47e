"""Plots and the model card logged with every training run.

Every plot compares the model with the two baselines on the same shipments of the test period:
what a targeting team gains, at each inspection capacity, by following the model. Plots and
card speak of the positives the data's label names (``positive``: "seizure", "fraud
finding"), never of narcotics when the label is something else.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from features.registry_contract import capacity_metric
from features.scoring import ScoringModel
from training.metrics import CAPACITIES

NAMES = {"test": "model", "rules": "rules baseline", "random": "random selection"}
COLORS = {"test": "#1f5fa8", "rules": "#d9822b", "random": "#888888"}
OTHER_COLORS = ("#2a9d5c", "#8e44ad")


def plural(noun: str) -> str:
    """``"seizure"`` -> ``"seizures"``, ``"fraud finding"`` -> ``"fraud findings"``."""
    return noun if noun.endswith("s") else noun + "s"


def capacity_plot(
    curves: dict,
    capacity: float,
    *,
    positive: str = "seizure",
    others: dict[str, list[dict]] | None = None,
) -> Figure:
    """Precision and recall at each inspection capacity (test period), model vs baselines;
    true recall over all traffic (dashed) when the data is simulated; ``others`` (name ->
    curve rows) are the candidates that were not registered, dash-dotted."""
    fig, (ax_p, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2))
    for who, rows in curves["labelled"].items():
        x = [100 * r["capacity"] for r in rows]
        ax_p.plot(x, [r["precision"] for r in rows], color=COLORS[who], label=NAMES[who])
        ax_r.plot(x, [r["recall"] for r in rows], color=COLORS[who], label=NAMES[who])
    for (name, rows), color in zip((others or {}).items(), OTHER_COLORS, strict=False):
        x = [100 * r["capacity"] for r in rows]
        style = {"color": color, "linestyle": "-.", "label": name}
        ax_p.plot(x, [r["precision"] for r in rows], **style)
        ax_r.plot(x, [r["recall"] for r in rows], **style)
    for who, rows in curves.get("true", {}).items():
        x = [100 * r["capacity"] for r in rows]
        ax_r.plot(
            x,
            [r["recall"] for r in rows],
            color=COLORS[who],
            linestyle="--",
            label=f"{NAMES[who]} - true recall, all traffic",
        )
    for ax, title in (
        (ax_p, "Precision (hit rate) of the inspected"),
        (ax_r, f"Recall (share of {plural(positive)} found)"),
    ):
        ax.axvline(100 * capacity, color="black", linewidth=0.8, linestyle=":")
        ax.set_xlabel("inspection capacity (% of shipments, highest score first)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_p.legend(fontsize=8)
    ax_r.legend(fontsize=7)
    fig.tight_layout()
    return fig


def gains_plot(gains: dict, *, positive: str = "seizure") -> Figure:
    """Cumulative gains: share of positives found vs share of shipments inspected."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for who, rows in gains.items():
        x = [0.0] + [100 * r["capacity"] for r in rows]
        y = [0.0] + [100 * r["recall"] for r in rows]
        ax.plot(x, y, color=COLORS[who], label=NAMES[who])
    ax.set_xlabel("% of shipments inspected")
    ax.set_ylabel(f"% of {plural(positive)} found")
    ax.set_title("Cumulative gains (test period)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration_plot(reliability: list[dict], *, positive: str = "seizure") -> Figure:
    """Predicted probability vs observed rate of positives per score decile."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    pred = [r["predicted"] for r in reliability]
    obs = [r["observed"] for r in reliability]
    top = max([*pred, *obs, 1e-3]) * 1.05
    ax.plot([0, top], [0, top], color="#888888", linestyle=":", label="perfect calibration")
    ax.plot(pred, obs, marker="o", color=COLORS["test"], label="model")
    ax.set_xlabel(f"predicted {positive} probability (decile mean)")
    ax.set_ylabel(f"observed {positive} rate")
    ax.set_title("Calibration (test period)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def importance_plot(model: ScoringModel, top: int = 25) -> Figure:
    """Total split gain per feature."""
    gain = model.booster.feature_importance(importance_type="gain")
    frame = pd.Series(gain, index=model.feature_names).sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(frame) + 1.2))
    ax.barh(frame.index, frame.to_numpy(), color=COLORS["test"])
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance")
    fig.tight_layout()
    return fig


def _explanation(model: ScoringModel, features: pd.DataFrame):
    import shap

    matrix = model.matrix(features)  # categoricals as their codes, what the trees split on
    contrib = model.contributions(matrix)
    return shap.Explanation(
        values=contrib[:, :-1],
        base_values=contrib[:, -1],
        data=matrix,
        feature_names=list(model.feature_names),
    )


def shap_summary_plot(model: ScoringModel, features: pd.DataFrame) -> Figure:
    """SHAP beeswarm (exact TreeSHAP, log-odds) over a sample of test shipments."""
    import shap

    plt.figure(figsize=(8, 7))
    shap.plots.beeswarm(_explanation(model, features), max_display=20, show=False)
    fig = plt.gcf()
    fig.suptitle("What drives the risk score (SHAP, log-odds)", fontsize=10)
    fig.tight_layout()
    return fig


def shap_waterfall_plots(
    model: ScoringModel, features: pd.DataFrame, ids: Sequence[str]
) -> list[tuple[str, Figure]]:
    """One waterfall per shipment: how each feature moved it from the average score."""
    import shap

    explanation = _explanation(model, features)
    out = []
    for i, shipment_id in enumerate(ids):
        plt.figure(figsize=(8, 5.5))
        shap.plots.waterfall(explanation[i], max_display=12, show=False)
        fig = plt.gcf()
        fig.suptitle(f"Shipment {shipment_id}", fontsize=10)
        fig.tight_layout()
        out.append((str(shipment_id), fig))
    return out


def summary_rows(
    metrics: dict[str, float], capacities: Sequence[float] = CAPACITIES
) -> list[tuple[str, ...]]:
    """(metric, model, rules, random) rows for the console table and the model card."""
    rows: list[tuple[str, ...]] = []

    def fmt(key: str) -> str:
        value = metrics.get(key)
        return "-" if value is None or value != value else f"{value:.3f}"

    for kind in ("precision", "recall", "lift", "true_recall"):
        for share in capacities:
            if capacity_metric(kind, share, "test") not in metrics:
                continue
            rows.append(
                (
                    f"{kind}@{share * 100:g}%",
                    *(fmt(capacity_metric(kind, share, w)) for w in ("test", "rules", "random")),
                )
            )
    for key in ("pr_auc", "roc_auc", "brier"):
        if f"test_{key}" in metrics:
            rows.append((key, fmt(f"test_{key}"), fmt(f"rules_{key}"), fmt(f"random_{key}")))
    return rows


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [tuple(header), *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def model_card(
    *,
    model_name: str,
    metadata: dict,
    metrics: dict[str, float],
    params: dict,
    feature_names: Sequence[str],
    top_features: Sequence[str],
    candidates: Sequence[tuple[str, ...]] = (),
    selection: str | None = None,
) -> str:
    """A short markdown card: purpose, data, labels, the candidates and which was registered,
    test results vs baselines, caveats. Worded for the data's label (``metadata["dataset"]``)."""
    table = summary_rows(metrics)
    md_table = "\n".join(
        ["| metric | model | rules | random |", "|---|---|---|---|"]
        + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
    )
    label = metadata.get("dataset", {}).get("label", {})
    name = label.get("name", "narcotics seizure")
    positive = label.get("positive", "seizure")
    attributes = metadata.get("dataset", {}).get("attributes", {})
    window = metadata.get("training_window", {})
    test = metadata.get("test_period", {})
    counts = metadata.get("row_counts", {})
    cap = 100 * metadata.get("capacity", 0)
    kind = metadata.get("kind", "full")
    families = ", ".join(metadata.get("families", [])) or "?"
    what = (
        "the project's features"
        if kind == "full"
        else "the raw-columns challenger: the mapped fields and attributes as given"
    )
    cand_table = ""
    if candidates:
        cand_table = "\n".join(
            [
                f"| candidate | validation precision@{cap:.0f}% / PR-AUC "
                f"| test precision@{cap:.0f}% / PR-AUC |",
                "|---|---|---|",
                *(f"| {a} | {b} | {c} |" for a, b, c in candidates),
            ]
        )
    attr_text = f" Attributes of the source: {', '.join(attributes)}." if attributes else ""
    return f"""# Model card - {model_name}

**Purpose.** Rank shipments by the probability that an inspection would end in a {positive}
(label: {name}), so that a customs team inspecting {cap:.0f} % of traffic opens the riskiest
first. Scores are calibrated probabilities (Platt scaling on the validation period); the bands
`high` / `medium` mark the top {cap:.0f} % / {3 * cap:.0f} % of validation-period traffic.

**Data.** {metadata.get("data_source", "?")}. Training {window.get("from", "?")} to
{window.get("to", "?")}, validation {metadata.get("valid_period", {}).get("from", "?")} to
{metadata.get("valid_period", {}).get("to", "?")}, test {test.get("from", "?")} to
{test.get("to", "?")}. Rows: {counts}.{attr_text}

**Labels.** Positive = an inspection ended in a {positive} ({name}); negative = inspected and
clean. Uninspected shipments: policy `{metadata.get("label_policy", "?")}`. Labels exist only
where earlier rules chose to inspect, so they are biased toward what those rules look for; keep
an exploration share of random inspections.

**Model.** `{kind}`: {what}. LightGBM (binary, {params.get("best_iteration", "?")} trees after
early stopping on validation average precision), {len(feature_names)} features, families
{families} (feature catalog version {metadata.get("feature_catalog_version", "?")}). Most
important: {", ".join(top_features)}.

**Why this model.** {metadata.get("registered_why", "-")}

{cand_table}

{"**Family selection (validation).** " + selection if selection else ""}

**Test results vs baselines (same shipments).** `true_recall` = share of *all* positives in
the test period (inspected or not, from the simulator's hidden truth) caught by inspecting the
top n % of all traffic.

{md_table}

**Caveats.** Trained on {"simulated" if "test_true_recall_at_1pct" in metrics else "recorded"} data;
performance drifts as behaviour changes; retrain and promote only through the gate.
"""
