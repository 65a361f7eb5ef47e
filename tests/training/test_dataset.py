"""What a data directory says about itself: ``dataset.json`` (label meaning, attributes), and
``--label-name`` / ``--label-positive`` over it."""

from __future__ import annotations

import json

import pytest

from features.contracts import DatasetInfo, LabelMeaning
from features.errors import CargoriskError
from features.tables import read_info
from training.dataset import build_dataset, load_tables
from training.jobs.train import with_label

from .world import write_world


def test_absent_dataset_json_means_narcotics_and_no_attributes(tmp_path):
    data = write_world(tmp_path / "d", days=12, per_day=60)
    assert not (data / "dataset.json").exists()
    tables = load_tables(data)
    assert tables.info == DatasetInfo()
    assert tables.info.label.name == "narcotics seizure"


def test_dataset_json_carries_label_and_attributes(tmp_path):
    label = LabelMeaning(name="duty fraud", positive="fraud finding")
    data = write_world(tmp_path / "d", days=12, per_day=60, attributes=True, label=label)
    tables = load_tables(data)
    assert tables.info.label == label
    assert list(tables.info.attributes) == ["import_type", "office", "tax_rate"]
    assert tables.shipments["attr.tax_rate"].dtype == "float64"
    dataset = build_dataset(tables)
    assert dataset.info == tables.info


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"label": {"name": ""}}', "label.name"),
        ('{"attributes": {"Bad Name": {"kind": "numeric"}}}', "attributes"),
        ('{"labels": {}}', "labels"),
    ],
)
def test_bad_dataset_json_names_the_file_and_field(tmp_path, text, message):
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(CargoriskError, match=message) as err:
        read_info(tmp_path)
    assert "dataset.json" in str(err.value)


def test_attribute_column_not_in_the_schema_is_named(tmp_path):
    data = write_world(tmp_path / "d", days=12, per_day=60, attributes=True)
    info = json.loads((data / "dataset.json").read_text())
    del info["attributes"]["office"]
    (data / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(CargoriskError, match=r"attr\.office.*dataset\.json"):
        load_tables(data)


def test_label_options_override_dataset_json():
    info = DatasetInfo()
    assert with_label(info, None, None) is info
    fraud = with_label(info, "duty fraud", None).label
    assert fraud == LabelMeaning(name="duty fraud", positive="duty fraud finding")
    both = with_label(info, "duty fraud", "fraud finding").label
    assert both.positive == "fraud finding"
    noun = with_label(info, None, "hit").label
    assert noun == LabelMeaning(name="narcotics seizure", positive="hit")
    with pytest.raises(CargoriskError, match="--label-name"):
        with_label(info, "", None)
    with pytest.raises(CargoriskError, match="--label-positive"):
        with_label(info, "x" * 40, None)  # the derived noun is too long: say which option
    with pytest.raises(CargoriskError, match="--label-positive"):
        with_label(info, None, "y" * 41)
