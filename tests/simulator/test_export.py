"""The messy world and its export: a foreign-named CSV and the mapping that ingests it."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from cargorisk.cli import main
from features.contracts import (
    MODES,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    DatasetInfo,
    validate_shipments,
)
from simulator import SimConfig, simulate
from simulator.export import COLUMNS, labels, mapping_text, write_export
from simulator.messy import ATTRIBUTES, CRITICAL_KG, DATASET_INFO, SIGNAL_ATTRIBUTES

from .conftest import END

KCS_COLUMNS = (
    "Declaration ID", "Date", "Office ID", "Process Type", "Import Type", "Import Use",
    "Payment Type", "Mode of Transport", "Declarant ID", "Importer ID", "Seller ID",
    "Courier ID", "HS6 Code", "Country of Departure", "Country of Origin", "Tax Rate",
    "Tax Type", "Country of Origin Indicator", "Net Mass", "Item Price",
)  # fmt: skip
"""The columns of the Korea Customs Service's synthetic import-declaration data, in order."""


@pytest.fixture(scope="module")
def messy_world():
    return simulate(SimConfig(days=21, shipments_per_day=1500, seed=5, end=END, messy=True))


@pytest.fixture(scope="module")
def export_dir(messy_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    write_export(out, messy_world)
    return out


@pytest.fixture(scope="module")
def csv(export_dir):
    """The export as a customs analyst would open it: every field as text, blanks as ""."""
    return pd.read_csv(export_dir / "declarations.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def mapping(export_dir):
    return yaml.safe_load((export_dir / "mapping.yaml").read_text(encoding="utf-8"))


# -- the messy world ----------------------------------------------------------------------------


def test_messy_world_is_the_contract_plus_its_attributes(messy_world):
    s = messy_world.shipments
    assert messy_world.info == DATASET_INFO
    assert list(s.columns) == [*SHIPMENT_COLUMNS, *(f"attr.{n}" for n in ATTRIBUTES)]
    pd.testing.assert_frame_equal(validate_shipments(s, attributes=ATTRIBUTES), s)
    assert s["attr.tax_rate"].dtype == "float64" and s["attr.amendments"].dtype == "float64"
    assert s["attr.office"].map(type).eq(str).all()


def test_messy_world_holds_what_real_exports_hold(messy_world):
    s = messy_world.shipments
    assert set(s["mode"]) == set(MODES) - {"inland_waterway", "fixed_installation"}
    share = s["mode"].value_counts(normalize=True)
    assert 0.07 < share["post"] < 0.14
    assert share[["rail", "road", "other"]].between(0.0005, 0.01).all()
    assert 0.07 < s["shipper_id"].isna().mean() < 0.13
    assert 0.002 < (s["gross_weight_kg"] == 0).mean() < 0.012
    bulk = s["gross_weight_kg"] > 1_000_000
    assert 0.0005 < bulk.mean() < 0.008
    assert s.loc[bulk, "container_id"].isna().all() and (s.loc[bulk, "mode"] == "sea").all()
    assert 0.002 < (s["declared_value_usd"] == 0).mean() < 0.012
    assert s["hs_code"].str.len().eq(6).all()
    for col in ("declared_at", "booked_at", "departed_at", "arrival_at"):
        assert (s[col].dropna() == s[col].dropna().dt.normalize()).all(), col
    # post has no courier; every courier parcel (express) has one
    assert s.loc[s["mode"] == "post", "carrier_id"].isna().all()
    assert s.loc[s["mode"] == "express", "carrier_id"].notna().all()


def test_messy_world_keeps_the_world_it_came_from(messy_world):
    """The mess changes how shipments are declared, never which shipments exist or their
    truth, outcomes and parties' other fields."""
    tidy = simulate(SimConfig(days=21, shipments_per_day=1500, seed=5, end=END))
    s, t = messy_world.shipments, tidy.shipments
    assert s["shipment_id"].tolist() == t["shipment_id"].tolist()
    pd.testing.assert_frame_equal(messy_world.truth, tidy.truth)
    pd.testing.assert_frame_equal(messy_world.outcomes, tidy.outcomes)
    for col in ("consignee_id", "origin_country", "loading_port", "goods_description"):
        pd.testing.assert_series_equal(s[col], t[col])
    shifted = t["declared_at"] + pd.Timedelta(hours=9)
    assert (s["declared_at"] == shifted.dt.normalize()).all()  # the Korean calendar day
    moved = t["mode"] != s["mode"]
    changes = set(zip(t.loc[moved, "mode"], s.loc[moved, "mode"], strict=True))
    assert changes == {("express", "post"), ("sea", "rail"), ("sea", "road"), ("air", "other")}


def test_some_attributes_carry_signal_others_none(messy_world):
    s, truth = messy_world.shipments, messy_world.truth
    illicit = truth["illicit"].to_numpy()
    cargo = ~s["mode"].isin(["express", "post"]).to_numpy()
    assert set(SIGNAL_ATTRIBUTES) <= set(ATTRIBUTES)
    pay_later = s["attr.duty_payment"] == "11"
    assert pay_later[cargo & illicit].mean() > pay_later[cargo & ~illicit].mean() + 0.15
    amendments = s["attr.amendments"]
    assert amendments[illicit].mean() > 3 * amendments[~illicit].mean()
    certificate = s["attr.origin_certificate"] == "Y"
    assert certificate[cargo & illicit].mean() < certificate[cargo & ~illicit].mean() - 0.05
    for noise in ("channel", "process_type"):  # drawn per row, whatever the shipment
        values = s.loc[cargo, f"attr.{noise}"]
        top = values.value_counts().index[0]
        gap = (values[illicit[cargo]] == top).mean() - (values[~illicit[cargo]] == top).mean()
        assert abs(gap) < 0.15, noise


# -- the CSV ------------------------------------------------------------------------------------


def test_csv_has_the_kcs_columns_first_then_ours(csv):
    assert tuple(csv.columns[: len(KCS_COLUMNS)]) == KCS_COLUMNS
    assert list(csv.columns) == [c.name for c in COLUMNS]
    assert {"Fraud", "Critical Fraud"} <= set(csv.columns)
    assert csv["Declaration ID"].is_unique


def test_csv_states_the_messy_world(csv, messy_world):
    s = messy_world.shipments
    assert len(csv) == len(s) and csv["Declaration ID"].tolist() == s["shipment_id"].tolist()
    assert (csv["Seller ID"] == "").tolist() == s["shipper_id"].isna().tolist()
    assert csv["Date"].tolist() == s["declared_at"].dt.strftime("%Y-%m-%d").tolist()
    assert csv["Date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()  # no time of day anywhere
    # numbers read back as exactly the world's values
    np.testing.assert_array_equal(csv["Net Mass"].astype(float), s["gross_weight_kg"])
    np.testing.assert_array_equal(csv["Item Price"].astype(float), s["declared_value_usd"])
    np.testing.assert_array_equal(csv["Tax Rate"].astype(float), s["attr.tax_rate"])
    assert (csv["Net Mass"] == "0").any() and csv["Net Mass"].astype(float).max() > 1e6
    assert csv["Amendment Count"].str.fullmatch(r"\d+").all()
    codes = csv["Mode of Transport"]
    assert set(codes) == {"10", "20", "30", "40", "50", "90"}
    courier = csv["Courier ID"] != ""
    assert courier.tolist() == (s["mode"] == "express").tolist()
    assert set(codes[courier]) == {"10", "40"}  # parcels by ferry or by air


def test_label_only_on_inspected_rows_and_critical_within_it(csv, messy_world):
    o = messy_world.outcomes
    fraud, critical = csv["Fraud"], csv["Critical Fraud"]
    assert (fraud != "").sum() == len(o) and ((fraud == "") == (critical == "")).all()
    labelled = csv.set_index("Declaration ID").loc[o["shipment_id"]]
    assert (labelled["Fraud"] == "1").tolist() == (o["result"] == "seized").tolist()
    big = (o["result"] == "seized") & (o["quantity_kg"] >= CRITICAL_KG)
    assert (labelled["Critical Fraud"] == "1").tolist() == big.tolist()
    assert ((critical == "1") <= (fraud == "1")).all()
    assert 0 < (critical == "1").sum() < (fraud == "1").sum()
    assert labels(messy_world).index.equals(messy_world.shipments.index)


# -- the mapping --------------------------------------------------------------------------------


def _columns_read(entry) -> set[str]:
    """Source columns one mapping entry reads (column, coalesce, when conditions)."""
    if isinstance(entry, str):
        return {entry}
    found = set()
    if "column" in entry:
        found.add(entry["column"])
    found |= set(entry.get("coalesce", []))
    for rule in entry.get("when", []):
        found |= {rule[k] for k in ("present", "absent") if k in rule}
        found |= set(rule.get("equals", {}))
    return found


def test_mapping_parses_and_names_only_columns_of_the_csv(mapping, csv, export_dir):
    assert set(mapping) == {"label", "shipments", "attributes", "outcomes"}
    assert mapping["label"] == {"name": "narcotics seizure", "positive": "seizure"}
    assert set(REQUIRED_SHIPMENT_COLUMNS) <= set(mapping["shipments"])
    assert set(mapping["shipments"]) <= set(SHIPMENT_COLUMNS)
    read = set()
    for section in ("shipments", "attributes", "outcomes"):
        for entry in mapping[section].values():
            read |= _columns_read(entry)
    assert read <= set(csv.columns)
    assert set(csv.columns) - read == {"Critical Fraud"}  # the other label's mapping reads it
    critical = yaml.safe_load((export_dir / "mapping_critical.yaml").read_text("utf-8"))
    assert critical["outcomes"]["result"]["column"] == "Critical Fraud"
    assert {k: v for k, v in critical.items() if k not in ("label", "outcomes")} == {
        k: v for k, v in mapping.items() if k not in ("label", "outcomes")
    }


def test_mapping_uses_the_spec_operations(mapping):
    ship = mapping["shipments"]
    assert ship["mode"]["when"] == [{"present": "Courier ID", "value": "express"}]
    assert ship["mode"]["values"] == {
        "10": "sea", "20": "rail", "30": "road", "40": "air", "50": "post", "90": "other",
    }  # fmt: skip
    assert ship["carrier_id"] == {"coalesce": ["Shipping Line Code", "Airline Code", "Courier ID"]}
    assert ship["shipper_id"] == {"column": "Seller ID", "default": None}
    assert ship["freight_terms"]["default"] == "prepaid"
    assert ship["declared_at"] == {
        "column": "Date", "date_format": "%Y-%m-%d", "timezone": "Asia/Seoul",
    }  # fmt: skip
    attrs = mapping["attributes"]
    assert list(attrs) == list(ATTRIBUTES)
    info = DatasetInfo.model_validate(
        {
            "label": mapping["label"],
            "attributes": {
                name: {k: v for k, v in e.items() if k in ("kind", "label", "description")}
                for name, e in attrs.items()
            },
        }
    )
    assert info == DATASET_INFO
    assert attrs["tax_type"]["default"] == "A" and attrs["office"]["unmapped"] == "keep"
    assert mapping["outcomes"]["result"] == {
        "column": "Fraud", "values": {"1": "seized", "0": "clean"},
    }  # fmt: skip


def test_value_maps_cover_every_code_in_the_csv(mapping, csv):
    """Nothing the mapping would refuse: every coded value has its entry."""
    ship, attrs = mapping["shipments"], mapping["attributes"]
    for entry in [*ship.values(), *attrs.values()]:
        if isinstance(entry, dict) and "values" in entry and entry.get("unmapped") != "keep":
            present = set(csv[entry["column"]]) - {""}
            assert present <= set(entry["values"]), entry["column"]
    assert set(csv["Office ID"]) <= set(attrs["office"]["values"])


def test_mapping_text_is_the_written_file(export_dir):
    assert (export_dir / "mapping.yaml").read_text("utf-8") == mapping_text("Fraud")


# -- the command --------------------------------------------------------------------------------

ARGS = ["--days", "10", "--shipments-per-day", "600", "--end", "2026-11-25"]


def test_export_is_deterministic_and_out_is_its_answer_key(tmp_path, home):
    for name, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        args = ["simulate", "--export", str(tmp_path / name), *ARGS, "--seed", seed]
        if name == "a":
            args += ["--out", str(tmp_path / "tables")]
        assert main(args) == 0
    for name in ("declarations.csv", "mapping.yaml", "mapping_critical.yaml", "truth.parquet"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    assert not filecmp.cmp(
        tmp_path / "a" / "declarations.csv", tmp_path / "c" / "declarations.csv", shallow=False
    )
    tables = tmp_path / "tables"
    info = DatasetInfo.model_validate(json.loads((tables / "dataset.json").read_text("utf-8")))
    assert info == DATASET_INFO
    shipments = pd.read_parquet(tables / "shipments.parquet")
    csv = pd.read_csv(tmp_path / "a" / "declarations.csv", dtype=str, keep_default_na=False)
    assert shipments["shipment_id"].tolist() == csv["Declaration ID"].tolist()
    assert list(shipments.columns[-len(ATTRIBUTES) :]) == [f"attr.{n}" for n in ATTRIBUTES]


def test_export_alone_writes_no_contract_tables(tmp_path, home):
    assert main(["simulate", "--export", str(tmp_path), *ARGS]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "declarations.csv", "mapping.yaml", "mapping_critical.yaml", "truth.parquet",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "field"),
    [([], "out"), (["--out", "X", "--party-history", "forgotten"], "party_history")],
)
def test_bad_export_input_names_the_field(tmp_path, home, capsys, monkeypatch, extra, field):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", *ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert field in err and err.count("\n") == 1
    assert not (tmp_path / "X" / "shipments.parquet").exists()


def test_tidy_world_cannot_be_exported(tmp_path, small_world):
    with pytest.raises(ValueError, match="messy"):
        write_export(tmp_path, small_world)
