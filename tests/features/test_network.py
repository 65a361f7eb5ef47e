"""Network features: consignees linked by shared phones, addresses and recipient codes,
offline and online (the rows kept up to date by deltas, :func:`helpers.both_ways`). What an
officer sees of the network (the views) is tests/serving/test_store_views.py."""

from __future__ import annotations

import math

import pytest

from features.network import LinkGraph
from tests.features.helpers import both_ways, make_outcomes, make_shipments


@pytest.fixture(scope="module")
def ring():
    """A (phone P1) -> B (phone P1, then address X) -> C (address X) -> D (phone P1); A's
    first shipment is seized, known on day 2.5; A ships again on day 5."""
    shipments = make_shipments(
        {"day": 0, "consignee_id": "A", "consignee_phone": "+44 20 1111"},
        {"day": 1, "consignee_id": "B", "consignee_phone": "+44 (20) 1111"},
        {"day": 2, "consignee_id": "B", "consignee_address": "7 Dock St"},
        {"day": 3, "consignee_id": "C", "consignee_address": "7 DOCK ST."},
        {"day": 4, "consignee_id": "D", "consignee_phone": "+44201111"},
        {"day": 5, "consignee_id": "a", "consignee_phone": "+44 20 1111"},
        {"day": 6, "consignee_id": "E", "consignee_phone": "+1 999"},
    )
    outcomes = make_outcomes(("S1", 0.5, 2.5, "seized"), ("S3", 2.1, 2.2, "clean"))
    return shipments, outcomes


@pytest.fixture(scope="module")
def ring_features(ring):
    return both_ways(*ring)


def test_one_hop_through_shared_identifiers(ring_features):
    f = ring_features
    assert f.loc["S1", "phone_other_consignees"] == 0
    assert f.loc["S2", "phone_other_consignees"] == 1  # A
    assert f.loc["S2", "phone_linked_seizures"] == 0  # A's seizure not known on day 1
    assert f.loc["S4", "address_other_consignees"] == 1  # B
    assert f.loc["S4", "address_linked_seizures"] == 0
    assert f.loc["S5", "phone_other_consignees"] == 2  # A, B
    assert f.loc["S5", "phone_linked_seizures"] == 1  # A's, known on day 2.5
    # A itself: its own seizure is not a *linked* one, its own earlier use not "other"
    assert f.loc["S6", "phone_other_consignees"] == 2  # B, D
    assert f.loc["S6", "phone_linked_seizures"] == 0
    assert math.isnan(f.loc["S1", "address_other_consignees"])  # no address declared


def test_whole_network(ring_features):
    f = ring_features
    assert (f.loc["S1", "network_size"], f.loc["S1", "network_seizures"]) == (1, 0)
    assert (f.loc["S2", "network_size"], f.loc["S2", "network_seizures"]) == (2, 0)
    # C (new) joins A-B through the address B declared on day 2; A's seizure is two hops away
    assert (f.loc["S4", "network_size"], f.loc["S4", "network_seizures"]) == (3, 1)
    assert (f.loc["S5", "network_size"], f.loc["S5", "network_seizures"]) == (4, 1)
    # A's own seizure does not count as a seizure "in its network"
    assert (f.loc["S6", "network_size"], f.loc["S6", "network_seizures"]) == (4, 0)
    assert (f.loc["S7", "network_size"], f.loc["S7", "network_seizures"]) == (1, 0)


def test_link_graph_merges_counts():
    g = LinkGraph()
    g.grow(4)  # consignees 0, 1; identifiers 2, 3
    g.add_shipment(0, (2,), True)
    g.add_seizure(0)
    g.add_shipment(1, (3,), True)
    assert g.component(1, (3,), True) == (1.0, 0.0)
    g.add_shipment(1, (2,), False)
    assert g.component(1, (), True) == (2.0, 1.0)
    assert g.component(0, (), True) == (2.0, 0.0)


def test_a_shipment_without_consignee_joins_no_network():
    """A blank consignee is nobody: its identifiers link no party and a seizure on it lands in
    no consignee's network (the one-hop count through its phone still sees the seizure)."""
    shipments = make_shipments(
        {"day": 0, "consignee_id": "A", "consignee_phone": "+1 111"},
        {"day": 1, "consignee_id": None, "consignee_phone": "+1 999"},
        {"day": 3, "consignee_id": "B", "consignee_phone": "+1 999"},
        {"day": 4, "consignee_id": "  ", "consignee_phone": "+1 111"},
        {"day": 5, "consignee_id": "A", "consignee_phone": "+1 111"},
    )
    outcomes = make_outcomes(("S2", 1.1, 2, "seized"), ("S4", 4.1, 4.2, "seized"))
    f = both_ways(shipments, outcomes)
    assert (f.loc["S2", "network_size"], f.loc["S2", "network_seizures"]) == (1, 0)
    assert (f.loc["S3", "network_size"], f.loc["S3", "network_seizures"]) == (1, 0)
    assert f.loc["S3", "phone_linked_seizures"] == 1
    assert (f.loc["S5", "network_size"], f.loc["S5", "network_seizures"]) == (1, 0)
    # what an officer sees of A (no linked party): tests/serving/test_store_views.py


# -- the persistent union-find against the one-by-one replay -----------------------------------
def replay_components(p, outcome_rows, outcome_known, outcome_seized):
    """The reference: every shipment replayed one by one through :class:`LinkGraph` (what
    ``offline_components`` was before the persistent union-find, and what the online state
    does), answered before the shipments of its instant are added."""
    import numpy as np

    from features.network import IDENTIFIERS, link_nodes

    n = len(p["t"])
    node, n_nodes = link_nodes(p)
    graph = LinkGraph()
    graph.grow(n_nodes)
    cons = node["consignee"].tolist()
    ids = list(zip(*(node[i].tolist() for i in IDENTIFIERS), strict=True)) if n else []
    times = p["t"].tolist()
    order = np.argsort(p["t"], kind="stable").tolist()
    seized_rows = outcome_rows[outcome_seized]
    seized_known = outcome_known[outcome_seized]
    s_order = np.argsort(seized_known, kind="stable")
    s_cons = [cons[r] for r in seized_rows[s_order].tolist()]
    s_known = seized_known[s_order].tolist()
    size, seized = np.empty(n), np.empty(n)
    is_party = [False] * n_nodes
    i = j = 0
    while i < n:
        now = times[order[i]]
        while j < len(s_known) and s_known[j] < now:
            graph.add_seizure(s_cons[j])
            j += 1
        k = i
        while k < n and times[order[k]] == now:
            r = order[k]
            c = cons[r]
            size[r], seized[r] = graph.component(c, ids[r], c >= 0 and is_party[c])
            k += 1
        for r in order[i:k]:
            c = cons[r]
            if c >= 0:
                graph.add_shipment(c, ids[r], not is_party[c])
                is_party[c] = True
        i = k
    return {"net:size": size, "net:seizures": seized}


def network_world(n: int, seed: int):
    """Shipments sharing few phones, addresses and recipient codes among many consignees (so
    components grow and merge), ties at one instant, blank consignees and identifiers, and
    seizures known at, before and long after later declarations."""
    import numpy as np
    import pandas as pd

    from tests.features.helpers import random_world

    shipments, outcomes = random_world(n, days=30, seed=seed, messy=True)
    rng = np.random.default_rng(seed)

    def few(prefix: str, k: int, blank: float):
        values = np.array([f"{prefix}{i}" for i in rng.zipf(1.4, n) % k], dtype=object)
        values[rng.random(n) < blank] = None
        return values

    shipments["consignee_phone"] = few("+82 10 ", max(3, n // 20), 0.3)
    shipments["consignee_address"] = few("Dock St ", max(3, n // 15), 0.3)
    shipments["recipient_customs_code"] = few("P", max(3, n // 25), 0.5)
    seized = outcomes.sample(frac=0.5, random_state=seed).index
    outcomes.loc[seized, "result"] = "seized"
    return shipments, pd.concat([outcomes, outcomes.iloc[:5]], ignore_index=True)


@pytest.mark.parametrize(
    ("n", "seed", "block"), [(40, 1, None), (700, 2, None), (3000, 3, None), (3000, 4, 97)]
)
def test_persistent_union_find_equals_the_replay(n, seed, block, monkeypatch):
    import numpy as np

    from features import manifest, network
    from features.pipeline import check_outcomes, check_shipments, outcome_events

    if block:  # shipments answered in many blocks, as at scale
        monkeypatch.setattr(network, "_QUERY_BLOCK", block)
    shipments, outcomes = network_world(n, seed)
    s = check_shipments(shipments)
    p = manifest.prepare(s)
    rows, known, seized = outcome_events(check_outcomes(outcomes), s["shipment_id"], p["t"])
    assert seized.sum() > 0
    expected = replay_components(p, rows, known, seized)
    got = network.offline_components(p, rows, known, seized)
    assert expected["net:size"].max() > 3  # real networks, not singletons
    assert expected["net:seizures"].max() > 0
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_persistent_union_find_on_the_ring_and_nothing(ring):
    import numpy as np

    from features import manifest, network
    from features.pipeline import check_outcomes, check_shipments, outcome_events

    shipments, outcomes = ring
    for frame in (shipments, shipments.iloc[:0]):
        s = check_shipments(frame)
        p = manifest.prepare(s)
        rows, known, seized = outcome_events(check_outcomes(outcomes), s["shipment_id"], p["t"])
        expected = replay_components(p, rows, known, seized)
        got = network.offline_components(p, rows, known, seized)
        for name, values in expected.items():
            np.testing.assert_array_equal(got[name], values, err_msg=name)


# -- the components from the engine's tables (the lazy training frame's path) -------------------
def engine_run(shipments, outcomes, tmp_path, kept_rows=None):
    """:func:`features.network.engine_components` on DuckDB tables loaded from Parquet files
    of ``shipments`` / ``outcomes``, for ``kept_rows`` (row numbers; None = every one)."""
    import pyarrow as pa

    from features import engine, network

    shipments.to_parquet(tmp_path / "shipments.parquet", index=False)
    outcomes.to_parquet(tmp_path / "outcomes.parquet", index=False)
    settings = engine.EngineSettings(threads=1, memory_limit="256MB")
    with engine.duckdb_connection(settings) as con:
        engine.load_parquet(con, tmp_path / "shipments.parquet", tmp_path / "outcomes.parquet")
        if kept_rows is None:
            return network.engine_components(con)
        con.register("chosen", pa.table({"row": pa.array(kept_rows, type=pa.int64())}))
        return network.engine_components(con, "chosen")


def sorted_prepared(shipments, outcomes):
    """Prepared shipments in the engine's row order ``(declared_at, shipment_id)`` and their
    outcome events."""
    from features import manifest
    from features.pipeline import check_outcomes, check_shipments, outcome_events

    s = check_shipments(shipments).sort_values(["declared_at", "shipment_id"], kind="stable")
    s = s.reset_index(drop=True)
    p = manifest.prepare(s)
    return p, outcome_events(check_outcomes(outcomes), s["shipment_id"], p["t"])


@pytest.mark.parametrize(("n", "seed", "block"), [(700, 2, None), (3000, 5, 89)])
def test_engine_components_equal_the_replay(n, seed, block, tmp_path, monkeypatch):
    """The engine's path (links de-duplicated and sorted by DuckDB, streamed in batches,
    shipments answered block by block as DuckDB returns them, in no particular order) gives
    the one-by-one replay's values for every shipment and for a chosen subset."""
    import numpy as np

    from features import network

    if block:  # many change batches and answer blocks, as at scale
        monkeypatch.setattr(network, "_QUERY_BLOCK", block)
        monkeypatch.setattr(network, "_EVENT_BLOCK", block)
    shipments, outcomes = network_world(n, seed)
    p, (rows, known, seized) = sorted_prepared(shipments, outcomes)
    expected = replay_components(p, rows, known, seized)
    assert expected["net:size"].max() > 3 and expected["net:seizures"].max() > 0
    got = engine_run(shipments, outcomes, tmp_path)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    chosen = np.sort(np.random.default_rng(seed).choice(n, n // 7, replace=False))
    got = engine_run(shipments, outcomes, tmp_path, chosen)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values[chosen], err_msg=name)


def test_engine_components_on_the_ring_and_without_links(ring, tmp_path):
    import numpy as np

    shipments, outcomes = ring
    p, events = sorted_prepared(shipments, outcomes)
    expected = replay_components(p, *events)
    got = engine_run(shipments, outcomes, tmp_path)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    # no identifier declared at all: every shipment its consignee's own network
    bare = shipments.assign(consignee_phone=None, consignee_address=None)
    p, events = sorted_prepared(bare, outcomes)
    expected = replay_components(p, *events)
    got = engine_run(bare, outcomes, tmp_path)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
