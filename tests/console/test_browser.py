"""The console in a real browser: Debian's headless Chromium driven by Playwright's Python package.

No browser is downloaded (never ``playwright install``): scripts/bootstrap-browser installs
/usr/bin/chromium (./scripts/test installs it). Without it the test fails; it is never skipped.
Set ORDERHUB_SCREENSHOT_DIR to also write the dashboard screenshot there (docs/img/ uses it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hub.api import make_app
from hub.runtime import Hub
from hub.sync import inbox
from tests.console.conftest import OPS_TOKEN
from tests.sync import toy
from tests.sync.conftest import drain, webhook

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    pytest.fail(f"{CHROMIUM} is missing: run ./scripts/bootstrap-browser (apt-get install chromium)", pytrace=False)


@pytest.fixture
async def base_url(hub: Hub) -> AsyncIterator[str]:
    """The API (with the console) served on a free loopback port."""
    runner = web.AppRunner(make_app(hub))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def _seed(hub: Hub) -> None:
    """A few orders and one authenticated webhook that cannot be mapped (a sync failure)."""
    for ext in ("#1001", "#1002", "#1003", "#1004"):
        headers, body = webhook({"id": f"evt-{ext}", "order": toy.order_doc(ext, qty=2)})
        await inbox.accept(hub, "shop", headers, body)
    headers, body = webhook({"id": "evt-garbage", "topic": "order"})
    await inbox.accept(hub, "shop", headers, body)
    await drain(hub)


async def test_ops_log_in_find_a_failed_sync_replay_it_after_the_fix_and_see_it_resolved(
    hub: Hub, base_url: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await _seed(hub)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()

    await page.goto(f"{base_url}/console/")
    assert "/console/login" in page.url
    await page.fill("input[name=token]", OPS_TOKEN)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_contain_text("Dashboard")
    await expect(page.locator(".card", has_text="Open sync failures")).to_contain_text("1")
    await expect(page.locator("svg.chart")).to_have_count(3)
    cookie = next(c for c in await context.cookies() if c["name"] == "orderhub_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != OPS_TOKEN

    shot = tmp_path / "console-dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("ORDERHUB_SCREENSHOT_DIR"):
        await page.screenshot(path=str(Path(os.environ["ORDERHUB_SCREENSHOT_DIR"]) / shot.name), full_page=True)

    await page.click("header nav >> text=Sync failures")
    row = page.locator("#failures tr", has_text="no order in payload")
    await expect(row).to_have_count(1)
    await expect(row.locator(".badge")).to_have_text("open")
    await row.locator("a").first.click()
    await expect(page.locator("#failure-status")).to_have_text("open")

    toy.STRICT["on"] = False  # the mapping is fixed
    await page.click("#replay")
    await expect(page.locator("#flash")).to_contain_text("resolved")
    await expect(page.locator("#failure-status")).to_have_text("resolved")
    await expect(page.locator("#replays")).to_contain_text("ops")
    await expect(page.locator("#replay")).to_have_count(0)

    # the replayed webhook made its order; the dashboard shows no open failure any more
    await page.click("header nav >> text=Orders")
    await expect(page.locator("table tr", has_text="evt-garbage")).to_have_count(1)
    await page.click("header nav >> text=Dashboard")
    await expect(page.locator(".card", has_text="Open sync failures")).to_contain_text("0")
    await context.close()
