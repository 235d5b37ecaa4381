"""SIGKILL in the middle of a stream, restart, feed the same stream again: exactly the same end
state as an uninterrupted run (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mes_edge.store import Store, create_engine
from mes_edge.store.tables import (
    confirmations,
    counter_checkpoints,
    events,
    operations,
    rejected_events,
    work_centers,
    work_orders,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SEED, COUNT = 11, 3000


def run_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.dispatcher.crash_worker", url,
                             str(SEED), str(COUNT)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def committed(url: str) -> int:
    """How many events the database has committed (0 while it is not created yet)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(events)) or 0)
    except Exception:
        return 0
    finally:
        await engine.dispose()


async def snapshot(url: str) -> dict[str, Any]:
    store = await Store.open(url, migrate=False)
    try:
        def rows(rs: list[Any], drop: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
            return [tuple(v for k, v in r._mapping.items() if k not in drop) for r in rs]
        return {
            "events": rows(await store.rows(events, order_by=[events.c.seq]), ("committed_at",)),
            "rejected": sorted(rows(await store.rows(rejected_events),
                                    ("id", "rejected_at")), key=repr),
            "orders": rows(await store.rows(work_orders, order_by=[work_orders.c.order_id])),
            "operations": rows(await store.rows(operations, order_by=[
                operations.c.order_id, operations.c.op_no])),
            "work_centers": rows(await store.rows(work_centers,
                                                  order_by=[work_centers.c.work_center])),
            "confirmations": rows(await store.rows(confirmations, order_by=[
                confirmations.c.cursor]), ("committed_at",)),
            "checkpoints": rows(await store.rows(counter_checkpoints, order_by=[
                counter_checkpoints.c.device, counter_checkpoints.c.tag])),
        }
    finally:
        await store.close()


async def test_sigkill_mid_stream_then_refeed_equals_uninterrupted_run(
        sqlite_url: str, db_url: str) -> None:
    reference_url, crash_url = sqlite_url.replace("mes.db", "reference.db"), db_url
    ref = run_worker(reference_url)
    assert ref.wait(timeout=240) == 0, ref.stderr.read() if ref.stderr else ""

    victim = run_worker(crash_url)
    deadline = time.monotonic() + 120
    while await committed(crash_url) < COUNT // 3:
        assert victim.poll() is None, "the worker ended before it could be killed"
        assert time.monotonic() < deadline, "the worker committed too little in time"
        await asyncio.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    partial = await committed(crash_url)
    assert 0 < partial

    again = run_worker(crash_url)
    _out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err.decode()

    expected, got = await snapshot(reference_url), await snapshot(crash_url)
    for key in expected:
        assert got[key] == expected[key], f"{key} differs after the crash and refeed"
    assert len(expected["events"]) > partial
    assert expected["confirmations"] and expected["rejected"]
