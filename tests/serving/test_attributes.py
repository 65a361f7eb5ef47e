"""Issue 11 on the serving side: a customs service's own attributes travel through the API, the
store, the features and the reasons; blank fields and odd values are scored; what a positive
means is the model's; the worklist works by stream."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3

import pandas as pd
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from features.catalog import reason_text
from serving.engine import RequestError, ScoringEngine
from serving.model import LoadedModel
from serving.schemas import ShipmentIn
from serving.store import Caller, Store
from serving.ui import worklist as wl
from serving.ui.app import create_app
from tests.serving.conftest import make_shipment
from tests.serving.helpers import ATTRIBUTES, tiny_history, train_tiny_model, with_attributes

SYSTEM = Caller("gate-7", "system", 1)
NOW = dt.datetime(2026, 2, 5, 9, 0)
FRAUD = {"name": "duty fraud", "positive": "fraud finding"}


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history()
    ships = with_attributes(ships, outs)
    return ships, outs, train_tiny_model(ships, outs, attributes=ATTRIBUTES, label=FRAUD)


def _engine(home, ships, outs, model, version="1"):
    seed = home / "seed"
    seed.mkdir(parents=True, exist_ok=True)
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        serve_seed_data=seed,
        max_batch=50,
    )
    loaded = LoadedModel(model, "cargorisk-risk", version, f"models:/x/{version}", NOW)
    holder = {"model": loaded}
    eng = ScoringEngine(settings, model_loader=lambda: holder["model"])
    eng.start()
    eng.test_models = holder
    return eng


@pytest.fixture(scope="module")
def engine(world, tmp_path_factory):
    ships, outs, model = world
    eng = _engine(tmp_path_factory.mktemp("attr-home"), ships, outs, model)
    yield eng
    eng.store.close()


def _ship(i, **kw):
    kw.setdefault("declared_at", (NOW + dt.timedelta(minutes=i)).isoformat())
    kw.setdefault("booked_at", None)
    kw.setdefault("departed_at", None)
    kw.setdefault("arrival_at", None)
    return ShipmentIn(**make_shipment(30_000 + i, **kw))


def test_the_api_body_checks_attribute_names_and_value_types():
    ok = _ship(1, attributes={"import_type": "B2", "tax_rate": 8})
    assert ok.attributes == {"import_type": "B2", "tax_rate": 8}
    for bad, where in [
        ({"Import Type": "B2"}, "Import Type"),
        ({"tax_rate": True}, "tax_rate"),
        ({"tax_rate": [8]}, "tax_rate"),
        ({"import_type": "B2\x00"}, "import_type"),
        ({"import_type": "x" * 201}, "import_type"),
    ]:
        with pytest.raises(ValidationError) as info:
            _ship(1, attributes=bad)
        assert where in str(info.value.errors()[0]["loc"]), info.value.errors()[0]


def test_attributes_are_features_reasons_and_stored(engine):
    _, _, [r] = engine.score(
        [_ship(2, origin_country="EC", attributes={"import_type": "B2", "tax_rate": 8})],
        caller=SYSTEM,
        top_reasons=500,
    )
    by_feature = {x["feature"]: x for x in r["reasons"]}
    assert by_feature["attr.import_type"]["text"] == "import type B2"
    assert by_feature["attr.import_type"]["value"] == "B2"
    stored = engine.store.shipment(r["shipment_id"])
    assert stored["attributes"] == {"import_type": "B2", "tax_rate": 8.0}
    view = engine.shipment_view(r["shipment_id"])
    assert view["shipment"]["attributes"] == {"import_type": "B2", "tax_rate": 8.0}
    frame = engine.store.shipments_frame()
    row = frame.loc[frame["shipment_id"] == r["shipment_id"]].iloc[0]
    assert row["attr.import_type"] == "B2" and row["attr.tax_rate"] == 8.0


def test_reasons_speak_of_the_models_label_never_of_seizures(engine):
    _, _, results = engine.score(
        [_ship(10 + i, origin_country="EC") for i in range(5)], caller=SYSTEM, top_reasons=500
    )
    texts = [x["text"] for r in results for x in r["reasons"]]
    assert texts and not any("seizure" in t for t in texts)
    assert any("fraud finding" in t for t in texts)


def test_a_missing_attribute_is_missing_and_an_unknown_one_is_named(engine):
    _, _, [r] = engine.score([_ship(20, attributes={"tax_rate": 13})], caller=SYSTEM)
    assert engine.store.shipment(r["shipment_id"])["attributes"] == {"tax_rate": 13.0}
    _, _, [r] = engine.score([_ship(21)], caller=SYSTEM)
    assert engine.store.shipment(r["shipment_id"])["attributes"] == {}
    before = engine.store.count("shipments")
    with pytest.raises(RequestError) as info:
        engine.score([_ship(22, attributes={"office": "30"})], caller=SYSTEM)
    assert info.value.loc == ["shipment", "attributes", "office"]
    assert "not an attribute of this model" in str(info.value)
    assert "import_type" in str(info.value)  # the known ones are listed
    with pytest.raises(RequestError) as info:
        engine.score([_ship(23), _ship(24, attributes={"tax_rate": "high"})], caller=SYSTEM)
    assert info.value.loc == ["shipments", 1, "attributes", "tax_rate"]
    assert "must be a number" in str(info.value)
    assert engine.store.count("shipments") == before  # nothing of a refused request stored


def test_a_model_without_attributes_refuses_them(tmp_path):
    ships, outs = tiny_history(n=300)
    eng = _engine(tmp_path, ships, outs, train_tiny_model(ships, outs))
    try:
        with pytest.raises(RequestError) as info:
            eng.score([_ship(30, attributes={"import_type": "B2"})], caller=SYSTEM)
        assert info.value.loc == ["shipment", "attributes", "import_type"]
        assert "known: none" in str(info.value)
        _, _, [r] = eng.score([_ship(31)], caller=SYSTEM)  # without: scored as before
        assert 0 <= r["score"] <= 1
    finally:
        eng.store.close()


def test_blank_fields_odd_values_and_every_mode_are_scored(engine):
    bare = {
        "shipment_id": "BARE-1",
        "mode": "rail",
        "declared_at": (NOW + dt.timedelta(hours=2)).isoformat(),
    }
    odd = [
        ShipmentIn(**bare),
        _ship(40, mode="post", gross_weight_kg=0.0, declared_value=0.0, declared_value_usd=0.0),
        _ship(41, mode="road", gross_weight_kg=2_400_000.0, shipper_id=None, shipper_name=None),
        _ship(42, mode="inland_waterway", packages=0, hs_code=None, consignee_id=None),
    ]
    _, _, results = engine.score(odd, caller=SYSTEM, top_reasons=500)
    assert len(results) == 4 and all(0 <= r["score"] <= 1 for r in results)
    assert engine.store.shipment("BARE-1")["shipper_id"] is None
    stored = engine.store.shipments_frame()
    ids = ["BARE-1", *(s.shipment_id for s in odd[1:])]
    feats = engine.features(stored.set_index("shipment_id").loc[ids].reset_index())
    flags = feats.set_index("shipment_id")[
        ["weight_zero", "weight_bulk", "value_zero", "shipper_not_declared"]
    ]
    assert flags.loc[odd[1].shipment_id, "weight_zero"] == 1.0
    assert flags.loc[odd[1].shipment_id, "value_zero"] == 1.0
    assert flags.loc[odd[2].shipment_id, "weight_bulk"] == 1.0
    assert flags.loc[odd[2].shipment_id, "shipper_not_declared"] == 1.0
    assert reason_text("weight_zero", 1.0) == "declared weight 0 kg"


def test_a_restarted_engine_reads_the_attributes_back(engine, world, tmp_path):
    _, _, [r] = engine.score(
        [_ship(50, attributes={"import_type": "B2", "tax_rate": 0})], caller=SYSTEM
    )
    shipments = engine.store.shipments_frame()
    mine = shipments[shipments["shipment_id"] == r["shipment_id"]]
    feats = engine.features(mine)
    assert feats["attr.import_type"].tolist() == ["B2"]
    assert feats["attr.tax_rate"].tolist() == [0.0]


def test_an_old_store_gains_the_attributes_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE shipments (seq INTEGER PRIMARY KEY, shipment_id TEXT NOT NULL, "
            "mode TEXT NOT NULL, declared_at DATETIME NOT NULL, received_at DATETIME NOT NULL)"
        )
        conn.execute(
            "INSERT INTO shipments (shipment_id, mode, declared_at, received_at) "
            "VALUES ('OLD-1', 'sea', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    store = Store(f"sqlite:///{path}")
    try:
        with sqlite3.connect(path) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(shipments)")}
        assert "attributes" in columns
    finally:
        store.close()


def test_streams_scope_the_worklist():
    frame = pd.DataFrame(
        {
            "mode": ["sea", "inland_waterway", "express", "post", "rail", "air"],
            "discharge_port": ["KRPUS"] * 6,
        }
    )
    assert wl.scope(frame, wl.Filters(stream="sea"))["mode"].tolist() == [
        "sea",
        "inland_waterway",
    ]
    assert wl.scope(frame, wl.Filters(stream="express"))["mode"].tolist() == ["express", "post"]
    assert wl.scope(frame, wl.Filters(stream="land"))["mode"].tolist() == ["rail"]
    with pytest.raises(wl.FilterError) as info:
        wl.Filters.from_query({"stream": "ship"})
    assert info.value.field == "stream"
    with pytest.raises(wl.FilterError) as info:
        wl.Filters.from_query({"stream": "sea", "mode": "air"})
    assert info.value.field == "mode"
    # a mode alone keeps the scope key (and the random picks) it always had
    assert wl.Filters(mode="sea").scope_key == "sea"
    assert wl.Filters(stream="sea").scope_key != wl.Filters(mode="sea").scope_key


def _signed_in(engine) -> TestClient:
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: engine))])
    client = TestClient(host, base_url="http://testserver")
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    key = engine.store.create_key("Officer Lee", "officer")
    r = client.post(
        "/ui/login",
        data={"csrf": csrf, "method": "key", "api_key": key},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def test_the_shipment_page_shows_blanks_attributes_and_the_label(engine):
    _, _, [r] = engine.score(
        [
            _ship(
                60,
                shipper_id=None,
                shipper_name=None,
                hs_code=None,
                attributes={"import_type": "B2", "tax_rate": 8},
            )
        ],
        caller=SYSTEM,
    )
    with _signed_in(engine) as client:
        page = client.get(f"/ui/shipments/{r['shipment_id']}")
        assert page.status_code == 200
        text = page.text
        assert re.search(r"<dt>Shipper ID</dt><dd><span class=\"muted\">not declared", text)
        assert re.search(r"<dt>HS code</dt><dd><span class=\"muted\">not declared", text)
        attributes = re.search(r'<dl class="manifest" id="attributes">(.*?)</dl>', text).group(1)
        assert "<dt>Import type</dt><dd>B2</dd>" in attributes
        assert "<dt>Tax rate</dt><dd>8</dd>" in attributes
        assert "ends in a fraud finding (duty fraud)" in text
        assert "Narcotics seized" not in text and "Positive: fraud finding" in text
        model_page = client.get("/ui/model")
        assert 'id="label-name">duty fraud<' in model_page.text
        worklist = client.get("/ui/worklist?day=2026-02-05&stream=express")
        assert worklist.status_code == 200
        assert "express and post (parcels)" in worklist.text
        bad = client.get("/ui/worklist?stream=ship")
        assert bad.status_code == 400 and "stream" in bad.text


def test_records_keep_their_attributes_as_json(engine):
    _, _, [r] = engine.score(
        [_ship(70, attributes={"import_type": " C3 ", "tax_rate": 5.5})], caller=SYSTEM
    )
    with engine.store.engine.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT attributes FROM shipments WHERE shipment_id = ?", (r["shipment_id"],)
        ).scalar()
    assert json.loads(raw) == {"import_type": "C3", "tax_rate": 5.5}
