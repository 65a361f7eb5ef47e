"""Fixtures of the serving tests: valid contract records to start from."""

from __future__ import annotations

import datetime as dt

import pytest


def make_shipment(i: int = 0, **overrides) -> dict:
    """A valid sea shipment as the API receives it (JSON-able)."""
    declared = dt.datetime(2026, 3, 1, 8, 0) + dt.timedelta(minutes=i)
    record = {
        "shipment_id": f"S{i:07d}",
        "mode": "sea",
        "declared_at": declared.isoformat(),
        "booked_at": (declared - dt.timedelta(days=20)).isoformat(),
        "departed_at": (declared - dt.timedelta(days=15)).isoformat(),
        "arrival_at": (declared + dt.timedelta(days=1)).isoformat(),
        "shipper_id": f"SHP{i % 50}",
        "consignee_id": f"CNS{i % 70}",
        "forwarder_id": "FWD1",
        "declarant_id": "DCL1",
        "shipper_name": "Frutas del Sur SA",
        "consignee_name": "Fresh Imports BV",
        "consignee_address": "Havenweg 1, Rotterdam",
        "consignee_phone": "+31 10 555 0101",
        "origin_country": "EC",
        "departure_country": "EC",
        "loading_port": "ECGYE",
        "transshipment_ports": "PAPTY",
        "discharge_port": "NLRTM",
        "hs_code": "080390",
        "goods_description": "fresh bananas",
        "packages": 1200,
        "gross_weight_kg": 21000.0,
        "declared_value": 18000.0,
        "currency": "USD",
        "declared_value_usd": 18000.0,
        "freight_terms": "prepaid",
        "payment_method": "bank_transfer",
        "bill_of_lading": f"BL{i:08d}",
        "container_id": "MSKU1234567",
        "container_type": "reefer",
        "load_type": "fcl",
        "vessel": "MSC Aurora",
        "voyage": "V123",
    }
    record.update(overrides)
    return record


def make_outcome(shipment_id: str, result: str = "clean", **overrides) -> dict:
    record = {
        "shipment_id": shipment_id,
        "inspected_at": "2026-03-02T10:00:00",
        "result_at": "2026-03-04T10:00:00",
        "result": result,
        "drug": "cocaine" if result == "seized" else None,
        "quantity_kg": 12.5 if result == "seized" else None,
        "method": "physical",
        "selected_by": "model",
    }
    record.update(overrides)
    return record


@pytest.fixture
def shipment():
    return make_shipment(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request, tmp_path):
    """A fresh store: a SQLite file, or a database of its own on the local PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.processes import postgres_database

        with postgres_database() as url:
            yield url
