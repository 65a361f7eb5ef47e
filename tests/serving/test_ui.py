"""The worklist UI in-process: the inspection plan, sessions, passwords, and every page through
a test client over a real engine (tiny model, real store, real feature state)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from common.settings import load_settings
from serving.engine import ScoringEngine
from serving.model import LoadedModel
from serving.schemas import ShipmentIn
from serving.store import Caller, Store, hash_password, verify_password
from serving.ui import worklist as wl
from serving.ui.app import create_app
from serving.ui.session import COOKIE, CookieSigner, SignInThrottle
from tests.serving.conftest import make_shipment
from tests.serving.helpers import service_app, tiny_history, train_tiny_model

DAY = dt.date(2026, 2, 5)
GATE = Caller("gate-7", "system", 1)


# -- the inspection plan (pure) ------------------------------------------------------------
def _day_frame(n: int = 200, unscored: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "shipment_id": [f"S{i:04d}" for i in range(n)],
            "mode": rng.choice(["sea", "air", "express"], n),
            "discharge_port": rng.choice(["KRPUS", "ICN"], n),
            "vessel": ["MSC AURORA"] * (n // 2) + [None] * (n - n // 2),
            "voyage": ["V12"] * n,
            "flight": [None] * (n // 2) + ["KE0902"] * (n - n // 2),
            "score": np.r_[rng.random(n - unscored), [np.nan] * unscored],
            "band": ["high"] * 10 + ["low"] * (n - 10),
            "outcome": [None] * (n - 1) + ["clean"],
        }
    )


def test_capacity_counts_split_model_and_random_picks():
    assert wl.capacity_counts(1000, 0.05, 0.1) == (45, 5)
    assert wl.capacity_counts(800, 0.05, 0.1) == (36, 4)
    assert wl.capacity_counts(10, 0.05, 0.1) == (1, 0)
    assert wl.capacity_counts(0, 0.05, 0.1) == (0, 0)
    assert wl.capacity_counts(100, 0.05, 0.0) == (5, 0)


def test_plan_ranks_by_score_cuts_at_capacity_and_draws_random_picks_below_the_line():
    frame = _day_frame()
    planned, summary = wl.plan(frame, capacity=0.05, exploration_share=0.2, seed=7)
    scored = planned[planned["rank"].notna()]
    assert list(scored["rank"]) == list(range(1, 198))
    assert scored["score"].is_monotonic_decreasing
    assert (summary.scored, summary.unscored, summary.capacity) == (197, 3, 10)
    assert (summary.model_picks, summary.random_picks) == (8, 2)
    assert list(planned["pick"].iloc[:8]) == ["model"] * 8
    random_rows = planned[planned["pick"] == "random"]
    assert len(random_rows) == 2 and (random_rows["rank"] > 8).all()
    assert planned["rank"].iloc[-3:].isna().all() and (planned["pick"].iloc[-3:] == "").all()
    assert frame.equals(_day_frame())  # input untouched


def test_random_picks_are_stable_per_scope_and_change_with_the_day():
    frame = _day_frame(2000)
    seed = wl.exploration_seed(DAY, "", "", 42)

    def picks(s):
        planned, _ = wl.plan(frame, capacity=0.05, exploration_share=0.1, seed=s)
        return set(planned.loc[planned["pick"] == "random", "shipment_id"])

    assert picks(seed) == picks(wl.exploration_seed(DAY, "", "", 42))
    assert picks(seed) == picks(seed)  # reload: same list
    other_day = wl.exploration_seed(DAY + dt.timedelta(days=1), "", "", 42)
    assert picks(seed) != picks(other_day)
    # row order of the store does not change the draw
    shuffled = frame.sample(frac=1, random_state=3)
    planned, _ = wl.plan(shuffled, capacity=0.05, exploration_share=0.1, seed=seed)
    assert set(planned.loc[planned["pick"] == "random", "shipment_id"]) == picks(seed)


def test_scope_and_view_filters():
    frame = _day_frame()
    f = wl.Filters(mode="sea", port="KRPUS")
    scoped = wl.scope(frame, f)
    assert set(scoped["mode"]) == {"sea"} and set(scoped["discharge_port"]) == {"KRPUS"}
    planned, _ = wl.plan(frame, capacity=0.05, exploration_share=0.1, seed=1)
    assert set(wl.view(planned, wl.Filters(band="high"))["band"]) == {"high"}
    assert wl.view(planned, wl.Filters(uninspected=True))["outcome"].isna().all()
    flights = wl.view(planned, wl.Filters(transport="ke09"))
    assert len(flights) == 100 and flights["flight"].eq("KE0902").all()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"day": "2026-13-01"}, "day"),
        ({"mode": "truck"}, "mode"),
        ({"band": "extreme"}, "band"),
        ({"port": "NOT A PORT"}, "port"),
        ({"transport": "x" * 65}, "transport"),
        ({"transport": "a\x00b"}, "transport"),
    ],
)
def test_bad_filters_name_the_field(params, field):
    with pytest.raises(wl.FilterError) as err:
        wl.Filters.from_query(params)
    assert err.value.field == field and str(err.value).startswith(f"{field}:")


# -- sessions and passwords ----------------------------------------------------------------
def test_session_cookie_round_trip_and_tampering():
    signer = CookieSigner(b"k" * 32)
    value = signer.sign("token-1")
    assert signer.unsign(value) == "token-1"
    _, sig = value.split(".")
    assert signer.unsign(f"token-2.{sig}") is None  # a signature belongs to one token
    assert signer.unsign(value[:-2] + "AA") is None
    assert CookieSigner(b"j" * 32).unsign(value) is None  # another secret
    assert signer.unsign("") is None and signer.unsign("garbage") is None
    assert signer.unsign(None) is None and signer.unsign("a.b.c") is None
    csrf = signer.sign_in_csrf("nonce-1")
    assert signer.sign_in_ok("nonce-1", csrf) and not signer.sign_in_ok("nonce-2", csrf)
    assert csrf != signer.sign("nonce-1").split(".")[1]  # one purpose per signature
    with pytest.raises(Exception, match="32"):
        CookieSigner(b"short")


def test_failed_sign_ins_block_after_the_limit(home):
    store = Store(load_settings().store)
    guard = SignInThrottle(store, max_failures=3, window_minutes=5)
    for _ in range(3):
        assert guard.refusal("10.0.0.1", "kim") is None
        guard.fail("10.0.0.1", "kim")
    assert "this computer" in guard.refusal("10.0.0.1", None)
    assert guard.refusal("10.0.0.2", None) is None
    assert "this account" in guard.refusal("10.0.0.2", "kim")  # from anywhere
    assert guard.refusal("10.0.0.2", "lee") is None


def test_password_hashes_are_salted_and_verified(home):
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$") and "correct" not in a
    assert verify_password("correct horse battery", a)
    assert not verify_password("correct horse batterY", a)
    assert not verify_password("x", "not-a-hash")
    store = Store(load_settings().store)
    uid = store.create_user("kim", "correct horse battery")
    assert store.authenticate_user("kim", "correct horse battery") == Caller(
        "kim", "officer", user_id=uid
    )
    assert store.authenticate_user("kim", "wrong password!") is None
    assert store.authenticate_user("nobody", "correct horse battery") is None
    with pytest.raises(Exception, match="username"):
        store.create_user("kim", "another password")
    with pytest.raises(Exception, match="password"):
        store.create_user("lee", "short")
    with pytest.raises(Exception, match="role"):
        store.create_user("gate", "long enough pw", role="system")
    assert store.disable_user("kim") == 1
    assert store.authenticate_user("kim", "correct horse battery") is None
    assert store.active_caller(user_id=uid) is None


# -- the app over a real engine ------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    ships, outs = tiny_history()
    return ships, outs, train_tiny_model(ships, outs)


@pytest.fixture(scope="module")
def engine(world, tmp_path_factory):
    """One engine for the module (building it is the slow part); tests use their own keys,
    accounts and shipments so they do not depend on each other."""
    ships, outs, model = world
    home = tmp_path_factory.mktemp("ui-home")
    seed = home / "seed"
    seed.mkdir()
    ships.to_parquet(seed / "shipments.parquet")
    outs.to_parquet(seed / "outcomes.parquet")
    settings = load_settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        serve_seed_data=seed,
        capacity=0.1,
        exploration_share=0.25,
    )
    loaded = LoadedModel(
        model, "cargorisk-risk", "3", "models:/cargorisk-risk/3", dt.datetime.now()
    )
    eng = ScoringEngine(settings, model_loader=lambda: loaded)
    eng.start()
    # today's manifest, scored by an inspection system: 60 shipments, reasons for the top 20 %
    today = [
        ShipmentIn(
            **make_shipment(
                20_000 + i,
                shipment_id=f"T{i:05d}",
                declared_at=(
                    dt.datetime.combine(DAY, dt.time(6)) + dt.timedelta(minutes=i)
                ).isoformat(),
                booked_at=None,
                departed_at=None,
                arrival_at=None,
                origin_country="EC" if i % 3 == 0 else "DE",
                consignee_id=f"NEWC{i}" if i % 3 == 0 else "CNS1",
                vessel="MSC AURORA" if i % 2 else "MAERSK LIMA",
            )
        )
        for i in range(60)
    ]
    eng.score(today, caller=GATE, explain_share=0.2)
    yield eng
    eng.store.close()


@pytest.fixture
def client(engine):
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: engine))])
    with TestClient(host, base_url="http://testserver") as c:
        yield c


def _officer_key(engine, role="officer", name="Officer Kim") -> str:
    return engine.store.create_key(name, role)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _login(client, data: dict, **kwargs):
    """POST the sign-in form as a browser does: after loading the page (its CSRF token)."""
    page = client.get("/ui/login")
    return client.post("/ui/login", data={"csrf": _csrf(page.text), **data}, **kwargs)


def _sign_in(client, engine, key=None):
    key = key or _officer_key(engine)
    r = _login(client, {"method": "key", "api_key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def test_pages_while_the_service_starts_answer_503():
    host = Starlette(routes=[Mount("/ui", app=create_app(lambda: None))])
    with TestClient(host, base_url="http://testserver") as starting:
        for path in ("/ui/worklist", "/ui/shipments/T00001", "/ui/model", "/ui/login"):
            r = starting.get(path, follow_redirects=False)
            assert r.status_code == 503 and "starting" in r.text, path
        r = starting.post("/ui/shipments/T00001/outcome", data={"result": "clean"})
        assert r.status_code == 503


def test_pages_without_a_session_redirect_to_sign_in(client):
    for path in (
        "/ui/worklist",
        "/ui/shipments/T00001",
        "/ui/model",
        "/ui/model/capacity-curve.png",
        "/ui/",
    ):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/ui/")
    r = client.get("/ui/worklist?band=high", follow_redirects=False)
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fworklist%3Fband%3Dhigh"
    r = client.post(
        "/ui/shipments/T00001/outcome", data={"result": "clean"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_wrong_keys_and_passwords_are_refused_and_audited(client, engine):
    before = len(engine.store.audit_events(10_000))
    r = _login(client, {"method": "key", "api_key": "crk_wrong"})
    assert r.status_code == 401 and "Unknown or revoked API key" in r.text
    system_key = _officer_key(engine, role="system", name="gate-9")
    r = _login(client, {"method": "key", "api_key": system_key})
    assert r.status_code == 401  # inspection systems' keys do not open the worklist
    engine.store.create_user("choi", "correct horse battery")
    r = _login(client, {"method": "password", "username": "choi", "password": "wrong one!!"})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert COOKIE not in client.cookies
    new = engine.store.audit_events(10_000)[: len(engine.store.audit_events(10_000)) - before]
    refused = [e for e in new if e["action"] == "ui_sign_in_refused"]
    assert len(refused) == 3
    assert all(e["caller"] == "anonymous" for e in refused)
    assert system_key not in json.dumps([e["detail"] for e in refused])


def test_sign_in_sets_a_safe_cookie_and_is_audited(client, engine):
    r = _sign_in(client, engine)
    assert r.headers["location"] == "/ui/worklist"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    low = cookie.lower()
    assert "httponly" in low and "samesite=lax" in low and "path=/ui" in low
    assert "max-age=28800" in low  # the absolute lifetime (ui_session_max_minutes)
    assert "crk_" not in cookie  # the key itself never travels in the cookie
    event = engine.store.audit_events(1)[0]
    assert (event["action"], event["caller"]) == ("ui_sign_in", "officer:Officer Kim")


def test_sign_in_with_a_password_follows_next_but_never_off_site(client, engine):
    engine.store.create_user("lee", "correct horse battery", role="admin")
    form = {"method": "password", "username": "lee", "password": "correct horse battery"}
    r = _login(client, {**form, "next": "/ui/model"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/model"
    client.cookies.clear()
    for evil in ("//evil.example/ui/", "https://evil.example/", "/elsewhere"):
        r = _login(client, {**form, "next": evil}, follow_redirects=False)
        assert r.headers["location"] == "/ui/model"  # an admin's landing page
        client.cookies.clear()


def test_worklist_ranks_the_day_with_cut_line_and_random_picks(client, engine):
    _sign_in(client, engine)
    r = client.get("/ui/worklist")
    assert r.status_code == 200
    page = r.text
    assert "Thursday 05 February 2026" in page  # default: the latest day with shipments
    ids = re.findall(r'data-shipment="([^"]+)"', page)
    assert len(ids) == 6 + 50  # the plan, then the first 50 rows below the line
    assert "Show 4 more of 4" in page
    more = client.get("/ui/worklist", params={"day": DAY.isoformat(), "below": 250}).text
    ids = re.findall(r'data-shipment="([^"]+)"', more)
    assert len(ids) == 60 and set(ids) == {f"T{i:05d}" for i in range(60)}
    # capacity 10 % of 60 = 6 inspections: 4 by risk (above the cut line), 2 random
    assert page.count('class="model"') == 4 and page.count('class="random"') == 2
    assert "Inspect down to here" in page and "Why some inspections are random" in page
    scores = engine.store.worklist(
        dt.datetime.combine(DAY, dt.time()), dt.datetime.combine(DAY, dt.time()) + dt.timedelta(1)
    ).sort_values(["score", "shipment_id"], ascending=[False, True])
    top4 = scores["shipment_id"].head(4).tolist()
    model_ids = re.findall(r'<tr class="model" data-shipment="([^"]+)"', page)
    assert model_ids == top4
    # stable on reload
    assert re.findall(
        r'<tr class="random" data-shipment="([^"]+)"', client.get("/ui/worklist").text
    ) == re.findall(r'<tr class="random" data-shipment="([^"]+)"', page)
    assert engine.store.audit_events(1)[0]["action"] == "ui_worklist_viewed"


def test_worklist_records_the_plan_picks_once_with_their_selection_probabilities(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/worklist", params={"day": DAY.isoformat()}).text
    client.get("/ui/worklist", params={"day": DAY.isoformat(), "band": "high"})  # re-render
    picks = engine.store.picks_frame(DAY, DAY + dt.timedelta(days=1))
    plan = picks[(picks["scope"] == "") & (picks["port"] == "")].set_index("shipment_id")
    # capacity 10 % of 60: 4 model picks, 2 random picks drawn from the 56 below the line
    assert len(plan) == 6 and (plan["scored"] == 60).all() and (plan["pool"] == 56).all()
    random_ids = re.findall(r'<tr class="random" data-shipment="([^"]+)"', page)
    assert set(plan.index[plan["pick"] == "random"]) == set(random_ids)
    assert (plan.loc[plan["pick"] == "model", "probability"] == 1.0).all()
    assert np.allclose(plan.loc[plan["pick"] == "random", "probability"], 2 / 56)
    assert set(plan["model_version"]) == {"3"} and plan["caller"].str.contains("Kim").all()
    # a team's own scope is a plan of its own
    client.get("/ui/worklist", params={"day": DAY.isoformat(), "mode": "sea"})
    scopes = set(engine.store.picks_frame(DAY)["scope"])
    assert {"", "sea"} <= scopes


def test_worklist_filters_and_bad_filters(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/worklist", params={"transport": "maersk", "day": DAY.isoformat()}).text
    ids = re.findall(r'data-shipment="T(\d+)"', page)
    assert ids and all(int(i) % 2 == 0 for i in ids)
    r = client.get("/ui/worklist", params={"band": "extreme"})
    assert r.status_code == 400 and "band: one of high, medium, low" in r.text
    r = client.get("/ui/worklist", params={"day": "2020-01-01"})
    assert r.status_code == 200 and 'data-shipment="' not in r.text


def test_shipment_page_reasons_history_and_outcome_through_the_engine(client, engine):
    _sign_in(client, engine)
    top = (
        engine.store.worklist(
            dt.datetime.combine(DAY, dt.time()),
            dt.datetime.combine(DAY, dt.time()) + dt.timedelta(1),
        )
        .sort_values("score", ascending=False)["shipment_id"]
        .iloc[0]
    )
    page = client.get(f"/ui/shipments/{top}?pick=model").text
    reasons = [html.unescape(t) for t in re.findall(r"<span class=\"text\">([^<]+)</span>", page)]
    stored = engine.store.latest_score(top)["reasons"]
    assert reasons == [r["text"] for r in stored] and len(reasons) >= 3
    assert "Parties' history" in page and "consignee" in page
    # every tiny-history consignee has the same phone: they are all linked
    linked = re.search(r"<strong>([\d,]+)</strong> other consignees share a phone number", page)
    assert linked and int(linked.group(1).replace(",", "")) > 10
    assert 'value="model" selected' in page  # selected_by prefilled from the plan
    assert "not inspected" in page
    form = {
        "csrf": _csrf(page),
        "result": "seized",
        "drug": "cocaine",
        "quantity_kg": "12.5",
        "method": "physical",
        "selected_by": "model",
        "inspected_at": "2026-02-06T10:00",
        "result_at": "2026-02-06T15:30",
    }

    def consignee_profile() -> dict:
        parties, _ = engine.parties(engine.store.shipment(top))
        return next(p for p in parties if p["role"] == "consignee")

    before = consignee_profile()
    r = client.post(f"/ui/shipments/{top}/outcome", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/shipments/{top}?recorded=1"
    [outcome] = engine.store.outcomes_for(top)
    assert (outcome["result"], outcome["drug"], outcome["quantity_kg"]) == (
        "seized",
        "cocaine",
        12.5,
    )
    event = next(e for e in engine.store.audit_events(5) if e["action"] == "outcomes")
    assert event["caller"] == "officer:Officer Kim" and top in event["detail"]
    # the online aggregates count it at once (same path as POST /outcomes)
    profile = consignee_profile()
    assert profile["inspections"] == before["inspections"] + 1
    assert profile["seizures"] == before["seizures"] + 1
    after = client.get(f"/ui/shipments/{top}?recorded=1").text
    assert "inspected · seized" in after and "recorded" in after
    listing = client.get("/ui/worklist").text
    row = re.search(rf'<tr class="[^"]*" data-shipment="{top}">.*?</tr>', listing, re.S).group(0)
    assert "done" in row.split('"')[1] and "seized" in row


def test_outcome_form_errors_name_the_field_and_store_nothing(client, engine):
    _sign_in(client, engine)
    page = client.get("/ui/shipments/T00001").text
    base = {
        "csrf": _csrf(page),
        "method": "x-ray",
        "selected_by": "officer",
        "inspected_at": "2026-02-06T10:00",
        "result_at": "2026-02-06T11:00",
    }
    cases = [
        ({"result": ""}, "Result"),
        ({"result": "clean", "drug": "heroin"}, "a clean result cannot name a drug"),
        ({"result": "seized", "quantity_kg": "-4"}, "Quantity (kg)"),
        ({"result": "seized", "inspected_at": "yesterday"}, "Inspected at"),
        ({"result": "clean", "result_at": "2026-02-05T09:00"}, "result_at must not be before"),
    ]
    for extra, message in cases:
        r = client.post("/ui/shipments/T00001/outcome", data={**base, **extra})
        assert r.status_code == 400, extra
        assert message in r.text, (extra, r.text[r.text.find("not recorded") :][:400])
        assert 'aria-invalid="true"' in r.text
    r = client.post(
        "/ui/shipments/T00001/outcome", data={**base, "csrf": "forged", "result": "clean"}
    )
    assert r.status_code == 403
    assert "Form expired" in r.text and "This form was not issued to your session" in r.text
    assert engine.store.outcomes_for("T00001") == []
    r = client.post("/ui/shipments/NOPE/outcome", data={**base, "result": "clean"})
    assert r.status_code == 404


def test_reasons_are_computed_for_shipments_below_the_explained_share(client, engine):
    _sign_in(client, engine)
    frame = engine.store.worklist(
        dt.datetime.combine(DAY, dt.time()), dt.datetime.combine(DAY, dt.time()) + dt.timedelta(1)
    )
    unexplained = frame.loc[~frame["has_reasons"], "shipment_id"].iloc[0]
    page = client.get(f"/ui/shipments/{unexplained}").text
    assert "Computed on opening this page by model version 3" in page
    assert len(re.findall(r'<span class="text">', page)) >= 3


@pytest.mark.slow
def test_model_page_shows_the_runs_metrics_against_baselines_and_the_capacity_curve(
    client, engine, monkeypatch
):
    """The report comes from the MLflow run behind the serving version (here version 3)."""
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # left by other tests' MLflow

    _sign_in(client, engine)
    before = client.get("/ui/model")  # the registry does not know version 3 yet
    assert before.status_code == 200 and 'version <span class="big">3</span>' in before.text
    assert "could not be read" in before.text
    assert client.get("/ui/model/capacity-curve.png").status_code == 404

    uri = engine.settings.tracking_uri
    mlflow.set_tracking_uri(uri)
    tracking = MlflowClient(tracking_uri=uri)
    png = b"\x89PNG\r\n\x1a\n" + b"capacity curve"
    curve = engine.settings.home / "capacity_curve.png"
    curve.write_bytes(png)
    mlflow.set_experiment("ui-tests")
    with mlflow.start_run() as run:
        mlflow.log_metrics(
            {
                "test_precision_at_5pct": 0.61,
                "rules_precision_at_5pct": 0.19,
                "random_precision_at_5pct": 0.06,
                "test_recall_at_1pct": 0.13,
                "rules_recall_at_1pct": 0.02,
                "random_recall_at_1pct": 0.01,
                "test_pr_auc": 0.58,
            }
        )
        mlflow.log_artifact(str(curve), artifact_path="plots")
    name = engine.model_holder.current.name
    tracking.create_registered_model(name)
    for _ in range(2):
        tracking.create_model_version(name, source=str(engine.settings.home / "no-model"))
    tracking.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )

    page = client.get("/ui/model").text
    assert run.info.run_id[:12] in page
    row = re.search(r"<td>5 %</td>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r"[0-9]\.[0-9]{3}", row) == ["0.610", "0.190", "0.060"]
    assert "PR-AUC" in page and "Recall (share of seizures found)" in page
    r = client.get("/ui/model/capacity-curve.png")
    assert r.status_code == 200 and r.content == png
    assert r.headers["content-type"] == "image/png"


def test_sign_out_and_revoked_keys_end_the_session(client, engine):
    key = _officer_key(engine, name="Officer Park")
    _sign_in(client, engine, key)
    page = client.get("/ui/worklist").text
    r = client.post("/ui/logout", data={"csrf": _csrf(page)}, follow_redirects=False)
    assert r.status_code == 303 and f'{COOKIE}=""' in r.headers["set-cookie"]
    assert engine.store.audit_events(1)[0]["action"] == "ui_sign_out"
    assert client.get("/ui/worklist", follow_redirects=False).status_code == 303
    _sign_in(client, engine, key)
    assert client.get("/ui/worklist").status_code == 200
    engine.store.revoke_key("Officer Park")
    assert client.get("/ui/worklist", follow_redirects=False).status_code == 303


def test_security_headers_and_static_files(client, engine):
    r = client.get("/ui/login")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert 'for="api_key"' in r.text and 'for="username"' in r.text and 'for="password"' in r.text
    assert client.get("/ui/static/app.css").status_code == 200
    assert client.get("/ui/static/app.js").status_code == 200


def test_unknown_shipment_is_a_404_page(client, engine):
    _sign_in(client, engine)
    r = client.get("/ui/shipments/NOPE")
    assert r.status_code == 404 and "No such shipment" in r.text


def test_the_service_mounts_the_worklist(home):
    with TestClient(service_app()) as c:
        r = c.get("/ui/login")
        assert r.status_code == 200 and "Sign in" in r.text
        assert (
            c.get("/ui/worklist", follow_redirects=False)
            .headers["location"]
            .startswith("/ui/login")
        )
        # the API keeps its own key check
        assert c.post("/score", json={}).status_code == 401


def test_shipment_ids_with_any_printable_character_link_and_record(client, engine):
    odd = "BL 12/34#5?x&y=%"
    record = make_shipment(
        30_000,
        shipment_id=odd,
        declared_at=(dt.datetime.combine(DAY, dt.time(5)) - dt.timedelta(days=1)).isoformat(),
        booked_at=None,
        departed_at=None,
        arrival_at=None,
    )
    engine.score([ShipmentIn(**record)], caller=GATE)
    _sign_in(client, engine)
    listing = client.get("/ui/worklist", params={"day": (DAY - dt.timedelta(days=1)).isoformat()})
    link = re.search(r'<a href="(/ui/shipments/[^"]+)">', listing.text).group(1)
    assert link == "/ui/shipments/BL%2012%2F34%235%3Fx%26y%3D%25?pick=model"
    page = client.get(html.unescape(link))
    assert page.status_code == 200 and f"Shipment {html.escape(odd)}" in page.text
    form = {
        "csrf": _csrf(page.text),
        "result": "clean",
        "method": "document",
        "selected_by": "model",
        "inspected_at": "2026-02-05T10:00",
        "result_at": "2026-02-05T10:30",
    }
    action = re.search(r'action="(/ui/shipments/[^"]+/outcome)"', page.text).group(1)
    r = client.post(html.unescape(action), data=form, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/shipments/BL%2012%2F34%235%3Fx%26y%3D%25?recorded=1"
    assert [o["result"] for o in engine.store.outcomes_for(odd)] == ["clean"]


def test_users_cli_creates_lists_and_disables_accounts(home, monkeypatch, capsys):
    import io

    from cargorisk.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["users", "create", "--username", "park", "--password-stdin"]) == 0
    assert "created officer 'park'" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "create", "--username", "lee", "--password-stdin"]) == 2
    assert "password: 10-1024 characters" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out
    assert "park" in listing and "lee" not in listing and "password" not in listing
    store = Store(load_settings().store)
    assert store.authenticate_user("park", "a long enough password") is not None
    assert main(["users", "disable", "park"]) == 0
    assert store.authenticate_user("park", "a long enough password") is None
    assert main(["users", "disable", "park"]) == 2
