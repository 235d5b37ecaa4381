"""The running shift as the board and the tablet read it: GET /api/v1/progress/shift and the
downtime reason tree (GET /api/v1/downtime-reasons), with real events through the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState
from mes_edge.domain.events import (
    DowntimeReasonGiven,
    OperationAction,
    OperationCommand,
    OrderReceived,
    QuantityReported,
)
from mes_edge.domain.model import CountingSource, OperationSpec, OrderSpec
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running
from tests.api.test_progress import progress_plant, send, state

pytestmark = pytest.mark.timeout(120)

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ShiftNow:
    """A shift that started on a 15-minute boundary 60-75 minutes ago (site time zone UTC),
    with a 10-minute break 30 minutes after its start."""

    start: datetime

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def calendar(self) -> dict[str, Any]:
        hhmm = lambda m: self.at(m).strftime("%H:%M")  # noqa: E731
        return {"shifts": {"now": {"start": hhmm(0), "end": hhmm(8 * 60),
                                   "breaks": [{"start": hhmm(30), "end": hhmm(40),
                                               "name": "coffee"}]}},
                "week": {d: ["now"] for d in EVERY_DAY}}


def shift_now() -> ShiftNow:
    now = datetime.now(UTC)
    floor = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return ShiftNow(floor - timedelta(hours=1))


def shift_plant(db_url: str, s: ShiftNow) -> dict[str, Any]:
    doc = progress_plant(db_url)
    doc["site_timezone"] = "UTC"
    doc["calendars"] = {"now": s.calendar()}
    doc["work_centers"][0]["calendar"] = "now"  # PRESS-01, micro_stop_s 60, ideal cycle 1 s
    doc["work_centers"][1]["calendar"] = "now"  # CNC-02
    return doc


async def drive_shift(r: Running, s: ShiftNow) -> str:
    """Running, a 10-min breakdown given a reason, a 20-s micro-stop, the break, scrap.
    Returns the breakdown's downtime id."""
    await send(r, OrderReceived(event_id="so-1", source="erp", received_ts=s.at(0), spec=OrderSpec(
        order_id="S1", revision=1, material="M", quantity=5000,
        operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))))
    await send(r, OperationCommand(event_id="ss-1", work_center="PRESS-01",
                                   action=OperationAction.START, order_id="S1", op_no="0010",
                                   source_ts=s.at(0)))
    for m, st in ((1, MachineState.RUNNING), (5, MachineState.DOWN), (15, MachineState.RUNNING),
                  (20, MachineState.DOWN), (20 + 1 / 3, MachineState.RUNNING),
                  (30, MachineState.IDLE), (40, MachineState.RUNNING)):
        await send(r, state("PRESS-01", st, s.at(m)))
    await send(r, QuantityReported(event_id="sq-1", work_center="PRESS-01",
                                   by=CountingSource.MACHINE, good=1500, scrap={"machine": 30},
                                   source="plc1", source_ts=s.at(45)))
    assert r.service.store is not None
    from mes_edge.store.progress import spans
    [down] = [x for x in await spans(r.service.store, s.at(0), s.at(60),
                                     work_centers=["PRESS-01"], stops_only=True)
              if x.start == s.at(5)]
    assert down.downtime_id is not None
    await send(r, DowntimeReasonGiven(event_id="sr-1", source="tablet", actor="op",
                                      work_center="PRESS-01", reason="tooling",
                                      downtime_id=down.downtime_id))
    return down.downtime_id


@pytest.fixture
async def shift_running(db_url: str) -> AsyncIterator[tuple[Running, ShiftNow]]:
    s = shift_now()
    settings = parse_settings(shift_plant(db_url, s))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {"operator": await create_token(service.store, Role.OPERATOR, "t", ["PRESS-01"])}
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens), s
    finally:
        await service.stop()


async def test_running_shift_figures_timeline_and_pareto(
        shift_running: tuple[Running, ShiftNow]) -> None:
    r, s = shift_running
    await drive_shift(r, s)
    async with r.client("operator") as c:
        resp = await c.get("/api/v1/progress/shift", params={"work_center": "PRESS-01"})
        assert resp.status_code == 200, resp.text
        [wc] = resp.json()["work_centers"]
        unknown = await c.get("/api/v1/progress/shift", params={"work_center": "NOPE"})
        assert unknown.status_code == 404
    now = datetime.fromisoformat(resp.json()["now"])
    assert wc["shift"]["name"] == "now" and wc["shift"]["running"]
    assert datetime.fromisoformat(wc["from"]) == s.start
    [brk] = wc["shift"]["breaks"]
    assert (datetime.fromisoformat(brk["start"]), brk["name"]) == (s.at(30), "coffee")
    f = wc["figures"]
    # Planned busy time: shift so far minus the break; run time: minus the minute before the
    # first state, the 10-min breakdown and the 20-s micro-stop (ISO mode: availability losses).
    planned = (now - s.start - timedelta(minutes=10)).total_seconds() / 60
    assert abs(f["planned_busy_min"] - planned) < 0.01
    assert abs(f["run_time_min"] - (planned - 11 - 1 / 3)) < 0.01
    # The minute before the first state is unrecorded: no evidence of a loss, so availability
    # is measured over the recorded planned time (and the gap is flagged).
    assert abs(f["losses_min"]["unrecorded"] - 1) < 0.01 and "unrecorded_time" in f["flags"]
    recorded = f["planned_busy_min"] - f["losses_min"]["unrecorded"]
    assert abs(f["availability"] - 100 * f["run_time_min"] / recorded) < 0.02
    assert (f["good"], f["scrap"], f["quality"]) == (1500, 30, 98.04)
    assert f["performance"] is not None and f["oee"] is not None
    assert wc["downtime_min"] == 10 and wc["micro_stops"] == 1 and wc["reason_missing"] == 0
    [bar] = wc["pareto"]
    assert (bar["reason"], bar["minutes"], bar["stops"], bar["loss"]) == (
        "tooling", 10, 1, "breakdown")
    assert bar["text"]["zh-CN"] == "工装" and bar["cumulative_pct"] == 100
    states = [(x["state"], x["micro_stop"]) for x in wc["timeline"]]
    assert states == [("running", False), ("down", False), ("running", False), ("down", True),
                      ("running", False), ("idle", False), ("running", False)]
    assert wc["timeline"][1]["reason_text"]["en"] == "Tooling"
    assert wc["timeline"][-1]["open"]


async def test_no_calendar_is_the_local_day_and_idle_centers_show_nothing_made(
        shift_running: tuple[Running, ShiftNow]) -> None:
    r, _ = shift_running
    async with r.client("operator") as c:
        body = (await c.get("/api/v1/progress/shift")).json()
    by = {w["work_center"]: w for w in body["work_centers"]}
    assert set(by) == {"PRESS-01", "CNC-02", "ASSY-03", "MILL-04"}
    mill = by["MILL-04"]
    assert mill["shift"] is None
    assert datetime.fromisoformat(mill["from"]).astimezone(UTC).time().isoformat() == "00:00:00"
    # Nothing recorded: planned time is all unrecorded, nothing made -> A 0, Q and P null.
    if mill["figures"] is not None:
        assert mill["figures"]["quality"] is None and mill["figures"]["good"] == 0
    assert mill["timeline"] == [] and mill["pareto"] == []


async def test_reason_tree(shift_running: tuple[Running, ShiftNow]) -> None:
    r, _ = shift_running
    async with r.client("operator") as c:
        tree = (await c.get("/api/v1/downtime-reasons")).json()
    assert [(c["code"], c["loss"], [x["code"] for x in c["reasons"]])
            for c in tree["categories"]] == [("mech", "breakdown", ["tooling"]),
                                             ("plan", "planned", ["meeting"])]
    assert tree["categories"][0]["text"]["zh-CN"] == "机械"
    assert [x["code"] for x in tree["uncategorised"]] == ["material"]
