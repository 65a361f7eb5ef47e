"""``cargorisk ingest`` end to end through ``cargorisk.cli.main``: outputs (contract tables,
dataset.json, quarantine, blanked values), summary, exit codes, one mapping for labelled and
unlabelled files, ragged rows quarantined with their row numbers, date-only columns as calendar
days through the temporal split, and one-line errors for inputs that cannot be read at all."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cargorisk.ingestion
from cargorisk.cli import main
from features.contracts import DatasetInfo, validate_outcomes, validate_shipments
from training.split import temporal_split

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAPPING = EXAMPLES / "kcs_mapping.yaml"
SAMPLE = EXAMPLES / "kcs_declarations.csv"


def sample_rows() -> tuple[list[str], list[dict[str, str]]]:
    with SAMPLE.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def good_row(i: int, **overrides: str) -> dict[str, str]:
    """A valid declaration (the sample's first row) with its own declaration number."""
    _, rows = sample_rows()
    return {**rows[0], "DECL_NO": f"90{i:08d}", **overrides}


def write_csv(path: Path, rows: list[dict[str, str]], *, delimiter: str = ",", encoding="utf-8"):
    header, _ = sample_rows()
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def ingest(source: Path, out: Path, *extra: str, mapping: Path = MAPPING) -> int:
    return main(["ingest", str(source), "--mapping", str(mapping), "--out", str(out), *extra])


def one_line_error(capsys, *expected: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    return err


def no_outputs(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


# -- the example -----------------------------------------------------------------------------------
def test_the_example_export_ingests_with_a_summary_and_contract_files(tmp_path, capsys):
    out = tmp_path / "out"
    assert ingest(SAMPLE, out, "--max-reject-share", "0.5") == 0
    printed = capsys.readouterr().out
    assert "rows read             10" in printed
    assert "accepted               7" in printed
    assert "quarantined            3" in printed
    assert "mode: value is not in the mapping's value map" in printed
    assert "declared_value_usd: currency has no rate" in printed  # blanked, reported

    info = DatasetInfo.model_validate_json((out / "dataset.json").read_text())
    assert list(info.attributes) == ["customs_office", "import_type", "tax_rate"]
    assert info.label.name == "narcotics seizure"
    shipments = pd.read_parquet(out / "shipments.parquet")
    validate_shipments(shipments, attributes=info.attributes)
    assert len(shipments) == 7
    assert shipments["attr.customs_office"].tolist()[:3] == ["Busan", "Busan", "Incheon"]
    assert shipments["attr.tax_rate"].dtype == "float64"
    by_id = shipments.set_index("shipment_id")
    assert by_id.loc["4012026110004", "declarant_id"] == "AG-077"  # coalesce
    assert by_id.loc["4012026110004", "packages"] == 1  # default
    assert by_id.loc["4012026110001", "container_type"] == "reefer"  # when: equals
    assert by_id.loc["4012026110009", "container_type"] == "dry"  # when: present
    assert by_id.loc["4012026110008", "gross_weight_kg"] == 0  # 0 kg is accepted
    assert pd.isna(by_id.loc["4012026110010", "shipper_id"])  # no shipper declared
    outcomes = pd.read_parquet(out / "outcomes.parquet")
    validate_outcomes(outcomes)
    assert sorted(outcomes["result"]) == ["clean", "clean", "clean", "seized", "seized"]
    assert set(outcomes["shipment_id"]) <= set(shipments["shipment_id"])

    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert sorted(set(quarantine["source_row"].astype(int))) == [5, 6, 7]
    assert quarantine["source.DECL_NO"].str.len().gt(0).all()  # the source row is kept
    blanked = pd.read_csv(out / "blanked.csv", dtype=str)
    assert blanked.values.tolist() == [
        [
            "9",
            "declared_value_usd",
            "currency has no rate in the mapping's currency_rates_usd",
            "GBP",
        ]
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rows_read"], summary["accepted"], summary["quarantined"]) == (10, 7, 3)
    assert summary["rows_read"] == summary["accepted"] + summary["quarantined"]
    assert summary["labelled"] is True and summary["outcomes"] == 5
    assert summary["blanked"] == {
        "declared_value_usd: currency has no rate in the mapping's currency_rates_usd": 1
    }
    assert summary["absent_columns"] == []


def test_too_many_rejects_exit_1_and_still_keep_what_was_accepted(tmp_path, capsys):
    out = tmp_path / "out"
    assert ingest(SAMPLE, out) == 1
    assert "more than the allowed 5.00%" in capsys.readouterr().err
    assert len(pd.read_parquet(out / "shipments.parquet")) == 7


def test_a_parquet_source_ingests_the_same(tmp_path):
    header, rows = sample_rows()
    table = pa.table({name: [r[name] for r in rows] for name in header})
    pq.write_table(table, tmp_path / "export.parquet")
    out = tmp_path / "out"
    assert ingest(tmp_path / "export.parquet", out, "--max-reject-share", "0.5") == 0
    assert len(pd.read_parquet(out / "shipments.parquet")) == 7


def test_duplicates_across_chunks_are_quarantined_with_their_row_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(cargorisk.ingestion, "BLOCK_BYTES", 4096)  # ~10 rows per chunk
    rows = [good_row(i) for i in range(40)]
    rows[30] = good_row(3, PKG_CNT="7")  # repeats row 4's declaration number, chunks later
    source = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "out"
    assert ingest(source, out) == 0
    shipments = pd.read_parquet(out / "shipments.parquet")
    assert len(shipments) == 39 and shipments["shipment_id"].is_unique
    assert shipments.loc[shipments["shipment_id"] == "9000000003", "packages"].item() == 1200
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str)
    assert quarantine[["source_row", "field"]].values.tolist() == [["31", "shipment_id"]]


# -- malformed inputs ------------------------------------------------------------------------------
def test_an_empty_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert ingest(tmp_path / "empty.csv", tmp_path / "out") == 2
    one_line_error(capsys, "empty")
    assert no_outputs(tmp_path / "out")


@pytest.mark.parametrize("newline", ["\r\n", ""])
def test_a_header_only_file_is_a_one_line_error_and_leaves_no_outputs(tmp_path, capsys, newline):
    header, _ = sample_rows()
    source = tmp_path / "header.csv"
    source.write_text(",".join(header) + newline, encoding="utf-8")
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "no data rows")
    assert no_outputs(tmp_path / "out")


def test_a_wrong_delimiter_is_named(tmp_path, capsys):
    source = write_csv(tmp_path / "semi.csv", [good_row(1)], delimiter=";")
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "missing", "';'", "--delimiter")
    assert ingest(source, tmp_path / "out", "--delimiter", ";") == 0


def test_a_ragged_row_is_quarantined_with_its_row_number_and_the_rest_is_read(tmp_path):
    header, _ = sample_rows()
    rows = [good_row(i) for i in range(40)]
    rows[25] = good_row(25, TRNS_MODE_CD="99")  # a quarantined row after the ragged ones
    source = write_csv(tmp_path / "ragged.csv", rows)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(4, "1,2,3,too,many," + ",".join(["x"] * 40) + "\n")  # data row 4
    lines.insert(11, "4012,10,short\n")  # data row 11
    source.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    assert ingest(source, out, "--max-reject-share", "0.1") == 0
    assert len(pd.read_parquet(out / "shipments.parquet")) == 39
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    got = quarantine[["source_row", "field", "reason"]].values.tolist()
    assert got == [
        ["4", "(row)", f"has 45 fields where the header has {len(header)}"],
        ["11", "(row)", f"has 3 fields where the header has {len(header)}"],
        ["28", "mode", "value is not in the mapping's value map (10, 40, 50)"],
    ]
    assert quarantine["value"].iloc[1] == "4012,10,short"
    assert quarantine["source.DECL_NO"].iloc[2] == "9000000025"  # row 28 is rows[25]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rows_read"], summary["accepted"], summary["quarantined"]) == (42, 39, 3)


def test_ragged_rows_keep_exact_row_numbers_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(cargorisk.ingestion, "BLOCK_BYTES", 4096)  # ~10 rows per chunk
    rows = [good_row(i, TRNS_MODE_CD="99" if i % 10 == 9 else "10") for i in range(60)]
    source = write_csv(tmp_path / "big.csv", rows)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    for data_row in (3, 17, 18, 45):  # insert so that the row lands at this data row number
        lines.insert(data_row, "ragged\n")
    source.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    assert ingest(source, out, "--max-reject-share", "0.5") == 0
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    ragged = quarantine.loc[quarantine["field"] == "(row)", "source_row"].astype(int)
    assert sorted(ragged) == [3, 17, 18, 45]
    # every quarantined good-looking row names the declaration really on that line
    mode = quarantine[quarantine["field"] == "mode"]
    assert len(mode) == 6
    for row, number in zip(mode["source_row"].astype(int), mode["source.DECL_NO"], strict=True):
        assert lines[row].startswith(number + ",")  # lines[0] is the header


def test_non_utf8_bytes_are_a_one_line_error_naming_the_encoding(tmp_path, capsys):
    source = write_csv(tmp_path / "cp949.csv", [good_row(1), good_row(2)], encoding="cp949")
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "not valid utf-8", "--encoding")
    assert no_outputs(tmp_path / "out")
    assert ingest(source, tmp_path / "out", "--encoding", "cp949") == 0
    names = pd.read_parquet(tmp_path / "out" / "shipments.parquet")["consignee_name"]
    assert names.tolist() == ["한빛청과(주)"] * 2


def test_stray_bytes_in_the_header_are_a_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.csv").write_bytes(b"DECL_NO,\xff\xfe\n1,2\n")
    assert ingest(tmp_path / "bad.csv", tmp_path / "out") == 2
    one_line_error(capsys, "not valid utf-8")


def test_a_1mb_description_is_blanked_and_reported_and_the_row_kept(tmp_path):
    rows = [good_row(i) for i in range(30)]
    rows[7] = good_row(7, GDS_DESC="bananas " * 131_072)  # 1 MiB
    source = write_csv(tmp_path / "huge.csv", rows)
    out = tmp_path / "out"
    assert ingest(source, out) == 0
    shipments = pd.read_parquet(out / "shipments.parquet")
    assert len(shipments) == 30 and shipments["goods_description"].isna().sum() == 1
    blanked = pd.read_csv(out / "blanked.csv", dtype=str)
    bad = blanked.iloc[0]
    assert (bad["source_row"], bad["field"]) == ("8", "goods_description")
    assert bad["reason"] == "is longer than 2000 characters"
    assert len(bad["value"]) <= 201  # shown shortened


def test_a_1mb_declaration_number_is_quarantined_with_the_source_kept_whole(tmp_path):
    rows = [good_row(i) for i in range(30)]
    rows[7] = good_row(7, DECL_NO="9" * (1 << 20))
    source = write_csv(tmp_path / "huge.csv", rows)
    out = tmp_path / "out"
    assert ingest(source, out) == 0  # 1 of 30 rejected, under the 5 % limit
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str)
    bad = quarantine.iloc[0]
    assert (bad["source_row"], bad["field"]) == ("8", "shipment_id")
    assert len(bad["source.DECL_NO"]) == 1 << 20  # kept whole


def test_a_missing_source_column_is_named(tmp_path, capsys):
    rows = [good_row(1)]
    header, _ = sample_rows()
    source = tmp_path / "no_hs.csv"
    pd.DataFrame(rows, columns=header).drop(columns="HS_CD").to_csv(source, index=False)
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "missing", "HS_CD")


def test_an_unknown_mapping_target_is_named(tmp_path, capsys):
    mapping = tmp_path / "map.yaml"
    text = MAPPING.read_text(encoding="utf-8").replace(
        "  shipment_id: DECL_NO", "  shipment_id: DECL_NO\n  weight_tonnes: GRS_WGHT_TON"
    )
    mapping.write_text(text, encoding="utf-8")
    assert ingest(SAMPLE, tmp_path / "out", mapping=mapping) == 2
    one_line_error(capsys, "shipments", "'weight_tonnes' is not a field of the shipments contract")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shipments: [a, b", "not valid YAML"),
        ("shipments: {}\nextra_option: 1", "extra_option: is not a known mapping option"),
        ("- just a list", "mapping"),
    ],
)
def test_a_broken_mapping_file_is_a_one_line_error(tmp_path, capsys, text, expected):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text, encoding="utf-8")
    assert ingest(SAMPLE, tmp_path / "out", mapping=mapping) == 2
    one_line_error(capsys, expected)


def test_missing_files_are_one_line_errors(tmp_path, capsys):
    assert ingest(tmp_path / "nope.csv", tmp_path / "out") == 2
    one_line_error(capsys, "no such file")
    assert ingest(SAMPLE, tmp_path / "out", mapping=tmp_path / "nope.yaml") == 2
    one_line_error(capsys, "cannot read")


def test_a_file_that_is_not_parquet_or_csv_text(tmp_path, capsys):
    (tmp_path / "x.parquet").write_bytes(b"PAR1" + b"\x00" * 64)
    assert ingest(tmp_path / "x.parquet", tmp_path / "out") == 2
    one_line_error(capsys, "not a readable Parquet file")


def test_bad_bytes_late_in_the_file_leave_no_half_written_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cargorisk.ingestion, "BLOCK_BYTES", 4096)
    source = write_csv(tmp_path / "late.csv", [good_row(i) for i in range(30)])
    with source.open("ab") as fh:
        fh.write(",".join(good_row(30).values()).encode("cp949") + b"\n")
    out = tmp_path / "out"
    assert ingest(source, out) == 2
    one_line_error(capsys, "not valid utf-8")
    assert no_outputs(out)


def test_an_output_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("not a directory")
    assert ingest(SAMPLE, tmp_path / "taken") == 2
    one_line_error(capsys, "--out", "cannot create the directory")


@pytest.mark.integration
def test_the_console_script_in_a_real_process(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "cargorisk", "ingest", str(SAMPLE), "-m", str(MAPPING), "-o",
         str(out), "--max-reject-share", "0.5"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "accepted               7" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "cargorisk", "ingest", str(tmp_path / "missing.csv"), "-m",
         str(MAPPING), "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.strip().count("\n") == 0 and "no such file" in failed.stderr


# -- one mapping, labelled or not ------------------------------------------------------------------
def without_columns(path: Path, *names: str) -> Path:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame.drop(columns=list(names)).to_csv(path, index=False)
    return path


def test_an_unlabelled_file_ingests_with_the_labelled_mapping(tmp_path, capsys):
    source = without_columns(tmp_path / "unlabelled.csv", "SEIZ_YN")
    out = tmp_path / "out"
    assert ingest(source, out, "--max-reject-share", "0.5") == 0
    printed = capsys.readouterr().out
    assert "no label column (SEIZ_YN): unlabelled file" in printed
    assert len(pd.read_parquet(out / "shipments.parquet")) == 7
    outcomes = pd.read_parquet(out / "outcomes.parquet")  # written, empty, contract columns
    assert outcomes.empty
    validate_outcomes(outcomes)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labelled"] is False and summary["label_column"] == "SEIZ_YN"
    assert summary["outcomes"] == 0


def test_columns_named_only_in_coalesce_or_when_may_be_absent_and_are_reported(tmp_path, capsys):
    source = without_columns(tmp_path / "older.csv", "AGNT_ID", "RFGR_YN")
    out = tmp_path / "out"
    assert ingest(source, out, "--max-reject-share", "0.5") == 0
    printed = capsys.readouterr().out
    assert "not in the file, read as blank (coalesce/when): AGNT_ID, RFGR_YN" in printed
    shipments = pd.read_parquet(out / "shipments.parquet").set_index("shipment_id")
    assert pd.isna(shipments.loc["4012026110004", "declarant_id"])  # no broker, no agent column
    assert shipments.loc["4012026110001", "container_type"] == "dry"  # no reefer flag column
    summary = json.loads((out / "summary.json").read_text())
    assert summary["absent_columns"] == ["AGNT_ID", "RFGR_YN"]


def test_a_missing_attribute_column_is_named(tmp_path, capsys):
    source = without_columns(tmp_path / "no_tax.csv", "TAX_RATE")
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "missing", "TAX_RATE")


def test_a_file_of_only_ragged_rows_quarantines_them_all(tmp_path, capsys):
    header, _ = sample_rows()
    source = tmp_path / "ragged.csv"
    source.write_text(",".join(header) + "\na,b\nc;d;e\n", encoding="utf-8")
    out = tmp_path / "out"
    assert ingest(source, out) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rows_read"], summary["accepted"], summary["quarantined"]) == (2, 0, 2)
    assert pd.read_parquet(out / "shipments.parquet").empty
    assert (out / "dataset.json").is_file() and (out / "blanked.csv").is_file()


# -- date-only columns are calendar days -----------------------------------------------------------
def test_a_timezone_does_not_move_date_only_values_or_the_split(tmp_path):
    """The same file with and without ``timezone:`` gives the same declaration times and the
    same train/valid/test sizes; only a time of day is converted from the zone."""
    with_zone = tmp_path / "with.yaml"
    with_zone.write_text(MAPPING.read_text(encoding="utf-8"), encoding="utf-8")
    text = MAPPING.read_text(encoding="utf-8")
    assert text.count("timezone: Asia/Seoul") == 2
    no_zone = tmp_path / "without.yaml"
    no_zone.write_text(text.replace(", timezone: Asia/Seoul", ""), encoding="utf-8")
    frames = {}
    for name, mapping in (("with", with_zone), ("without", no_zone)):
        assert ingest(SAMPLE, tmp_path / name, "--max-reject-share", "0.5", mapping=mapping) == 0
        frames[name] = pd.read_parquet(tmp_path / name / "shipments.parquet")
    pd.testing.assert_series_equal(frames["with"]["declared_at"], frames["without"]["declared_at"])
    assert frames["with"]["declared_at"].min() == pd.Timestamp("2026-11-03")  # not 11-02 15:00
    sizes = {}
    for name, frame in frames.items():
        split = temporal_split(
            frame["declared_at"], valid_from="2026-11-05", test_from="2026-11-07"
        )
        sizes[name] = (int(split.train.sum()), int(split.valid.sum()), int(split.test.sum()))
    assert sizes["with"] == sizes["without"] == (3, 2, 2)

    # the same dates with a time of day are moments in Seoul: the zone applies (to UTC)
    timed = tmp_path / "timed.csv"
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame["DECL_DT"] = frame["DECL_DT"].where(
        frame["DECL_DT"] == "31/11/2026", frame["DECL_DT"] + " 08:00"
    )
    frame.to_csv(timed, index=False)
    hours = with_zone.read_text(encoding="utf-8").replace(
        'DECL_DT, date_format: "%d/%m/%Y"', 'DECL_DT, date_format: "%d/%m/%Y %H:%M"'
    )
    with_zone.write_text(hours, encoding="utf-8")
    assert ingest(timed, tmp_path / "timed", "--max-reject-share", "0.5", mapping=with_zone) == 0
    moments = pd.read_parquet(tmp_path / "timed" / "shipments.parquet")["declared_at"]
    assert moments.min() == pd.Timestamp("2026-11-02 23:00")


# -- mapping errors name the option ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (
            ("{present: CNTR_NO, value: dry}", "{present: CNTR_NO, absent: X, value: dry}"),
            "shipments.container_type.when[1]: give exactly one condition",
        ),
        (
            ("{present: CNTR_NO, value: dry}", "{present: CNTR_NO, value: box}"),
            "shipments.container_type.when[1].value: 'box' must be one of dry, reefer",
        ),
        (
            ("kind: numeric, label: tariff", "kind: percent, label: tariff"),
            "attributes.tax_rate.kind: Input should be 'categorical' or 'numeric'",
        ),
        (
            ("  import_type: {", "  Import Type: {"),
            "attributes.Import Type: an attribute name is lower-case letters",
        ),
        (("  name: narcotics seizure\n", ""), "label: give 'name'"),
    ],
)
def test_a_mapping_error_is_one_line_naming_the_option(tmp_path, capsys, replace, expected):
    text = MAPPING.read_text(encoding="utf-8")
    assert replace[0] in text
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text.replace(replace[0], replace[1]), encoding="utf-8")
    assert ingest(SAMPLE, tmp_path / "out", mapping=mapping) == 2
    one_line_error(capsys, expected)
