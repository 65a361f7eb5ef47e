"""Nothing acknowledged is lost: SIGKILL the service under load, restart it, and find every
response the clients received in the store (SQLite, and PostgreSQL where it is reachable)."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from common.settings import load_settings
from serving.store import Store
from tests.processes import postgres_database
from tests.serving.conftest import make_outcome, make_shipment
from tests.serving.helpers import (
    register_model,
    scoring_service,
    service_env,
    stop,
    tiny_history,
    train_tiny_model,
)
from tests.serving.test_service_integration import keys_create

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield None
    else:
        with postgres_database() as url:
            yield url


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path, store_url, monkeypatch):
    home = tmp_path / "home"
    seed = tmp_path / "seed"
    seed.mkdir()
    ships, outs = tiny_history(n=400)
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    monkeypatch.setenv("CARGORISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings()
    tracking = settings.tracking_uri
    register_model(train_tiny_model(ships, outs), tracking, settings.model_name, tmp_path / "m")
    extra = {"serve_seed_data": seed}
    if store_url:
        extra["store_url"] = store_url
    env = service_env(home, tracking, **extra)
    key = keys_create(env, "system", "load")
    headers = {"Authorization": f"Bearer {key}"}

    acked_scores: list[tuple[str, list[str]]] = []
    acked_outcomes: list[str] = []
    stop_load = threading.Event()

    def client(worker: int, url: str) -> None:
        i = 0
        with httpx.Client(timeout=10, headers=headers) as http:
            while not stop_load.is_set():
                i += 1
                sid = f"K{worker}-{i:06d}"
                try:
                    if i % 7 == 0:
                        batch = [
                            make_shipment(
                                i,
                                shipment_id=f"{sid}-{j}",
                                declared_at=f"2026-02-06T10:{j:02d}:00",
                                booked_at=None,
                                departed_at=None,
                                arrival_at=None,
                            )
                            for j in range(5)
                        ]
                        r = http.post(f"{url}/score/batch", json={"shipments": batch})
                        if r.status_code == 200:
                            acked_scores.append(
                                (r.json()["request_id"], [x["shipment_id"] for x in batch])
                            )
                    elif i % 5 == 0 and acked_scores:
                        target = acked_scores[-1][1][0]
                        out = make_outcome(
                            target,
                            "clean",
                            inspected_at=f"2026-02-07T{worker:02d}:{i % 60:02d}:00",
                            result_at="2026-02-08T00:00:00",
                        )
                        r = http.post(f"{url}/outcomes", json={"outcomes": [out]})
                        if r.status_code == 200:
                            acked_outcomes.append(r.json()["request_id"])
                    else:
                        ship = make_shipment(
                            i,
                            shipment_id=sid,
                            declared_at="2026-02-06T09:00:00",
                            booked_at=None,
                            departed_at=None,
                            arrival_at=None,
                        )
                        r = http.post(f"{url}/score", json={"shipment": ship})
                        if r.status_code == 200:
                            acked_scores.append((r.json()["request_id"], [sid]))
                except httpx.HTTPError:
                    if stop_load.is_set():
                        return
                    time.sleep(0.05)

    with scoring_service(home, env) as (url, proc):
        threads = [threading.Thread(target=client, args=(w, url)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(4.0)
        stop(proc, sig=signal.SIGKILL)  # the whole process group, mid-request
        stop_load.set()
        for t in threads:
            t.join()
    assert len(acked_scores) > 20, "the load generator got too few answers"

    with scoring_service(home, env) as (url, _):
        store = Store(store_url or load_settings().store)
        try:
            with store.engine.connect() as conn:
                from serving.store import audit_events, scores

                rows = conn.execute(sa.select(scores.c.request_id, scores.c.shipment_id)).all()
                events = conn.execute(sa.select(audit_events.c.request_id)).scalars().all()
            stored = {}
            for rid, sid in rows:
                stored.setdefault(rid, set()).add(sid)
            lost = [rid for rid, sids in acked_scores if stored.get(rid) != set(sids)]
            assert not lost, f"{len(lost)} acknowledged scores missing, e.g. {lost[:3]}"
            missing_outcomes = set(acked_outcomes) - set(events)
            assert not missing_outcomes
            for _, sids in acked_scores[-5:]:
                assert store.shipment(sids[0]) is not None
        finally:
            store.close()
        officer = keys_create(env, "officer", "check")
        sid = acked_scores[-1][1][0]
        view = httpx.get(f"{url}/shipments/{sid}", headers={"X-API-Key": officer})
        assert view.status_code == 200 and view.json()["latest_score"]["request_id"]
