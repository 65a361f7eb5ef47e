"""The two tables everything in cargorisk reads and writes, declared once.

* **shipments** - one row per consignment (a sea bill of lading, an air waybill or an express
  parcel) as the customs service knows it at declaration time.
* **outcomes** - one row per inspection: what was found and, crucially, *when the result became
  known* (``result_at``). History features may only use outcomes known before a shipment's time.

Timestamps are naive ``datetime64`` values in UTC. The route's transshipment ports are one string
of port codes separated by ``|`` in travel order (``"PAPTY|ESALG"``), empty when direct.

Every reader (ingest, simulator output, the API, the store export) validates through these
schemas, so a frame that passed here can be trusted downstream.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

MODES: Final = ("sea", "air", "express")
CONTAINER_TYPES: Final = ("dry", "reefer", "open_top", "flat_rack", "tank")
LOAD_TYPES: Final = ("fcl", "lcl")
FREIGHT_TERMS: Final = ("prepaid", "collect")
PAYMENT_METHODS: Final = (
    "bank_transfer",
    "letter_of_credit",
    "open_account",
    "cash",
    "card",
    "e_wallet",
)
RESULTS: Final = ("seized", "clean")
DRUGS: Final = (
    "cocaine",
    "heroin",
    "methamphetamine",
    "cannabis",
    "mdma",
    "ketamine",
    "fentanyl",
    "other",
)
INSPECTION_METHODS: Final = ("document", "x-ray", "physical")
SELECTED_BY: Final = ("model", "rule", "random", "officer")

PORT_SEPARATOR: Final = "|"
MAX_TEXT: Final = 2_000
"""Longest free text we accept in any field; longer values are an error, not a truncation."""

_COUNTRY = r"^[A-Z]{2}$"
_CURRENCY = r"^[A-Z]{3}$"
_HS_CODE = r"^[0-9]{2,10}$"
_PORT = r"^[A-Z0-9]{3,5}$"
_PORTS = r"^([A-Z0-9]{3,5}(\|[A-Z0-9]{3,5})*)?$"
_ID = r"^[^\x00-\x1f\x7f]{1,64}$"
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _text(nullable: bool = True, **kwargs) -> object:
    return pa.Field(
        nullable=nullable, str_length={"max_value": MAX_TEXT}, str_matches=_TEXT, **kwargs
    )


EARLIEST: Final = pd.Timestamp("1990-01-01")
LATEST: Final = pd.Timestamp("2100-01-01")
"""Range of every timestamp in the contract: no customs record falls outside it, and a
date years away from it is a typo or an attack (pandas' nanosecond time ends in 2262)."""


def _when(nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, ge=EARLIEST, le=LATEST)


def _ident(nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_matches=_ID)


class Shipments(pa.DataFrameModel):
    """One consignment as declared: parties, route, goods, transport references."""

    shipment_id: Series[str] = pa.Field(unique=True, str_matches=_ID)
    mode: Series[str] = pa.Field(isin=MODES)

    declared_at: Series[pd.Timestamp] = _when()
    booked_at: Series[pd.Timestamp] = _when(nullable=True)
    departed_at: Series[pd.Timestamp] = _when(nullable=True)
    arrival_at: Series[pd.Timestamp] = _when(nullable=True)

    shipper_id: Series[str] = _ident()
    consignee_id: Series[str] = _ident()
    notify_party_id: Series[str] = _ident(nullable=True)
    forwarder_id: Series[str] = _ident(nullable=True)
    declarant_id: Series[str] = _ident(nullable=True)
    carrier_id: Series[str] = _ident(nullable=True)
    shipper_name: Series[str] = _text()
    consignee_name: Series[str] = _text()
    consignee_address: Series[str] = _text()
    consignee_phone: Series[str] = pa.Field(nullable=True, str_matches=r"^\+?[0-9 ()\-]{3,32}$")

    origin_country: Series[str] = pa.Field(str_matches=_COUNTRY)
    departure_country: Series[str] = pa.Field(str_matches=_COUNTRY)
    loading_port: Series[str] = pa.Field(nullable=True, str_matches=_PORT)
    transshipment_ports: Series[str] = pa.Field(nullable=True, str_matches=_PORTS)
    discharge_port: Series[str] = pa.Field(str_matches=_PORT)

    hs_code: Series[str] = pa.Field(str_matches=_HS_CODE)
    goods_description: Series[str] = _text()
    packages: Series[int] = pa.Field(ge=1, le=1_000_000)
    gross_weight_kg: Series[float] = pa.Field(gt=0, le=1_000_000)
    declared_value: Series[float] = pa.Field(ge=0, le=1e10)
    currency: Series[str] = pa.Field(str_matches=_CURRENCY)
    declared_value_usd: Series[float] = pa.Field(ge=0, le=1e10)
    freight_terms: Series[str] = pa.Field(nullable=True, isin=FREIGHT_TERMS)
    payment_method: Series[str] = pa.Field(nullable=True, isin=PAYMENT_METHODS)

    bill_of_lading: Series[str] = _ident(nullable=True)
    container_id: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z]{4}[0-9]{7}$")
    container_type: Series[str] = pa.Field(nullable=True, isin=CONTAINER_TYPES)
    load_type: Series[str] = pa.Field(nullable=True, isin=LOAD_TYPES)
    vessel: Series[str] = _text()
    voyage: Series[str] = _ident(nullable=True)

    air_waybill: Series[str] = _ident(nullable=True)
    flight: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{2,3}[0-9]{1,5}[A-Z]?$")

    platform: Series[str] = _text()
    order_ref: Series[str] = _ident(nullable=True)
    recipient_customs_code: Series[str] = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{6,20}$")

    class Config:
        strict = True
        coerce = True
        ordered = False

    @pa.dataframe_check(error="departed_at must not be after arrival_at")
    @classmethod
    def departure_before_arrival(cls, df: pd.DataFrame) -> Series[bool]:
        return ~(df["departed_at"] > df["arrival_at"]).fillna(False)

    @pa.dataframe_check(error="booked_at must not be after departed_at")
    @classmethod
    def booking_before_departure(cls, df: pd.DataFrame) -> Series[bool]:
        return ~(df["booked_at"] > df["departed_at"]).fillna(False)


class Outcomes(pa.DataFrameModel):
    """One inspection and what it found. ``result_at`` is when the result became known."""

    shipment_id: Series[str] = pa.Field(str_matches=_ID)
    inspected_at: Series[pd.Timestamp] = _when()
    result_at: Series[pd.Timestamp] = _when()
    result: Series[str] = pa.Field(isin=RESULTS)
    drug: Series[str] = pa.Field(nullable=True, isin=DRUGS)
    quantity_kg: Series[float] = pa.Field(nullable=True, ge=0, le=1_000_000)
    method: Series[str] = pa.Field(isin=INSPECTION_METHODS)
    selected_by: Series[str] = pa.Field(isin=SELECTED_BY)

    class Config:
        strict = True
        coerce = True
        ordered = False

    @pa.dataframe_check(error="result_at must not be before inspected_at")
    @classmethod
    def result_after_inspection(cls, df: pd.DataFrame) -> Series[bool]:
        return df["result_at"] >= df["inspected_at"]

    @pa.dataframe_check(error="a clean result cannot name a drug or a quantity")
    @classmethod
    def clean_has_no_drug(cls, df: pd.DataFrame) -> Series[bool]:
        clean = df["result"] == "clean"
        return ~(clean & (df["drug"].notna() | (df["quantity_kg"].fillna(0) > 0)))


SHIPMENT_COLUMNS: Final = tuple(Shipments.to_schema().columns)
OUTCOME_COLUMNS: Final = tuple(Outcomes.to_schema().columns)
REQUIRED_SHIPMENT_COLUMNS: Final = tuple(
    name for name, col in Shipments.to_schema().columns.items() if not col.nullable
)
TIMESTAMP_SHIPMENT_COLUMNS: Final = ("declared_at", "booked_at", "departed_at", "arrival_at")


def conform(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Return ``frame`` with exactly ``columns`` in contract order, absent optional ones as nulls.

    Sources rarely carry every optional field; this fills the gaps so validation can judge the
    rest. It never invents values for required fields (validation will name them instead).
    """
    out = frame.copy()
    for name in columns:
        if name not in out.columns:
            out[name] = pd.NA
    return out[list(columns)]


def validate_shipments(frame: pd.DataFrame, *, lazy: bool = True) -> pd.DataFrame:
    """Validate (and coerce) a shipments frame; raises ``pandera.errors.SchemaErrors`` naming
    every failing field and row when ``lazy``."""
    return Shipments.validate(conform(frame, SHIPMENT_COLUMNS), lazy=lazy)


def validate_outcomes(frame: pd.DataFrame, *, lazy: bool = True) -> pd.DataFrame:
    """Validate (and coerce) an outcomes frame."""
    return Outcomes.validate(conform(frame, OUTCOME_COLUMNS), lazy=lazy)


def split_ports(value: str | None) -> list[str]:
    """The transshipment ports of one shipment, in travel order."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return []
    return [p for p in str(value).split(PORT_SEPARATOR) if p]
