"""A tiny contract-valid customs world for training tests, independent of the simulator.

Established consignees import steadily; front companies (new consignees) appear, ship a few
times from cocaine source countries in reefers or with fruit/flowers as cover, and are the
illicit ones. Inspections: a legacy rule share (high-risk origin) plus a random share; an
inspection of an illicit shipment finds the drugs with probability 0.8; results are known three
days after arrival. Truth is written beside the tables, like the simulator does.

``history_signal=False`` makes a world in which party history carries no signal: no front
companies, every consignee drawn from the same pool whatever the shipment carries, and the
risk only in the manifest (a reefer from a source country). ``attributes=True`` adds a
customs service's own fields (``dataset.json``): ``import_type`` (categorical, with signal),
``office`` (categorical, none) and ``tax_rate`` (numeric, none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.contracts import AttributeSpec, DatasetInfo, LabelMeaning

RISKY = ["EC", "CO", "PE"]
SAFE = ["DE", "CN", "US", "FR", "JP", "TR"]


ATTRIBUTES = {
    "import_type": AttributeSpec(kind="categorical", label="import type"),
    "office": AttributeSpec(kind="categorical", label="customs office"),
    "tax_rate": AttributeSpec(kind="numeric", label="tax rate"),
}


def make_world(
    days: int = 40,
    per_day: int = 150,
    seed: int = 0,
    *,
    history_signal: bool = True,
    attributes: bool = False,
) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = pd.Timestamp("2026-03-02")
    declared = start + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), unit="s")
    established = np.array([f"C{i:04d}" for i in range(120)])
    front = rng.random(n) < 0.06
    if not history_signal:
        front[:] = False
    # front companies: each used for 1-3 shipments, created on the fly
    front_ids = np.array([f"F{i:05d}" for i in rng.integers(0, int(front.sum() / 2) + 1, n)])
    weights = 1 / np.arange(1, len(established) + 1)
    consignee = np.where(
        front, front_ids, rng.choice(established, size=n, p=weights / weights.sum())
    )
    origin = np.where(
        front & (rng.random(n) < 0.8), rng.choice(RISKY, n), rng.choice(SAFE + RISKY[:1], n)
    )
    reefer = np.where(front, rng.random(n) < 0.6, rng.random(n) < 0.15)
    hs = np.where(
        reefer,
        rng.choice(["0803901000", "0603110000", "0302110000"], n),
        rng.choice(["8471300000", "6204620000", "9403600000", "3926909700"], n),
    )
    illicit = front & (rng.random(n) < 0.5) | (~front & (rng.random(n) < 0.002))
    if not history_signal:
        # the risk is in the manifest only: a reefer from a source country, whoever imports it
        origin = rng.choice(SAFE + RISKY, n)
        illicit = (np.isin(origin, RISKY) & reefer & (rng.random(n) < 0.5)) | (
            rng.random(n) < 0.002
        )
    value = np.round(rng.lognormal(9, 1, n), 2)
    shipments = pd.DataFrame(
        {
            "shipment_id": [f"S{i:07d}" for i in range(n)],
            "mode": "sea",
            "declared_at": declared,
            "arrival_at": declared + pd.Timedelta(days=1),
            "shipper_id": [f"SH{i:03d}" for i in rng.integers(0, 80, n)],
            "consignee_id": consignee,
            "forwarder_id": [f"FW{i:02d}" for i in rng.integers(0, 12, n)],
            "declarant_id": [f"BR{i:02d}" for i in rng.integers(0, 8, n)],
            # a few private importers with personal customs codes (every party role present)
            "recipient_customs_code": np.where(
                rng.random(n) < 0.05, [f"P{i:08d}" for i in rng.integers(0, 200, n)], None
            ),
            "consignee_name": [f"Importer {c}" for c in consignee],
            "consignee_address": [f"{int(c[1:]) % 97} Harbour Road" for c in consignee],
            "consignee_phone": [f"+31 10 {int(c[1:]):06d}" for c in consignee],
            "origin_country": origin,
            "departure_country": origin,
            "loading_port": [o + "AAA" for o in origin],
            "discharge_port": "NLRTM",
            "hs_code": hs,
            "goods_description": np.where(reefer, "fresh produce", "general cargo"),
            "packages": rng.integers(1, 500, n),
            "gross_weight_kg": np.round(rng.uniform(100, 20_000, n), 1),
            "declared_value": value,
            "currency": "USD",
            "declared_value_usd": value,
            "freight_terms": rng.choice(["prepaid", "collect"], n),
            "payment_method": np.where(front & (rng.random(n) < 0.4), "cash", "bank_transfer"),
            "container_type": np.where(reefer, "reefer", "dry"),
            "load_type": "fcl",
        }
    )
    rule = np.isin(origin, RISKY) & (rng.random(n) < 0.25)
    inspected = rule | (rng.random(n) < 0.04)
    # the last 3 days have no results yet
    inspected &= declared < start + pd.Timedelta(days=days - 3)
    found = illicit & (rng.random(n) < 0.8)
    idx = np.flatnonzero(inspected)
    inspected_at = declared[idx] + pd.Timedelta(days=1)
    outcomes = pd.DataFrame(
        {
            "shipment_id": shipments["shipment_id"].to_numpy()[idx],
            "inspected_at": inspected_at,
            "result_at": inspected_at + pd.Timedelta(days=3),
            "result": np.where(found[idx], "seized", "clean"),
            "drug": np.where(found[idx], "cocaine", None),
            "quantity_kg": np.where(found[idx], 50.0, np.nan),
            "method": "physical",
            "selected_by": np.where(rule[idx], "rule", "random"),
        }
    )
    truth = pd.DataFrame(
        {
            "shipment_id": shipments["shipment_id"],
            "illicit": illicit,
            "drug": np.where(illicit, "cocaine", None),
            "scheme": np.where(illicit, "front_company", None),
        }
    )
    if attributes:
        # import type C is where illicit shipments hide; the office and the tax rate say nothing
        usual = rng.choice(["A", "B", "C"], n, p=[0.6, 0.35, 0.05])
        shipments["attr.import_type"] = np.where(
            illicit & (rng.random(n) < 0.7), "C", usual
        ).astype(object)
        shipments["attr.office"] = rng.choice(["Busan", "Incheon", "Seoul"], n).astype(object)
        shipments["attr.tax_rate"] = np.round(rng.uniform(0, 0.2, n), 3)
        shipments.loc[rng.random(n) < 0.05, "attr.office"] = None
    return {"shipments": shipments, "outcomes": outcomes, "truth": truth}


def world_info(attributes: bool = False, label: LabelMeaning | None = None) -> DatasetInfo:
    """The ``dataset.json`` of a world."""
    return DatasetInfo(label=label or LabelMeaning(), attributes=ATTRIBUTES if attributes else {})


def write_world(out: Path, *, label: LabelMeaning | None = None, **kwargs) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in make_world(**kwargs).items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    if kwargs.get("attributes") or label is not None:
        info = world_info(kwargs.get("attributes", False), label)
        (out / "dataset.json").write_text(info.model_dump_json(indent=1), encoding="utf-8")
    return out
