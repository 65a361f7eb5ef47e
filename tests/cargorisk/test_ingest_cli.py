"""``cargorisk ingest`` end to end through ``cargorisk.cli.main``: outputs, summary, exit codes
and one-line errors for malformed inputs."""

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
from features.contracts import validate_outcomes, validate_shipments

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


# -- the example --------------------------------------------------------------------------------
def test_the_example_export_ingests_with_a_summary_and_contract_files(tmp_path, capsys):
    out = tmp_path / "out"
    assert ingest(SAMPLE, out, "--max-reject-share", "0.5") == 0
    printed = capsys.readouterr().out
    assert "rows read             10" in printed
    assert "accepted               6" in printed
    assert "quarantined            4" in printed
    assert "mode: value is not in the mapping's value map" in printed

    shipments = pd.read_parquet(out / "shipments.parquet")
    validate_shipments(shipments)
    assert len(shipments) == 6
    outcomes = pd.read_parquet(out / "outcomes.parquet")
    validate_outcomes(outcomes)
    assert sorted(outcomes["result"]) == ["clean", "clean", "seized", "seized"]
    assert set(outcomes["shipment_id"]) <= set(shipments["shipment_id"])

    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert sorted(set(quarantine["source_row"].astype(int))) == [5, 6, 7, 9]
    assert quarantine["source.DECL_NO"].str.len().gt(0).all()  # the source row is kept
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["rows_read"], summary["accepted"], summary["quarantined"]) == (10, 6, 4)
    assert summary["rows_read"] == summary["accepted"] + summary["quarantined"]


def test_too_many_rejects_exit_1_and_still_keep_what_was_accepted(tmp_path, capsys):
    out = tmp_path / "out"
    assert ingest(SAMPLE, out) == 1
    assert "more than the allowed 5.00%" in capsys.readouterr().err
    assert len(pd.read_parquet(out / "shipments.parquet")) == 6


def test_a_parquet_source_ingests_the_same(tmp_path):
    header, rows = sample_rows()
    table = pa.table({name: [r[name] for r in rows] for name in header})
    pq.write_table(table, tmp_path / "export.parquet")
    out = tmp_path / "out"
    assert ingest(tmp_path / "export.parquet", out, "--max-reject-share", "0.5") == 0
    assert len(pd.read_parquet(out / "shipments.parquet")) == 6


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


# -- malformed inputs ---------------------------------------------------------------------------
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


def test_a_row_with_extra_fields_is_a_one_line_error(tmp_path, capsys):
    source = write_csv(tmp_path / "ragged.csv", [good_row(1), good_row(2)])
    with source.open("a", encoding="utf-8") as fh:
        fh.write("1,2,3,too,many," + ",".join(["x"] * 40) + "\n")
    assert ingest(source, tmp_path / "out") == 2
    one_line_error(capsys, "a row has 45 fields where the header has 28", "--delimiter")
    assert no_outputs(tmp_path / "out")


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


def test_a_1mb_field_is_quarantined_and_the_other_rows_pass(tmp_path):
    rows = [good_row(i) for i in range(30)]
    rows[7] = good_row(7, GDS_DESC="bananas " * 131_072)  # 1 MiB
    source = write_csv(tmp_path / "huge.csv", rows)
    out = tmp_path / "out"
    assert ingest(source, out) == 0  # 1 of 30 rejected, under the 5 % limit
    assert len(pd.read_parquet(out / "shipments.parquet")) == 29
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str)
    bad = quarantine.iloc[0]
    assert (bad["source_row"], bad["field"]) == ("8", "goods_description")
    assert bad["reason"] == "is longer than 2000 characters"
    assert len(bad["source.GDS_DESC"]) == 8 * 131_072  # kept whole


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
    assert "accepted               6" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "cargorisk", "ingest", str(tmp_path / "missing.csv"), "-m",
         str(MAPPING), "-o", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.strip().count("\n") == 0 and "no such file" in failed.stderr
