"""`mes-edge db verify` rebuilds the state timeline and the OEE rollups from the whole event log
and finds a tampered row (issue 11)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import delete, update

from mes_edge.app.plant import plant_rules
from mes_edge.app.progress import progress_rules
from mes_edge.app.service import EdgeService
from mes_edge.cli import main
from mes_edge.config import Settings, parse_settings
from mes_edge.dispatcher import Status
from mes_edge.dispatcher.replay import verify_progress
from mes_edge.domain import MachineState, MachineStateChanged
from mes_edge.domain.events import (
    DowntimeReasonGiven,
    OperationAction,
    OperationCommand,
    OrderReceived,
    QuantityReported,
)
from mes_edge.domain.model import CountingSource, OperationSpec, OrderSpec
from mes_edge.store import Store
from mes_edge.store.tables import events, oee_buckets, state_intervals
from tests.api.test_progress import progress_plant

pytestmark = pytest.mark.timeout(120)


async def fill(settings: Settings) -> None:
    """A morning of PRESS-01 through the real dispatcher: runs, a downtime given a reason
    (a breakdown), a micro-stop, counts, and an open span at the end."""
    service = EdgeService(settings)
    await service.start()
    try:
        d = service.dispatcher
        assert d is not None
        day = datetime(2025, 1, 15, 5, 0, tzinfo=UTC)  # 06:00 Berlin, the early shift
        at = lambda m: day + timedelta(minutes=m)  # noqa: E731
        n = iter(range(1000))

        async def send(event: Any) -> None:
            assert (await d.process(event)).status == Status.ACCEPTED

        async def st(s: MachineState, m: float) -> None:
            await send(MachineStateChanged(event_id=f"v-st-{next(n)}", work_center="PRESS-01",
                                           state=s, source="plc1", source_ts=at(m)))

        await send(OrderReceived(event_id="v-o", source="erp", received_ts=day, spec=OrderSpec(
            order_id="V1", revision=1, material="M", quantity=5_000,
            operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),))))
        await send(OperationCommand(event_id="v-s", work_center="PRESS-01",
                                    action=OperationAction.START, order_id="V1", op_no="0010",
                                    source_ts=at(0)))
        await st(MachineState.RUNNING, 0)
        await send(QuantityReported(event_id="v-c1", work_center="PRESS-01",
                                    by=CountingSource.MACHINE, good=700, scrap={"machine": 5},
                                    source="plc1", source_ts=at(20)))
        await st(MachineState.DOWN, 40)
        await send(DowntimeReasonGiven(event_id="v-r", work_center="PRESS-01", reason="tooling",
                                       source="tablet", source_ts=at(45)))
        await st(MachineState.RUNNING, 70)
        await st(MachineState.IDLE, 100.5)  # 30 s: a micro-stop
        await st(MachineState.RUNNING, 101)
        await send(QuantityReported(event_id="v-c2", work_center="PRESS-01",
                                    by=CountingSource.MACHINE, good=900, source="plc1",
                                    source_ts=at(110)))
    finally:
        await service.stop()


async def test_verify_rebuilds_timeline_and_rollups_and_finds_tampering(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = progress_plant(db_url)
    settings = parse_settings(doc)
    await fill(settings)
    config = tmp_path / "plant.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")

    store = await Store.open(db_url, migrate=False)
    try:
        report = await verify_progress(store, plant_rules(settings), progress_rules(settings))
        assert report.equal, report.differences
        assert report.spans == 5 and report.buckets == 8  # 5 spans; 15-min buckets of 2 h
        assert await asyncio.to_thread(main, ["db", "verify", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "the stored state timeline (5 spans) and OEE rollups" in out

        # Tamper: the bucket of the first count gains a part, the downtime's reason is rewritten.
        counted = datetime(2025, 1, 15, 5, 15, tzinfo=UTC)
        async with store.transaction() as conn:
            await conn.execute(update(oee_buckets).where(
                oee_buckets.c.work_center == "PRESS-01", oee_buckets.c.bucket_start == counted)
                .values(good=oee_buckets.c.good + 1))
            await conn.execute(update(state_intervals).where(
                state_intervals.c.reason == "tooling").values(reason="meeting"))
        report = await verify_progress(store, plant_rules(settings), progress_rules(settings))
        assert len(report.differences) == 2, report.differences
        span_line, bucket_line = report.differences
        assert span_line.startswith("state span PRESS-01 2025-01-15T05:40:00+00:00")
        assert "reason='meeting'" in span_line and "reason='tooling'" in span_line
        assert bucket_line.startswith("OEE bucket PRESS-01 2025-01-15T05:15:00+00:00")
        assert "good 701 != 700" in bucket_line
        assert await asyncio.to_thread(main, ["db", "verify", "--config", str(config)]) == 1
        out = capsys.readouterr().out
        assert "2 differences in the state timeline and OEE rollups" in out
        assert "good 701 != 700" in out

        # With a hole in the log (retention), the rebuild is impossible: said, not guessed.
        async with store.transaction() as conn:
            await conn.execute(delete(events).where(events.c.seq == 2))
        report = await verify_progress(store, plant_rules(settings), progress_rules(settings))
        assert not report.equal and report.skipped is not None
        assert "events 2..2 are not in the log" in report.skipped
    finally:
        await store.close()
