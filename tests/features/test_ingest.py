"""The mapping model and ingest_chunk: value maps, dates, units, constants, label -> outcomes,
and quarantine of every bad row with its field and reason while good rows pass intact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pydantic
import pytest
import yaml

from features.contracts import OUTCOME_COLUMNS, SHIPMENT_COLUMNS
from features.ingest import (
    QUARANTINE_COLUMNS,
    Mapping,
    empty_outcomes,
    empty_shipments,
    ingest_chunk,
    load_mapping,
    reason_counts,
)


def mapping_doc(**extra) -> dict:
    """A minimal mapping from a KCS-like export; tests add or replace entries."""
    doc = {
        "shipments": {
            "shipment_id": "DECL_NO",
            "mode": {"column": "TRNS", "values": {10: "sea", 40: "air", 50: "express"}},
            "declared_at": {"column": "DECL_DT", "date_format": "%d/%m/%Y"},
            "shipper_id": "EXPTR",
            "consignee_id": "IMPTR",
            "origin_country": {"column": "ORGN", "upper": True},
            "departure_country": {"column": "ORGN", "upper": True},
            "discharge_port": {"constant": "KRPUS"},
            "hs_code": "HS",
            "packages": "PKG",
            "gross_weight_kg": {"column": "WGT_T", "unit": "t"},
            "declared_value": "AMT",
            "currency": "CUR",
        },
        "currency_rates_usd": {"KRW": 0.00075, "USD": 1.0},
    }
    for key, value in extra.items():
        if key == "shipments":
            doc["shipments"] = {**doc["shipments"], **value}
        else:
            doc[key] = value
    return doc


def source(*rows: dict) -> pd.DataFrame:
    """Source rows as text, the way a CSV export arrives; defaults give a valid sea row."""
    base = {
        "DECL_NO": "D1",
        "TRNS": "10",
        "DECL_DT": "03/11/2026",
        "EXPTR": "EX-1",
        "IMPTR": "IM-1",
        "ORGN": "ec",
        "HS": "080390",
        "PKG": "12",
        "WGT_T": "1.5",
        "AMT": "1000000",
        "CUR": "KRW",
        "SEIZ": "",
    }
    return pd.DataFrame([{**base, **row} for row in rows], dtype="str")


def run(frame: pd.DataFrame, **extra):
    return ingest_chunk(frame, load_mapping(mapping_doc(**extra)))


# -- the mapping model ------------------------------------------------------------------------
def test_the_example_mapping_is_valid():
    example = Path(__file__).resolve().parents[2] / "examples" / "kcs_mapping.yaml"
    doc = yaml.safe_load(example.read_text(encoding="utf-8"))
    mapping = load_mapping(doc)
    assert mapping.outcomes is not None
    assert "SEIZ_YN" in mapping.source_columns


def test_an_unknown_contract_field_is_named_with_a_suggestion():
    with pytest.raises(pydantic.ValidationError, match=r"'gross_weight' is not a field.*did you"):
        load_mapping(mapping_doc(shipments={"gross_weight": "W"}))


def test_an_unknown_option_is_refused():
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        load_mapping(mapping_doc(shipments={"hs_code": {"column": "HS", "format": "x"}}))
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        load_mapping(mapping_doc(labels={"column": "SEIZ"}))


def test_every_required_field_must_be_mapped():
    doc = mapping_doc()
    del doc["shipments"]["mode"]
    with pytest.raises(pydantic.ValidationError, match="mode not mapped"):
        load_mapping(doc)


def test_optional_fields_may_be_left_unmapped():
    doc = mapping_doc()
    for name in ("hs_code", "consignee_id", "packages", "gross_weight_kg"):
        doc["shipments"].pop(name, None)
    del doc["currency_rates_usd"]
    result = ingest_chunk(source({"DECL_NO": "D1"}), load_mapping(doc))
    assert result.rejected == 0
    row = result.shipments.iloc[0]
    assert pd.isna(row["hs_code"]) and pd.isna(row["consignee_id"]) and pd.isna(row["packages"])
    assert pd.isna(row["declared_value_usd"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"column": "HS", "constant": "0803"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"column": "HS", "date_format": "%Y"}, "timestamps only"),
        ({"column": "HS", "unit": "t"}, "weights in kg only"),
        ({"column": "HS", "scale": 2}, "numeric fields only"),
        ({"column": "HS", "decimal": ","}, "numeric fields only"),
    ],
)
def test_inconsistent_field_specs_are_refused(spec, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        load_mapping(mapping_doc(shipments={"hs_code": spec}))


def test_a_yaml_boolean_value_map_key_is_refused():
    with pytest.raises(pydantic.ValidationError, match="quote it"):
        load_mapping(mapping_doc(shipments={"mode": {"column": "TRNS", "values": {True: "sea"}}}))


def test_outcomes_need_the_label_column_and_required_fields():
    with pytest.raises(pydantic.ValidationError, match="method, selected_by"):
        load_mapping(
            mapping_doc(
                outcomes={
                    "result": {"column": "SEIZ", "values": {"Y": "seized"}},
                    "inspected_at": {"days_after_declared": 1},
                    "result_at": {"days_after_declared": 5},
                }
            )
        )
    with pytest.raises(pydantic.ValidationError, match="label column"):
        load_mapping(mapping_doc(outcomes={**OUTCOMES, "result": {"constant": "clean"}}))


def test_mapping_is_frozen():
    mapping = load_mapping(mapping_doc())
    with pytest.raises(pydantic.ValidationError):
        mapping.null_values = ["x"]
    assert isinstance(mapping, Mapping)


# -- reading values -----------------------------------------------------------------------------
def test_a_valid_row_becomes_one_contract_row():
    result = run(source({}))
    assert result.rows == 1 and result.rejected == 0 and result.quarantine.empty
    row = result.shipments.iloc[0]
    assert tuple(result.shipments.columns) == SHIPMENT_COLUMNS
    assert row["mode"] == "sea"
    assert row["declared_at"] == pd.Timestamp("2026-11-03")
    assert row["origin_country"] == "EC"  # upper-cased
    assert row["discharge_port"] == "KRPUS"  # constant
    assert row["gross_weight_kg"] == pytest.approx(1500.0)  # tonnes -> kg
    assert row["packages"] == 12
    assert row["declared_value_usd"] == pytest.approx(750.0)  # KRW x rate
    assert pd.isna(row["vessel"])  # unmapped optional field stays empty


def test_value_maps_reject_unknown_codes_or_keep_them_as_asked():
    result = run(source({"TRNS": "40"}, {"DECL_NO": "D2", "TRNS": "99"}))
    assert result.shipments["mode"].tolist() == ["air"]
    bad = result.quarantine.iloc[0]
    assert (bad["source_row"], bad["field"], bad["value"]) == (2, "mode", "99")
    assert "value map" in bad["reason"]

    keep = {"mode": {"column": "TRNS", "values": {"S": "sea"}, "unmapped": "keep"}}
    result = run(source({"TRNS": "S"}, {"DECL_NO": "D2", "TRNS": "air"}), shipments=keep)
    assert result.shipments["mode"].tolist() == ["sea", "air"]


def test_a_value_map_to_null_empties_the_field():
    spec = {"payment_method": {"column": "PAY", "values": {"TT": "bank_transfer", "XX": None}}}
    frame = source({"PAY": "TT"}, {"DECL_NO": "D2", "PAY": "XX"})
    result = run(frame, shipments=spec)
    assert result.shipments["payment_method"].tolist()[0] == "bank_transfer"
    assert pd.isna(result.shipments["payment_method"].iloc[1])


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("%d/%m/%Y", "03/11/2026", "2026-11-03"),
        ("%Y%m%d", "20261103", "2026-11-03"),
        ("%d.%m.%Y %H:%M", "03.11.2026 14:30", "2026-11-03 14:30"),
        (None, "2026-11-03T14:30:00", "2026-11-03 14:30"),
    ],
)
def test_date_formats(fmt, text, expected):
    spec = {"column": "DECL_DT"} | ({"date_format": fmt} if fmt else {})
    result = run(source({"DECL_DT": text}), shipments={"declared_at": spec})
    assert result.shipments["declared_at"].iloc[0] == pd.Timestamp(expected)


def test_local_time_and_offsets_are_stored_in_utc():
    local = {"declared_at": {"column": "DECL_DT", "timezone": "Asia/Seoul"}}
    result = run(source({"DECL_DT": "2026-11-03 09:00"}), shipments=local)
    assert result.shipments["declared_at"].iloc[0] == pd.Timestamp("2026-11-03 00:00")
    offset = {"declared_at": {"column": "DECL_DT"}}
    result = run(source({"DECL_DT": "2026-11-03T09:00:00+09:00"}), shipments=offset)
    assert result.shipments["declared_at"].iloc[0] == pd.Timestamp("2026-11-03 00:00")


def test_a_local_time_skipped_by_a_clock_change_is_quarantined():
    spec = {"declared_at": {"column": "DECL_DT", "timezone": "Europe/Amsterdam"}}
    result = run(source({"DECL_DT": "2026-03-29 02:30"}), shipments=spec)
    assert result.quarantine["field"].tolist() == ["declared_at"]
    assert "clock change" in result.quarantine["reason"].iloc[0]


def test_an_impossible_date_is_quarantined_with_the_format():
    result = run(source({"DECL_DT": "31/11/2026"}))
    bad = result.quarantine.iloc[0]
    assert bad["field"] == "declared_at"
    assert bad["reason"] == "is not a date in the format %d/%m/%Y"
    assert bad["value"] == "31/11/2026"


@pytest.mark.parametrize(
    ("spec", "text", "kg"),
    [
        ({"column": "WGT_T", "unit": "g"}, "2500", 2.5),
        ({"column": "WGT_T", "unit": "lb"}, "10", 4.5359237),
        ({"column": "WGT_T", "unit": "kg"}, "10", 10.0),
        ({"column": "WGT_T", "scale": 0.5}, "10", 5.0),
    ],
)
def test_unit_conversions(spec, text, kg):
    result = run(source({"WGT_T": text}), shipments={"gross_weight_kg": spec})
    assert result.shipments["gross_weight_kg"].iloc[0] == pytest.approx(kg)


def test_thousands_separators_and_decimal_commas():
    spec = {"declared_value": {"column": "AMT", "thousands": ".", "decimal": ","}}
    result = run(source({"AMT": "1.234.567,5", "CUR": "USD"}), shipments=spec)
    assert result.shipments["declared_value"].iloc[0] == 1_234_567.5
    spec = {"declared_value": {"column": "AMT", "thousands": ","}}
    result = run(source({"AMT": "18,500,000"}), shipments=spec)
    assert result.shipments["declared_value"].iloc[0] == 18_500_000


def test_text_in_a_numeric_column_is_quarantined_not_a_crash():
    result = run(source({"WGT_T": "abc"}, {"DECL_NO": "D2", "PKG": "2.5"}, {"DECL_NO": "D3"}))
    assert result.shipments["shipment_id"].tolist() == ["D3"]
    reasons = set(zip(result.quarantine["field"], result.quarantine["reason"], strict=True))
    assert reasons == {
        ("gross_weight_kg", "is not a number"),
        ("packages", "is not a whole number"),
    }


def test_a_currency_without_a_rate_is_quarantined():
    result = run(source({"CUR": "GBP"}))
    bad = result.quarantine.iloc[0]
    assert (bad["field"], bad["value"]) == ("declared_value_usd", "GBP")
    assert "currency_rates_usd" in bad["reason"]


def test_a_mapped_usd_value_is_used_as_is():
    result = run(source({"USD": "12.5"}), shipments={"declared_value_usd": "USD"})
    assert result.shipments["declared_value_usd"].iloc[0] == 12.5


def test_declared_null_markers_and_blanks_are_empty():
    spec = {"consignee_name": "NAME"}
    frame = source({"NAME": "-"}, {"DECL_NO": "D2", "NAME": "  "}, {"DECL_NO": "D3", "NAME": "K"})
    result = run(frame, shipments=spec, null_values=["-"])
    assert result.shipments["consignee_name"].isna().tolist() == [True, True, False]


def test_typed_source_columns_are_taken_as_they_are():
    frame = source({}).assign(
        PKG=pd.Series([7], dtype="int64"), DECL_DT=pd.Series([pd.Timestamp("2026-01-02")])
    )
    mapping = {"declared_at": {"column": "DECL_DT"}}
    result = run(frame, shipments=mapping)
    assert result.shipments["packages"].iloc[0] == 7
    assert result.shipments["declared_at"].iloc[0] == pd.Timestamp("2026-01-02")


# -- contract failures become readable quarantine rows --------------------------------------------
def test_contract_failures_name_the_field_and_say_why():
    frame = source(
        {"DECL_NO": "D1", "HS": "8"},
        {"DECL_NO": "D2", "ORGN": "Ecuador"},
        {"DECL_NO": "D3", "PKG": "-1"},
        {"DECL_NO": "D4", "IMPTR": ""},
        {"DECL_NO": "D5"},
    )
    result = run(frame)
    assert result.shipments["shipment_id"].tolist() == ["D4", "D5"]  # a blank party is fine
    got = {(r.source_row, r.field, r.reason) for r in result.quarantine.itertuples(index=False)}
    assert (1, "hs_code", "does not have the expected form (pattern ^[0-9]{2,10}$)") in got
    assert (2, "origin_country", "does not have the expected form (pattern ^[A-Z]{2}$)") in got
    assert (3, "packages", "must be at least 0") in got
    assert result.rejected == 3


def test_reasons_are_printable_text():
    result = run(source({"DECL_NO": "D\x01"}))
    reason = result.quarantine["reason"].iloc[0]
    assert reason == r"does not have the expected form (pattern ^[^\x00-\x1f\x7f]{1,64}$)"
    assert reason.isprintable()


def test_a_row_level_rule_names_both_fields():
    extra = {"departed_at": "DEP", "arrival_at": "ARR"}
    result = run(source({"DEP": "2026-11-05", "ARR": "2026-11-01"}), shipments=extra)
    bad = result.quarantine.iloc[0]
    assert bad["field"] == "departed_at, arrival_at"
    assert bad["reason"] == "departed_at must not be after arrival_at"


def test_quarantine_keeps_the_source_row_and_good_rows_are_intact():
    frame = source({"DECL_NO": "D1", "HS": "x"}, {"DECL_NO": "D2"}, {"DECL_NO": "D3", "HS": "y"})
    before = frame.copy()
    result = ingest_chunk(frame, load_mapping(mapping_doc()), first_row=101)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert result.shipments["shipment_id"].tolist() == ["D2"]
    assert result.shipments["hs_code"].tolist() == ["080390"]
    quarantine = result.quarantine
    assert list(quarantine.columns[:4]) == list(QUARANTINE_COLUMNS)
    assert quarantine["source_row"].tolist() == [101, 103]
    assert quarantine["source.DECL_NO"].tolist() == ["D1", "D3"]
    assert quarantine["source.HS"].tolist() == ["x", "y"]
    assert len(result.shipments) + result.rejected == result.rows == 3


def test_a_huge_value_is_quarantined_and_shown_shortened():
    spec = {"goods_description": "DESC"}
    result = run(source({"DESC": "x" * 1_000_000}), shipments=spec)
    bad = result.quarantine.iloc[0]
    assert (bad["field"], bad["reason"]) == ("goods_description", "is longer than 2000 characters")
    assert len(bad["value"]) <= 201
    assert len(bad["source.DESC"]) == 1_000_000  # the source value itself is kept


def test_repeated_shipment_ids_keep_the_first_within_and_across_chunks():
    frame = source({"DECL_NO": "D1"}, {"DECL_NO": "D1", "PKG": "5"}, {"DECL_NO": "D9"})
    mapping = load_mapping(mapping_doc())
    result = ingest_chunk(frame, mapping, seen_ids={"D9"})
    assert result.shipments["shipment_id"].tolist() == ["D1"]
    assert result.shipments["packages"].tolist() == [12]  # the first one
    assert result.quarantine["source_row"].tolist() == [2, 3]
    assert set(result.quarantine["field"]) == {"shipment_id"}


def test_a_repeat_of_a_quarantined_row_is_accepted():
    frame = source({"DECL_NO": "D1", "HS": "bad"}, {"DECL_NO": "D1"})
    result = run(frame)
    assert result.shipments["shipment_id"].tolist() == ["D1"]
    assert result.quarantine["source_row"].tolist() == [1]


def test_reason_counts_count_rows_per_field_and_reason():
    frame = source({"DECL_NO": "D1", "TRNS": "99"}, {"DECL_NO": "D2", "TRNS": "98"})
    counts = reason_counts(run(frame).quarantine)
    assert counts.to_dict() == {"mode: value is not in the mapping's value map (10, 40, 50)": 2}


def test_missing_source_columns_raise():
    with pytest.raises(KeyError, match="HS"):
        run(source({}).drop(columns="HS"))


# -- label column -> outcomes -----------------------------------------------------------------
OUTCOMES = {
    "result": {"column": "SEIZ", "values": {"Y": "seized", "N": "clean", "U": None}},
    "inspected_at": {"days_after_declared": 1},
    "result_at": {"days_after_declared": 7.5},
    "method": {"constant": "physical"},
    "selected_by": {"constant": "officer"},
}


def test_a_label_column_becomes_outcome_rows_dated_from_the_declaration():
    frame = source(
        {"DECL_NO": "D1", "SEIZ": "Y"},
        {"DECL_NO": "D2", "SEIZ": "N"},
        {"DECL_NO": "D3", "SEIZ": "U"},
        {"DECL_NO": "D4", "SEIZ": ""},
    )
    result = run(frame, outcomes=OUTCOMES)
    assert len(result.shipments) == 4
    outcomes = result.outcomes
    assert tuple(outcomes.columns) == OUTCOME_COLUMNS
    assert outcomes["shipment_id"].tolist() == ["D1", "D2"]
    assert outcomes["result"].tolist() == ["seized", "clean"]
    assert (outcomes["inspected_at"] == pd.Timestamp("2026-11-04")).all()
    assert (outcomes["result_at"] == pd.Timestamp("2026-11-10 12:00")).all()
    assert set(outcomes["method"]) == {"physical"} and set(outcomes["selected_by"]) == {"officer"}


def test_label_dates_and_drug_from_columns():
    outcomes = {
        **OUTCOMES,
        "inspected_at": {"column": "INSP", "date_format": "%d/%m/%Y"},
        "result_at": {"column": "RES", "date_format": "%d/%m/%Y"},
        "drug": {"column": "DRUG", "values": {"COC": "cocaine"}},
        "quantity_kg": {"column": "QTY_G", "unit": "g"},
    }
    frame = source(
        {"SEIZ": "Y", "INSP": "05/11/2026", "RES": "09/11/2026", "DRUG": "COC", "QTY_G": "1500"}
    )
    row = run(frame, outcomes=outcomes).outcomes.iloc[0]
    assert row["inspected_at"] == pd.Timestamp("2026-11-05")
    assert row["result_at"] == pd.Timestamp("2026-11-09")
    assert (row["drug"], row["quantity_kg"]) == ("cocaine", 1.5)


def test_a_bad_label_or_outcome_quarantines_the_whole_row():
    outcomes = {**OUTCOMES, "drug": {"column": "DRUG", "values": {"COC": "cocaine"}}}
    frame = source(
        {"DECL_NO": "D1", "SEIZ": "maybe"},
        {"DECL_NO": "D2", "SEIZ": "N", "DRUG": "COC"},  # clean yet a drug: contract rule
        {"DECL_NO": "D3", "SEIZ": "Y", "DRUG": "COC"},
    )
    result = run(frame, outcomes=outcomes)
    assert result.shipments["shipment_id"].tolist() == ["D3"]
    assert result.outcomes["shipment_id"].tolist() == ["D3"]
    fields = dict(zip(result.quarantine["source_row"], result.quarantine["field"], strict=True))
    assert fields[1] == "outcome.result"
    assert fields[2].startswith("outcome.")
    assert result.rejected == 2


@pytest.mark.parametrize("text", ["yesterday", ""])
def test_an_unreadable_or_missing_declaration_date_is_reported_once(text):
    result = run(source({"DECL_DT": text, "SEIZ": "Y"}), outcomes=OUTCOMES)
    assert result.quarantine["field"].tolist() == ["declared_at"]


def test_empty_frames_follow_the_contract():
    assert tuple(empty_shipments().columns) == SHIPMENT_COLUMNS
    assert tuple(empty_outcomes().columns) == OUTCOME_COLUMNS
