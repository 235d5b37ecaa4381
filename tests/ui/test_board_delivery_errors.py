"""Push mode: a confirmation the ERP refuses (4xx) shows on the supervisor board, in Chromium,
with Retry and Skip; a retry after the ERP was fixed delivers it (issue 9)."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from mes_edge.store import feed
from mes_edge.store.tokens import Role, create_token
from simulators.erp import ErpSim
from tests.api.conftest import plant
from tests.factory import order
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(120)]


async def _state(service: EdgeService, cid: str) -> str | None:
    assert service.store is not None
    rows = await feed.deliveries(service.store, confirmation_id=cid, limit=1)
    return str(rows[0].state) if rows else None


async def _until_state(service: EdgeService, cid: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while await _state(service, cid) != state:
        assert time.monotonic() < deadline, f"{cid} never became {state}"
        await asyncio.sleep(0.1)


async def test_a_refused_confirmation_is_on_the_board_and_a_retry_delivers_it(
        sqlite_url: str) -> None:
    erp = ErpSim("http://unused", "unused", mode="push")
    await erp.start()
    settings = parse_settings(plant(sqlite_url, erp={"mode": "push", "push_url": erp.push_url}))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    d, store = service.dispatcher, service.store
    assert d is not None and store is not None
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        sup = await create_token(store, Role.SUPERVISOR, "sue")
        erp.refuse("B-1", 422, "posting period 2026/12 is closed")
        await d.process(order("B-1", qty=100, wcs=("PRESS-01",)))
        await d.process(OperationCommand(event_id="start-b1", work_center="PRESS-01",
                                         action=OperationAction.START, order_id="B-1",
                                         op_no="0010"))
        await d.process(QuantityReported(event_id="count-b1", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=10))  # every_units 10
        [row] = [r for r in await feed.page(store, 0, 100) if r.order_id == "B-1"]
        cid = row.confirmation_id
        await _until_state(service, cid, "error")

        SHOTS.mkdir(exist_ok=True)
        async with asyncio.timeout(90), playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await connect_tablet(browser, url, sup, "/board", lang="en")
                await page.set_viewport_size({"width": 1280, "height": 800})
                item = page.locator(f"#delivery-errors li[data-id='{cid}']")
                await item.wait_for()
                text = await item.inner_text()
                assert "422" in text and "posting period 2026/12 is closed" in text
                assert "B-1" in text
                await page.screenshot(path=SHOTS / "board-delivery-error.png")
                erp.clear_refusal("B-1")  # the ERP team fixed it; the supervisor retries
                await item.locator("[data-verb='retry']").click()
                await _until_state(service, cid, "delivered")
                await page.locator("#delivery-section").wait_for(state="hidden")
            finally:
                await browser.close()
        assert cid in erp.received.by_id
    finally:
        await service.stop()
        await erp.close()
