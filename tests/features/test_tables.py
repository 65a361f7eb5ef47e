"""The one reader/writer of contract directories (training ``--data``, the service's seed data,
``cargorisk score --history``, ``export``), and the contract's failure messages."""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pytest

from features.contracts import (
    DatasetInfo,
    describe_failures,
    frame_columns,
    frame_rule_errors,
    missing_required,
    validate_outcomes,
    validate_shipments,
)
from features.errors import CargoriskError, ContractError
from features.tables import read_contract_dir, read_frame, write_contract_dir
from tests.features.test_contracts import outcome, shipment


def _write_csv(tmp_path, ships: list[dict], outs: list[dict]):
    pd.DataFrame(ships).to_csv(tmp_path / "shipments.csv", index=False)
    pd.DataFrame(outs).to_csv(tmp_path / "outcomes.csv", index=False)
    return tmp_path


def test_csv_codes_keep_their_leading_zeros(tmp_path):
    """Every reader reads CSV cells as text: an HS code "0901" (coffee) is not the number 901
    (the service's seed reader once read it so)."""
    data = _write_csv(tmp_path, [shipment(hs_code="0901", packages=12)], [outcome()])
    for tables in (read_contract_dir(data), read_contract_dir(data, keep_undeclared=True)):
        assert tables.shipments["hs_code"].tolist() == ["0901"]
        assert tables.shipments["packages"].tolist() == [12]
        assert tables.outcomes["result"].tolist() == [outcome()["result"]]


def test_written_tables_read_back_the_same(tmp_path):
    ships = validate_shipments(pd.DataFrame([shipment(hs_code="0901")]))
    info = DatasetInfo.model_validate({"label": {"name": "duty fraud", "positive": "finding"}})
    outs = validate_outcomes(pd.DataFrame([outcome()]))
    out = write_contract_dir(tmp_path / "d", ships, outs, info)
    back = read_contract_dir(out)
    pd.testing.assert_frame_equal(back.shipments, ships)
    assert back.info == info and back.source == str(out.resolve())


def test_a_missing_required_column_is_named(tmp_path):
    row = outcome()
    del row["selected_by"]
    data = _write_csv(tmp_path, [shipment()], [row])
    with pytest.raises(ContractError, match=r"outcomes table lacks required column.*selected_by"):
        read_contract_dir(data)
    assert missing_required("shipments", ["shipment_id"]) == ["mode", "declared_at"]


def test_bad_values_are_described_by_field(tmp_path):
    data = _write_csv(tmp_path, [shipment(hs_code="coffee"), shipment(shipment_id="B2")], [])
    with pytest.raises(ContractError) as err:
        read_contract_dir(data)
    message = str(err.value)
    assert message.startswith("shipments table breaks the contract - hs_code: str_matches")
    assert "'coffee'" in message and "(1 rows" in message


def test_undeclared_attributes_are_refused_unless_kept(tmp_path):
    data = _write_csv(tmp_path, [{**shipment(), "attr.office": "A1"}], [outcome()])
    with pytest.raises(ContractError, match=r"attr\.office.*dataset\.json"):
        read_contract_dir(data)
    kept = read_contract_dir(data, keep_undeclared=True)
    assert kept.shipments["attr.office"].tolist() == ["A1"]


def test_unreadable_and_absent_files_name_the_option(tmp_path):
    with pytest.raises(CargoriskError, match=r"--data .*: not a directory"):
        read_contract_dir(tmp_path / "nope")
    with pytest.raises(CargoriskError, match="no shipments table"):
        read_contract_dir(tmp_path)
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(CargoriskError, match=r"--input .*expected a \.csv or \.parquet"):
        read_frame(tmp_path / "x.txt", what="--input")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(CargoriskError, match="cannot read"):
        read_frame(tmp_path / "x.parquet")


def test_describe_failures_groups_by_field():
    frame = pd.DataFrame([shipment(hs_code="x"), shipment(shipment_id="B2", hs_code="y")])
    with pytest.raises(pandera.errors.SchemaErrors) as err:
        validate_shipments(frame)
    text = describe_failures("shipments", err.value)
    assert text.count("hs_code:") == 1 and "(2 rows, e.g. 'x')" in text


def test_frame_rules_name_the_shipment_and_columns_round_trip():
    bad = shipment(shipment_id="S7", departed_at=pd.Timestamp("2026-03-10"))
    frame = pd.DataFrame([shipment(), bad])
    assert frame_rule_errors("shipments", frame) == [
        "shipment S7: departed_at must not be after arrival_at"
    ]
    columns = frame_columns(frame, ["shipment_id", "declared_at"], caller="t")
    assert columns["shipment_id"] == ["BL-2026-0001", "S7"] and columns["caller"] == ["t"] * 2


def test_the_writer_streams_chunks_and_puts_files_in_place_only_on_commit(tmp_path):
    """Chunks append to one table; nothing looks written before commit(); an abandoned write
    leaves nothing behind; a table without rows keeps its typed columns."""
    import pyarrow as pa

    from features.tables import ContractDirWriter

    ships = validate_shipments(
        pd.DataFrame([shipment(shipment_id="A1"), shipment(shipment_id="A2", hs_code="0901")])
    )
    outs = validate_outcomes(pd.DataFrame([outcome()]))
    schemas = {
        "shipments": pa.Schema.from_pandas(ships, preserve_index=False),
        "outcomes": pa.Schema.from_pandas(outs, preserve_index=False),
    }
    out = tmp_path / "d"
    writer = ContractDirWriter(out, schemas, DatasetInfo())
    writer.write("shipments", ships.iloc[:1])
    writer.write("shipments", ships.iloc[1:])
    writer.write("outcomes", outs.iloc[:0])
    assert not (out / "shipments.parquet").exists() and not (out / "dataset.json").exists()
    paths = writer.commit()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())
    back = read_contract_dir(out)
    pd.testing.assert_frame_equal(back.shipments, ships)
    assert len(back.outcomes) == 0
    assert back.outcomes.dtypes.to_dict() == outs.dtypes.to_dict()

    gone = ContractDirWriter(tmp_path / "e", schemas)
    gone.write("shipments", ships)
    gone.abandon()
    assert list((tmp_path / "e").iterdir()) == []

    with pytest.raises(ContractError, match="got schemas for shipments"):
        ContractDirWriter(tmp_path / "f", {"shipments": schemas["shipments"]})
