"""Write a messy world as a customs service would hand it over: a CSV and its mapping.

``declarations.csv`` has one row per declaration under foreign column names in the style of the
Korea Customs Service's public synthetic import-declaration data ("Declaration ID", "Date",
"Office ID", ..., "Fraud", "Critical Fraud"), followed by the fields our world also has (names,
phone, address, ports, transport references, ...) under names of the same style. Codes are the
export's own (numeric transport modes, ISO container size-type codes, settlement codes, office
numbers); dates are calendar days; the label is blank where nothing was inspected.

``mapping.yaml`` ingests it with ``cargorisk ingest`` (the mapping syntax of docs/ingest.md:
value maps, ``when`` derivations, ``coalesce``, ``default``, ``attributes``, ``label``), and
``mapping_critical.yaml`` is the same mapping trained on the second label. Both are generated
from :data:`COLUMNS` and :data:`simulator.messy.ATTRIBUTES`, the same tables the CSV is written
from, so the file and its mapping cannot drift apart. Ingesting the CSV with the mapping gives
back exactly the messy world's shipments table (tested).

The CSV is written a chunk of rows at a time, so exporting adds little memory to the world.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from simulator.core import SimulatedWorld
from simulator.messy import ATTRIBUTES, CRITICAL_KG, EXPORT_MODES, OFFICES, OTHER_MODE
from simulator.output import TRUTH_COLUMNS, check_out_dir

CHUNK_ROWS: Final = 100_000
DATE_FORMAT: Final = "%Y-%m-%d"
"""How the export writes dates (Arrow's date text is exactly this)."""
TIMEZONE: Final = "Asia/Seoul"

CONTAINER_CODES: Final = {
    "dry": "45G1", "reefer": "45R1", "open_top": "42U1", "flat_rack": "45P1", "tank": "22T1",
}  # fmt: skip
"""ISO 6346 size-type codes the export uses for container types."""
SETTLEMENT_CODES: Final = {
    "bank_transfer": "TT", "letter_of_credit": "LC", "open_account": "OA", "cash": "CA",
    "card": "CD", "e_wallet": "EW",
}  # fmt: skip
FREIGHT_CODES: Final = {"prepaid": "PP", "collect": "CC"}
LOAD_CODES: Final = {"fcl": "FCL", "lcl": "LCL"}
BASIC_TAX_TYPE: Final = "A"
"""The export leaves the tax type blank for the basic rate; the mapping's ``default`` says so."""
PARCEL_MODES: Final = ("express", "post")
SEA_CARRIER_MODES: Final = ("sea", "rail", "road")
AIR_CARRIER_MODES: Final = ("air", "other")


class Column(NamedTuple):
    """One column of the export: its name, how a chunk of the messy world renders it (text,
    "" for blank), and how the mapping reads it back (a YAML flow value, or None for a column
    the mapping reads inside another entry or not at all)."""

    name: str
    render: Callable[[pd.DataFrame], pd.Series]
    field: str | None = None
    spec: dict | str | None = None
    comment: str = ""


def _text(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c[column]


def _coded(column: str, codes: dict[str, str]) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c[column].map(codes)


def _as_text(values: pd.Series, arrow_type: pa.DataType | None = None) -> pd.Series:
    """Arrow's text of each value: dates as YYYY-MM-DD, whole numbers without a decimal point,
    other numbers in the shortest form that reads back as the same float; blank stays blank."""
    array = pa.Array.from_pandas(values)
    if arrow_type is not None:
        array = array.cast(arrow_type)
    text = array.cast(pa.string()).to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    return text.astype("str").set_axis(values.index)


def _date(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: _as_text(c[column], pa.date32())


def _number(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: _as_text(c[column])


def _count(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: _as_text(c[column], pa.int64())


def _where_mode(column: str, modes: tuple[str, ...]) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c[column].where(c["mode"].isin(modes))


def _mode_code(c: pd.DataFrame) -> pd.Series:
    """Numeric transport mode; a courier parcel carries its vehicle's code (sea on a ferry)."""
    code = c["mode"].map({**EXPORT_MODES, "other": OTHER_MODE})
    vehicle = np.where(c["vessel"].notna(), EXPORT_MODES["sea"], EXPORT_MODES["air"])
    return code.where(c["mode"] != "express", pd.Series(vehicle, index=c.index))


def _tax_type(c: pd.DataFrame) -> pd.Series:
    return c["attr.tax_type"].where(c["attr.tax_type"] != BASIC_TAX_TYPE)


_OFFICE_CODES: Final = {name: code for code, name in OFFICES.items()}

COLUMNS: Final = (
    Column("Declaration ID", _text("shipment_id"), "shipment_id", "Declaration ID"),
    Column("Date", _date("declared_at"), "declared_at",
           {"column": "Date", "date_format": DATE_FORMAT, "timezone": TIMEZONE},
           "a calendar day (no time of day): stored as that day, the timezone is not applied"),
    Column("Office ID", lambda c: c["attr.office"].map(_OFFICE_CODES), "attr:office"),
    Column("Process Type", _text("attr.process_type"), "attr:process_type"),
    Column("Import Type", _text("attr.import_type"), "attr:import_type"),
    Column("Import Use", _text("attr.import_use"), "attr:import_use"),
    Column("Payment Type", _text("attr.duty_payment"), "attr:duty_payment"),
    Column("Mode of Transport", _mode_code, "mode",
           {"column": "Mode of Transport",
            "values": {v: k for k, v in {**EXPORT_MODES, "other": OTHER_MODE}.items()},
            "when": [{"present": "Courier ID", "value": "express"}]},
           "a courier id makes a parcel express, whatever vehicle carried it"),
    Column("Declarant ID", _text("declarant_id"), "declarant_id", "Declarant ID"),
    Column("Importer ID", _text("consignee_id"), "consignee_id", "Importer ID"),
    Column("Seller ID", _text("shipper_id"), "shipper_id",
           {"column": "Seller ID", "default": None}, "blank in about 10 % of rows"),
    Column("Courier ID", _where_mode("carrier_id", ("express",)), None),
    Column("HS6 Code", _text("hs_code"), "hs_code", "HS6 Code"),
    Column("Country of Departure", _text("departure_country"), "departure_country",
           "Country of Departure"),
    Column("Country of Origin", _text("origin_country"), "origin_country", "Country of Origin"),
    Column("Tax Rate", _number("attr.tax_rate"), "attr:tax_rate"),
    Column("Tax Type", _tax_type, "attr:tax_type"),
    Column("Country of Origin Indicator", _text("attr.origin_certificate"),
           "attr:origin_certificate"),
    Column("Net Mass", _number("gross_weight_kg"), "gross_weight_kg", "Net Mass",
           "the export states only the net mass (kg, one decimal: light items read 0)"),
    Column("Item Price", _number("declared_value_usd"), "declared_value_usd", "Item Price",
           "customs value in USD"),
    Column("Seller Name", _text("shipper_name"), "shipper_name", "Seller Name"),
    Column("Importer Name", _text("consignee_name"), "consignee_name", "Importer Name"),
    Column("Importer Address", _text("consignee_address"), "consignee_address",
           "Importer Address"),
    Column("Importer Tel", _text("consignee_phone"), "consignee_phone", "Importer Tel"),
    Column("Personal Clearance Code", _text("recipient_customs_code"),
           "recipient_customs_code", "Personal Clearance Code"),
    Column("Notify Party ID", _text("notify_party_id"), "notify_party_id", "Notify Party ID"),
    Column("Forwarder ID", _text("forwarder_id"), "forwarder_id", "Forwarder ID"),
    Column("Shipping Line Code", _where_mode("carrier_id", SEA_CARRIER_MODES), "carrier_id",
           {"coalesce": ["Shipping Line Code", "Airline Code", "Courier ID"]},
           "one of the three is filled, by mode (postal items have none)"),
    Column("Airline Code", _where_mode("carrier_id", AIR_CARRIER_MODES), None),
    Column("Port of Loading", _text("loading_port"), "loading_port", "Port of Loading"),
    Column("Transit Ports", _text("transshipment_ports"), "transshipment_ports",
           "Transit Ports"),
    Column("Port of Discharge", _text("discharge_port"), "discharge_port", "Port of Discharge"),
    Column("Goods Description", _text("goods_description"), "goods_description",
           "Goods Description"),
    Column("Packages", _count("packages"), "packages", "Packages"),
    Column("Invoice Amount", _number("declared_value"), "declared_value", "Invoice Amount"),
    Column("Invoice Currency", _text("currency"), "currency", "Invoice Currency"),
    Column("Freight Terms",
           lambda c: c["freight_terms"].map(FREIGHT_CODES).where(~c["mode"].isin(PARCEL_MODES)),
           "freight_terms",
           {"column": "Freight Terms", "values": {v: k for k, v in FREIGHT_CODES.items()},
            "default": "prepaid"},
           "blank for parcels, which the sender always prepays"),
    Column("Settlement Method", _coded("payment_method", SETTLEMENT_CODES), "payment_method",
           {"column": "Settlement Method",
            "values": {v: k for k, v in SETTLEMENT_CODES.items()}}),
    Column("B/L No", _text("bill_of_lading"), "bill_of_lading", "B/L No"),
    Column("Container No", _text("container_id"), "container_id", "Container No"),
    Column("Container Type", _coded("container_type", CONTAINER_CODES), "container_type",
           {"column": "Container Type", "values": {v: k for k, v in CONTAINER_CODES.items()}},
           "ISO 6346 size-type codes"),
    Column("Load Type", _coded("load_type", LOAD_CODES), "load_type",
           {"column": "Load Type", "values": {v: k for k, v in LOAD_CODES.items()}}),
    Column("Vessel Name", _text("vessel"), "vessel", "Vessel Name"),
    Column("Voyage No", _text("voyage"), "voyage", "Voyage No"),
    Column("AWB No", _text("air_waybill"), "air_waybill", "AWB No"),
    Column("Flight No", _text("flight"), "flight", "Flight No"),
    Column("Platform", _text("platform"), "platform", "Platform"),
    Column("Order No", _text("order_ref"), "order_ref", "Order No"),
    Column("Booking Date", _date("booked_at"), "booked_at",
           {"column": "Booking Date", "date_format": DATE_FORMAT, "timezone": TIMEZONE}),
    Column("Departure Date", _date("departed_at"), "departed_at",
           {"column": "Departure Date", "date_format": DATE_FORMAT, "timezone": TIMEZONE}),
    Column("Arrival Date", _date("arrival_at"), "arrival_at",
           {"column": "Arrival Date", "date_format": DATE_FORMAT, "timezone": TIMEZONE}),
    Column("Amendment Count", _count("attr.amendments"), "attr:amendments"),
    Column("Warehouse ID", _text("attr.warehouse"), "attr:warehouse"),
    Column("Declaration Channel", _text("attr.channel"), "attr:channel"),
    Column("Fraud", _text("fraud"), None),
    Column("Critical Fraud", _text("critical_fraud"), None),
)  # fmt: skip
"""Every column of ``declarations.csv``, in order, and the contract field or attribute
(``attr:<name>``) it feeds."""

CSV_SCHEMA: Final = pa.schema([(col.name, pa.string()) for col in COLUMNS])

LABELS: Final = {
    "Fraud": ("narcotics seizure", "seizure"),
    "Critical Fraud": ("critical narcotics seizure", "critical seizure"),
}
"""The two label columns and what a positive means: any seizure, or a seizure of at least
:data:`simulator.messy.CRITICAL_KG` kg (a wholesale load)."""


def labels(world: SimulatedWorld) -> pd.DataFrame:
    """``Fraud`` and ``Critical Fraud`` of every shipment: "1"/"0" where an inspection result
    is known by the end of the period, blank where nothing was inspected (or not yet known)."""
    o = world.outcomes
    seized = o["result"] == "seized"
    critical = seized & (o["quantity_kg"].fillna(0) >= CRITICAL_KG)
    known = pd.DataFrame(
        {
            "fraud": np.where(seized, "1", "0"),
            "critical_fraud": np.where(critical, "1", "0"),
        },
        index=pd.Index(o["shipment_id"]),
    )
    ids = world.shipments["shipment_id"]
    return known.reindex(ids).set_axis(world.shipments.index)


def render_chunk(chunk: pd.DataFrame) -> pa.Table:
    """The export's columns for a chunk of the messy world (with its label columns), as text;
    missing values stay missing (written as empty fields)."""
    out = {col.name: col.render(chunk).astype("str") for col in COLUMNS}
    return pa.Table.from_pandas(pd.DataFrame(out), schema=CSV_SCHEMA, preserve_index=False)


def write_export(out: Path, world: SimulatedWorld) -> dict[str, Path]:
    """Write ``declarations.csv``, ``mapping.yaml``, ``mapping_critical.yaml`` and
    ``truth.parquet`` (the hidden answer, for measuring true recall; the mapping never reads
    it) into ``out``; every file appears whole or not at all."""
    if not world.config.messy:
        raise ValueError("export needs a messy world (SimConfig(messy=True))")
    out = check_out_dir(out)
    paths: dict[str, Path] = {}
    target = out / "declarations.csv"
    partial = out / ".declarations.csv.partial"
    shipments, tags = world.shipments, labels(world)
    # Arrow writes UTF-8, quotes every text value (as many exports do) and leaves blanks empty
    with pacsv.CSVWriter(partial, CSV_SCHEMA) as writer:
        for start in range(0, len(shipments), CHUNK_ROWS):
            chunk = shipments.iloc[start : start + CHUNK_ROWS]
            chunk = pd.concat([chunk, tags.iloc[start : start + CHUNK_ROWS]], axis=1)
            writer.write_table(render_chunk(chunk))
    os.replace(partial, target)
    paths["declarations"] = target
    for name, label in (("mapping", "Fraud"), ("mapping_critical", "Critical Fraud")):
        path = out / f"{name}.yaml"
        _write_text(path, mapping_text(label))
        paths[name] = path
    truth = out / "truth.parquet"
    partial = out / ".truth.parquet.partial"
    world.truth.loc[:, list(TRUTH_COLUMNS)].to_parquet(partial, index=False)
    os.replace(partial, truth)
    paths["truth"] = truth
    return paths


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _flow(value: object) -> str:
    """A YAML flow value (JSON is valid YAML and quotes every text, so "10" stays text)."""
    return json.dumps(value, ensure_ascii=False)


def _line(key: str, value: object, comment: str = "", indent: int = 2) -> str:
    text = f"{' ' * indent}{key}: {_flow(value)}"
    return f"{text}   # {comment}" if comment else text


def mapping_text(label_column: str = "Fraud") -> str:
    """The mapping that ingests ``declarations.csv``, training on ``label_column``."""
    name, positive = LABELS[label_column]
    lines = [
        "# Mapping for declarations.csv, written by `cargorisk simulate --export`: a simulated",
        "# customs export with foreign column names in the style of the Korea Customs Service's",
        "# synthetic import-declaration data. See docs/ingest.md for the syntax and",
        "# docs/simulator.md for what the export holds.",
        "label:   # what a positive label means (recorded with the data and every model)",
        _line("name", name),
        _line("positive", positive),
        "shipments:",
    ]
    for col in COLUMNS:
        if col.field is not None and not col.field.startswith("attr:"):
            lines.append(_line(col.field, col.spec, col.comment))
    lines.append("attributes:   # the service's own fields: model features and reasons")
    by_attribute = {c.field.removeprefix("attr:"): c for c in COLUMNS if c.field}
    for attr, spec in ATTRIBUTES.items():
        entry: dict = {"column": by_attribute[attr].name, "kind": spec.kind}
        if spec.label:
            entry["label"] = spec.label
        if spec.description:
            entry["description"] = spec.description
        if attr == "office":
            entry["values"] = dict(OFFICES)
            entry["unmapped"] = "keep"
        if attr == "tax_type":
            entry["default"] = BASIC_TAX_TYPE
        lines.append(_line(attr, entry))
    lines += [
        "outcomes:   # applied where the label column exists (not on an unlabelled file)",
        _line(
            "result",
            {"column": label_column, "values": {"1": "seized", "0": "clean"}},
            "blank = not inspected: no outcome row",
        ),
        _line("inspected_at", {"days_after_declared": 1}, "the export has no inspection date"),
        _line("result_at", {"days_after_declared": 5}, "results known about five days later"),
        _line("method", {"constant": "physical"}),
        _line("selected_by", {"constant": "officer"}),
    ]
    return "\n".join(lines) + "\n"
