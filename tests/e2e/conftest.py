"""Fixtures of the browser tests: one served world per session and a headless Chromium."""

from __future__ import annotations

import os

import pytest

from tests.e2e.world import CHROMIUM, CHROMIUM_ARGS, build_world, served


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def service(world):
    """(url, officer API key) of the running service, the last day scored."""
    with served(world) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        # CI installs chromium (scripts/services.sh): there a missing browser is a failure
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) per test, laptop-sized."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
