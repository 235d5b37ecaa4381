"""The station tablet on a 10-inch screen (issue 10), in Debian's Chromium through Playwright:

- the main actions (Start / Pause / Resume / Complete) are inside the viewport without scrolling,
  with the downtime banner showing, at 1280x800 and 800x1280, in English and Chinese; the header
  does not wrap and the language toggle is not clipped;
- "Why did it stop?" is asked only for stops longer than the work center's `micro_stop_s`, and
  never while the machine runs;
- with the network gone a tap says "not sent, will retry", the offline state is unmistakable, taps
  that need the MES at once are disabled, and the kept tap is delivered once when it is back;
- a refusal is translated with its numbers; scrap reasons are limited per work center;
- the board's WIP table shows its DUE column at 1280 px.

Screenshots go to tests/screenshots/ (look at them after a layout change).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, MachineState, MachineStateChanged, QuantityReported
from mes_edge.store.tokens import Role, create_token
from simulators.modbus_plc import ModbusPlc
from tests.servers import free_port
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet, press_plant

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(180)]

SIZES = {"landscape": (1280, 800), "portrait": (800, 1280)}
MAIN_ACTIONS = ("#btn-start", "#btn-pause", "#btn-resume", "#btn-complete")
ORDERS: dict[str, dict[str, Any]] = {
    "WO-300": {"revision": 1, "material": "BRACKET-7", "quantity": 40,
               "due": "2030-01-31T16:00:00Z",
               "operations": [{"op_no": "0010", "work_center": "PRESS-01",
                               "description": "Stamp blank"}]},
    "WO-301": {"revision": 1, "material": "HOUSING-2", "quantity": 20,
               "operations": [{"op_no": "0010", "work_center": "ASSY-03",
                               "description": "Fit bushing"}]},
}


@pytest.fixture
async def plant_line(sqlite_url: str) -> AsyncIterator[tuple[EdgeService, ModbusPlc, str]]:
    """The browser tests' line; PRESS-01 asks for every stop, CNC-02 after a minute, and the
    manual ASSY-03 offers only the scrap reasons a person can see."""
    async with ModbusPlc(port=free_port(), cycle_time=0) as plc:
        doc = press_plant(sqlite_url, plc.port)
        doc["work_centers"] = [
            {"id": "PRESS-01", "name": "Stamping press", "counting": "machine",
             "micro_stop_s": 0},
            {"id": "CNC-02", "name": "CNC machining", "counting": "machine", "micro_stop_s": 60},
            {"id": "ASSY-03", "name": "Manual assembly", "counting": "operator",
             "scrap_reasons": ["dent", "scratch"]}]
        settings = parse_settings(doc)
        service = EdgeService(settings, api_factory=create_api)
        await service.start()
        try:
            yield service, plc, f"http://127.0.0.1:{settings.api.port}"
        finally:
            await service.stop()


async def _within_viewport(page: Any, selectors: tuple[str, ...], size: tuple[int, int]) -> None:
    width, height = size
    for sel in selectors:
        box = await page.locator(sel).bounding_box()
        assert box is not None, f"{sel} is not rendered"
        assert box["x"] >= 0 and box["y"] >= 0, (sel, box)
        assert box["x"] + box["width"] <= width + 0.5, (sel, box, size)
        assert box["y"] + box["height"] <= height + 0.5, (sel, box, size)
    # and nothing is reached by scrolling the page itself
    assert await page.evaluate("document.scrollingElement.scrollHeight <= innerHeight + 1")


async def _tablet(browser: Any, url: str, token: str, path: str, lang: str,
                  size: tuple[int, int]) -> Any:
    page = await connect_tablet(browser, url, token, path, lang=lang)
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    await page.wait_for_selector("#conn.on")
    return page


async def test_tablet_on_a_ten_inch_screen(
        plant_line: tuple[EdgeService, ModbusPlc, str]) -> None:
    service, plc, url = plant_line
    assert service.store is not None
    SHOTS.mkdir(exist_ok=True)
    tablet = await create_token(service.store, Role.OPERATOR, "line-1-tablet",
                                ["PRESS-01", "CNC-02", "ASSY-03"])
    supervisor = await create_token(service.store, Role.SUPERVISOR, "sue")
    erp = await create_token(service.store, Role.ERP, "erp")
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {erp}"}) as c:
        for order_id, order in ORDERS.items():
            assert (await c.put(f"/api/v1/work-orders/{order_id}", json=order)).status_code == 201
    async with httpx.AsyncClient(base_url=url,
                                 headers={"Authorization": f"Bearer {tablet}"}) as c:
        r = await c.post("/api/v1/stations/PRESS-01/start",
                         json={"order_id": "WO-300", "op_no": "0010"})
        assert r.status_code == 200, r.text
        st = (await c.get("/api/v1/stations/ASSY-03")).json()
        assert [s["code"] for s in st["scrap_reasons"]] == ["dent", "scratch"]
        assert st["micro_stop_s"] == 60 and st["unassigned"] is None
    await plc.apply_step({"do": "down"})  # the banner shows on the press from now on

    async with asyncio.timeout(150), playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await _actions_above_the_fold(browser, url, tablet)
            await _micro_stops(browser, url, tablet, service)
            await _offline_and_refusal(browser, url, tablet, service)
            await _board_due_column(browser, url, supervisor)
        finally:
            await browser.close()


async def _actions_above_the_fold(browser: Any, url: str, token: str) -> None:
    for lang in ("en", "zh"):
        for name, size in SIZES.items():
            page = await _tablet(browser, url, token, "/station/PRESS-01", lang, size)
            await page.wait_for_selector("#downtime:not([hidden])")
            await page.wait_for_selector("#cur-order:text('WO-300')")
            await _within_viewport(page, (*MAIN_ACTIONS, ".lang a:last-child", "#operator",
                                          "#machine", "#downtime-reasons .btn >> nth=0"), size)
            header = await page.locator(".topbar").bounding_box()
            assert header is not None and header["height"] < 100, header  # one line, no wrap
            await page.screenshot(path=SHOTS / f"station-{name}-{lang}.png")
            await page.context.close()


async def _micro_stops(browser: Any, url: str, token: str, service: EdgeService) -> None:
    assert service.dispatcher is not None
    now = datetime.now(UTC)

    async def machine(state: MachineState, seconds_ago: float) -> None:
        await service.dispatcher.process(MachineStateChanged(  # type: ignore[union-attr]
            event_id=f"cnc-{state}-{seconds_ago}", work_center="CNC-02", state=state,
            source_ts=now - timedelta(seconds=seconds_ago)))

    page = await _tablet(browser, url, token, "/station/CNC-02", "en", SIZES["landscape"])
    # a 10 s stop on a work center whose micro-stop threshold is 60 s: no question
    await machine(MachineState.RUNNING, 600)
    await machine(MachineState.DOWN, 500)
    await machine(MachineState.RUNNING, 490)
    await page.wait_for_selector("#machine.state-running")
    assert await page.is_hidden("#downtime") and await page.is_hidden("#stops-missing")
    # a stop of 3 minutes: asked while the machine stands ...
    await machine(MachineState.DOWN, 400)
    await page.wait_for_selector("#downtime:not([hidden])")
    # ... and never while it runs: then it waits behind a chip
    await machine(MachineState.RUNNING, 220)
    await page.wait_for_selector("#machine.state-running")
    assert await page.is_hidden("#downtime")
    await page.wait_for_selector("#stops-missing:not([hidden])")
    assert await page.text_content("#stops-missing-count") == "1"
    await page.screenshot(path=SHOTS / "station-stop-waits-while-running.png")
    await page.click("#stops-missing")
    await page.click("#stops-list button[data-reason=tooling]")
    await page.wait_for_selector("#stops-missing", state="hidden")
    # an open stop younger than the threshold: not yet
    await machine(MachineState.DOWN, 20)
    await page.wait_for_selector("#machine.state-down")
    await asyncio.sleep(1.5)  # the page re-checks each second; it must stay quiet
    assert await page.is_hidden("#downtime")
    # parts the machine counted while no operation ran: shown, not lost
    await service.dispatcher.process(QuantityReported(  # type: ignore[union-attr]
        event_id="cnc-plc/good_count/7", work_center="CNC-02", by=CountingSource.MACHINE,
        good=7))
    await page.wait_for_selector("#unassigned:not([hidden])")
    assert "7" in (await page.text_content("#unassigned-text") or "")
    await _within_viewport(page, MAIN_ACTIONS, SIZES["landscape"])
    await page.screenshot(path=SHOTS / "station-unassigned.png")
    await page.context.close()


async def _offline_and_refusal(browser: Any, url: str, token: str,
                               service: EdgeService) -> None:
    page = await _tablet(browser, url, token, "/station/ASSY-03", "zh", SIZES["landscape"])
    await page.click("#queue .btn.go")
    await page.wait_for_selector("#cur-order:text('WO-301')")
    # scrap reasons limited at the manual station: no "rejected by machine"
    await page.click("#btn-report")
    codes = await page.eval_on_selector_all("#scrap-reasons button", "bs => bs.map(b => "
                                            "b.dataset.reason)")
    assert codes == ["dent", "scratch"]
    # a refusal in the operator's language, with the numbers that are true and what to do
    await page.fill("#rep-good", "50")
    await page.click("#report-save")
    await page.wait_for_selector("#report-error:not([hidden])")
    text = await page.text_content("#report-error") or ""
    assert "最多允许 21 件良品" in text and "最多再报 21 件" in text, text
    assert "would exceed" not in text and "{" not in text, text
    await page.screenshot(path=SHOTS / "station-refusal-zh.png")
    await page.click("#report-dialog [data-close]")

    # the network goes away: unmistakable, and a tap is kept, not "refused"
    await page.context.set_offline(True)
    await page.wait_for_selector("#offline:not([hidden])")
    assert await page.is_disabled("#operator") and await page.is_disabled("#scan")
    await page.click("#btn-report")
    await page.fill("#rep-good", "3")
    await page.click("#report-save")
    await page.wait_for_selector("#report-dialog", state="hidden")
    toast = await page.text_content("#toast") or ""
    assert "未发送" in toast and "被拒绝" not in toast, toast
    assert "1" in (await page.text_content("#offline-pending") or "")
    assert await page.is_visible("#btn-complete") and await page.is_enabled("#btn-complete")
    await page.screenshot(path=SHOTS / "station-offline-zh.png")
    # back online: sent with the same key, counted once
    await page.context.set_offline(False)
    await page.wait_for_selector("#offline", state="hidden", timeout=20_000)
    await page.wait_for_selector("#cnt-good:text-is('3')")
    state = service.dispatcher.state  # type: ignore[union-attr]
    order = state.order("WO-301")
    assert order is not None and order.operations[0].done.good == 3
    await page.context.close()


async def _board_due_column(browser: Any, url: str, token: str) -> None:
    page = await connect_tablet(browser, url, token, "/board")
    await page.wait_for_selector("#conn.on")
    await page.wait_for_selector("#wip tr")
    await page.wait_for_selector("#unassigned tr[data-wc=CNC-02] button[data-verb=assign]")
    await page.click("#unassigned tr[data-wc=CNC-02] button[data-verb=write-off]")
    await page.wait_for_selector("#ua-dialog[open]")
    assert await page.input_value("#ua-good") == "7"
    await page.click("#ua-dialog [data-close]")
    for lang_shot in ("board-1280.png",):
        await _within_viewport_x(page, ".wip-card th:last-child", 1280)
        await _within_viewport_x(page, "#wip tr:first-child td:last-child", 1280)
        await page.screenshot(path=SHOTS / lang_shot, full_page=True)
    await page.context.close()


async def _within_viewport_x(page: Any, selector: str, width: int) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None and box["x"] + box["width"] <= width, (selector, box)
    clipped = await page.evaluate("""(sel) => { const c = document.querySelector(sel)
        .closest('.table-wrap'); return c.scrollWidth > c.clientWidth; }""", selector)
    assert not clipped, selector
