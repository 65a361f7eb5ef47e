"""How the worklist pages show values: labels, numbers and dates, odds of a reason, the field
a form error names, a declaration's amendments and an outcome report in words.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import pandas as pd


def field_label(name: str) -> str:
    """A contract column as a form label: ``declared_value_usd`` -> ``Declared value USD``."""
    words = [w.upper() if w in ("id", "usd", "hs") else w for w in name.split("_") if w]
    if words and words[-1] == "kg":
        words[-1] = "(kg)"
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def shown_value(value: Any) -> str:
    """A stored value as an officer reads it (blank for missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


def odds_change(contribution: float) -> str:
    """A log-odds contribution as a change of the odds an officer can read: x2.4 or ÷1.8."""
    factor = math.exp(abs(contribution))
    sign = "×" if contribution >= 0 else "÷"
    if factor < 10:
        return f"{sign}{factor:.2f}"
    return f"{sign}{factor:.1f}" if factor < 100 else f"{sign}{factor:,.0f}"


def field_of(message: str, fields) -> str:
    """The form field a contract rule's message is about (frame-level rules name no column:
    "result_at must not be before inspected_at", "a clean result cannot name a drug")."""
    for name in fields:
        if name in message:
            return name
    return "drug" if "drug" in message else "form"


def amendment_rows(versions: list[dict]) -> list[dict[str, Any]]:
    """The amendments of a declaration for the page, newest first: version, when, by whom,
    and each changed field with its value before and after."""
    out = []
    for before, after in itertools.pairwise(versions):
        out.append(
            {
                "version": after["version"],
                "received_at": after["received_at"],
                "caller": after["caller"],
                "counted": (after["amendments_after_score"] or 0)
                > (before["amendments_after_score"] or 0),
                "changes": [
                    (
                        name,
                        shown_value(before.get(name)) if name != "attributes" else "",
                        shown_value(after.get(name)) if name != "attributes" else "",
                    )
                    for name in after["changed"]
                ],
            }
        )
    return out[::-1]


def report_words(report: dict) -> str:
    """An inspection report in a few words: "seized, cocaine, 40 kg" or "clean"."""
    words = [str(report["result"])]
    if report.get("drug"):
        words.append(str(report["drug"]))
    if report.get("quantity_kg") is not None and report["quantity_kg"] == report["quantity_kg"]:
        words.append(f"{report['quantity_kg']:g} kg")
    return ", ".join(words)
