"""The station tablet and the supervisor board in a real browser (Debian's Chromium through
Playwright), against a service whose press is fed by the Modbus PLC simulator.

Flow: the ERP imports an order; an operator connects the tablet (token -> cookie), starts the
press operation; the PLC counts and the page shows the count without a reload; the machine stops
and the operator gives the reason; on the manual assembly station the operator signs in by badge
scan and reports good + scrap with a reason; the board shows it all. Screenshots are saved under
tests/screenshots/.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.store.tokens import Role, create_token, upsert_operator
from simulators.modbus_plc import ModbusPlc
from tests.api.conftest import plant
from tests.servers import free_port

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

CHROMIUM = os.environ.get("MES_TEST_CHROMIUM") or shutil.which("chromium") or "chromium"
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ORDER: dict[str, Any] = {
    "revision": 1, "material": "BRACKET-7", "quantity": 40, "due": "2030-01-31T16:00:00Z",
    "operations": [{"op_no": "0010", "work_center": "PRESS-01", "description": "Stamp blank"},
                   {"op_no": "0020", "work_center": "ASSY-03", "description": "Fit bushing"}],
}

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    """Debian's chromium is a test requirement (tests/run.sh installs it): fail, never skip."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: run tests/run.sh, which installs Debian's chromium")


def press_plant(db_url: str, plc_port: int) -> dict[str, Any]:
    """The test plant with PRESS-01 counted by a Modbus PLC (the demo's register map)."""
    doc = plant(db_url)
    doc["production"]["scrap_reasons"] = [
        {"code": "dent", "text": {"en": "Dent", "zh": "凹痕"}},
        {"code": "scratch", "text": {"en": "Scratch", "zh": "划痕"}},
        {"code": "machine", "text": {"en": "Rejected by machine", "zh": "机器剔除"}}]
    doc["production"]["downtime_reasons"] = [
        {"code": "material", "text": {"en": "Waiting for material", "zh": "等待物料"}},
        {"code": "tooling", "text": {"en": "Tool change", "zh": "换刀"}},
        {"code": "breakdown", "text": {"en": "Breakdown", "zh": "故障"}}]
    doc["work_centers"] = [
        # every stop of the press asks for a reason (the default threshold is a minute)
        {"id": "PRESS-01", "name": "Stamping press", "counting": "machine", "micro_stop_s": 0},
        {"id": "CNC-02", "name": "CNC machining", "counting": "machine"},
        {"id": "ASSY-03", "name": "Manual assembly", "counting": "operator"}]
    doc["devices"] = [{
        "name": "press-plc", "driver": "modbus", "host": "127.0.0.1", "port": plc_port,
        "timeout": 1.0, "poll_groups": {"fast": 0.1},
        "tags": [{"name": "state", "address": 0, "data_type": "uint16", "poll_group": "fast"},
                 {"name": "good_count", "address": 10, "data_type": "uint32", "poll_group": "fast"},
                 {"name": "scrap_count", "address": 14, "data_type": "uint32",
                  "poll_group": "fast"}]}]
    doc["rules"] = [{
        "work_center": "PRESS-01",
        "counters": [{"device": "press-plc", "tag": "good_count", "counts": "good"},
                     {"device": "press-plc", "tag": "scrap_count", "counts": "scrap",
                      "scrap_reason": "machine"}],
        "state": {"device": "press-plc", "tag": "state"}}]
    return doc


@pytest.fixture
async def line(sqlite_url: str) -> AsyncIterator[tuple[EdgeService, ModbusPlc, str]]:
    """A PLC that does not count by itself (cycle_time 0) and a service polling it."""
    async with ModbusPlc(port=free_port(), cycle_time=0) as plc:
        settings = parse_settings(press_plant(sqlite_url, plc.port))
        service = EdgeService(settings, api_factory=create_api)
        await service.start()
        try:
            yield service, plc, f"http://127.0.0.1:{settings.api.port}"
        finally:
            await service.stop()


async def connect_tablet(browser: Any, url: str, token: str, path: str, lang: str = "en",
                         shot: str | None = None) -> Any:
    """A fresh tablet: paste the token once on the login page, land on `path`."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                        locale="zh-CN" if lang == "zh" else "en-GB")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"{url}/login?next={path}&lang={lang}")
    await page.fill("#token", token)
    if shot:
        await page.screenshot(path=SHOTS / shot)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{path}")
    return page


async def test_station_and_board_in_a_browser(line: tuple[EdgeService, ModbusPlc, str]) -> None:
    service, plc, url = line
    assert service.store is not None
    SHOTS.mkdir(exist_ok=True)
    tablet = await create_token(service.store, Role.OPERATOR, "line-1-tablet",
                                ["PRESS-01", "ASSY-03"])
    supervisor = await create_token(service.store, Role.SUPERVISOR, "sue")
    erp = await create_token(service.store, Role.ERP, "erp")
    await upsert_operator(service.store, "B-17", "Li Wei", None, [])  # a badge alone (no PIN)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {erp}"}) as c:
        assert (await c.put("/api/v1/work-orders/WO-100", json=ORDER)).status_code == 201

    async with asyncio.timeout(90), playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await _press_counts_live(browser, url, tablet, plc)
            await _assembly_reports_scrap(browser, url, tablet)
            await _board_shows_it(browser, url, supervisor)
        finally:
            await browser.close()


async def _press_counts_live(browser: Any, url: str, token: str, plc: ModbusPlc) -> None:
    page = await connect_tablet(browser, url, token, "/station/PRESS-01", shot="login.png")
    await page.wait_for_selector("#conn.on")
    await page.wait_for_selector("#machine.state-running")
    await page.click("#btn-start")
    await page.wait_for_selector("#cur-order:text('WO-100')")
    await page.evaluate("window.__sameDocument = true")  # lost on any reload
    await plc.apply_step({"do": "set_counter", "counter": "good", "value": 12})
    await plc.apply_step({"do": "set_counter", "counter": "scrap", "value": 1})
    await page.wait_for_selector("#cnt-good:text-is('12')")
    await page.wait_for_selector("#cnt-scrap:text-is('1')")
    assert await page.evaluate("window.__sameDocument") is True
    assert await page.text_content("#cnt-planned") == "40"
    await page.screenshot(path=SHOTS / "station-press-counting.png")

    await plc.apply_step({"do": "down"})  # the machine stops: the tablet asks why
    await page.wait_for_selector("#machine.state-down")
    await page.wait_for_selector("#downtime:not([hidden])")
    await page.screenshot(path=SHOTS / "station-press-down.png")
    await page.click("#downtime-reasons button[data-reason=tooling]")
    await page.wait_for_selector("#downtime", state="hidden")
    await plc.apply_step({"do": "run"})
    await page.wait_for_selector("#machine.state-running")
    assert await page.evaluate("window.__sameDocument") is True
    await page.context.close()


async def _assembly_reports_scrap(browser: Any, url: str, token: str) -> None:
    page = await connect_tablet(browser, url, token, "/station/ASSY-03", lang="zh")
    await page.wait_for_selector("#conn.on")
    # a USB scanner "types" the badge and Enter wherever the focus is
    await page.keyboard.type("OP:B-17\n", delay=5)
    await page.wait_for_selector("#operator-name:text('Li Wei')")
    await page.click("#queue .btn.go")
    await page.wait_for_selector("#cur-order:text('WO-100')")
    await page.click("#btn-report")
    await page.fill("#rep-good", "9")
    await page.click(".step[data-target=rep-scrap][data-delta='1']")
    await page.click(".step[data-target=rep-scrap][data-delta='1']")
    await page.click("#report-save")  # no reason picked: refused on the page
    await page.wait_for_selector("#report-error:not([hidden])")
    await page.click("#scrap-reasons button[data-reason=dent]")
    await page.screenshot(path=SHOTS / "station-assembly-report-zh.png")
    await page.click("#report-save")
    await page.wait_for_selector("#report-dialog", state="hidden")
    await page.wait_for_selector("#cnt-good:text-is('9')")
    assert await page.text_content("#cnt-scrap") == "2"
    await page.screenshot(path=SHOTS / "station-assembly-zh.png")
    await page.context.close()


async def _board_shows_it(browser: Any, url: str, token: str) -> None:
    page = await connect_tablet(browser, url, token, "/board")
    await page.wait_for_selector("#conn.on")
    await page.wait_for_selector("[data-wc=ASSY-03] .t-counts .g:text-is('9')")
    press = await page.text_content("[data-wc=PRESS-01]")
    assert press is not None and "WO-100" in press and "12" in press
    assert "Li Wei" in (await page.text_content("[data-wc=ASSY-03]") or "")
    await page.wait_for_selector("#wip tr")
    assert await page.locator("#wip tr").count() == 2
    await page.screenshot(path=SHOTS / "board.png", full_page=True)
    await page.context.close()
