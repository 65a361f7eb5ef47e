"""Take the documentation screenshots of the worklist, a shipment page, the health page and the
investigations.

    .venv/bin/python -m tests.e2e.take_screenshots [--root DIR] [--out docs/screenshots]
        [--only worklist|investigations]

Builds the same served world as the browser tests (simulate, train, promote, serve, score the
last day), records a few inspection results as an officer would, and photographs the pages
in headless Chromium 1440 pixels wide (a laptop screen).
"""

from __future__ import annotations

import argparse
import tempfile
import time
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


def investigations(page, url: str, world, out: Path) -> None:
    """The search for a misspelt consignee, a consignee's page with seizures, the network of
    the simulator's express ring and the watchlist with an entry."""
    import pandas as pd

    ships = pd.read_parquet(world.seed / "shipments.parquet")
    outs = pd.read_parquet(world.seed / "outcomes.parquet")
    truth = pd.read_parquet(world.home.parent / "world" / "truth.parquet")
    seized = outs.loc[outs["result"] == "seized", "shipment_id"]
    ring = ships[
        ships["shipment_id"].isin(truth.loc[truth["scheme"] == "express_network", "shipment_id"])
        & ships["shipment_id"].isin(seized)
    ]
    best, drawn = None, 0
    for consignee in ring["consignee_id"].dropna().unique()[:20]:
        page.goto(f"{url}/ui/network/consignee/{consignee}")
        n = page.locator("#network-table tbody tr").count()
        if n > drawn:
            best, drawn = consignee, n
    name = ships.loc[ships["consignee_id"] == best, "consignee_name"].dropna()
    typo = name.iloc[0][:3] + name.iloc[0][4:] if len(name) else str(best)
    page.goto(f"{url}/ui/search?q={typo}")
    page.screenshot(path=str(out / "search.png"))
    page.goto(f"{url}/ui/network/consignee/{best}")
    page.locator("#graph[data-drawn]").wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "network.png"))
    phone = ships.loc[ships["consignee_id"] == best, "consignee_phone"].dropna()
    page.goto(f"{url}/ui/watchlist")
    page.locator("#w-kind").select_option("phone")
    page.locator("#w-value").fill(phone.iloc[0] if len(phone) else "010-0000-0000")
    page.locator("#w-reason").fill("drop phone of an express ring (case 2026-118)")
    page.locator("#w-expires").fill("2027-05-31")
    page.get_by_role("button", name="Watch").click()
    page.goto(f"{url}/ui/watchlist")  # afresh: no validation bubble left from the form
    page.screenshot(path=str(out / "watchlist.png"))
    page.goto(f"{url}/ui/parties/consignee/{best}")
    page.screenshot(path=str(out / "party.png"), full_page=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="Work directory (default: temp)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--only", choices=("worklist", "investigations"), default=None)
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
        if args.only != "worklist":
            investigations(page, url, world, args.out)
        if args.only == "investigations":
            browser.close()
            print(f"screenshots in {args.out} (world in {root})")
            return
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
        # the health page once the service has measured the day's drift
        deadline = time.monotonic() + 240
        while True:
            page.goto(f"{url}/ui/health")
            if page.locator("table.heat").count() or time.monotonic() > deadline:
                break
            time.sleep(3)
        page.set_viewport_size({"width": 1440, "height": 1500})
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(args.out / "health.png"))  # the alerts and the sea table
        browser.close()
    print(f"screenshots in {args.out} (world in {root})")


if __name__ == "__main__":
    main()
