"""Shift progress on the supervisor board and the station tablet, in Chromium (en and zh-CN,
1280x800): a shift running now with a break, a breakdown given a reason, a micro-stop, scrap and
an open stop driven through the service; the board draws A/P/Q/OEE, the state timeline and the
Pareto (SVG), the tablet its own figures and the two-level reason prompt (issue 11)."""

from __future__ import annotations

import asyncio
import importlib

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState
from mes_edge.store.progress import spans
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running
from tests.api.test_progress import state
from tests.api.test_progress_shift import drive_shift, shift_now, shift_plant
from tests.api.test_progress_strip import flicker
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(150)]


async def test_shift_progress_on_board_and_tablet(sqlite_url: str) -> None:
    s = shift_now()
    settings = parse_settings(shift_plant(sqlite_url, s))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    d, store = service.dispatcher, service.store
    assert d is not None and store is not None
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        r = Running(service, url, {})
        await drive_shift(r, s)
        # CNC-02 flickers for ten minutes (40 stops of 10-20 s): too short for a pixel each.
        await flicker(r, s)
        # An open stop five minutes long: past the micro-stop threshold, it asks for a reason.
        assert (await d.process(state("PRESS-01", MachineState.DOWN, s.at(55)))).ok
        sup = await create_token(store, Role.SUPERVISOR, "sue")
        tablet = await create_token(store, Role.OPERATOR, "press-tablet", ["PRESS-01"])
        SHOTS.mkdir(exist_ok=True)
        async with asyncio.timeout(110), playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for lang, tooling, avail in (("en", "Tooling", "Availability"),
                                             ("zh", "工装", "可用率")):
                    page = await connect_tablet(browser, url, sup, "/board", lang=lang)
                    card = page.locator("#progress article[data-work-center='PRESS-01']")
                    await card.wait_for()
                    text = (await card.inner_text()).lower()  # captions are upper case
                    assert avail.lower() in text and "98.0 %" in text  # Q: 1500 good, 30 scrap
                    # CNC-02 shares the calendar and counted nothing: Q is null.
                    cnc = page.locator("#progress article[data-work-center='CNC-02']")
                    assert "\u2013" in await cnc.locator("[data-kpi='q']").inner_text()  # null
                    # The board asks at its strip's resolution: CNC-02's flicker comes merged,
                    # far fewer rectangles than its 43 spans, the hover text (the SVG title, the
                    # browser's tooltip) says what is in one.
                    asked = await page.evaluate("performance.getEntriesByType('resource')"
                                                ".map(e => e.name)")
                    assert any("/progress/shift?" in u and "resolution_s=" in u for u in asked)
                    cseg = cnc.locator("svg.pg-timeline rect.seg")
                    assert 3 < await cseg.count() < 20
                    merged = cnc.locator("svg.pg-timeline rect.seg[data-merged]")
                    assert await merged.count() >= 1
                    hover = await merged.first.locator("title").text_content()
                    # "3 micro-stops · Running 1 min, Down 0.5 min" (all its stops are micro)
                    stops, run_text, down_text = (("micro-stops", "Running", "Down") if lang == "en"
                                                  else ("次短暂停机", "运行中", "停机"))
                    assert hover is not None and stops in hover and run_text in hover
                    assert down_text in hover and ("min" if lang == "en" else "分钟") in hover
                    # The strip: running, the breakdown, the micro-stop, the break, the open stop.
                    seg = card.locator("svg.pg-timeline rect.seg")
                    kinds = [await seg.nth(i).get_attribute("data-state")
                             for i in range(await seg.count())]
                    assert kinds == ["running", "down", "running", "micro", "running", "idle",
                                     "running", "down"], kinds
                    assert await card.locator("svg.pg-timeline rect.brk").count() == 1
                    tip = await seg.nth(1).locator("title").text_content()
                    assert tip is not None and tooling in tip
                    bars = card.locator("svg.pg-pareto rect")
                    assert await bars.count() == 2  # tooling (10 min), the open stop (no reason)
                    found = [(await bars.nth(i).get_attribute("data-reason"),
                              float(await bars.nth(i).get_attribute("data-minutes") or 0))
                             for i in range(2)]
                    assert {r for r, _ in found} == {"tooling", ""}  # "": no reason given
                    assert found[0][1] >= found[1][1]  # largest first
                    assert ("tooling", 10.0) in found
                    await page.screenshot(path=SHOTS / f"board-progress-{lang}.png")

                    station = await connect_tablet(browser, url, tablet, "/station/PRESS-01",
                                                   lang=lang)
                    band = station.locator("#progress article[data-work-center='PRESS-01']")
                    await band.wait_for()
                    assert "1,500" in await band.inner_text() or "1500" in (
                        await band.inner_text()).replace(",", "")
                    # Why did it stop: the category first, then its reasons.
                    cat = station.locator("#downtime-reasons button[data-category='mech']")
                    await cat.wait_for()
                    await station.screenshot(path=SHOTS / f"station-progress-{lang}.png")
                    if lang == "zh":
                        await cat.click()
                        leaf = station.locator("#downtime-reasons button[data-reason='tooling']")
                        await leaf.wait_for()
                        assert await leaf.inner_text() == tooling
                        await station.screenshot(path=SHOTS / "station-reason-tree-zh.png")
                        await leaf.click()
                        await station.locator("#downtime").wait_for(state="hidden")
            finally:
                await browser.close()
        [last] = [x for x in await spans(store, s.at(0), s.at(24 * 60),
                                         work_centers=["PRESS-01"], stops_only=True)
                  if x.start == s.at(55)]
        assert (last.reason, last.reason_by) == ("tooling", "press-tablet")
    finally:
        await service.stop()
