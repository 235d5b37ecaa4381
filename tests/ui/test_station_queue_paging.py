"""A long station queue on the tablet (issue 14), in Debian's Chromium through Playwright: with
200 operations queued at PRESS-01 the tablet shows the first page and says how many there are
("1–49 of 199": the running one is the current operation), pages through the rest with the
queue endpoint (every operation exactly once), in English and Chinese, at 1280x800 and
800x1280 with the main actions on screen. Screenshots go to tests/screenshots/."""
# ruff: noqa: RUF001, RUF002  (the page's range uses an en dash, the Chinese one full-width commas)

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import OperationSpec, OrderReceived, OrderSpec
from mes_edge.store.tokens import Role, create_token
from tests import factory as f
from tests.api.conftest import plant
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(180)]

SIZES = {"landscape": (1280, 800), "portrait": (800, 1280)}
MAIN_ACTIONS = ("#btn-start", "#btn-pause", "#btn-resume", "#btn-complete")
QUEUED = 200
RANGES = {"en": "{first}–{last} of {total}", "zh": "第 {first}–{last} 项，共 {total} 项"}


@pytest.fixture
async def long_queue(sqlite_url: str) -> AsyncIterator[tuple[EdgeService, str]]:
    """The test plant with 200 operations queued at PRESS-01, the first of them running."""
    settings = parse_settings(plant(sqlite_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        d = service.dispatcher
        assert d is not None
        for i in range(QUEUED):
            spec = OrderSpec(order_id=f"WO-{5000 + i}", revision=1, material=f"PART-{i % 7}",
                             quantity=40, due=f.T0 + timedelta(days=30, hours=i),
                             operations=(OperationSpec(op_no="0010", work_center="PRESS-01",
                                                       description="Stamp blank"),))
            await d.process(OrderReceived(event_id=f"o-{i}", spec=spec, source="erp",
                                          actor="erp", received_ts=f.T0))
        await d.process(f.start("WO-5000", "0010", "PRESS-01"))
        yield service, f"http://127.0.0.1:{settings.api.port}"
    finally:
        await service.stop()


async def _on_screen(page: Any, size: tuple[int, int], selectors: tuple[str, ...]) -> None:
    width, height = size
    for sel in selectors:
        box = await page.locator(sel).bounding_box()
        assert box is not None, f"{sel} is not rendered"
        assert box["x"] >= 0 and box["y"] >= 0, (sel, box)
        assert box["x"] + box["width"] <= width + 0.5, (sel, box, size)
        assert box["y"] + box["height"] <= height + 0.5, (sel, box, size)
    assert await page.evaluate("document.scrollingElement.scrollHeight <= innerHeight + 1")


async def _listed(page: Any) -> list[str]:
    titles = await page.eval_on_selector_all("#queue .q-title", "ns => ns.map(n => n.textContent)")
    return [t.split(" / ")[0] for t in titles]


async def test_a_long_queue_pages_on_the_tablet(long_queue: tuple[EdgeService, str]) -> None:
    service, url = long_queue
    assert service.store is not None
    SHOTS.mkdir(exist_ok=True)
    token = await create_token(service.store, Role.OPERATOR, "press-tablet", ["PRESS-01"])
    total = QUEUED - 1  # the running operation is shown as the current one, not in the list
    async with asyncio.timeout(150), playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for lang in ("en", "zh"):
                for name, size in SIZES.items():
                    page = await connect_tablet(browser, url, token, "/station/PRESS-01",
                                                lang=lang)
                    await page.set_viewport_size({"width": size[0], "height": size[1]})
                    await page.wait_for_selector("#conn.on")
                    await page.wait_for_selector("#cur-order:text('WO-5000')")
                    first = RANGES[lang].format(first=1, last=49, total=total)
                    await page.wait_for_selector(f"#queue-count:text-is('{first}')")
                    assert len(await _listed(page)) == 49
                    await _on_screen(page, size, (*MAIN_ACTIONS, "#queue-next", "#queue-prev",
                                                  "#queue-count"))
                    assert await page.is_disabled("#queue-prev")
                    await page.screenshot(path=SHOTS / f"station-queue-200-{name}-{lang}.png")
                    if (lang, name) == ("en", "landscape"):
                        await _page_through(page, total, size, service)
                        total += 1  # it added a rush order to the queue
                    await page.context.close()
        finally:
            await browser.close()


async def _page_through(page: Any, total: int, size: tuple[int, int],
                        service: EdgeService) -> None:
    """Next, next, ...: every queued operation once, in queue order; Previous goes back."""
    seen = await _listed(page)
    starts = [1]
    while not await page.is_disabled("#queue-next"):
        await page.click("#queue-next")
        start = len(seen) + 1
        last = min(start + 49, total)
        await page.wait_for_selector(f"#queue-count:text-is('{start}–{last} of {total}')")
        starts.append(start)
        seen += await _listed(page)
    assert starts == [1, 50, 100, 150]
    assert len(seen) == total and len(set(seen)) == total
    assert seen == [f"WO-{5000 + i}" for i in range(1, QUEUED)]  # due order: queue order
    await _on_screen(page, size, MAIN_ACTIONS)
    await page.screenshot(path=SHOTS / "station-queue-200-last-page.png")
    await page.click("#queue-prev")
    await page.wait_for_selector(f"#queue-count:text-is('100–149 of {total}')")
    assert (await _listed(page))[0] == "WO-5100"
    # a later page follows live changes: an order due before all others joins the queue, the
    # page shows the queue as it is now (everything one place further down)
    assert service.dispatcher is not None
    spec = OrderSpec(order_id="WO-4999", revision=1, material="RUSH", quantity=5,
                     due=f.T0 + timedelta(days=1),
                     operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))
    await service.dispatcher.process(OrderReceived(event_id="o-rush", spec=spec, source="erp",
                                                   actor="erp", received_ts=f.T0))
    await page.wait_for_selector(f"#queue-count:text-is('100–149 of {total + 1}')")
    await page.wait_for_function("document.querySelector('#queue .q-title').textContent"
                                 ".startsWith('WO-5099 ')")
    await page.click("#queue-prev")
    await page.click("#queue-prev")
    total += 1
    await page.wait_for_selector(f"#queue-count:text-is('1–49 of {total}')")
    assert await page.is_disabled("#queue-prev")
