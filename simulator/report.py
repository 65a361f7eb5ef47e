"""What a simulated world looks like, and the baselines a targeting model has to beat.

Two kinds of figures: *observed* ones, computed only from the outcomes a customs service would
have (hit rate of rule-selected vs randomly selected inspections), and *true* ones that only a
simulation can give (prevalence per mode and scheme, true recall of the legacy policy, precision
of the legacy rules score as a ranking of all shipments at 1/2/5/10 % capacity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contracts import MODES
from simulator.config import MODE_NAMES, SCHEMES
from simulator.core import SimulatedWorld

CAPACITIES = (0.01, 0.02, 0.05, 0.10)


def _wilson(hits: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a hit rate."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = 1.96
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(world: SimulatedWorld) -> dict:
    """All report figures as plain Python values (JSON-friendly)."""
    s, o, t, f = world.shipments, world.outcomes, world.truth, world.facts
    cfg = world.config
    illicit = t["illicit"].to_numpy()
    mode = s["mode"].to_numpy()
    out: dict = {
        "period": {"start": str(cfg.start), "end": str(cfg.end), "days": cfg.days},
        "shipments": len(s),
        "illicit": int(illicit.sum()),
        "prevalence": float(illicit.mean()),
    }
    out["by_mode"] = {
        m: {
            "shipments": int((mode == m).sum()),
            "share": float((mode == m).mean()),
            "illicit": int(illicit[mode == m].sum()),
            "prevalence": float(illicit[mode == m].mean()) if (mode == m).any() else 0.0,
        }
        for m in [m for m in MODES if (mode == m).any()] or list(MODE_NAMES)
    }
    chosen, score = f["chosen"], f["score"]
    scheme = t["scheme"].to_numpy()
    out["by_scheme"] = {}
    for name in SCHEMES:
        rows = scheme == name
        k = int(rows.sum())
        out["by_scheme"][name] = {
            "illicit": k,
            "share_of_illicit": k / max(1, int(illicit.sum())),
            "modes": sorted(set(mode[rows])),
            "selected_by_rule": float((chosen[rows] == 1).mean()) if k else 0.0,
            "mean_rule_score": float(score[rows].mean()) if k else 0.0,
        }
    out["rule_score_legit_mean"] = float(score[~illicit].mean())

    hits = {}
    for by in ("rule", "random"):
        rows = o["selected_by"] == by
        n = int(rows.sum())
        k = int((o.loc[rows, "result"] == "seized").sum())
        lo, hi = _wilson(k, n)
        hits[by] = {"inspections": n, "seizures": k, "hit_rate": k / n if n else 0.0,
                    "ci95": [lo, hi]}  # fmt: skip
    out["observed"] = hits
    out["outcomes"] = {
        "selected": int((chosen > 0).sum()),
        "inspected_by_end": int(f["inspected_by_end"].sum()),
        "results_known": len(o),
        "seizures": int((o["result"] == "seized").sum()),
        "inspection_rate": float((chosen > 0).mean()),
    }
    selected_illicit = illicit[f["selected"]]
    out["true"] = {
        "recall_legacy_policy": float((chosen[illicit] > 0).mean()) if illicit.any() else 0.0,
        "detection_rate": float(
            f["found"][selected_illicit].mean() if selected_illicit.any() else 0.0
        ),
        "rules_ranking": _ranking(score, illicit, world.config.seed),
    }
    end = pd.Timestamp(cfg.end)
    out["end_of_period"] = {
        "arrivals_after_end": int((s["arrival_at"] >= end).sum()),
        "selected_result_unknown": int((chosen > 0).sum() - len(o)),
    }
    return out


def _ranking(score: np.ndarray, illicit: np.ndarray, seed: int) -> dict:
    """Precision, recall and lift of the legacy rules score used as a ranking of *all*
    shipments (ties broken at random), against the truth."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(score)), -score))
    base = illicit.mean() if len(illicit) else 0.0
    out = {}
    for cap in CAPACITIES:
        k = max(1, round(cap * len(score)))
        top = illicit[order[:k]]
        precision = float(top.mean())
        out[f"{cap:.0%}"] = {
            "precision": precision,
            "recall": float(top.sum() / max(1, illicit.sum())),
            "lift": precision / base if base else 0.0,
        }
    return out


def format_report(summary: dict) -> str:
    """The summary as a short Markdown report."""
    lines = [
        f"## Simulated world {summary['period']['start'][:10]} .. {summary['period']['end'][:10]}"
        f" ({summary['period']['days']} days)",
        "",
        f"{summary['shipments']:,} shipments, {summary['illicit']:,} illicit "
        f"(true prevalence {summary['prevalence']:.3%}).",
        "",
        "| mode | shipments | share | illicit | true prevalence |",
        "|---|---:|---:|---:|---:|",
    ]
    for m, v in summary["by_mode"].items():
        lines.append(
            f"| {m} | {v['shipments']:,} | {v['share']:.1%} | {v['illicit']:,} | "
            f"{v['prevalence']:.3%} |"
        )
    lines += [
        "",
        "| scheme | illicit | share | modes | picked by rules | mean rules score |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, v in summary["by_scheme"].items():
        lines.append(
            f"| {name} | {v['illicit']:,} | {v['share_of_illicit']:.0%} | "
            f"{', '.join(v['modes'])} | {v['selected_by_rule']:.0%} | {v['mean_rule_score']:.1f} |"
        )
    lines.append(
        f"\nMean rules score of legitimate shipments: {summary['rule_score_legit_mean']:.2f}."
    )
    oc = summary["outcomes"]
    lines += [
        "",
        "### Inspections (what customs sees)",
        "",
        f"{oc['selected']:,} selected ({oc['inspection_rate']:.2%} of shipments), "
        f"{oc['inspected_by_end']:,} inspected by the end, {oc['results_known']:,} results known, "
        f"{oc['seizures']:,} seizures.",
        "",
        "| selected by | inspections | seizures | hit rate | 95 % CI |",
        "|---|---:|---:|---:|---|",
    ]
    for by, v in summary["observed"].items():
        lo, hi = v["ci95"]
        lines.append(
            f"| {by} | {v['inspections']:,} | {v['seizures']:,} | {v['hit_rate']:.2%} | "
            f"{lo:.2%} - {hi:.2%} |"
        )
    tr = summary["true"]
    lines += [
        "",
        "### Truth (only a simulation knows)",
        "",
        f"True recall of the legacy policy: {tr['recall_legacy_policy']:.1%} of illicit shipments"
        f" selected; inspections of illicit shipments found the drugs {tr['detection_rate']:.0%}"
        " of the time.",
        "",
        "Legacy rules score as a ranking of all shipments (the rules baseline):",
        "",
        "| capacity | precision | recall | lift | random precision |",
        "|---|---:|---:|---:|---:|",
    ]
    for cap, v in tr["rules_ranking"].items():
        lines.append(
            f"| {cap} | {v['precision']:.2%} | {v['recall']:.1%} | {v['lift']:.1f} | "
            f"{summary['prevalence']:.3%} |"
        )
    eop = summary["end_of_period"]
    lines += [
        "",
        f"End of period: {eop['arrivals_after_end']:,} shipments declared but not yet arrived; "
        f"{eop['selected_result_unknown']:,} selected shipments without a known result.",
    ]
    return "\n".join(lines)
