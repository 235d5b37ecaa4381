"""OEE, the state timeline and downtime reasons through the dispatcher and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.dispatcher import Status
from mes_edge.domain import MachineState, MachineStateChanged
from mes_edge.domain.events import (
    OperationAction,
    OperationCommand,
    OrderReceived,
    QuantityReported,
)
from mes_edge.domain.model import CountingSource, OperationSpec, OrderSpec
from mes_edge.store.progress import stored_progress
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running, plant

pytestmark = pytest.mark.timeout(120)

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def progress_plant(db_url: str) -> dict[str, Any]:
    doc = plant(db_url)
    doc["site_timezone"] = "Europe/Berlin"
    doc["calendars"] = {
        "day": {"shifts": {"early": {"start": "06:00", "end": "14:00", "breaks": [
            {"start": "09:00", "end": "09:30"}, {"start": "12:00", "end": "12:30"}]}},
                "week": {d: ["early"] for d in EVERY_DAY}},
        "night": {"shifts": {"night": {"start": "22:00", "end": "06:00"}},
                  "week": {d: ["night"] for d in EVERY_DAY}},
    }
    doc["production"]["downtime_categories"] = [
        {"code": "mech", "loss": "breakdown", "text": {"en": "Mechanical", "zh-CN": "机械"}},
        {"code": "plan", "loss": "planned", "text": {"en": "Planned", "zh-CN": "计划"}}]
    doc["production"]["downtime_reasons"] = [
        {"code": "tooling", "category": "mech", "text": {"en": "Tooling", "zh-CN": "工装"}},
        {"code": "meeting", "category": "plan"}, {"code": "material"}]
    doc["work_centers"] = [
        {"id": "PRESS-01", "counting": "machine", "calendar": "day", "ideal_cycle_s": 1.0,
         "micro_stop_s": 60},
        {"id": "CNC-02", "counting": "machine", "calendar": "night"},
        {"id": "ASSY-03", "counting": "operator"},
        {"id": "MILL-04", "counting": "machine"}]  # no calendar: planned around the clock
    return doc


@pytest.fixture
async def running(db_url: str) -> AsyncIterator[Running]:
    settings = parse_settings(progress_plant(db_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {"supervisor": await create_token(service.store, Role.SUPERVISOR, "sue"),
              "operator": await create_token(service.store, Role.OPERATOR, "t", ["PRESS-01"])}
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens)
    finally:
        await service.stop()


_n = iter(range(10**6))


async def send(r: Running, event: Any) -> None:
    assert r.service.dispatcher is not None
    outcome = await r.service.dispatcher.process(event)
    assert outcome.status == Status.ACCEPTED, outcome


def state(wc: str, s: MachineState, at: datetime) -> MachineStateChanged:
    return MachineStateChanged(event_id=f"st-{next(_n)}", work_center=wc, state=s,
                               source="plc1", source_ts=at)


async def test_published_worked_example_through_dispatcher_and_api(running: Running) -> None:
    """480-min shift, 60 min of breaks, 47 min down, 1.0 s ideal, 19,271 made, 423 rejects."""
    day = datetime(2025, 1, 15, 5, 0, tzinfo=UTC)  # 06:00 in Berlin (CET)
    at = lambda h, m=0: day + timedelta(hours=h, minutes=m)  # noqa: E731
    await send(running, OrderReceived(event_id="o-1", source="erp", received_ts=day, spec=OrderSpec(
        order_id="W1", revision=1, material="M", quantity=20_000,
        operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))))
    await send(running, OperationCommand(event_id="s-1", work_center="PRESS-01",
                                         action=OperationAction.START, order_id="W1",
                                         op_no="0010", source_ts=at(0)))
    for h, m, s in ((0, 0, MachineState.RUNNING), (1, 0, MachineState.DOWN),
                    (1, 47, MachineState.RUNNING), (3, 0, MachineState.IDLE),  # break
                    (3, 30, MachineState.RUNNING), (6, 0, MachineState.IDLE),  # break
                    (6, 30, MachineState.RUNNING), (8, 0, MachineState.IDLE)):  # shift end
        await send(running, state("PRESS-01", s, at(h, m)))
    await send(running, QuantityReported(event_id="c-1", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=18_848,
                                         scrap={"machine": 423}, source="plc1",
                                         source_ts=at(4)))
    async with running.client("operator") as c:
        resp = await c.get("/api/v1/oee", params={
            "work_center": "PRESS-01", "from": at(0).isoformat(), "to": at(8).isoformat(),
            "by": "shift"})
        assert resp.status_code == 200, resp.text
        [row] = resp.json()["rows"]
        assert row["label"] == "2025-01-15 early"
        assert (row["availability"], row["performance"], row["quality"], row["oee"]) == (
            88.81, 86.11, 97.8, 74.79)
        assert row["planned_busy_min"] == 420 and row["run_time_min"] == 373
        assert row["losses_min"]["breakdowns"] == 47
        assert (row["good"], row["scrap"], row["flags"]) == (18_848, 423, [])
        # The same from the plant's point of view, per hour: hours add up to the shift.
        resp = await c.get("/api/v1/oee", params={
            "from": at(0).isoformat(), "to": at(8).isoformat(), "by": "hour"})
        hours = [r for r in resp.json()["rows"] if r["work_center"] == "PRESS-01"]
        assert sum(r["run_time_min"] for r in hours) == 373
        assert sum(r["planned_busy_min"] for r in hours) == 420
        resp = await c.get("/api/v1/downtimes", params={
            "work_center": "PRESS-01", "from": at(0).isoformat(), "to": at(8).isoformat(),
            "reason_missing": "true"})
        [down] = resp.json()["downtimes"]
        assert (down["state"], down["duration_s"], down["reason_text"]["en"]) == (
            "down", 47 * 60, "no reason given")
        # Misaligned bounds are refused with a reason, not answered approximately.
        resp = await c.get("/api/v1/oee", params={
            "work_center": "PRESS-01", "from": at(0, 7).isoformat(), "to": at(8).isoformat()})
        assert resp.status_code == 422 and "15-minute" in resp.text
    # The timeline is durable and non-overlapping.
    assert running.service.store is not None
    spans, _ = await stored_progress(running.service.store)
    press = [s for s in spans if s.work_center == "PRESS-01"]
    assert all(a.end == b.start for a, b in pairwise(press))
    assert press[-1].end is None and press[-1].state is MachineState.IDLE


@pytest.mark.parametrize(("night", "hours"), [("2025-03-29", 7), ("2025-10-25", 9)])
async def test_berlin_dst_nights_through_the_api(running: Running, night: str,
                                                 hours: int) -> None:
    """A 22:00-06:00 shift lasts 7 h on the spring night and 9 h on the autumn one."""
    start = datetime.fromisoformat(f"{night}T22:00").replace(
        tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    end = start + timedelta(hours=hours)
    await send(running, state("CNC-02", MachineState.RUNNING, start))
    await send(running, state("CNC-02", MachineState.SETUP, start + timedelta(hours=1)))
    await send(running, state("CNC-02", MachineState.RUNNING, start + timedelta(hours=2)))
    await send(running, state("CNC-02", MachineState.IDLE, end))
    async with running.client("operator") as c:
        resp = await c.get("/api/v1/oee", params={
            "work_center": "CNC-02", "from": (start - timedelta(hours=2)).isoformat(),
            "to": (end + timedelta(hours=2)).isoformat(), "by": "shift"})
        assert resp.status_code == 200, resp.text
        rows = [r for r in resp.json()["rows"] if r["label"] == f"{night} night"]
        [row] = rows
        assert row["planned_busy_min"] == hours * 60
        assert row["run_time_min"] == (hours - 1) * 60
        assert row["losses_min"]["setup_adjustment"] == 60
        assert row["availability"] == round((hours - 1) / hours * 100, 2)


async def test_supervisor_sets_and_changes_a_reason(running: Running) -> None:
    now = datetime.now(UTC)
    await send(running, state("MILL-04", MachineState.RUNNING, now - timedelta(minutes=20)))
    await send(running, state("MILL-04", MachineState.DOWN, now - timedelta(minutes=10)))
    await send(running, state("MILL-04", MachineState.RUNNING, now - timedelta(minutes=5)))
    params = {"work_center": "MILL-04", "from": (now - timedelta(hours=1)).isoformat(),
              "to": now.isoformat()}
    async with running.client("supervisor") as c:
        [down] = (await c.get("/api/v1/downtimes", params=params)).json()["downtimes"]
        assert down["reason_missing"] and down["reason"] is None
        resp = await c.put(f"/api/v1/downtimes/{down['id']}/reason", json={"reason": "tooling"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["reason"], body["reason_by"], body["category"], body["loss"]) == (
            "tooling", "sue", "mech", "breakdown")
        assert body["reason_text"]["zh-CN"] == "工装"
        resp = await c.put(f"/api/v1/downtimes/{down['id']}/reason", json={"reason": "nope"})
        assert resp.status_code == 422
        resp = await c.put("/api/v1/downtimes/none/reason", json={"reason": "tooling"})
        assert resp.status_code == 404
        # Changed to a planned reason: the stop leaves planned busy time.
        resp = await c.put(f"/api/v1/downtimes/{down['id']}/reason", json={"reason": "meeting"})
        assert resp.status_code == 200 and resp.json()["loss"] == "planned"
        missing = (await c.get("/api/v1/downtimes", params={**params, "reason_missing": "true"}))
        assert missing.json()["downtimes"] == []
    async with running.client("operator") as c:
        resp = await c.put(f"/api/v1/downtimes/{down['id']}/reason", json={"reason": "tooling"})
        assert resp.status_code == 403
    assert running.service.store is not None
    _, buckets = await stored_progress(running.service.store)
    press = [t for (wc, _), t in buckets.items() if wc == "MILL-04"]
    assert sum(t.planned_stops_us for t in press) == 5 * 60 * 1_000_000
    assert sum(t.stops_us for t in press) == 0
