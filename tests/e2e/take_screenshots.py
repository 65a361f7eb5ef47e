"""Take the documentation screenshots of the worklist and of a shipment page.

    .venv/bin/python -m tests.e2e.take_screenshots [--root DIR] [--out docs/screenshots]

Builds the same served world as the browser tests (simulate, train, promote, serve, score the
last day), records a few inspection results as an officer would, and photographs the pages
in headless Chromium 1440 pixels wide (a laptop screen).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.e2e.world import CHROMIUM, CHROMIUM_ARGS, PASSWORD, build_world, served

REPO = Path(__file__).resolve().parents[2]


def record(page, url: str, shipment_id: str, result: str, drug: str = "", kg: str = "") -> None:
    page.goto(f"{url}/ui/shipments/{shipment_id}?pick=model")
    page.get_by_label("Narcotics seized" if result == "seized" else "Clean", exact=True).check()
    if result == "seized":
        page.get_by_label("Drug").select_option(drug)
        page.get_by_label("Quantity (kg)").fill(kg)
    page.get_by_role("button", name="Record result").click()
    page.wait_for_url("**recorded=1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="Work directory (default: temp)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root = args.root or Path(tempfile.mkdtemp(prefix="cargorisk-shots-"))
    args.out.mkdir(parents=True, exist_ok=True)
    world = build_world(root)
    with served(world) as (url, _key), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/ui/login")
        page.get_by_label("User name").fill("kim")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{url}/ui/worklist")
        top = page.locator("tr.model").first.get_attribute("data-shipment")
        # the sea team's list: short enough to show the cut line and a random pick
        sea = f"{url}/ui/worklist?mode=sea"
        page.goto(sea)
        picks = page.locator("tr.model").evaluate_all("rows => rows.map(r => r.dataset.shipment)")
        # a morning's work: two clean, one seizure among the top of the list
        record(page, url, picks[1], "clean")
        record(page, url, picks[2], "seized", "cocaine", "24.6")
        record(page, url, picks[4], "clean")
        page.set_viewport_size({"width": 1440, "height": 1150})
        page.goto(sea)
        page.screenshot(path=str(args.out / "worklist.png"))
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(f"{url}/ui/shipments/{top}?pick=model")
        page.screenshot(path=str(args.out / "shipment.png"), full_page=True)
        browser.close()
    print(f"screenshots in {args.out} (world in {root})")


if __name__ == "__main__":
    main()
