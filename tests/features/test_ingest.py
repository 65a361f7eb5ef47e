"""The mapping model and ingest_chunk: value maps, dates, units, constants, derivations
(when/coalesce/default), attributes, the label, label -> outcomes for labelled files only,
quarantine of what cannot be scored and blanking (reported) of optional values that break the
contract, while good rows pass intact."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pydantic
import pytest
import yaml

from features.contracts import (
    OUTCOME_COLUMNS,
    REQUIRED_SHIPMENT_COLUMNS,
    SHIPMENT_COLUMNS,
    SHIPMENT_KINDS,
    AttributeSpec,
    DatasetInfo,
    LabelMeaning,
    validate_shipments,
)
from features.ingest.apply import empty_outcomes, empty_shipments, ingest_chunk
from features.ingest.issues import BLANKED_COLUMNS, QUARANTINE_COLUMNS, reason_counts
from features.ingest.mapping import Mapping, load_mapping


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


# -- the mapping model -----------------------------------------------------------------------------
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
        ({"column": "HS", "coalesce": ["HS", "HS2"]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"coalesce": []}, "at least 1 item"),
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


# -- reading values --------------------------------------------------------------------------------
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


def test_text_in_an_optional_numeric_column_is_blanked_and_reported_not_a_crash():
    result = run(source({"WGT_T": "abc"}, {"DECL_NO": "D2", "PKG": "2.5"}, {"DECL_NO": "D3"}))
    assert result.rejected == 0 and result.quarantine.empty
    assert result.shipments["shipment_id"].tolist() == ["D1", "D2", "D3"]
    assert result.shipments["gross_weight_kg"].isna().tolist() == [True, False, False]
    assert result.shipments["packages"].isna().tolist() == [False, True, False]
    blanked = result.blanked
    assert list(blanked.columns) == list(BLANKED_COLUMNS)
    assert set(blanked.itertuples(index=False, name=None)) == {
        (1, "gross_weight_kg", "is not a number", "abc"),
        (2, "packages", "is not a whole number", "2.5"),
    }


def test_a_currency_without_a_rate_blanks_the_usd_value_and_says_so():
    result = run(source({"CUR": "GBP"}))
    assert result.rejected == 0
    row = result.shipments.iloc[0]
    assert pd.isna(row["declared_value_usd"]) and row["declared_value"] == 1_000_000
    bad = result.blanked.iloc[0]
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


# -- contract failures: required fields quarantine, optional ones are blanked and reported ---------
def test_optional_contract_failures_are_blanked_naming_the_field_and_why():
    frame = source(
        {"DECL_NO": "D1", "HS": "8"},
        {"DECL_NO": "D2", "ORGN": "Ecuador"},
        {"DECL_NO": "D3", "PKG": "-1"},
        {"DECL_NO": "D4", "IMPTR": ""},
        {"DECL_NO": "D5"},
    )
    result = run(frame)
    assert result.rejected == 0  # every row can be scored
    assert result.shipments["shipment_id"].tolist() == ["D1", "D2", "D3", "D4", "D5"]
    assert pd.isna(result.shipments["hs_code"].iloc[0])
    assert result.shipments["origin_country"].isna().tolist() == [False, True] + [False] * 3
    assert pd.isna(result.shipments["packages"].iloc[2])
    assert pd.isna(result.shipments["consignee_id"].iloc[3])  # blank: nothing to report
    got = {(r.source_row, r.field, r.reason, r.value) for r in result.blanked.itertuples()}
    assert got == {
        (1, "hs_code", "does not have the expected form (pattern ^[0-9]{2,10}$)", "8"),
        (2, "origin_country", "does not have the expected form (pattern ^[A-Z]{2}$)", "ECUADOR"),
        (2, "departure_country", "does not have the expected form (pattern ^[A-Z]{2}$)", "ECUADOR"),
        (3, "packages", "must be at least 0", "-1"),
    }


def test_required_contract_failures_quarantine_the_row():
    keep = {"mode": {"column": "TRNS", "values": {"10": "sea"}, "unmapped": "keep"}}
    frame = source({"DECL_NO": "D1", "TRNS": "ship"}, {"DECL_NO": ""}, {"DECL_NO": "D3"})
    result = run(frame, shipments=keep)
    assert result.shipments["shipment_id"].tolist() == ["D3"]
    got = {(r.source_row, r.field) for r in result.quarantine.itertuples(index=False)}
    assert got == {(1, "mode"), (2, "shipment_id")}
    reasons = dict(zip(result.quarantine["field"], result.quarantine["reason"], strict=True))
    assert reasons["mode"].startswith("must be one of sea, rail, road, air, post, express")
    assert reasons["shipment_id"] == "is required but empty"


def test_odd_but_real_values_pass_untouched():
    frame = source(
        {"DECL_NO": "D1", "WGT_T": "0"},
        {"DECL_NO": "D2", "WGT_T": "1500"},  # 1,500 t: bulk cargo
        {"DECL_NO": "D3", "AMT": "0"},
    )
    result = run(frame)
    assert result.rejected == 0 and result.blanked.empty
    assert result.shipments["gross_weight_kg"].tolist() == [0.0, 1_500_000.0, 1500.0]
    assert result.shipments["declared_value"].tolist() == [1_000_000, 1_000_000, 0]


def test_reasons_are_printable_text():
    result = run(source({"DECL_NO": "D\x01"}))
    reason = result.quarantine["reason"].iloc[0]
    assert reason == "is not an identifier (1-64 characters, no control or format character)"
    assert reason.isprintable()


def test_a_row_level_rule_blanks_both_fields_and_shows_both_values():
    extra = {"departed_at": "DEP", "arrival_at": "ARR"}
    result = run(source({"DEP": "2026-11-05", "ARR": "2026-11-01"}), shipments=extra)
    assert result.rejected == 0
    row = result.shipments.iloc[0]
    assert pd.isna(row["departed_at"]) and pd.isna(row["arrival_at"])
    bad = result.blanked.iloc[0]
    assert bad["field"] == "departed_at, arrival_at"
    assert bad["reason"] == "departed_at must not be after arrival_at"
    assert "2026-11-05" in bad["value"] and "2026-11-01" in bad["value"]


def test_quarantine_keeps_the_source_row_and_good_rows_are_intact():
    frame = source(
        {"DECL_NO": "D1", "TRNS": "7"}, {"DECL_NO": "D2"}, {"DECL_NO": "D3", "TRNS": "8"}
    )
    before = frame.copy()
    result = ingest_chunk(frame, load_mapping(mapping_doc()), first_row=101)
    pd.testing.assert_frame_equal(frame, before)  # input untouched
    assert result.shipments["shipment_id"].tolist() == ["D2"]
    assert result.shipments["hs_code"].tolist() == ["080390"]
    quarantine = result.quarantine
    assert list(quarantine.columns[:4]) == list(QUARANTINE_COLUMNS)
    assert quarantine["source_row"].tolist() == [101, 103]
    assert quarantine["source.DECL_NO"].tolist() == ["D1", "D3"]
    assert quarantine["source.TRNS"].tolist() == ["7", "8"]
    assert len(result.shipments) + result.rejected == result.rows == 3


def test_a_huge_optional_value_is_blanked_and_shown_shortened():
    spec = {"goods_description": "DESC"}
    result = run(source({"DESC": "x" * 1_000_000}), shipments=spec)
    assert result.rejected == 0 and pd.isna(result.shipments["goods_description"].iloc[0])
    bad = result.blanked.iloc[0]
    assert (bad["field"], bad["reason"]) == ("goods_description", "is longer than 2000 characters")
    assert len(bad["value"]) <= 201


def test_a_huge_id_is_quarantined_and_the_source_value_kept_whole():
    result = run(source({"DECL_NO": "D" * 100_000}))
    bad = result.quarantine.iloc[0]
    assert bad["field"] == "shipment_id" and len(bad["value"]) <= 201
    assert len(bad["source.DECL_NO"]) == 100_000


def test_repeated_shipment_ids_keep_the_first_within_and_across_chunks():
    frame = source({"DECL_NO": "D1"}, {"DECL_NO": "D1", "PKG": "5"}, {"DECL_NO": "D9"})
    mapping = load_mapping(mapping_doc())
    result = ingest_chunk(frame, mapping, seen_ids={"D9"})
    assert result.shipments["shipment_id"].tolist() == ["D1"]
    assert result.shipments["packages"].tolist() == [12]  # the first one
    assert result.quarantine["source_row"].tolist() == [2, 3]
    assert set(result.quarantine["field"]) == {"shipment_id"}


def test_a_repeat_of_a_quarantined_row_is_accepted():
    frame = source({"DECL_NO": "D1", "TRNS": "99"}, {"DECL_NO": "D1"})
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
    attributes = {"office": {"column": "OFFICE", "kind": "categorical"}}
    with pytest.raises(KeyError, match="OFFICE"):
        run(source({}), attributes=attributes)


# -- label column -> outcomes ----------------------------------------------------------------------
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


def test_an_unknown_label_quarantines_the_row_a_broken_outcome_is_left_out_and_reported():
    outcomes = {**OUTCOMES, "drug": {"column": "DRUG", "values": {"COC": "cocaine"}}}
    frame = source(
        {"DECL_NO": "D1", "SEIZ": "maybe"},  # a code the label's value map rejects
        {"DECL_NO": "D2", "SEIZ": "N", "DRUG": "COC"},  # clean yet a drug: contract rule
        {"DECL_NO": "D3", "SEIZ": "Y", "DRUG": "COC"},
    )
    result = run(frame, outcomes=outcomes)
    assert result.shipments["shipment_id"].tolist() == ["D2", "D3"]  # D2 can still be scored
    assert result.outcomes["shipment_id"].tolist() == ["D3"]
    assert result.quarantine[["source_row", "field"]].values.tolist() == [[1, "outcome.result"]]
    dropped = result.blanked.iloc[0]
    assert dropped["source_row"] == 2 and dropped["field"].startswith("outcome.")
    assert dropped["reason"].endswith("(outcome not written)")
    assert result.rejected == 1


def test_outcome_fields_of_uninspected_rows_are_not_judged():
    outcomes = {**OUTCOMES, "inspected_at": {"column": "INSP", "date_format": "%d/%m/%Y"}}
    frame = source(
        {"DECL_NO": "D1", "SEIZ": "", "INSP": "junk"},
        {"DECL_NO": "D2", "SEIZ": "Y", "INSP": "junk"},
    )
    result = run(frame, outcomes=outcomes)
    assert result.rejected == 0 and result.outcomes.empty
    assert result.blanked[["source_row", "field"]].values.tolist() == [[2, "outcome.inspected_at"]]


@pytest.mark.parametrize("text", ["yesterday", ""])
def test_an_unreadable_or_missing_declaration_date_is_reported_once(text):
    result = run(source({"DECL_DT": text, "SEIZ": "Y"}), outcomes=OUTCOMES)
    assert result.quarantine["field"].tolist() == ["declared_at"]


def test_empty_frames_follow_the_contract():
    assert tuple(empty_shipments().columns) == SHIPMENT_COLUMNS
    assert tuple(empty_outcomes().columns) == OUTCOME_COLUMNS


# -- derivations: when, coalesce, default ----------------------------------------------------------
EXPRESS_BY_COURIER = {
    "mode": {
        "column": "TRNS",
        "values": {"10": "sea", "40": "air", "50": "express"},
        "when": [{"present": "COURIER", "value": "express"}],
    }
}


def test_when_present_decides_before_the_column():
    frame = source({"COURIER": "DHL", "TRNS": "10"}, {"DECL_NO": "D2", "COURIER": ""})
    result = run(frame, shipments=EXPRESS_BY_COURIER)
    assert result.shipments["mode"].tolist() == ["express", "sea"]


def test_a_matching_rule_means_the_column_is_not_read():
    # an unknown code under a matching rule does not quarantine: the rule decided the mode
    frame = source({"COURIER": "DHL", "TRNS": "99"}, {"DECL_NO": "D2", "TRNS": "99"})
    result = run(frame, shipments=EXPRESS_BY_COURIER)
    assert result.shipments["shipment_id"].tolist() == ["D1"]
    assert result.quarantine[["source_row", "field"]].values.tolist() == [[2, "mode"]]


def test_when_rules_first_match_wins_with_absent_and_equals():
    spec = {
        "container_type": {
            "when": [
                {"equals": {"REEFER": "Y"}, "value": "reefer"},
                {"absent": "CNTR", "value": "flat_rack"},
                {"present": "CNTR", "value": "dry"},
            ]
        }
    }
    frame = source(
        {"DECL_NO": "D1", "REEFER": "Y", "CNTR": ""},
        {"DECL_NO": "D2", "REEFER": "N", "CNTR": ""},
        {"DECL_NO": "D3", "REEFER": " y ", "CNTR": "MSKU1234567"},  # equals is exact text
        {"DECL_NO": "D4", "REEFER": " Y ", "CNTR": "MSKU1234567"},  # trimmed
    )
    result = run(frame, shipments=spec)
    assert result.shipments["container_type"].tolist() == ["reefer", "flat_rack", "dry", "reefer"]


def test_when_alone_leaves_unmatched_rows_to_the_default_or_blank():
    rules = [{"present": "CNTR", "value": "fcl"}]
    frame = source({"DECL_NO": "D1", "CNTR": "X"}, {"DECL_NO": "D2", "CNTR": ""})
    blank = run(frame, shipments={"load_type": {"when": rules}})
    assert blank.shipments["load_type"].tolist()[0] == "fcl"
    assert pd.isna(blank.shipments["load_type"].iloc[1])
    filled = run(frame, shipments={"load_type": {"when": rules, "default": "lcl"}})
    assert filled.shipments["load_type"].tolist() == ["fcl", "lcl"]


def test_numeric_when_values_are_contract_numbers():
    spec = {"packages": {"column": "PKG", "when": [{"equals": {"PKG": "many"}, "value": 100}]}}
    result = run(source({"PKG": "many"}, {"DECL_NO": "D2", "PKG": "3"}), shipments=spec)
    assert result.shipments["packages"].tolist() == [100, 3]
    assert str(result.shipments["packages"].dtype) == "Int64"


def test_coalesce_takes_the_first_non_blank_column():
    spec = {"declarant_id": {"coalesce": ["BRK", "AGT"]}}
    frame = source(
        {"DECL_NO": "D1", "BRK": "B-1", "AGT": "A-1"},
        {"DECL_NO": "D2", "BRK": " ", "AGT": "A-2"},
        {"DECL_NO": "D3", "BRK": "-", "AGT": ""},
    )
    result = run(frame, shipments=spec, null_values=["-"])
    assert result.shipments["declarant_id"].tolist()[:2] == ["B-1", "A-2"]
    assert pd.isna(result.shipments["declarant_id"].iloc[2])


def test_coalesce_and_when_columns_absent_from_the_file_read_as_blank():
    spec = {**EXPRESS_BY_COURIER, "declarant_id": {"coalesce": ["BRK", "AGT"]}}
    frame = source({"BRK": "B-1"})  # the file has no AGT and no COURIER column
    mapping = load_mapping(mapping_doc(shipments=spec))
    assert mapping.absent_columns(list(frame.columns)) == ["COURIER", "AGT"]
    assert mapping.missing_columns(list(frame.columns)) == []
    result = ingest_chunk(frame, mapping)
    assert result.shipments[["mode", "declarant_id"]].values.tolist() == [["sea", "B-1"]]


def test_default_fills_blanks_and_null_codes_but_not_unreadable_values():
    spec = {
        "packages": {"column": "PKG", "default": 1},
        "payment_method": {"column": "PAY", "values": {"TT": "bank_transfer", "X": None}},
        "freight_terms": {"column": "FRT", "values": {"X": None}, "default": "prepaid"},
    }
    frame = source(
        {"DECL_NO": "D1", "PKG": "", "PAY": "X", "FRT": "X"},
        {"DECL_NO": "D2", "PKG": "lots", "PAY": "TT", "FRT": ""},
    )
    result = run(frame, shipments=spec)
    shipments = result.shipments
    assert shipments["packages"].iloc[0] == 1
    assert pd.isna(shipments["packages"].iloc[1])  # unreadable: blanked and reported, no default
    assert result.blanked[["source_row", "field"]].values.tolist() == [[2, "packages"]]
    assert pd.isna(shipments["payment_method"].iloc[0])
    assert shipments["freight_terms"].tolist() == ["prepaid", "prepaid"]


def test_a_default_is_in_contract_units_not_the_source_unit():
    spec = {"gross_weight_kg": {"column": "WGT_T", "unit": "t", "default": 5}}
    result = run(source({"WGT_T": ""}, {"DECL_NO": "D2", "WGT_T": "2"}), shipments=spec)
    assert result.shipments["gross_weight_kg"].tolist() == [5.0, 2000.0]


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        (
            {"mode": {"column": "TRNS", "when": [{"present": "A", "absent": "B", "value": "sea"}]}},
            r"shipments\.mode\.when\.0",
            "exactly one condition",
        ),
        (
            {
                "mode": {
                    "column": "TRNS",
                    "when": [{"equals": {"A": "1", "B": "2"}, "value": "air"}],
                }
            },
            r"shipments\.mode\.when\.0",
            "exactly one column",
        ),
        (
            {"mode": {"column": "TRNS", "when": [{"present": "A"}]}},
            r"shipments\.mode\.when\.0\.value",
            "Field required",
        ),
        (
            {"mode": {"column": "TRNS", "when": [{"present": "A", "value": None}]}},
            r"shipments\.mode\.when\.0",
            "cannot be null",
        ),
        (
            {"mode": {"column": "TRNS", "when": [{"present": "A", "value": "ship"}]}},
            "",
            r"shipments\.mode\.when\[0\]\.value: 'ship' must be one of sea, rail",
        ),
        (
            {"mode": {"column": "TRNS", "when": [{"present": "A", "value": True}]}},
            r"shipments\.mode\.when\.0",
            "quote it",
        ),
        (
            {"mode": {"column": "TRNS", "when": [{"matches": "A", "value": "sea"}]}},
            r"shipments\.mode\.when\.0\.matches",
            "Extra inputs",
        ),
        ({"packages": {"column": "PKG", "default": "one"}}, "", r"packages\.default: must be a"),
        (
            {"packages": {"column": "PKG", "default": 1.5}},
            "",
            r"packages\.default: must be a whole",
        ),
        (
            {"packages": {"column": "PKG", "default": -1}},
            "",
            r"packages\.default: -1 must be at least",
        ),
        ({"hs_code": {"column": "HS", "default": "x"}}, "", r"hs_code\.default: 'x' does not have"),
        (
            {"mode": {"column": "TRNS", "values": {"10": "ship"}}},
            "",
            r"shipments\.mode\.values\['10'\]: 'ship' must be one of",
        ),
        (
            {"declared_at": {"column": "D", "when": [{"present": "A", "value": "2026-01-01"}]}},
            "",
            "do not apply to timestamps",
        ),
        ({"packages": {"constant": 3, "default": 1}}, r"shipments\.packages", "'default' fills"),
        (
            {"mode": {"constant": "sea", "when": [{"present": "A", "value": "air"}]}},
            r"shipments\.mode",
            "'when' goes with",
        ),
    ],
)
def test_bad_derivations_are_refused_naming_the_option(spec, where, message):
    with pytest.raises(pydantic.ValidationError) as caught:
        load_mapping(mapping_doc(shipments=spec))
    text = "\n".join(
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in caught.value.errors()
    )
    assert re.search(where, text), text
    assert re.search(message, text), text


# -- attributes ------------------------------------------------------------------------------------
ATTRIBUTES = {
    "import_type": {"column": "IMP", "kind": "categorical", "label": "import type"},
    "tax_rate": {"column": "TAX", "kind": "numeric", "decimal": ","},
    "office": {
        "column": "OFF",
        "kind": "categorical",
        "values": {"30": "Busan", "40": "Incheon"},
        "unmapped": "keep",
    },
}


def test_attributes_travel_as_typed_attr_columns_after_the_contract_columns():
    frame = source(
        {"DECL_NO": "D1", "IMP": "B2", "TAX": "8,5", "OFF": "30"},
        {"DECL_NO": "D2", "IMP": "", "TAX": "", "OFF": "77"},
    )
    result = run(frame, attributes=ATTRIBUTES)
    shipments = result.shipments
    assert list(shipments.columns) == [
        *SHIPMENT_COLUMNS,
        "attr.import_type",
        "attr.tax_rate",
        "attr.office",
    ]
    assert shipments["attr.import_type"].tolist() == ["B2", None]
    assert shipments["attr.office"].tolist() == ["Busan", "77"]  # unmapped: keep
    assert shipments["attr.tax_rate"].dtype == "float64"
    assert shipments["attr.tax_rate"].iloc[0] == 8.5 and pd.isna(shipments["attr.tax_rate"].iloc[1])
    validate_shipments(
        shipments,
        attributes=load_mapping(mapping_doc(attributes=ATTRIBUTES)).dataset_info.attributes,
    )


def test_attribute_values_the_contract_refuses_are_blanked_and_reported():
    frame = source(
        {"DECL_NO": "D1", "IMP": "x" * 300, "TAX": "abc", "OFF": "30"},
        {"DECL_NO": "D2", "IMP": "A", "TAX": "1e400", "OFF": "40"},
    )
    result = run(frame, attributes=ATTRIBUTES)
    assert result.rejected == 0
    assert result.shipments["attr.import_type"].tolist() == [None, "A"]
    assert result.shipments["attr.tax_rate"].isna().all()
    got = {(r.source_row, r.field, r.reason) for r in result.blanked.itertuples(index=False)}
    assert (1, "attr.tax_rate", "is not a number") in got
    assert (2, "attr.tax_rate", "must be a finite number, got inf") in got
    assert any(r[:2] == (1, "attr.import_type") and "200 characters" in r[2] for r in got)


def test_an_attribute_code_missing_from_a_rejecting_value_map_quarantines():
    spec = {"office": {"column": "OFF", "kind": "categorical", "values": {"30": "Busan"}}}
    result = run(source({"OFF": "30"}, {"DECL_NO": "D2", "OFF": "99"}), attributes=spec)
    assert result.shipments["attr.office"].tolist() == ["Busan"]
    assert result.quarantine[["source_row", "field"]].values.tolist() == [[2, "attr.office"]]


def test_attributes_accept_the_shared_options():
    spec = {
        "channel": {"coalesce": ["CH1", "CH2"], "kind": "categorical", "upper": True},
        "express": {"kind": "numeric", "when": [{"present": "COURIER", "value": 1}], "default": 0},
        "office": {"constant": "HQ", "kind": "categorical"},
    }
    frame = source({"CH1": "", "CH2": "web", "COURIER": "DHL"}, {"DECL_NO": "D2", "CH1": "app"})
    shipments = run(frame, attributes=spec).shipments
    assert shipments["attr.channel"].tolist() == ["WEB", "APP"]
    assert shipments["attr.express"].tolist() == [1.0, 0.0]
    assert shipments["attr.office"].tolist() == ["HQ", "HQ"]


def test_the_attribute_schema_and_label_are_the_dataset_info():
    doc = mapping_doc(
        attributes=ATTRIBUTES, label={"name": "duty fraud", "positive": "fraud finding"}
    )
    info = load_mapping(doc).dataset_info
    assert info == DatasetInfo(
        label=LabelMeaning(name="duty fraud", positive="fraud finding"),
        attributes={
            "import_type": AttributeSpec(kind="categorical", label="import type"),
            "tax_rate": AttributeSpec(kind="numeric"),
            "office": AttributeSpec(kind="categorical"),
        },
    )
    assert load_mapping(mapping_doc()).dataset_info == DatasetInfo()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"x": {"column": "X", "kind": "ordinal"}},
            r"attributes\.x\.kind.*'categorical' or 'numeric'",
        ),
        ({"x": {"column": "X"}}, r"attributes\.x\.kind.*Field required"),
        (
            {"Import-Type": {"column": "X", "kind": "categorical"}},
            r"attributes\.Import-Type: an attribute name",
        ),
        (
            {"mode": {"column": "X", "kind": "categorical"}},
            r"attributes\.mode: 'mode' is a contract field",
        ),
        (
            {"x": {"column": "X", "kind": "numeric", "upper": True}},
            r"attributes\.x: 'upper' applies",
        ),
        (
            {"x": {"column": "X", "kind": "categorical", "scale": 2}},
            r"attributes\.x: scale/thousands",
        ),
        (
            {"x": {"column": "X", "kind": "numeric", "default": "a"}},
            r"attributes\.x\.default: must be a number",
        ),
        (
            {"x": {"column": "X", "kind": "numeric", "unit": "t"}},
            r"attributes\.x\.unit.*Extra inputs",
        ),
        (
            {"x": {"column": "X", "kind": "categorical", "label": "l" * 81}},
            r"attributes\.x\.label.*at most 80",
        ),
    ],
)
def test_bad_attributes_are_refused_naming_the_attribute(attributes, message):
    with pytest.raises(pydantic.ValidationError) as caught:
        load_mapping(mapping_doc(attributes=attributes))
    text = "\n".join(
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in caught.value.errors()
    )
    assert re.search(message, text), text


# -- the label -------------------------------------------------------------------------------------
def test_the_label_positive_defaults_to_a_finding_of_the_name():
    label = load_mapping(mapping_doc(label={"name": "duty fraud"})).label
    assert label == LabelMeaning(name="duty fraud", positive="duty fraud finding")


def test_a_label_needs_a_name():
    with pytest.raises(pydantic.ValidationError, match="give 'name'"):
        load_mapping(mapping_doc(label={"positive": "finding"}))
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        load_mapping(mapping_doc(label={"name": "fraud", "colour": "red"}))


# -- dates without a time of day are calendar days -------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "text", "expected"),
    [
        ({"date_format": "%d/%m/%Y"}, "03/11/2026", "2026-11-03 00:00"),
        ({"date_format": "%Y%m%d"}, "20261103", "2026-11-03 00:00"),
        ({}, "2026-11-03", "2026-11-03 00:00"),
        ({"date_format": "%d/%m/%Y %H:%M"}, "03/11/2026 09:30", "2026-11-03 00:30"),
        ({}, "2026-11-03T09:30", "2026-11-03 00:30"),
        ({}, "2026-11-03 00:00", "2026-11-02 15:00"),  # a time was given: it is a moment
    ],
)
def test_a_date_without_a_time_is_a_calendar_day_whatever_the_timezone(spec, text, expected):
    field = {"declared_at": {"column": "DECL_DT", "timezone": "Asia/Seoul", **spec}}
    result = run(source({"DECL_DT": text}), shipments=field)
    assert result.shipments["declared_at"].iloc[0] == pd.Timestamp(expected)


def test_a_column_mixing_days_and_times_treats_each_value_as_it_is():
    field = {"declared_at": {"column": "DECL_DT", "timezone": "Asia/Seoul"}}
    frame = source({"DECL_DT": "2026-11-03"}, {"DECL_NO": "D2", "DECL_DT": "2026-11-03T09:00"})
    result = run(frame, shipments=field)
    assert result.shipments["declared_at"].tolist() == [
        pd.Timestamp("2026-11-03 00:00"),
        pd.Timestamp("2026-11-03 00:00"),
    ]


# -- one mapping for labelled and unlabelled files -------------------------------------------------
def test_a_file_without_the_label_column_is_unlabelled_with_the_same_mapping():
    mapping = load_mapping(mapping_doc(outcomes=OUTCOMES))
    labelled = ingest_chunk(source({"SEIZ": "Y"}), mapping)
    assert labelled.labelled and labelled.outcomes["result"].tolist() == ["seized"]
    unlabelled = ingest_chunk(source({}).drop(columns="SEIZ"), mapping)
    assert not unlabelled.labelled and unlabelled.rejected == 0
    assert unlabelled.outcomes.empty and tuple(unlabelled.outcomes.columns) == OUTCOME_COLUMNS
    assert mapping.label_column == "SEIZ" and not mapping.is_labelled(["DECL_NO"])


def test_a_labelled_file_needs_the_outcome_columns_it_names():
    outcomes = {**OUTCOMES, "inspected_at": {"column": "INSP"}}
    mapping = load_mapping(mapping_doc(outcomes=outcomes))
    with pytest.raises(KeyError, match="INSP"):
        ingest_chunk(source({"SEIZ": "Y"}), mapping)
    assert ingest_chunk(source({}).drop(columns="SEIZ"), mapping).rejected == 0


# -- every optional contract field -----------------------------------------------------------------
OPTIONAL = [n for n in SHIPMENT_COLUMNS if n not in REQUIRED_SHIPMENT_COLUMNS]
BROKEN = {  # a value each optional field's contract refuses
    "datetime": "not a date",
    "int": "-5",
    "float": "-1",
    "str": "\x01",
}


def minimal_doc(field: str) -> dict:
    return {
        "shipments": {
            "shipment_id": "DECL_NO",
            "mode": {"column": "TRNS", "values": {"10": "sea"}},
            "declared_at": "DECL_DT",
            field: "VALUE",
        }
    }


@pytest.mark.parametrize("field", OPTIONAL)
def test_every_optional_field_may_be_blank_or_broken_and_the_row_is_still_scored(field):
    mapping = load_mapping(minimal_doc(field))
    kind = SHIPMENT_KINDS[field]
    frame = pd.DataFrame(
        {
            "DECL_NO": ["D1", "D2"],
            "TRNS": ["10", "10"],
            "DECL_DT": ["2026-11-03", "2026-11-03"],
            "VALUE": ["", BROKEN[kind]],
        },
        dtype="str",
    )
    result = ingest_chunk(frame, mapping)
    assert result.rejected == 0 and result.shipments[field].isna().all()
    assert result.blanked[["source_row", "field"]].values.tolist() == [[2, field]]


@pytest.mark.parametrize("field", REQUIRED_SHIPMENT_COLUMNS)
def test_a_blank_required_field_quarantines(field):
    column = {"shipment_id": "DECL_NO", "mode": "TRNS", "declared_at": "DECL_DT"}[field]
    result = run(source({column: ""}))
    assert result.rejected == 1 and result.shipments.empty
    assert result.quarantine["field"].tolist() == [field]


# -- the documentation stays true ------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_every_mapping_option_is_in_the_mapping_reference():
    from features.ingest.mapping import AttributeMap, FieldMap, OutcomeMap, WhenRule

    reference = (ROOT / "docs" / "ingest.md").read_text(encoding="utf-8")
    options = {
        *Mapping.model_fields,
        *FieldMap.model_fields,
        *AttributeMap.model_fields,
        *WhenRule.model_fields,
        *LabelMeaning.model_fields,
    } - set(OutcomeMap.model_fields)
    undocumented = sorted(o for o in options if f"`{o}" not in reference)
    assert not undocumented


def test_the_readme_mapping_example_is_the_example_mapping():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### A mapping file", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    shown = load_mapping(yaml.safe_load(block))
    example = load_mapping(
        yaml.safe_load((ROOT / "examples" / "kcs_mapping.yaml").read_text(encoding="utf-8"))
    )
    for name, spec in shown.shipments.items():
        assert example.shipments[name] == spec, name
    assert shown.currency_rates_usd.items() <= example.currency_rates_usd.items()
    assert shown.outcomes == example.outcomes
