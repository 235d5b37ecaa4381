"""Alerts on the supervisor board and the station tablet, in Chromium (en and zh-CN, 1280x800):
an active alert is listed with its translated kind and acknowledged from the page (issue 11)."""

from __future__ import annotations

import asyncio
import importlib
from datetime import timedelta

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState
from mes_edge.store import alerts as alert_store
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import plant
from tests.factory import T0, machine_state
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(120)]


async def test_alerts_on_board_and_station_acknowledged_there(sqlite_url: str) -> None:
    settings = parse_settings(plant(sqlite_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    d, store, engine = service.dispatcher, service.store, service.alerts
    assert d is not None and store is not None and engine is not None
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        engine.clock = lambda: T0 + timedelta(minutes=10)
        assert (await d.process(machine_state("PRESS-01", MachineState.DOWN))).ok
        await engine.evaluate()
        assert {a["kind"] for a in engine.current("PRESS-01")} == {"machine_down",
                                                                    "reason_missing"}
        sup = await create_token(store, Role.SUPERVISOR, "sue")
        tablet = await create_token(store, Role.OPERATOR, "press-tablet", ["PRESS-01"])
        SHOTS.mkdir(exist_ok=True)
        async with asyncio.timeout(90), playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for lang, down in (("en", "Machine down"), ("zh", "设备停机")):
                    page = await connect_tablet(browser, url, sup, "/board", lang=lang)
                    await page.set_viewport_size({"width": 1280, "height": 800})
                    item = page.locator("#alerts li[data-kind='machine_down']")
                    await item.wait_for()
                    assert down in await item.inner_text()
                    await page.screenshot(path=SHOTS / f"board-alerts-{lang}.png")
                    station = await connect_tablet(browser, url, tablet, "/station/PRESS-01",
                                                   lang=lang)
                    await station.set_viewport_size({"width": 1280, "height": 800})
                    await station.locator("#alerts li[data-kind='reason_missing']").wait_for()
                    await station.screenshot(path=SHOTS / f"station-alerts-{lang}.png")
                # Acknowledge on the board: who and when are recorded, the alert stays listed.
                await item.locator("button").click()
                await page.locator("#alerts li.acked[data-kind='machine_down']").wait_for()
            finally:
                await browser.close()
        rows = await alert_store.listing(store, active_only=True)
        acked = [r for r in rows if r["kind"] == "machine_down"]
        assert acked and acked[0]["acked_by"] == "sue"
    finally:
        await service.stop()
