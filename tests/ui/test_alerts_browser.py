"""Alerts on the supervisor board and the station tablet, in Chromium (en and zh-CN, 1280x800):
an active alert is listed with its translated kind and acknowledged from the page; an
acknowledged one says who saw it (the operator's name and badge at a station tablet), at which
station and when; an escalated one says so and asks for acknowledgement again (issue 11)."""

from __future__ import annotations

import asyncio
import importlib
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState
from mes_edge.store import alerts as alert_store
from mes_edge.store.tokens import Role, create_token, upsert_operator
from tests.api.conftest import plant
from tests.factory import T0, machine_state
from tests.ui.test_station_browser import ARGS, CHROMIUM, SHOTS, connect_tablet

# A test dependency (tests/run.sh installs it): missing is a failure, never a skip.
playwright_api = importlib.import_module("playwright.async_api")

pytestmark = [pytest.mark.timeout(120)]

#: "seen by ..." with a time as the page formats it (the browser's time zone: any HH:MM).
TIME = r"[^·]*\d{2}:\d{2}"
SEEN = {
    "en": {"station": rf"seen by Li Wei \(B-17\) at PRESS-01, {TIME}",
           "board": rf"seen by sue, {TIME}", "escalated": rf"escalated {TIME}"},
    "zh": {"station": rf"Li Wei \(B-17\) 已于 {TIME} 在 PRESS-01 确认",
           "board": rf"sue 已于 {TIME} 确认", "escalated": rf"{TIME} 已升级"},
}


async def text_of(page: Any, selector: str, pattern: str) -> str:
    """The item's text once it matches `pattern` (the page polls the API every 5 s)."""
    item = page.locator(selector)
    await item.wait_for()
    async with asyncio.timeout(15):
        while True:
            text = str(await item.inner_text())
            if re.search(pattern, text):
                return text
            await asyncio.sleep(0.1)


async def test_alerts_on_board_and_station_acknowledged_there(sqlite_url: str) -> None:
    settings = parse_settings(plant(sqlite_url, alerts={"thresholds": {
        "down_minutes": 5, "down_error_minutes": 15}}))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    d, store, engine = service.dispatcher, service.store, service.alerts
    assert d is not None and store is not None and engine is not None
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        now = T0 + timedelta(minutes=10)
        engine.clock = lambda: now
        assert (await d.process(machine_state("PRESS-01", MachineState.DOWN))).ok
        await engine.evaluate()
        assert {(a["kind"], a["severity"]) for a in engine.current("PRESS-01")} == {
            ("machine_down", "warning"), ("reason_missing", "warning")}
        sup = await create_token(store, Role.SUPERVISOR, "sue")
        tablet = await create_token(store, Role.OPERATOR, "press-tablet", ["PRESS-01"])
        await upsert_operator(store, "B-17", "Li Wei", "4711", ["PRESS-01"])
        async with httpx.AsyncClient(base_url=url, timeout=10, headers={
                "Authorization": f"Bearer {tablet}"}) as http:
            r = await http.post("/api/v1/stations/PRESS-01/login",
                                json={"badge": "B-17", "pin": "4711"})
            assert r.status_code == 200, r.text
        SHOTS.mkdir(exist_ok=True)
        down_sel = "#alerts li[data-kind='machine_down']"
        reason_sel = "#alerts li[data-kind='reason_missing']"
        async with asyncio.timeout(100), playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                # Acknowledged where they are seen: the reason prompt on the tablet (by the
                # operator signed in there), machine down on the board (by the supervisor).
                station = await connect_tablet(browser, url, tablet, "/station/PRESS-01")
                await station.locator(reason_sel + " button").click()
                await text_of(station, reason_sel + ".acked", SEEN["en"]["station"])
                board = await connect_tablet(browser, url, sup, "/board")
                await board.locator(down_sel + " button").click()
                await text_of(board, down_sel + ".acked", SEEN["en"]["board"])
                pages = {"en": (board, station)}
                pages["zh"] = (await connect_tablet(browser, url, sup, "/board", lang="zh"),
                               await connect_tablet(browser, url, tablet, "/station/PRESS-01",
                                                    lang="zh"))
                for lang, kind in (("en", "Machine down"), ("zh", "设备停机")):
                    board, station = pages[lang]
                    for page, name in ((board, "board"), (station, "station")):
                        await page.reload()
                        text = await text_of(page, down_sel + ".acked", SEEN[lang]["board"])
                        assert kind in text
                        await text_of(page, reason_sel + ".acked", SEEN[lang]["station"])
                        await page.locator("#alerts-section").scroll_into_view_if_needed()
                        await page.screenshot(path=SHOTS / f"{name}-alerts-{lang}.png")

                # Down past the second threshold: the same alert escalates to an error, says
                # when, and asks for acknowledgement again on both pages.
                now = T0 + timedelta(minutes=16)
                await engine.evaluate()
                for lang, (board, station) in pages.items():
                    for page, name in ((board, "board"), (station, "station")):
                        await page.reload()
                        item = page.locator(down_sel + ".escalated.sev-error")
                        text = await text_of(page, down_sel + ".escalated.sev-error",
                                             SEEN[lang]["escalated"])
                        assert not re.search(SEEN[lang]["board"], text)
                        assert await item.locator("button").is_visible()
                        await page.locator("#alerts-section").scroll_into_view_if_needed()
                        await page.screenshot(
                            path=SHOTS / f"{name}-alerts-escalated-{lang}.png")
                board = pages["en"][0]
                await board.locator(down_sel + " button").click()
                text = await text_of(board, down_sel + ".acked", SEEN["en"]["board"])
                assert re.search(SEEN["en"]["escalated"], text)
            finally:
                await browser.close()
        rows = {r["kind"]: r for r in await alert_store.listing(store, active_only=True)}
        assert (rows["machine_down"]["acked_by"], rows["machine_down"]["severity"]) == (
            "sue", "error")
        assert rows["machine_down"]["severity_changes"][0]["acked_by"] == "sue"
        assert (rows["reason_missing"]["acked_by"],
                rows["reason_missing"]["acked_station"]) == ("B-17", "PRESS-01")
    finally:
        await service.stop()
