"""``cargorisk features snapshot`` on a simulated data directory (month partitions)."""

from __future__ import annotations

from cargorisk.cli import main
from features import snapshot


def test_snapshot_command_on_a_simulated_world(home, tmp_path, capsys):
    data = tmp_path / "world"
    assert main(["simulate", "--out", str(data), "--days", "12", "--shipments-per-day", "60",
                 "--seed", "4", "--end", "2026-03-01", "--by-month"]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "snap"
    assert main(["features", "snapshot", "--data", str(data), "--out", str(out),
                 "--as-of", "2026-02-25T00:00:00Z"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "2026-02-25T00:00:00+00:00" in printed and "key_totals" in printed
    snap = snapshot.read_snapshot(out)
    assert snap.as_of == snapshot.parse_as_of("2026-02-25")
    totals = snap.tables["key_totals"]
    assert set(totals["dim"]) >= {"consignee", "global", "route"}
    assert (totals["first_seen"] < snap.as_of).all()
    # a second run into the same directory is refused, and the engine is checked
    assert main(["features", "snapshot", "--data", str(data), "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["features", "snapshot", "--data", str(data), "--out", str(tmp_path / "x"),
                 "--engine", "pandas"]) == 2  # fmt: skip


def test_snapshot_command_names_a_missing_table(home, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["features", "snapshot", "--data", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "snap")]) == 2  # fmt: skip
    assert "no shipments table" in capsys.readouterr().err
