"""``GET /performance`` through the whole service in process: officers and admins read the
outcome table and the recall estimate as JSON; a bad date is refused naming the field."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from serving.ui import worklist as wl
from tests.security.conftest import bearer
from tests.serving.conftest import make_outcome

DAY = dt.date(2026, 1, 2)


def test_performance_reports_recorded_picks_and_outcomes(service):
    http, store, keys = service["http"], service["store"], service["keys"]
    seeded = store.shipments_frame()
    ids = seeded.loc[seeded["declared_at"].dt.date == DAY, "shipment_id"].head(3).tolist()
    picks = pd.DataFrame(
        {
            "shipment_id": ids,
            "pick": ["model", "random", "random"],
            "probability": [1.0, 0.02, 0.02],
            "rank": [1, 40, 70],
            "score": [0.9, 0.1, 0.05],
            "model_version": "1",
        }
    )[list(wl.PICK_COLUMNS)]
    store.record_picks(DAY, "perf:", "", picks, scored=101, pool=100, caller="officer Kim")
    found = [
        make_outcome(ids[0], "seized", inspected_at="2026-01-03T10:00:00",
                     result_at="2026-01-04T10:00:00", selected_by="model"),
        make_outcome(ids[1], "seized", inspected_at="2026-01-03T11:00:00",
                     result_at="2026-01-05T11:00:00", selected_by="random"),
        make_outcome(ids[2], "clean", inspected_at="2026-01-03T12:00:00",
                     result_at="2026-01-04T12:00:00", selected_by="random"),
    ]  # fmt: skip
    r = http.post("/outcomes", json={"outcomes": found}, headers=bearer(keys["officer"]))
    assert r.status_code == 200, r.text
    r = http.get("/performance", params={"since": "2026-01-02"}, headers=bearer(keys["admin"]))
    assert r.status_code == 200, r.text
    body = r.json()
    (estimate,) = [e for e in body["recall"] if e["scope"] == "perf:"]
    # 1 seizure in 2 random picks of 100: 1 / 0.02 = 50 below the line; 1 found above it
    assert estimate["below_seizures"] == 50.0 and estimate["recall"] == 1 / 51
    assert estimate["model_seizures"] == 1 and len(estimate["recall_interval"]) == 2
    weeks = {(row["selected_by"], row["week"]) for row in body["rows"]}
    assert {("model", "2026-W01"), ("random", "2026-W01")} <= weeks
    assert body["since"] == "2026-01-02" and body["until"] is None


def test_performance_refuses_bad_dates_naming_the_field(service):
    http, key = service["http"], service["keys"]["officer"]
    r = http.get("/performance", params={"since": "02/01/2026"}, headers=bearer(key))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    assert r.json()["error"].startswith("since: not a date")
    r = http.get(
        "/performance", params={"since": "2026-02-01", "until": "2026-01-01"}, headers=bearer(key)
    )
    assert r.status_code == 422 and r.json()["error"].startswith("until:")
