"""Durability and scale-out of the store-backed service (issue 15),
with the real thing: ``cargorisk serve`` (-> ``bentoml serve``) processes on the real
PostgreSQL (a database of their own) and the embedded SQLite.

* ``kill -9`` under load: client threads score overlapping manifests (the same shipments in
  several requests, shared consignees and phones) and post inspection reports; the whole
  process group is killed mid-load and the service restarted. Every acknowledged (200)
  manifest and report is stored, and the aggregates after the restart equal, table by table
  and row by row, a fresh materialisation of what the store holds. PostgreSQL with
  ``--workers 2``, SQLite with one worker.
* Two replicas: two ``cargorisk serve`` processes on different ports and one PostgreSQL give
  the same request identical scores and reasons, and a report posted to one is in the
  features the other computes next.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from common.settings import load_settings
from features.contracts import validate_shipments
from serving.store import Store, read_aggregates
from serving.store.aggregates import materialize_history
from serving.store.tables import outcome_reports, scores
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
from tests.serving.test_online_aggregates import assert_same, canonical
from tests.serving.test_service_integration import keys_create

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

BASE = pd.Timestamp("2026-02-06 09:00")
"""Load shipments are declared from here on, a minute apart (the seed history ends before)."""


def _ship(n: int, **fields) -> dict:
    when = BASE + pd.Timedelta(minutes=n)
    record = {
        "shipment_id": f"L{n:05d}",
        "declared_at": when.isoformat(),
        "booked_at": None,
        "departed_at": None,
        "arrival_at": None,
        "consignee_id": f"CNS{n % 17}",
        "consignee_phone": f"+1 555 {n % 23:04d}",
        **fields,
    }
    return make_shipment(n, **record)


def _report(n: int) -> dict:
    """The (one) report on load shipment ``n``: a seizure on every fifth."""
    when = BASE + pd.Timedelta(minutes=n)
    return make_outcome(
        f"L{n:05d}",
        "seized" if n % 5 == 0 else "clean",
        inspected_at=(when + pd.Timedelta(hours=1)).isoformat(),
        result_at=(when + pd.Timedelta(hours=3)).isoformat(),
    )


@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history(n=300, days=30, seed=6)
    return ships, outs, train_tiny_model(ships, outs)


def _seed_dir(root: Path, ships: pd.DataFrame, outs: pd.DataFrame) -> Path:
    seed = root / "seed"
    seed.mkdir(parents=True, exist_ok=True)
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    return seed


def _tracking(home: Path, monkeypatch) -> str:
    monkeypatch.setenv("CARGORISK_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CARGORISK_CONFIG", raising=False)
    return load_settings().tracking_uri


def _same_as_fresh_materialisation(store: Store) -> None:
    """The aggregates the store kept event by event equal a materialisation of its history
    as of just after its latest event (every table, every row)."""
    ships, outs = store.history_frame(), store.outcomes_frame()
    latest = max(ships["declared_at"].max(), outs["result_at"].max())
    as_of = int(pd.Timestamp(latest).value) + 1
    kept = canonical(read_aggregates(store), as_of)
    materialize_history(store)
    fresh = canonical(read_aggregates(store), as_of)
    assert_same(fresh, kept)
    assert len(kept["key_totals"]) > 100 and len(kept["key_components"]) > 20


@pytest.fixture(params=["postgresql-2-workers", "sqlite-1-worker"])
def backend(request):
    if request.param.startswith("sqlite"):
        yield None, 1
    else:
        with postgres_database() as url:
            yield url, 2


def test_sigkill_under_load_keeps_every_ack_and_exact_aggregates(world, tmp_path, backend,
                                                                  monkeypatch):  # fmt: skip
    store_url, workers = backend
    ships, outs, model = world
    home = tmp_path / "home"
    tracking = _tracking(home, monkeypatch)
    register_model(model, tracking, "cargorisk-risk", tmp_path / "m")
    extra: dict = {"serve_seed_data": _seed_dir(tmp_path, ships, outs), "online_state": "store",
                   "drift_refresh_minutes": 0}  # fmt: skip
    if store_url:
        extra["store_url"] = store_url
    env = service_env(home, tracking, **extra)
    headers = {"Authorization": f"Bearer {keys_create(env, 'system', 'load')}"}

    acked_manifests: list[tuple[str, list[str]]] = []
    acked_reports: list[int] = []
    answered: list[int] = []
    stop_load = threading.Event()

    def client(worker: int, url: str) -> None:
        i = 0
        with httpx.Client(timeout=10, headers=headers) as http:
            while not stop_load.is_set():
                i += 1
                try:
                    if i % 3 == 0 and acked_manifests:
                        # a report on a shipment some client has had scored (maybe a re-send)
                        n = int(acked_manifests[-1 - worker % len(acked_manifests)][1][0][1:])
                        r = http.post(f"{url}/outcomes", json={"outcomes": [_report(n)]})
                        if r.status_code == 200:
                            acked_reports.append(n)
                    else:
                        # overlapping manifests: each shipment is in several clients' requests
                        start = 3 * i + 2 * worker
                        batch = [_ship(n) for n in range(start, start + 6)]
                        r = http.post(f"{url}/score/batch", json={"shipments": batch})
                        if r.status_code == 200:
                            acked_manifests.append(
                                (r.json()["request_id"], [s["shipment_id"] for s in batch])
                            )
                    answered.append(r.status_code)
                except httpx.HTTPError:
                    if stop_load.is_set():
                        return
                    time.sleep(0.05)

    with scoring_service(home, env, workers=workers) as (url, proc):
        threads = [threading.Thread(target=client, args=(w, url)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(6.0)
        stop(proc, sig=signal.SIGKILL)  # the whole process group, mid-request
        stop_load.set()
        for t in threads:
            t.join()
    print(f"{len(acked_manifests)} manifests and {len(acked_reports)} reports acknowledged; "
          f"answers {sorted(set(answered))}")  # fmt: skip
    assert len(acked_manifests) > 10 and len(acked_reports) > 3

    with (
        scoring_service(home, env, workers=workers) as (url, _),
        httpx.Client(timeout=30, headers=headers) as http,
    ):
        # the restarted service serves (and counts) a new manifest beside the re-sent ones
        more = [_ship(n) for n in range(5_000, 5_004)]
        r = http.post(f"{url}/score/batch", json={"shipments": more})
        assert r.status_code == 200, r.text
    # the service stopped: nothing writes while the tables are compared
    store = Store(store_url or load_settings().store)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(scores.c.request_id, scores.c.shipment_id)).all()
            reports = set(conn.execute(sa.select(outcome_reports.c.shipment_id)).scalars())
        stored: dict[str, set[str]] = {}
        for rid, sid in rows:
            stored.setdefault(rid, set()).add(sid)
        lost = [rid for rid, sids in acked_manifests if stored.get(rid) != set(sids)]
        assert not lost, f"{len(lost)} acknowledged manifests missing, e.g. {lost[:3]}"
        missing = {f"L{n:05d}" for n in acked_reports} - reports
        assert not missing, f"acknowledged reports missing: {sorted(missing)[:5]}"
        _same_as_fresh_materialisation(store)
    finally:
        store.close()


def _answer(body: dict) -> list[dict]:
    """What must be the same from any replica: each result without the percentile (ranked
    against the traffic that one process has seen lately)."""
    return [{k: v for k, v in r.items() if k != "percentile"} for r in body["results"]]


def _differ(x: dict, y: dict) -> list[str]:
    """The fields (and reasons' features) where two answers differ."""
    out = [k for k in x if k != "reasons" and x[k] != y[k]]
    rx = {r["feature"]: r for r in x.get("reasons") or []}
    ry = {r["feature"]: r for r in y.get("reasons") or []}
    out += [f"reason {f}: {rx.get(f)} / {ry.get(f)}" for f in sorted(set(rx) | set(ry))
            if rx.get(f) != ry.get(f)]  # fmt: skip
    return out


def test_two_replicas_on_one_postgresql(world, tmp_path, monkeypatch):
    from serving.engine import ScoringEngine
    from serving.model import LoadedModel

    ships, outs, model = world
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
    tracking = _tracking(homes[0], monkeypatch)
    register_model(model, tracking, "cargorisk-risk", tmp_path / "m")
    seed = _seed_dir(tmp_path, ships, outs)
    with postgres_database() as url:
        envs = [service_env(h, tracking, store_url=url, online_state="store",
                            serve_seed_data=seed, drift_refresh_minutes=0)
                for h in homes]  # fmt: skip
        headers = {"Authorization": f"Bearer {keys_create(envs[0], 'system', 'gate')}"}
        settings = load_settings(store_url=url, online_state="store", drift_refresh_minutes=0)
        loaded = LoadedModel(model, "cargorisk-risk", "1", "models:/cargorisk-risk/1",
                             dt.datetime(2026, 2, 5))  # fmt: skip
        with (
            scoring_service(homes[0], envs[0]) as (url_a, _),
            scoring_service(homes[1], envs[1]) as (url_b, _),
            httpx.Client(timeout=30, headers=headers) as http,
        ):
            manifest = {"shipments": [_ship(n) for n in range(8)]}

            def score(base: str, body: dict) -> list[dict]:
                r = http.post(f"{base}/score/batch", json={**body, "explain_top_share": 1})
                assert r.status_code == 200, r.text
                return _answer(r.json())

            first = score(url_a, manifest)
            on_b, on_a, on_b_again = (score(u, manifest) for u in (url_b, url_a, url_b))
            assert on_b == on_a == on_b_again
            assert all(r["reasons"] for r in on_b)  # reasons compared too, not just scores
            print(
                "manifest: first scoring vs re-send:",
                [_differ(x, y) for x, y in zip(first, on_b, strict=True)],
            )

            # a report posted to A is in the features B computes next: B's score of a probe
            # is the model's score of the probe's features with the seizure counted
            probe = _ship(100, consignee_id="CNS3", consignee_phone="+1 555 0003")
            frame = validate_shipments(pd.DataFrame([probe]).assign(
                declared_at=lambda f: pd.to_datetime(f["declared_at"])))  # fmt: skip
            engine = ScoringEngine(settings, model_loader=lambda: loaded)
            engine.start()
            try:
                before = engine.features(frame)
                seizure = {"outcomes": [_report(5) | {"shipment_id": "L00003"}]}
                assert _report(5)["result"] == "seized"
                r = http.post(f"{url_a}/outcomes", json=seizure)
                assert r.status_code == 200 and r.json()["recorded"] == 1, r.text
                after = engine.features(frame)
            finally:
                engine.store.close()
            assert after["consignee_seizures"].iloc[0] == before["consignee_seizures"].iloc[0] + 1
            (got,) = score(url_b, {"shipments": [probe]})
            want = float(model.raw_score(after)[0])
            assert np.isclose(got["raw_score"], want, rtol=1e-9, atol=1e-9), (got, want)
            # sent again, to each: the same answer from both
            (on_a,) = score(url_a, {"shipments": [probe]})
            (on_b,) = score(url_b, {"shipments": [probe]})
            assert on_a == on_b
            print("probe: first scoring == re-send:", _differ(got, on_a) or "same")
