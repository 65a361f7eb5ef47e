"""The online rows in memory (:class:`features.online.rows.MemoryRows`, driven by
:class:`features.online.replay.OnlineReplay`): a snapshot as of ``A`` kept up to date with
every declaration and report between ``A`` and ``B`` holds exactly the tables of a fresh
snapshot as of ``B`` (as the store does: tests/serving/test_online_aggregates.py), and so
does counting everything from nothing; what the replay refuses, it names."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import ContractError
from features.online.replay import OnlineReplay, features_as_of, replay
from features.pipeline import build_training_frame
from tests.features.helpers import assert_same_features, assert_same_tables, random_world


@pytest.fixture(scope="module")
def messy():
    return random_world(900, days=40, seed=31, messy=True)


def _before(shipments: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    return shipments[shipments["declared_at"] < at]


@pytest.mark.parametrize("a", [None, "2026-01-12 13:20", "2026-01-25 00:00"])
def test_a_snapshot_kept_up_to_date_equals_a_fresh_snapshot(messy, a):
    shipments, outcomes = messy
    b = pd.Timestamp("2026-02-03 06:10")  # not a midnight: today's bucket is partial
    if a is None:  # from nothing
        start = OnlineReplay()
        assert not start.rows.totals
    else:
        start = OnlineReplay.from_history(_before(shipments, pd.Timestamp(a)), outcomes, as_of=a)
        between = shipments[shipments["declared_at"] >= pd.Timestamp(a)]
    fed = shipments if a is None else between
    _, kept = replay(_before(fed, b), outcomes, start=start, score=False)
    kept.advance(b)
    fresh = OnlineReplay.from_history(_before(shipments, b), outcomes, as_of=b)
    assert len(kept) == len(fresh) == len(_before(shipments, b))
    assert_same_tables(fresh.rows.tables(), kept.rows.tables(), b.value)
    # and so the same features for whatever is declared next
    probe = shipments[shipments["declared_at"] >= b].assign(declared_at=b)
    assert len(probe) > 50
    assert_same_features(fresh.features(probe), kept.features(probe))


def test_features_as_of_a_time_equal_offline_for_shipments_declared_then(messy):
    """Shipments declared at one instant get, from a snapshot as of that instant, what the
    offline pipeline gives them (everything declared or known before them)."""
    shipments, outcomes = messy
    at = shipments["declared_at"].iloc[700]
    now = shipments[shipments["declared_at"] == at]
    offline = build_training_frame(shipments, outcomes).loc[now.index]
    online = features_as_of(_before(shipments, at), outcomes, now, at)
    assert_same_features(offline, online)


def test_what_the_replay_refuses_it_names(messy):
    shipments, outcomes = messy
    with pytest.raises(ContractError, match="declared_at"):  # history after as_of
        OnlineReplay.from_history(shipments, outcomes, as_of=shipments["declared_at"].iloc[10])
    state = OnlineReplay.from_history(shipments.iloc[:50], None)
    with pytest.raises(ContractError, match="shipment_id"):
        state.add_outcomes(outcomes[~outcomes["shipment_id"].isin(shipments["shipment_id"][:50])])
    with pytest.raises(ContractError, match="inspected_at"):
        state.add_outcomes(outcomes.drop(columns=["inspected_at"]))
    with pytest.raises(ContractError, match="shipment_id"):
        state.add_shipments(pd.concat([shipments.iloc[60:62], shipments.iloc[60:61]]))
