"""``cargorisk simulate`` end to end: files on disk, determinism, report and bad input."""

from __future__ import annotations

import filecmp

import pandas as pd
import pytest

from cargorisk.cli import main
from features.contracts import OUTCOME_COLUMNS, SHIPMENT_COLUMNS, validate_outcomes
from features.contracts import validate_shipments as validate

ARGS = ["--days", "10", "--shipments-per-day", "800", "--end", "2026-11-25"]


def _run(out, *extra: str) -> int:
    return main(["simulate", "--out", str(out), *ARGS, *extra])


def test_same_seed_same_files_other_seed_other_files(tmp_path, home):
    assert _run(tmp_path / "a", "--seed", "5") == 0
    assert _run(tmp_path / "b", "--seed", "5") == 0
    assert _run(tmp_path / "c", "--seed", "6") == 0
    for name in ("shipments.parquet", "outcomes.parquet", "truth.parquet"):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    a = pd.read_parquet(tmp_path / "a" / "shipments.parquet")
    c = pd.read_parquet(tmp_path / "c" / "shipments.parquet")
    assert not a.equals(c)


def test_files_read_back_valid_and_exact(tmp_path, home):
    assert _run(tmp_path, "--seed", "1") == 0
    s = pd.read_parquet(tmp_path / "shipments.parquet")
    o = pd.read_parquet(tmp_path / "outcomes.parquet")
    t = pd.read_parquet(tmp_path / "truth.parquet")
    assert tuple(s.columns) == SHIPMENT_COLUMNS and tuple(o.columns) == OUTCOME_COLUMNS
    pd.testing.assert_frame_equal(validate(s), s)
    pd.testing.assert_frame_equal(validate_outcomes(o), o)
    assert list(t.columns) == ["shipment_id", "illicit", "drug", "scheme"]
    assert len(t) == len(s) and set(o["shipment_id"]) <= set(s["shipment_id"])


def test_report_prints_baselines(tmp_path, home, capsys):
    assert _run(tmp_path, "--report", "--no-drift", "--inspection-capacity", "0.05") == 0
    out = capsys.readouterr().out
    assert "| rule |" in out and "| random |" in out and "true prevalence" in out


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--days", "0"], "days"),
        (["--prevalence", "2"], "prevalence"),
        (["--scheme-mix", "cartel=1"], "scheme_mix"),
        (["--scheme-mix", "front_company=lots"], "scheme_mix"),
        (["--mode-mix", "rail=1"], "mode_mix"),
        (["--end", "tomorrow"], "end"),
        (["--random-share", "-0.1"], "random_share"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_field(tmp_path, home, capsys, extra, field):
    assert main(["simulate", "--out", str(tmp_path / "w"), *ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert field in err and err.count("\n") == 1
    assert not (tmp_path / "w" / "shipments.parquet").exists()


def test_out_must_be_a_directory(tmp_path, home, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["simulate", "--out", str(target), *ARGS]) == 2
    assert "out" in capsys.readouterr().err
