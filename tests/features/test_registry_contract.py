"""The names training writes into the registry and serving reads back."""

from __future__ import annotations

import pytest

from features.registry_contract import (
    capacity_label,
    capacity_metric,
    capacity_share,
    parse_capacity_metric,
)


@pytest.mark.parametrize(
    ("share", "label"),
    [(0.01, "1pct"), (0.1, "10pct"), (0.005, "0p5pct"), (0.025, "2p5pct"), (0.0125, "1p25pct")],
)
def test_capacity_labels_round_trip(share, label):
    assert capacity_label(share) == label
    assert capacity_share(label) == pytest.approx(share)


def test_metric_names_are_built_and_read_back_alike():
    name = capacity_metric("true_recall", 0.005, "test")
    assert name == "test_true_recall_at_0p5pct"
    parsed = parse_capacity_metric(name, ("test", "rules", "random"))
    assert (parsed.who, parsed.kind, parsed.capacity) == ("test", "true_recall", "0p5pct")
    assert parsed.share == pytest.approx(0.005)
    assert capacity_metric("precision", 0.01) == "precision_at_1pct"
    assert parse_capacity_metric("valid_precision_at_1pct", ("test", "rules")) is None
    assert parse_capacity_metric("test_pr_auc", ("test",)) is None
    with pytest.raises(ValueError, match="not a capacity label"):
        capacity_share("1%")
