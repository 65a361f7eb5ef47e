"""One shipment, one explanation: the API, the worklist's shipment page and the batch
``cargorisk score`` all explain through ``ScoringModel.explain``, so the same shipment gets the
same reasons - same features, same order, same words - wherever it is looked at."""

from __future__ import annotations

import contextlib
import html
import os
import re
import time

import pandas as pd
import pytest
from starlette.testclient import TestClient

from common.settings import load_settings
from serving.store import Store
from tests.serving.conftest import make_shipment
from tests.serving.helpers import (
    register_model,
    service_app,
    service_env,
    tiny_history,
    train_tiny_model,
)


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``os.environ`` set to ``env`` for the block (the in-process service reads its
    settings from the environment when it starts)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _new_shipments(n: int) -> list[dict]:
    """Shipments declared months after the history (every outcome of it known by then, as of
    their declaration and as of now alike), half from the risky route."""
    start = pd.Timestamp("2026-06-01 08:00")
    out = []
    for i in range(n):
        declared = start + pd.Timedelta(hours=3 * i)
        risky = i % 2 == 0
        out.append(
            make_shipment(
                50_000 + i,
                shipment_id=f"N{i:03d}",
                declared_at=declared.isoformat(),
                booked_at=(declared - pd.Timedelta(days=20)).isoformat(),
                departed_at=(declared - pd.Timedelta(days=15)).isoformat(),
                arrival_at=(declared + pd.Timedelta(days=1)).isoformat(),
                origin_country="EC" if risky else "DE",
                departure_country="EC" if risky else "DE",
                container_type="reefer" if risky else "dry",
                consignee_id=f"NEWC{i}" if risky else f"CNS{i % 40}",
                hs_code="080390" if risky else "847130",
                payment_method="cash" if risky else "bank_transfer",
            )
        )
    return out


def _page_reasons(page: str) -> list[str]:
    block = re.search(r'<ul class="reasons" id="reasons">(.*?)</ul>', page, re.S)
    assert block, "the shipment page shows no reasons"
    return [html.unescape(t) for t in re.findall(r'<span class="text">(.*?)</span>', block[1])]


def _file_reasons(cell: str) -> list[str]:
    return [re.sub(r" \([+-]\d+\.\d\d\)$", "", part) for part in cell.split("; ")]


@pytest.mark.slow
def test_a_shipment_has_the_same_reasons_in_the_api_the_ui_and_the_batch_job(home, tmp_path):
    from cargorisk.cli import main

    ships, outs = tiny_history(n=400)
    model = train_tiny_model(ships, outs)
    settings = load_settings()
    register_model(model, settings.tracking_uri, settings.model_name, tmp_path / "art")
    seed = tmp_path / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    new = _new_shipments(8)
    store = Store(settings.store)
    gate = store.create_key("gate-1", "system")
    officer = store.create_key("Officer Kim", "officer")
    store.close()

    served: dict[str, list[str]] = {}
    shown: dict[str, list[str]] = {}
    env = service_env(home, settings.tracking_uri, serve_seed_data=seed)
    with _environment(env), TestClient(service_app()) as http:
        deadline = time.monotonic() + 120
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the in-process service did not become ready"
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {gate}"}
        for i, shipment in enumerate(new):
            if i < len(new) // 2:  # explained when scored: the page shows the served reasons
                r = http.post("/score", json={"shipment": shipment}, headers=auth)
                assert r.status_code == 200, r.text
                served[shipment["shipment_id"]] = [x["text"] for x in r.json()["reasons"]]
            else:  # scored without reasons: the page explains it on opening
                body = {"shipments": [shipment], "explain_top_share": 0}
                r = http.post("/score/batch", json=body, headers=auth)
                assert r.status_code == 200, r.text
                assert r.json()["results"][0]["reasons"] is None
        page = http.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        r = http.post(
            "/ui/login",
            data={"csrf": csrf, "method": "key", "api_key": officer},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        for shipment in new:
            page = http.get(f"/ui/shipments/{shipment['shipment_id']}")
            assert page.status_code == 200
            shown[shipment["shipment_id"]] = _page_reasons(page.text)
            computed = "Computed on opening this page" in page.text
            assert computed == (shipment["shipment_id"] not in served)
        # explained on opening: from the store's aggregates as of then, as the API explains
        # the same shipment re-sent at that moment
        for shipment in new:
            if shipment["shipment_id"] in served:
                continue
            r = http.post("/score", json={"shipment": shipment}, headers=auth)
            assert r.status_code == 200, r.text
            again = [x["text"] for x in r.json()["reasons"]]
            assert again == shown[shipment["shipment_id"]], shipment["shipment_id"]

    batch_input = tmp_path / "new.csv"
    pd.DataFrame(new).to_csv(batch_input, index=False)
    output = tmp_path / "scores.csv"
    args = ["score", "--input", str(batch_input), "--output", str(output)]
    assert main([*args, "--history", str(seed), "--explain-top", "100"]) == 0
    written = pd.read_csv(output, dtype=str).set_index("shipment_id")["reasons"]
    in_file = {sid: _file_reasons(cell) for sid, cell in written.items()}

    for sid in served:
        assert served[sid] == shown[sid] == in_file[sid], sid
    # a shipment scored without reasons is explained when its page opens, from the store's
    # aggregates as of then, which count the shipment itself and what was declared since
    # (issue 15: docs/serving.md "Reasons computed on opening"): the batch job, which
    # describes it as of its declaration, may then explain other features; both give five
    for sid in shown.keys() - served.keys():
        assert len(shown[sid]) == len(in_file[sid]) == 5, sid
    assert all(len(texts) == 5 for texts in in_file.values())
