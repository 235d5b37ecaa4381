"""The running shift's OEE gauges on /metrics (issue 11): refreshed by a service task from the
rollups, read by the collector from the cache."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mes_edge.domain import MachineState
from mes_edge.domain.events import (
    OperationAction,
    OperationCommand,
    OrderReceived,
    QuantityReported,
)
from mes_edge.domain.model import CountingSource, OperationSpec, OrderSpec
from tests.api.conftest import Running
from tests.api.test_progress import running, send, state

pytestmark = pytest.mark.timeout(120)
__all__ = ["running"]  # the fixture, shared with test_progress


def samples(text: str) -> dict[tuple[str, str, str], float]:
    """(metric, work center, shift) -> value of the mes_edge_shift_* gauges."""
    return {(s.name, s.labels["work_center"], s.labels["shift"]): s.value
            for fam in text_string_to_metric_families(text) if fam.name.startswith("mes_edge_shift")
            for s in fam.samples}


async def test_running_shift_gauges_through_metrics(running: Running) -> None:
    service = running.service
    gauges = service.oee_gauges
    assert gauges is not None
    # The owned task refreshes once at start (then every production.oee_gauges_every_s).
    deadline = time.monotonic() + 20
    while gauges.refreshed_at is None:
        assert time.monotonic() < deadline, "the gauges task never refreshed"
        await asyncio.sleep(0.05)
    assert gauges.failures == 0

    day = datetime(2025, 1, 15, 5, 0, tzinfo=UTC)  # 06:00 in Berlin: the early shift starts
    at = lambda h, m=0: day + timedelta(hours=h, minutes=m)  # noqa: E731
    await send(running, OrderReceived(event_id="g-o", source="erp", received_ts=day, spec=OrderSpec(
        order_id="G1", revision=1, material="M", quantity=20_000,
        operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))))
    await send(running, OperationCommand(event_id="g-s", work_center="PRESS-01",
                                         action=OperationAction.START, order_id="G1",
                                         op_no="0010", source_ts=at(0)))
    await send(running, state("PRESS-01", MachineState.RUNNING, at(0)))
    await send(running, state("PRESS-01", MachineState.DOWN, at(1)))
    await send(running, state("PRESS-01", MachineState.RUNNING, at(1, 30)))  # stays open
    await send(running, QuantityReported(event_id="g-c", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=5_000,
                                         scrap={"machine": 100}, source="plc1",
                                         source_ts=at(1, 45)))
    # 08:00 in Berlin: 120 planned minutes so far, 60 + 30 (open span up to now) running.
    await gauges.refresh(now=at(2))
    async with running.client() as c:
        resp = await c.get("/metrics")
    assert resp.status_code == 200
    got = samples(resp.text)
    press = "2025-01-15 early"
    assert got[("mes_edge_shift_planned_minutes", "PRESS-01", press)] == 120
    assert got[("mes_edge_shift_run_minutes", "PRESS-01", press)] == 90
    assert got[("mes_edge_shift_good_units", "PRESS-01", press)] == 5_000
    assert got[("mes_edge_shift_scrap_units", "PRESS-01", press)] == 100
    assert got[("mes_edge_shift_availability", "PRESS-01", press)] == pytest.approx(0.75)
    assert got[("mes_edge_shift_performance", "PRESS-01", press)] == pytest.approx(5100 / 5400)
    assert got[("mes_edge_shift_quality", "PRESS-01", press)] == pytest.approx(5000 / 5100)
    assert got[("mes_edge_shift_oee", "PRESS-01", press)] == pytest.approx(0.75 * 5000 / 5400)
    # Without a calendar the "shift" is the local day so far (Berlin midnight = 23:00 UTC):
    # 480 planned minutes, no state recorded at all: availability (over recorded time),
    # performance and quality have nothing to divide by, so their gauges are left out.
    assert got[("mes_edge_shift_planned_minutes", "MILL-04", "2025-01-15 day")] == 480
    assert ("mes_edge_shift_availability", "MILL-04", "2025-01-15 day") not in got
    assert ("mes_edge_shift_performance", "MILL-04", "2025-01-15 day") not in got
    assert ("mes_edge_shift_quality", "MILL-04", "2025-01-15 day") not in got
    # CNC-02 works nights (22:00-06:00): at 08:00 no shift runs, so no gauges at all.
    assert not [k for k in got if k[1] == "CNC-02"]
    # The scrape reads the cache: a count committed after the refresh is not in it yet ...
    await send(running, QuantityReported(event_id="g-c2", work_center="PRESS-01",
                                         by=CountingSource.MACHINE, good=100, source="plc1",
                                         source_ts=at(1, 50)))
    async with running.client() as c:
        got = samples((await c.get("/metrics")).text)
    assert got[("mes_edge_shift_good_units", "PRESS-01", press)] == 5_000
    # ... and is after the next refresh.
    await gauges.refresh(now=at(2))
    async with running.client() as c:
        got = samples((await c.get("/metrics")).text)
    assert got[("mes_edge_shift_good_units", "PRESS-01", press)] == 5_100


async def test_gauges_task_is_owned_by_the_service(running: Running) -> None:
    tasks = [t for t in running.service._tasks if t.get_name() == "oee-gauges"]
    assert len(tasks) == 1 and not tasks[0].done()
    await running.service.stop()
    assert tasks[0].cancelled()
