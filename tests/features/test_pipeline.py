"""The feature pipeline end to end: offline/online parity, leakage, idempotency, bad input.

Online is what the service computes (issue 15): the aggregate rows of the snapshot's tables,
kept up to date by the deltas of :mod:`features.online.rows`, features from the rows of a
manifest's keys - replayed in memory by :mod:`features.online.replay` (``features/`` does not
import the service)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import FEATURE_NAMES
from features.contracts import OUTCOME_COLUMNS
from features.errors import ContractError
from features.online.replay import OnlineReplay
from features.online.rows import MemoryRows
from features.pipeline import KEY_COLUMNS, build_training_frame
from tests.features.helpers import (
    ATTRIBUTES,
    assert_same_features,
    assert_same_tables,
    random_world,
    replay_online,
)


@pytest.fixture(scope="module")
def world():
    return random_world(600, days=20, seed=11)


@pytest.fixture(scope="module")
def frame(world):
    return build_training_frame(*world)


# -- parity -------------------------------------------------------------------------------
def test_online_replay_equals_offline_on_random_world(world, frame):
    online, state = replay_online(*world)
    assert_same_features(frame, online)
    assert len(state) == len(world[0])
    # the amendment count is the contract column, the same both ways (NaN when unknown)
    amended = frame["declaration_amendments"]
    assert amended.max() == 2 and amended.isna().any() and (amended == 0).any()


@pytest.mark.slow
def test_online_replay_equals_offline_on_simulated_month():
    from simulator.config import SimConfig
    from simulator.core import simulate

    sim = simulate(
        SimConfig(
            days=30,
            shipments_per_day=60,
            seed=5,
            end=pd.Timestamp("2026-06-01"),
            prevalence=0.05,
            inspection_capacity=0.25,
        )
    )
    shipments, outcomes = sim.shipments, sim.outcomes
    assert (outcomes["result"] == "seized").sum() > 0
    offline = build_training_frame(shipments, outcomes)
    online, _ = replay_online(shipments, outcomes)
    assert_same_features(offline, online)


def test_state_from_history_then_new_shipments_equals_offline(world, frame):
    shipments, outcomes = world
    cut = shipments["declared_at"].quantile(0.7)
    past = shipments[shipments["declared_at"] < cut]
    state = OnlineReplay.from_history(past, outcomes, as_of=cut)  # a snapshot as of the cut
    assert state.now == cut.value and len(state) == len(past)
    new = shipments[shipments["declared_at"] >= cut]
    online, _ = replay_online(new, outcomes, state=state)
    assert_same_features(frame.loc[new.index], online)


# -- the online aggregates' contract ------------------------------------------------------
def test_features_do_not_add_and_adding_twice_counts_once(world):
    shipments, outcomes = world
    half = shipments.iloc[:300]
    probe = shipments.iloc[[450]]
    state = OnlineReplay.from_history(half, outcomes, as_of=probe["declared_at"].iloc[0])
    before = state.features(probe)
    assert len(state) == 300
    tables = state.rows.tables()
    state.features(probe)
    state.add_shipments(half)  # re-scoring / re-sending history must not double count
    state.add_outcomes(outcomes[outcomes["shipment_id"].isin(half["shipment_id"])])
    again = state.features(probe)
    pd.testing.assert_frame_equal(before, again)
    assert_same_tables(tables, state.rows.tables(), state.now)
    state.add_shipments(probe)
    state.add_shipments(probe)
    assert len(state) == 301


def test_an_outcome_of_a_shipment_never_declared_is_refused_by_name(world):
    """The service answers 404 for an outcome of a shipment it has not received (it used to
    keep it until the shipment came): nothing of the request counts."""
    shipments, outcomes = world
    state = OnlineReplay.from_history(shipments.iloc[:100], outcomes)
    tables = state.rows.tables()
    mixed = pd.concat([outcomes[outcomes["shipment_id"].isin(shipments["shipment_id"][:100])],
                       outcomes.assign(shipment_id="NOT-DECLARED").iloc[:1]])  # fmt: skip
    with pytest.raises(ContractError, match=r"shipment_id.*NOT-DECLARED"):
        state.add_outcomes(mixed)
    with pytest.raises(ContractError, match="shipment_id"):
        state.amend_shipments(shipments.iloc[[200]])
    assert_same_tables(tables, state.rows.tables(), state.now)


def test_online_features_keep_index_and_columns(world):
    shipments, outcomes = world
    state = OnlineReplay.from_history(shipments.iloc[:100], outcomes)
    probe = shipments.iloc[[200, 201, 202]].set_axis(["a", "b", "c"])
    out = state.features(probe)
    assert list(out.index) == ["a", "b", "c"]
    assert list(out.columns) == [*KEY_COLUMNS, *FEATURE_NAMES]
    single = state.features(probe.iloc[[1]])
    assert_same_features(out.iloc[[1]], single)


# -- leakage ------------------------------------------------------------------------------
IN_PROCESS_ENGINES = ("pandas", "duckdb")
"""The engines the leakage tests run against (Spark's parity with them is tests/features/
test_spark.py: a JVM per case would cost minutes)."""


def _cut(shipments: pd.DataFrame) -> pd.Timestamp:
    return shipments["declared_at"].quantile(0.5)


@pytest.mark.parametrize("engine", IN_PROCESS_ENGINES)
def test_deleting_everything_after_t_changes_nothing_before_t(world, frame, engine):
    shipments, outcomes = world
    t = _cut(shipments)
    keep = shipments["declared_at"] <= t
    cut_frame = build_training_frame(
        shipments[keep], outcomes[outcomes["result_at"] <= t], engine=engine
    )
    pd.testing.assert_frame_equal(cut_frame, frame[keep.to_numpy()])


@pytest.mark.parametrize("engine", IN_PROCESS_ENGINES)
def test_shuffling_everything_after_t_changes_nothing_before_t(world, frame, engine):
    shipments, outcomes = world
    t = _cut(shipments)
    rng = np.random.default_rng(0)
    after = shipments["declared_at"] > t
    scrambled = shipments.copy()
    for col in ("consignee_id", "shipper_id", "origin_country", "hs_code", "consignee_phone"):
        values = scrambled.loc[after, col].to_numpy().copy()
        rng.shuffle(values)
        scrambled.loc[after, col] = values
    flipped = outcomes.copy()
    late = flipped["result_at"] > t
    flipped.loc[late, "result"] = np.where(
        flipped.loc[late, "result"] == "seized", "clean", "seized"
    )
    flipped.loc[late, "drug"] = None
    order = rng.permutation(len(scrambled))
    out = build_training_frame(
        scrambled.iloc[order], flipped.sample(frac=1, random_state=1), engine=engine
    )
    before = ~after.to_numpy()
    pd.testing.assert_frame_equal(out.loc[frame.index[before]], frame[before])


@pytest.mark.parametrize("engine", IN_PROCESS_ENGINES)
def test_outcome_known_after_the_shipment_never_affects_it(engine):
    shipments, _ = random_world(3, seed=4)
    t0 = pd.Timestamp("2026-03-01 12:00")
    base = shipments.assign(
        consignee_id="C1",
        declared_at=[t0, t0 + pd.Timedelta(days=10), t0 + pd.Timedelta(days=20)],
    )

    def seizure(result_at):
        return pd.DataFrame(
            {
                "shipment_id": [base["shipment_id"].iloc[0]],
                "inspected_at": [t0 + pd.Timedelta(days=1)],
                "result_at": [result_at],
                "result": ["seized"],
                "drug": ["cocaine"],
                "quantity_kg": [5.0],
                "method": ["physical"],
                "selected_by": ["rule"],
            }
        )

    second = base["declared_at"].iloc[1]
    for result_at, expected in (
        (second + pd.Timedelta(seconds=1), 0.0),  # after: unknown
        (second, 0.0),  # at the same instant: not yet known
        (second - pd.Timedelta(seconds=1), 1.0),  # before: known
    ):
        out = build_training_frame(base, seizure(result_at), engine=engine)
        assert out["consignee_seizures"].iloc[1] == expected
        assert out["consignee_seizures"].iloc[2] == 1.0
        assert out["consignee_seizures"].iloc[0] == 0.0  # its own result never counts


def test_no_label_is_a_feature_and_extra_label_columns_are_ignored(world, frame):
    shipments, outcomes = world
    labels = {*OUTCOME_COLUMNS, "illicit", "scheme", "label", "seized", "target"} - {"shipment_id"}
    assert not labels & set(frame.columns)
    leaky = shipments.merge(
        outcomes[["shipment_id", "result", "drug"]].drop_duplicates("shipment_id"),
        on="shipment_id",
        how="left",
    ).assign(illicit=1, scheme="x")
    leaky.index = shipments.index
    out = build_training_frame(leaky, outcomes)
    pd.testing.assert_frame_equal(out, frame)


# -- invariances and input handling -------------------------------------------------------
def test_letter_case_and_spacing_of_names_do_not_change_features(world, frame):
    shipments, outcomes = world
    text_cols = ["shipper_id", "consignee_id", "forwarder_id", "declarant_id",
                 "shipper_name", "consignee_name", "consignee_address", "platform"]  # fmt: skip
    changed = shipments.copy()
    for col in text_cols:
        changed[col] = changed[col].map(lambda v: None if pd.isna(v) else f"  {str(v).upper()} ")
    changed["consignee_phone"] = changed["consignee_phone"].str.replace(" ", "", regex=False)
    pd.testing.assert_frame_equal(build_training_frame(changed, outcomes), frame)


def test_inputs_are_not_modified(world):
    shipments, outcomes = world
    s, o = shipments.copy(), outcomes.copy()
    build_training_frame(shipments, outcomes)
    state = OnlineReplay.from_history(shipments.iloc[:300], outcomes)
    state.features(shipments.iloc[300:305])
    state.add_shipments(shipments.iloc[300:305])
    state.add_outcomes(outcomes[outcomes["shipment_id"].isin(shipments["shipment_id"][:305])])
    pd.testing.assert_frame_equal(s, shipments)
    pd.testing.assert_frame_equal(o, outcomes)


def test_optional_columns_may_be_absent_and_no_outcomes_is_fine(world):
    shipments, outcomes = world
    required = ["shipment_id", "mode", "declared_at", "shipper_id", "consignee_id",
                "origin_country", "departure_country", "discharge_port", "hs_code",
                "packages", "gross_weight_kg", "declared_value", "currency",
                "declared_value_usd"]  # fmt: skip
    slim = shipments[required]
    out = build_training_frame(slim, outcomes.iloc[:0])
    assert out["consignee_phone_new"].isna().all()
    assert (out["consignee_seizures"] == 0).all()
    state = OnlineReplay.from_history(slim.iloc[:10], outcomes.iloc[:0])
    assert len(state.features(slim.iloc[[20]])) == 1
    assert len(OnlineReplay.from_history(slim.iloc[:10], None).features(slim.iloc[[20]])) == 1


@pytest.mark.parametrize("column", ["shipment_id", "declared_at", "mode"])
def test_missing_required_column_is_named(world, column):
    shipments, outcomes = world
    with pytest.raises(ContractError, match=column):
        build_training_frame(shipments.drop(columns=[column]), outcomes)
    with pytest.raises(ContractError, match=column):
        OnlineReplay().features(shipments.drop(columns=[column]).iloc[:1])
    with pytest.raises(ContractError, match=column):
        OnlineReplay().add_shipments(shipments.drop(columns=[column]).iloc[:1])


def test_bad_outcomes_and_duplicate_ids_are_named(world):
    shipments, outcomes = world
    with pytest.raises(ContractError, match="result_at"):
        build_training_frame(shipments, outcomes.drop(columns=["result_at"]))
    with pytest.raises(ContractError, match="result_at"):
        OnlineReplay().add_outcomes(outcomes.drop(columns=["result_at"]))
    with pytest.raises(ContractError, match="shipment_id"):
        build_training_frame(pd.concat([shipments.iloc[:3], shipments.iloc[:1]]), outcomes)
    with pytest.raises(ContractError, match="declared_at"):
        build_training_frame(shipments.assign(declared_at=pd.NaT), outcomes)


def test_empty_shipments_give_an_empty_frame(world):
    shipments, outcomes = world
    out = build_training_frame(shipments.iloc[:0], outcomes)
    assert list(out.columns) == [*KEY_COLUMNS, *FEATURE_NAMES]
    assert len(out) == 0


def test_one_shipment_as_a_mapping_gives_the_same_row(world):
    shipments, outcomes = world
    state = OnlineReplay.from_history(shipments.iloc[:300], outcomes)
    row = shipments.iloc[[400]]
    from_frame = state.features(row)
    record = {k: (None if pd.isna(v) else v) for k, v in row.iloc[0].to_dict().items()}
    from_mapping = state.features(record)
    assert_same_features(from_frame.reset_index(drop=True), from_mapping)
    with pytest.raises(ContractError, match="mode"):
        state.features({k: v for k, v in record.items() if k != "mode"})


def test_snapshot_equals_adding_one_chunk_at_a_time(world):
    """The snapshot (the aggregates of a whole history at once, what ``cargorisk features
    materialize`` loads) must hold exactly what counting the same shipments in pieces (out of
    order, with repeats) and then their reports holds: the same tables, the same features."""
    shipments, outcomes = world
    past = shipments.iloc[:450]
    bulk = OnlineReplay.from_history(past, outcomes)
    pieces = OnlineReplay(now=bulk.now)
    shuffled = past.sample(frac=1, random_state=3)
    for start in range(0, len(shuffled), 60):
        pieces.add_shipments(shuffled.iloc[start : start + 60])
    pieces.add_shipments(past.iloc[:20])
    pieces.add_outcomes(outcomes[outcomes["shipment_id"].isin(past["shipment_id"])])
    pieces.add_outcomes(outcomes[outcomes["shipment_id"].isin(past["shipment_id"][:30])])
    assert len(bulk) == len(pieces) == 450
    # a partner pair's first_seen is that of the first declaration *counted* with it (a
    # store inserts a pair once, as serving.store.online does): out of order, a later one
    # may come first - no feature reads it (distinct counts and words seen do not)
    assert_same_tables(
        bulk.rows.tables(), pieces.rows.tables(), bulk.now, skip=("key_pairs.first_seen",)
    )
    in_order = OnlineReplay(now=bulk.now)
    for start in range(0, len(past), 60):
        in_order.add_shipments(past.iloc[start : start + 60])
    in_order.add_outcomes(outcomes[outcomes["shipment_id"].isin(past["shipment_id"])])
    assert_same_tables(bulk.rows.tables(), in_order.rows.tables(), bulk.now)
    probe = shipments.iloc[300:600]
    assert_same_features(bulk.features(probe), pieces.features(probe))


# -- a manifest prepared once, its features, then its addition (the service's path) ----------
def _record(row: pd.DataFrame) -> dict:
    return {k: (None if pd.isna(v) else v) for k, v in row.iloc[0].to_dict().items()}


def test_adding_shipments_prepared_from_fields_or_frames_gives_the_same_rows(world):
    from features.manifest import prepare

    shipments, outcomes = world
    served = OnlineReplay.from_history(shipments.iloc[:300], outcomes)
    plain = OnlineReplay.from_history(shipments.iloc[:300], outcomes)
    for i in range(300, 360):  # one by one, each prepared from its fields
        row = shipments.iloc[[i]]
        p = prepare(_record(row), tuple_keys=True)
        served.features(row, prepared=p)
        served.add_shipments(row, prepared=p)
        plain.add_shipments(row)
    chunk = shipments.iloc[360:450]  # a manifest, prepared from its frame
    p = prepare(chunk, tuple_keys=True)
    served.features(chunk, prepared=p)
    served.add_shipments(chunk, prepared=p)
    plain.add_shipments(chunk)
    probe = shipments.iloc[450:]
    assert_same_features(served.features(probe), plain.features(probe))
    assert_same_tables(served.rows.tables(), plain.rows.tables(), served.now)
    assert len(served) == len(plain) == 450


def test_manifests_read_together_and_counted_in_either_order(world):
    """Two manifests read the rows, the second is counted first (it creates rows for keys
    both share: new parties, pairs, link-graph nodes), then the first: the rows equal a
    snapshot of all three, and a manifest prepared once may be counted in another copy of
    the rows (a prepared manifest holds no rows)."""
    from features.manifest import prepare

    shipments, outcomes = world
    base = shipments.iloc[:300]
    first = shipments.iloc[300:400].copy()
    second = shipments.iloc[400:500].copy()
    for frame in (first, second):  # brand-new parties both manifests share
        frame.loc[frame.index[::3], "consignee_id"] = "NEW-CONSIGNEE"
        frame.loc[frame.index[::4], "shipper_id"] = "NEW-SHIPPER"
    as_of = shipments["declared_at"].iloc[500]
    everything = pd.concat([base, first, second])
    expected = OnlineReplay.from_history(everything, outcomes, as_of=as_of)
    got = []
    for order in ((second, first), (first, second)):
        state = OnlineReplay.from_history(base, outcomes, as_of=as_of)
        p1, p2 = prepare(first, tuple_keys=True), prepare(second, tuple_keys=True)
        state.features(first, prepared=p1)
        state.features(second, prepared=p2)
        for frame in order:
            state.add_shipments(frame, prepared=p1 if frame is first else p2)
        got.append(state)
    other = OnlineReplay.from_history(base, outcomes, as_of=as_of)
    other.add_shipments(second)
    other.add_shipments(first, prepared=p1)  # prepared for (and used in) the last `state`
    theirs = outcomes[outcomes["shipment_id"].isin(everything["shipment_id"].iloc[300:])]
    for state in (*got, other):  # and the manifests' reports
        state.add_outcomes(theirs)
    probe = shipments.iloc[500:]
    # counted out of order, a pair's first_seen is its first *counted* declaration's (as in a
    # store, which inserts a pair once; no feature reads it)
    out_of_order = ("key_pairs.first_seen",)
    for state, skip in ((got[0], out_of_order), (got[1], ()), (other, out_of_order)):
        assert_same_tables(expected.rows.tables(), state.rows.tables(), as_of.value, skip)
        assert_same_features(state.features(probe), expected.features(probe))
    from features.manifest import norm_text

    shared = expected.rows.totals[("consignee", norm_text("NEW-CONSIGNEE"))]
    assert shared["shipments"] == (everything["consignee_id"] == "NEW-CONSIGNEE").sum() > 60


# -- real exports: blank fields, odd values, every mode, attributes -----------------------------
@pytest.fixture(scope="module")
def messy_world():
    shipments, outcomes = random_world(900, days=20, seed=21, messy=True, attributes=True)
    # attributes as a source gives them: stray spaces, codes in any case (kept as declared)
    spaced = shipments["attr.import_type"].map(lambda v: v if v is None else f"  {v} ")
    return shipments.assign(**{"attr.import_type": spaced}), outcomes


def test_online_replay_equals_offline_on_a_messy_world_with_attributes(messy_world):
    shipments, outcomes = messy_world
    assert shipments["shipper_id"].isna().any() and (shipments["gross_weight_kg"] == 0).any()
    assert (shipments["gross_weight_kg"] > 1e6).any()
    assert {"rail", "road", "post"} <= set(shipments["mode"])
    offline = build_training_frame(shipments, outcomes, attributes=ATTRIBUTES)
    online, _ = replay_online(shipments, outcomes, attributes=ATTRIBUTES)
    assert_same_features(offline, online)
    assert offline["weight_zero"].eq(1).any() and offline["weight_bulk"].eq(1).any()
    assert offline["shipper_not_declared"].eq(1).any()
    assert set(offline["attr.import_type"].dropna()) == {"B2", "A1", "C3", "b2"}
    # history, then the rest one by one, with attributes
    cut = shipments["declared_at"].quantile(0.6)
    past = shipments[shipments["declared_at"] < cut]
    warm = OnlineReplay.from_history(past, outcomes, as_of=cut, attributes=ATTRIBUTES)
    new = shipments[shipments["declared_at"] >= cut]
    rest, _ = replay_online(new, outcomes, state=warm)
    assert_same_features(offline.loc[new.index], rest)
    # a manifest scored at once (the many-rows code paths) gives what each row alone gives
    fresh = OnlineReplay.from_history(past, outcomes, as_of=cut, attributes=ATTRIBUTES)
    batch = fresh.features(new)
    assert len(new) > 64
    one_by_one = pd.concat([fresh.features(new.iloc[[i]]) for i in range(len(new))])
    assert_same_features(batch, one_by_one)


def test_one_shipment_as_a_mapping_with_attribute_keys(messy_world):
    shipments, outcomes = messy_world
    state = OnlineReplay.from_history(shipments.iloc[:500], outcomes, attributes=ATTRIBUTES)
    for i in (600, 601, 602, 650):
        row = shipments.iloc[[i]]
        record = {k: (None if pd.isna(v) else v) for k, v in row.iloc[0].to_dict().items()}
        assert_same_features(state.features(row).reset_index(drop=True), state.features(record))
    record = {k: (None if pd.isna(v) else v) for k, v in shipments.iloc[700].to_dict().items()}
    partial = {k: v for k, v in record.items() if k != "attr.office"}  # missing: just missing
    assert state.features(partial)["attr.office"].iloc[0] is None
    with pytest.raises(ContractError, match=r"attr\.vat_code"):
        state.features({**record, "attr.vat_code": "X"})
    with pytest.raises(ContractError, match=r"attr\.tax_rate"):
        state.features({**record, "attr.tax_rate": "eight"})


def test_attribute_columns_follow_the_schema(messy_world):
    shipments, outcomes = messy_world
    part = shipments.iloc[:200]
    plain = build_training_frame(part, outcomes)  # no schema: attr.* ignored as extra columns
    assert list(plain.columns) == [*KEY_COLUMNS, *FEATURE_NAMES]
    reordered = {n: ATTRIBUTES[n] for n in ("office", "tax_rate")}
    with pytest.raises(ContractError, match=r"attr\.import_type"):
        build_training_frame(part, outcomes, attributes=reordered)  # a column it does not know
    frame = build_training_frame(
        part.drop(columns=["attr.import_type"]), outcomes, attributes=reordered
    )
    assert list(frame.columns)[-2:] == ["attr.office", "attr.tax_rate"]
    pd.testing.assert_frame_equal(frame[list(plain.columns)], plain)
    absent = build_training_frame(
        part.drop(columns=["attr.office"]), outcomes, attributes=ATTRIBUTES
    )
    assert absent["attr.office"].isna().all()
    with pytest.raises(ContractError, match=r"attr\.tax_rate"):
        build_training_frame(part.assign(**{"attr.tax_rate": "x"}), outcomes, attributes=ATTRIBUTES)
    empty = build_training_frame(part.iloc[:0], outcomes, attributes=ATTRIBUTES)
    assert list(empty.columns)[-3:] == ["attr.import_type", "attr.tax_rate", "attr.office"]


def test_only_the_required_fields(world):
    """Only id, time and mode declared: every feature is defined or missing, offline and
    online alike, and nothing fails."""
    shipments, outcomes = world
    bare = shipments[["shipment_id", "declared_at", "mode"]]
    offline = build_training_frame(bare, outcomes)
    online, _ = replay_online(bare, outcomes)
    assert_same_features(offline, online)
    assert (offline["undeclared_share"] == 1).all()
    assert (offline["shipper_not_declared"] == 1).all()
    assert offline["consignee_shipments_total"].isna().all()
    assert offline["network_seizures"].eq(0).all()
    warm = OnlineReplay.from_history(bare.iloc[:300], outcomes)
    record = {"shipment_id": "NEW-1", "declared_at": bare["declared_at"].max(), "mode": "post"}
    row = warm.features(record)
    assert row["mode"].iloc[0] == "post" and row["undeclared_share"].iloc[0] == 1
    assert len(warm) == 300 and warm.rows.nodes == {}  # no consignee: no link graph


def test_a_corrected_report_counts_as_the_report_in_force(world):
    """Finding 5 (outcomes): a different report of the same inspection (a correction) takes
    the earlier one's counts back and counts instead, so the rows kept up to date equal a
    snapshot of the reports in force; a re-sent correction changes nothing."""
    shipments, outcomes = world
    seized = outcomes[outcomes["result"] == "seized"].head(5)
    clean = outcomes[outcomes["result"] == "clean"].head(5)
    assert len(seized) and len(clean)
    flipped = pd.concat(
        [
            seized.assign(result="clean", drug=None, quantity_kg=np.nan),
            clean.assign(result="seized", drug="cocaine", quantity_kg=3.0),
        ]
    )
    later = flipped.assign(result_at=flipped["result_at"] + pd.Timedelta(days=2))
    in_force = pd.concat([outcomes.drop(flipped.index), later])
    now = shipments["declared_at"].max() + pd.Timedelta(days=30)

    live = OnlineReplay.from_history(shipments, outcomes, as_of=now)
    before = live.rows.tables()
    live.add_outcomes(later)  # corrections arrive after the first reports
    live.add_outcomes(later)  # and are re-sent: nothing changes
    rebuilt = OnlineReplay.from_history(shipments, in_force, as_of=now)
    assert_same_tables(rebuilt.rows.tables(), live.rows.tables(), now.value)
    probe = shipments.assign(declared_at=now, shipment_id=[f"P{i}" for i in range(len(shipments))])
    pd.testing.assert_frame_equal(live.features(probe), rebuilt.features(probe))
    first = OnlineReplay(MemoryRows(before)).features(probe)
    assert not first["consignee_seizures"].equals(live.features(probe)["consignee_seizures"])


def test_a_correction_of_a_report_not_known_yet_replaces_it():
    """A report known later than now is held; corrected before then, only the correction
    counts, once due; a report taken back that was counted leaves its day bucket at zero."""
    from tests.features.helpers import make_outcomes, make_shipments

    shipments = make_shipments({"day": 0, "consignee_id": "A"}, {"day": 1, "consignee_id": "A"})
    state = OnlineReplay.from_history(shipments, None, as_of=pd.Timestamp("2026-01-03"))
    state.add_outcomes(make_outcomes(("S1", 0.5, 5, "seized")))  # known on day 5: held
    assert state.rows.totals[("consignee", "a")]["inspections"] == 0
    state.add_outcomes(make_outcomes(("S1", 0.5, 5.5, "clean")))  # corrected while held
    state.advance(pd.Timestamp("2026-01-10"))
    totals = state.rows.totals[("consignee", "a")]
    assert (totals["inspections"], totals["seizures"]) == (1, 0)
    state.add_outcomes(make_outcomes(("S1", 0.5, 6, "seized")))  # corrected once counted
    assert (totals["inspections"], totals["seizures"]) == (1, 1)
    state.add_outcomes(make_outcomes(("S1", 0.5, 6.5, "clean")))
    assert (totals["inspections"], totals["seizures"]) == (1, 0)
    day = state.rows.days[("consignee", "a")]
    assert sum(b["seizures"] or 0 for b in day.values()) == 0


def test_an_amendment_moves_the_inspections_not_the_declaration(world):
    """A shipment amended to another consignee keeps its place in the history as first
    declared, while its seizure counts on the consignee in force - whether the amendment
    comes before the result or after it, or twice - exactly as the rows of a snapshot of the
    first versions and the reports, with the versions in force then put in force (what a
    store materialised from its history does)."""
    shipments, outcomes = world
    first = shipments.iloc[[10, 11, 12]].assign(consignee_id=["CNS-A", "CNS-A", "CNS-A"])
    history = pd.concat([shipments.drop(first.index), first])
    seized = outcomes.iloc[:3].assign(
        shipment_id=first["shipment_id"].to_numpy(),
        inspected_at=first["declared_at"].to_numpy() + pd.Timedelta(hours=1),
        result_at=first["declared_at"].to_numpy() + pd.Timedelta(hours=2),
        result="seized",
        drug="cocaine",
        quantity_kg=1.0,
    )
    v2 = first.assign(consignee_id="CNS-B", origin_country="CO")
    v3 = first.iloc[[2]].assign(consignee_id="CNS-C")
    in_force = pd.concat([v2.iloc[:2], v3])
    now = shipments["declared_at"].max() + pd.Timedelta(days=60)

    live = OnlineReplay.from_history(shipments.drop(first.index), outcomes, as_of=now)
    live.add_shipments(first)
    live.add_outcomes(outcomes[outcomes["shipment_id"].isin(first["shipment_id"])])
    live.add_outcomes(seized.iloc[[0, 2]])
    live.amend_shipments(v2.iloc[[0]])  # amended after it was seized ...
    live.amend_shipments(v2.iloc[[1]])  # ... and before
    live.add_outcomes(seized.iloc[[1]])
    live.amend_shipments(v2.iloc[[2]])  # seized, then amended twice
    live.amend_shipments(v3)
    rebuilt = OnlineReplay.from_history(history, pd.concat([outcomes, seized]), as_of=now)
    rebuilt.amend_shipments(in_force)
    # (the three shipments come after later ones: their pairs' first_seen is counted order's)
    assert_same_tables(
        rebuilt.rows.tables(), live.rows.tables(), now.value, skip=("key_pairs.first_seen",)
    )
    probe = first.assign(
        shipment_id=["PA", "PB", "PC"],
        consignee_id=["CNS-A", "CNS-B", "CNS-C"],
        declared_at=now,
    )
    got = live.features(probe)
    pd.testing.assert_frame_equal(got, rebuilt.features(probe))
    assert got["consignee_seizures"].tolist() == [0.0, 2.0, 1.0]
    assert got["consignee_shipments_total"].tolist() == [3.0, 0.0, 0.0]
