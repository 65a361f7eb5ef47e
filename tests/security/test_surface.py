"""Finding 7 - BentoML's explorer at ``/`` loaded googletagmanager.com and badges from outside,
had no CSP and shared the origin with ``/ui``: a script there read a worklist page with its
CSRF token and recorded an outcome. Now ``/`` is a plain page (the explorer, from local files
only, is a setting), every response carries a strict CSP and the other security headers, and a
real Chromium loads nothing from another origin on any page."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from urllib.parse import urlsplit

import pytest

from serving.edge import CSP
from tests.e2e.world import CHROMIUM, CHROMIUM_ARGS
from tests.security.conftest import PASSWORD, bearer, sign_in_with_key

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _secure(r) -> None:
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, r.url
    assert "default-src 'self'" in csp and "http" not in csp, r.url
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value, (r.url, name)


def test_the_root_page_is_plain_and_the_explorer_off_by_default(service):
    http = service["http"]
    r = http.get("/")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    assert "<script" not in r.text and "http" not in r.text.replace('"/docs.json"', "")
    for path in ("/static_content/swagger-ui-bundle.js", "/static_content/index.css"):
        assert http.get(path).status_code == 404
    assert http.get("/docs.json").status_code == 200  # the description stays


def test_every_kind_of_response_carries_the_security_headers(service):
    http = service["http"]
    officer = bearer(service["keys"]["officer"])
    responses = [
        http.get("/"),
        http.get("/docs.json"),
        http.get("/livez"),
        http.get("/metrics"),  # 401
        http.get("/no/such/path"),
        http.post("/score", json={"shipment": {}}, headers=officer),  # 400
        http.get("/shipments/H000001", headers=officer),
        http.get("/ui/login"),
        http.get("/ui/static/app.css"),
        http.get("/ui/worklist", follow_redirects=False),
    ]
    http.cookies.clear()
    sign_in_with_key(http, service["keys"]["officer"])
    responses += [http.get("/ui/worklist"), http.get("/ui/shipments/H000001")]
    http.cookies.clear()
    for r in responses:
        _secure(r)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.e2e
def test_chromium_loads_nothing_from_outside_on_any_page(live):
    """Headless Chromium against the real service with the explorer on: every request any
    page makes (scripts, styles, images, fonts, fetches) goes to the service's own origin,
    and nothing breaks the CSP."""
    if not os.path.exists(CHROMIUM):
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = live["url"]
    origin = urlsplit(url).netloc
    seen, blocked, violations = _in_own_thread(_browse(url))
    outside = [u for u in seen if urlsplit(u).scheme != "data" and urlsplit(u).netloc != origin]
    assert not outside, outside
    assert len(seen) > 10
    assert blocked == "blocked"
    assert not [v for v in violations if "googletagmanager" not in v], violations


async def _browse(url: str) -> tuple[list[str], str, list[str]]:
    """Open every kind of page as an officer would; the URLs requested, whether a script on
    the origin could fetch from another origin, and the CSP violations reported. Playwright's
    async API on a loop of its own: the browser tests may hold the sync API's loop in this
    thread."""
    from playwright.async_api import async_playwright

    requests: list[str] = []
    violations: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context()).new_page()
        page.on("request", lambda req: requests.append(req.url))
        page.on(
            "console",
            lambda msg: (
                violations.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        await page.goto(f"{url}/")
        await page.wait_for_selector("#swagger-ui .info", timeout=30_000)  # the explorer drew
        assert "cargorisk" in await page.content()
        await page.goto(f"{url}/ui/login")
        await page.get_by_label("User name").fill("kim")
        await page.get_by_label("Password", exact=True).fill(PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await page.wait_for_url(re.compile(r".*/ui/worklist.*"))
        await page.goto(f"{url}/ui/shipments/H000005")
        await page.goto(f"{url}/ui/search?q=CNS5")
        await page.goto(f"{url}/ui/parties/consignee/CNS5")
        await page.goto(f"{url}/ui/watchlist")
        # the network page draws with the vendored Cytoscape under the strict CSP
        await page.goto(f"{url}/ui/network/consignee/CNS5")
        await page.locator("#graph[data-drawn]").wait_for()  # no eval: the CSP forbids it
        await page.goto(f"{url}/ui/network/consignee/CNS5/print")  # the evidence page too
        await page.locator("#evidence-note").wait_for()
        await page.goto(f"{url}/ui/model")
        await page.goto(f"{url}/ui/health")
        seen = list(requests)
        # a script on the origin cannot reach another origin either
        blocked = await page.evaluate(
            "() => fetch('https://www.googletagmanager.com/gtm.js').then(() => 'loaded', "
            "() => 'blocked')"
        )
        await browser.close()
    return seen, blocked, violations


def _in_own_thread(coroutine):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
