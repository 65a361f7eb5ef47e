"""Finding 2 - sign-out did not end a session (the old cookie kept working for up to 8 h, and
deleting the key file signed no one out). Finding 13 (part) - the docs said SameSite=Strict,
the cookie was Lax; sign-in and sign-out had no CSRF token. Sessions now live in the store."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path

import sqlalchemy as sa

from cargorisk.cli import main
from serving.store import ui_sessions
from tests.security.conftest import PASSWORD, csrf_of, sign_in, sign_in_with_key

REPO = Path(__file__).resolve().parents[2]


def _outcome_form(http, shipment_id: str) -> dict:
    page = http.get(f"/ui/shipments/{shipment_id}")
    assert page.status_code == 200, page.text[:300]
    return {
        "csrf": csrf_of(page.text),
        "result": "clean",
        "method": "document",
        "selected_by": "officer",
        "inspected_at": "2026-01-20T10:00",
        "result_at": "2026-01-20T11:00",
    }


def _replay(http, cookie: str):
    http.cookies.clear()
    http.cookies.set("cargorisk_session", cookie)
    return http.get("/ui/worklist", follow_redirects=False)


def test_a_signed_out_cookie_opens_nothing_and_records_nothing(service):
    http, store = service["http"], service["store"]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    cookie = http.cookies["cargorisk_session"]
    form = _outcome_form(http, "H000010")
    worklist = http.get("/ui/worklist").text
    r = http.post("/ui/logout", data={"csrf": csrf_of(worklist)}, follow_redirects=False)
    assert r.status_code == 303
    # the attacker kept the cookie (and the form with its CSRF token)
    r = _replay(http, cookie)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    before = store.outcomes_for("H000010")
    r = http.post("/ui/shipments/H000010/outcome", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    assert store.outcomes_for("H000010") == before
    http.cookies.clear()


def test_disabling_the_account_or_revoking_the_key_ends_its_sessions_at_once(service):
    http, store = service["http"], service["store"]
    store.create_user("park", PASSWORD)
    http.cookies.clear()
    assert sign_in(http, {"method": "password", "username": "park", "password": PASSWORD})
    cookie = http.cookies["cargorisk_session"]
    assert _replay(http, cookie).status_code == 200
    assert store.disable_user("park") == 1
    assert _replay(http, cookie).status_code == 303
    assert store.audit_events(1)[0]["detail"].endswith('"sessions": 1}')

    key = store.create_key("Officer Choi", "officer")
    http.cookies.clear()
    sign_in_with_key(http, key)
    cookie = http.cookies["cargorisk_session"]
    assert _replay(http, cookie).status_code == 200
    store.revoke_key("Officer Choi")
    assert _replay(http, cookie).status_code == 303
    http.cookies.clear()


def test_idle_and_absolute_time_outs_end_sessions(service):
    http, store = service["http"], service["store"]
    with store.engine.begin() as conn:  # earlier tests' sessions out of the way
        conn.execute(ui_sessions.update().values(ended_at=dt.datetime(2026, 1, 1)))

    def age(**columns) -> None:
        with store.engine.begin() as conn:
            conn.execute(
                ui_sessions.update().where(ui_sessions.c.ended_at.is_(None)).values(**columns)
            )

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for columns, reason in (
        ({"last_seen_at": now - dt.timedelta(minutes=31)}, "idle"),  # default idle: 30 min
        ({"created_at": now - dt.timedelta(hours=8, minutes=1)}, "expired"),  # 8 h
    ):
        http.cookies.clear()
        sign_in_with_key(http, service["keys"]["officer"])
        assert http.get("/ui/worklist", follow_redirects=False).status_code == 200
        age(**columns)
        assert http.get("/ui/worklist", follow_redirects=False).status_code == 303
        with store.engine.connect() as conn:
            last = conn.execute(
                sa.select(ui_sessions.c.end_reason).order_by(ui_sessions.c.id.desc())
            ).first()
        assert last.end_reason == reason
    # in use, a session stays open: the last use moves on
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    age(last_seen_at=now - dt.timedelta(minutes=29))
    assert http.get("/ui/worklist", follow_redirects=False).status_code == 200
    assert http.get("/ui/worklist", follow_redirects=False).status_code == 200
    http.cookies.clear()


def test_an_operator_signs_everyone_out(service, monkeypatch, capsys):
    http = service["http"]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    cookie = http.cookies["cargorisk_session"]
    monkeypatch.setenv("CARGORISK_HOME", str(service["home"]))
    assert main(["users", "sessions"]) == 0
    assert "officer:officer-sec" in capsys.readouterr().out
    assert main(["users", "sign-out"]) == 2  # nobody named, no --all: refused
    assert main(["users", "sign-out", "--all"]) == 0
    assert "ended" in capsys.readouterr().out
    assert _replay(http, cookie).status_code == 303
    http.cookies.clear()


def test_sign_in_needs_the_forms_csrf_token(service):
    """Login CSRF: another site posting its own credentials would sign the officer's browser
    in as the attacker (and collect what they then record)."""
    http = service["http"]
    http.cookies.clear()
    form = {"method": "password", "username": "kim", "password": PASSWORD}
    r = http.post("/ui/login", data=form, follow_redirects=False)  # no token, no cookie
    assert r.status_code == 403 and "cargorisk_session" not in http.cookies
    page = http.get("/ui/login")
    token = csrf_of(page.text)
    nonce = http.cookies["cargorisk_sign_in"]
    http.cookies.clear()  # another browser: the token without the cookie it is bound to
    r = http.post("/ui/login", data={**form, "csrf": token}, follow_redirects=False)
    assert r.status_code == 403
    http.cookies.set("cargorisk_sign_in", nonce + "x")
    r = http.post("/ui/login", data={**form, "csrf": token}, follow_redirects=False)
    assert r.status_code == 403 and "cargorisk_session" not in http.cookies
    http.cookies.clear()
    assert sign_in(http, form, follow_redirects=False).status_code == 303
    http.cookies.clear()


def test_sign_out_needs_the_sessions_csrf_token(service):
    http = service["http"]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    for data in ({}, {"csrf": "forged"}):
        r = http.post("/ui/logout", data=data, follow_redirects=False)
        assert r.status_code == 403 and "This sign-out form was not issued" in r.text
    assert http.get("/ui/worklist", follow_redirects=False).status_code == 200
    http.cookies.clear()


def test_cookie_attributes_are_those_the_docs_state(service):
    http = service["http"]
    http.cookies.clear()
    page = http.get("/ui/login")
    sign_in_cookie = page.headers["set-cookie"].lower()
    assert "httponly" in sign_in_cookie and "samesite=strict" in sign_in_cookie
    r = sign_in_with_key(http, service["keys"]["officer"])
    session_cookie = next(
        c for c in r.headers.get_list("set-cookie") if c.startswith("cargorisk_session=")
    )
    attributes = {a.strip().split("=")[0].lower(): a for a in session_cookie.split(";")[1:]}
    assert set(attributes) >= {"httponly", "samesite", "path", "max-age"}
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/ui"
    assert "secure" not in attributes  # plain HTTP here; Secure over HTTPS
    http.cookies.clear()
    docs = (REPO / "docs" / "ui.md").read_text(encoding="utf-8")
    stated = re.search(r"`cargorisk_session`: ([^)]*)\)", docs).group(1)
    assert "HttpOnly" in stated and "SameSite=Lax" in stated and "Path=/ui" in stated
    assert "Strict" not in stated


def test_a_cookie_signed_with_an_empty_key_is_worthless(service):
    """Even with the token of a real session, a signature made with another key (the empty
    one of the finding) does not pass."""
    http, store = service["http"], service["store"]
    caller = store.lookup_key(service["keys"]["officer"])
    token, _ = store.create_session(caller, "10.1.1.1")
    forged = base64.urlsafe_b64encode(
        hmac.new(b"", f"session:{token}".encode(), hashlib.sha256).digest()
    )
    http.cookies.clear()
    http.cookies.set("cargorisk_session", f"{token}.{forged.rstrip(b'=').decode()}")
    r = http.get("/ui/worklist", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    http.cookies.clear()
