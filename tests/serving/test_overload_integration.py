"""Overload on the real service (``cargorisk serve`` -> ``bentoml serve``): a flood of scoring
requests against a worker allowed two at once (``max_scoring_in_flight=2``). The excess is
answered 503 with ``Retry-After`` at once instead of queueing; every 200 was committed (its
shipment and score are in the store under the request id answered) and nothing of a refused
request was stored; the refusals are counted in ``cargorisk_shed_requests_total``."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from serving.store import Store
from serving.store.tables import scores, shipments
from tests.serving.conftest import make_shipment
from tests.serving.helpers import (
    mlflow_server,
    register_model,
    scoring_service,
    service_env,
    tiny_history,
    train_tiny_model,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

CONNECTIONS = 48
ROUNDS = 3


@pytest.fixture(scope="module")
def flooded(tmp_path_factory):
    ships, outs = tiny_history(n=400)
    model = train_tiny_model(ships, outs)
    root = tmp_path_factory.mktemp("overload")
    seed = root / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    home = root / "home"
    with mlflow_server(root / "mlflow") as tracking:
        register_model(model, tracking, "cargorisk-risk", root / "v1")
        env = service_env(
            home,
            tracking,
            serve_seed_data=seed,
            max_scoring_in_flight=2,
            max_concurrent_requests=1000,  # the edge's own limit out of the way
        )
        home.mkdir(parents=True, exist_ok=True)
        store = Store(f"sqlite:///{home / 'cargorisk.db'}")
        key = store.create_key("gate", "system")
        admin = store.create_key("ops", "admin")
        store.close()
        with scoring_service(home, env) as (url, _proc):
            # in a thread of its own: an earlier test of the session may have left an event
            # loop running in this one (asyncio.run refuses to nest)
            with ThreadPoolExecutor(1) as pool:
                flood = pool.submit(asyncio.run, _flood(url, key)).result()
            metrics = httpx.get(
                f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=30
            ).text
            yield {**flood, "metrics": metrics, "home": home}


def _ship(i: int) -> dict:
    return make_shipment(
        90_000 + i,
        shipment_id=f"FLOOD-{i:05d}",
        declared_at=f"2026-02-05T{8 + i // 60 % 12:02d}:{i % 60:02d}:00",
        booked_at=None,
        departed_at=None,
        arrival_at=None,
    )


async def _flood(url: str, key: str) -> dict:
    """Two phases, every shipment id new:

    1. two 9,000-shipment manifests take both scoring slots (large enough to outlast the
       singles on a quiet machine too: each takes seconds to score and commit); while they
       run, ``CONNECTIONS`` single-shipment requests arrive at once, each on its own
       connection;
    2. ``ROUNDS`` bursts of ``CONNECTIONS`` single-shipment requests sent at once."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=CONNECTIONS + 2, max_keepalive_connections=CONNECTIONS)
    answers: list[dict] = []
    async with httpx.AsyncClient(timeout=120, headers=headers, limits=limits) as client:

        async def post(path: str, body: dict, ids: list[str], rid: str, phase: str) -> dict:
            started = time.perf_counter()
            r = await client.post(f"{url}{path}", json=body, headers={"X-Request-ID": rid})
            answer = {
                "ids": ids,
                "path": path,
                "phase": phase,
                "status": r.status_code,
                "seconds": time.perf_counter() - started,
                "retry_after": r.headers.get("retry-after"),
                "body": r.json(),
            }
            answers.append(answer)
            return answer

        def single(i: int, phase: str):
            ship = _ship(i)
            return post("/score", {"shipment": ship}, [ship["shipment_id"]], f"flood-{i}", phase)

        manifests = [
            asyncio.create_task(
                post(
                    "/score/batch",
                    {"shipments": [_ship(10_000 * (m + 1) + j) for j in range(9000)]},
                    [_ship(10_000 * (m + 1) + j)["shipment_id"] for j in range(9000)],
                    f"manifest-{m}",
                    "manifests",
                )
            )
            for m in range(2)
        ]
        await asyncio.sleep(0.5)  # both manifests hold their slots (taken before the body is read)
        meanwhile = [single(i, "beside manifests") for i in range(CONNECTIONS)]
        await asyncio.gather(*meanwhile)
        running = [not t.done() for t in manifests]
        await asyncio.gather(*manifests)
        for k in range(1, ROUNDS + 1):
            await asyncio.gather(
                *(single(k * CONNECTIONS + j, "bursts") for j in range(CONNECTIONS))
            )
    return {"answers": answers, "manifests_running_after_singles": running}


def test_beside_two_manifests_single_requests_are_refused_at_once(flooded):
    """Both slots taken by manifests: the singles arriving meanwhile are told at once to come
    back, instead of waiting for the manifests (the queue BentoML would otherwise build)."""
    answers = flooded["answers"]
    manifests = [a for a in answers if a["phase"] == "manifests"]
    singles = [a for a in answers if a["phase"] == "beside manifests"]
    assert [a["status"] for a in manifests] == [200, 200], [a["body"] for a in manifests]
    assert all(flooded["manifests_running_after_singles"])  # the singles met both running
    refused = sorted(a["seconds"] for a in singles if a["status"] == 503)
    slowest_manifest = max(a["seconds"] for a in manifests)
    print(
        f"manifests {[round(a['seconds'], 2) for a in manifests]} s; beside them "
        f"{len(refused)} of {len(singles)} singles refused, median "
        f"{statistics.median(refused) * 1000:.0f} ms, max {refused[-1] * 1000:.0f} ms"
    )
    assert len(refused) == len(singles)
    assert refused[-1] < slowest_manifest / 2
    for a in singles:
        assert a["retry_after"] == "1" and "max_scoring_in_flight" in a["body"]["error"]


def test_a_flood_of_single_requests_is_served_or_refused_never_queued(flooded):
    bursts = [a for a in flooded["answers"] if a["phase"] == "bursts"]
    statuses = [a["status"] for a in bursts]
    assert set(statuses) <= {200, 503}, [a for a in bursts if a["status"] not in (200, 503)][:2]
    served = [a["seconds"] for a in bursts if a["status"] == 200]
    refused = [a for a in bursts if a["status"] == 503]
    print(
        f"bursts: {len(served)} served (median {statistics.median(served) * 1000:.0f} ms, max "
        f"{max(served) * 1000:.0f} ms); {len(refused)} refused (median "
        f"{statistics.median(a['seconds'] for a in refused) * 1000:.0f} ms, max "
        f"{max(a['seconds'] for a in refused) * 1000:.0f} ms)"
    )
    assert len(served) >= ROUNDS * 2 and refused, statuses
    for a in refused:
        assert a["retry_after"] == "1" and "max_scoring_in_flight" in a["body"]["error"]
    # nobody waits for a queue: a burst served two at a time would keep its last request
    # about CONNECTIONS / 2 scoring times
    assert max(served) < CONNECTIONS / 2 * statistics.median(served) / 2


def test_every_200_was_committed_and_no_refused_request_stored(flooded):
    answers = flooded["answers"]
    store = Store(f"sqlite:///{flooded['home'] / 'cargorisk.db'}")
    try:
        with store.engine.connect() as conn:
            stored = set(
                conn.execute(
                    sa.select(shipments.c.shipment_id).where(
                        shipments.c.shipment_id.like("FLOOD-%")
                    )
                ).scalars()
            )
            scored = dict(
                conn.execute(
                    sa.select(scores.c.shipment_id, scores.c.request_id).where(
                        scores.c.shipment_id.like("FLOOD-%")
                    )
                ).all()
            )
    finally:
        store.close()
    ok = {sid: a["body"]["request_id"] for a in answers if a["status"] == 200 for sid in a["ids"]}
    refused = {sid for a in answers if a["status"] == 503 for sid in a["ids"]}
    assert len(ok) >= 6000 and refused
    assert set(ok) == stored == set(scored)
    assert all(scored[sid] == rid for sid, rid in ok.items())
    assert not refused & stored


def test_refusals_are_counted(flooded):
    refused = sum(a["status"] == 503 for a in flooded["answers"])
    found = re.search(
        r'^cargorisk_shed_requests_total\{endpoint="score",limit="max_scoring_in_flight"\} '
        r"(\S+)$",
        flooded["metrics"],
        re.M,
    )
    assert found, flooded["metrics"][:2000]
    assert float(found.group(1)) == refused
