"""The supervisor board with 20,000 open orders, in Chromium (issue 14): the WIP table shows one
page, with paging and filters answered by the server, and the page stays quick."""

from __future__ import annotations

import asyncio
import importlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import OperationSpec, OrderReceived, OrderSpec
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import plant
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(180)]

OPEN = 20_000
WCS = ("PRESS-01", "CNC-02", "ASSY-03")
DASH = "\u2013"  # the range on the pager: "1\u201350 / 20,000"


async def _fill(service: EdgeService) -> None:
    d = service.dispatcher
    assert d is not None
    now = datetime.now(UTC)
    items = []
    for i in range(OPEN):
        # every tenth order is overdue
        due = now + timedelta(hours=(i % 10) * 24 - 12 if i % 10 else -24 - i % 7)
        spec = OrderSpec(order_id=f"W-{i:05d}", revision=1, material=f"M-{i % 40}", quantity=10,
                         due=due,
                         operations=(OperationSpec(op_no="0010", work_center=WCS[i % 3]),))
        items.append(OrderReceived(event_id=f"fill-{i}", spec=spec, source="erp", actor="erp",
                                   received_ts=now))
    futures = await d.submit_many(items)
    await asyncio.gather(*futures)


async def test_the_board_pages_and_filters_20000_open_orders(sqlite_url: str) -> None:
    settings = parse_settings(plant(sqlite_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        await _fill(service)
        sup = await create_token(service.store, Role.SUPERVISOR, "sue")
        SHOTS.mkdir(exist_ok=True)
        async with asyncio.timeout(120), playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                t0 = time.monotonic()
                page = await connect_tablet(browser, url, sup, "/board", lang="en")
                await page.set_viewport_size({"width": 1440, "height": 900})
                rng = page.locator("#wip-range")
                await page.wait_for_function(
                    "document.getElementById('wip-range').textContent.includes('20,000')")
                loaded = time.monotonic() - t0
                assert (await rng.inner_text()).startswith(f"1{DASH}50")
                assert await page.locator("#wip tr").count() == 50
                assert await page.locator("#wip tr >> nth=0 >> td >> nth=0").inner_text() \
                    == "W-00000"
                # queue length on the tiles comes from the index: a third of the orders each
                tile = page.locator("article[data-wc='ASSY-03']")
                assert "6,666" in await tile.inner_text()
                await page.screenshot(path=SHOTS / "board-20000-orders.png", full_page=False)
                await page.click("#wip-next")
                await page.wait_for_function(
                    "document.getElementById('wip-range').textContent.startsWith('51\u2013100')")
                assert await page.locator("#wip tr >> nth=0 >> td >> nth=0").inner_text() \
                    == "W-00050"
                await page.select_option("#wip-wc", "CNC-02")
                await page.wait_for_function(
                    "document.getElementById('wip-range').textContent.endsWith('/ 6,667')")
                assert (await rng.inner_text()).startswith(f"1{DASH}50")
                cells = await page.locator("#wip tr td:nth-child(3)").all_inner_texts()
                assert set(cells) == {"CNC-02"}
                await page.check("#wip-late-first")
                await page.wait_for_function(
                    "document.querySelectorAll('#wip tr.late').length === 50")
                await page.screenshot(path=SHOTS / "board-20000-late-first.png")
                # A figure, not a verdict (tests never fail on a timing; benchmarks.scale
                # measures the board): the page's own timeouts bound the wait.
                print(f"the board showed {OPEN} open orders in {loaded:.1f} s")
            finally:
                await browser.close()
    finally:
        await service.stop()
