"""Issue 14: the service takes its WIP snapshot in a child process, so the replay's memory never
stays in the service's heap. On SQLite and on a real PostgreSQL: a running service writes a
snapshot a verify starts from; a child that runs too long is killed; a child that fails says
why and the service keeps serving."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mes_edge.app.service import EdgeService
from mes_edge.app.snapshot_job import SnapshotJobError, snapshot_in_child
from mes_edge.config import parse_settings
from mes_edge.dispatcher import Status
from mes_edge.dispatcher.replay import verify
from mes_edge.store import Store, history
from tests import factory as f
from tests.api.conftest import plant

pytestmark = pytest.mark.timeout(120)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


def children_of_this_process() -> list[int]:
    """Live (not zombie) child processes of the test process, from /proc."""
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.append(int(entry.name))
    return out


async def test_the_service_snapshots_in_a_child_process_and_verify_starts_there(
        db_url: str) -> None:
    settings = parse_settings(plant(db_url, history={"check_every_s": 0.2,
                                                     "snapshot_every_s": 0.2}))
    service = EdgeService(settings)
    await service.start()
    try:
        d, store = service.dispatcher, service.store
        assert d is not None and store is not None
        await d.process(f.order("2001", qty=10))
        await d.process(f.order("2002", qty=10))
        assert (await d.process(f.start("2001", "0010", "PRESS-01"))).status == Status.ACCEPTED
        last = d.last_seq
        assert last >= 3

        async def covered() -> bool:
            return await history.latest_snapshot_seq(store) >= last

        await eventually(covered, 60)
        snap = await history.latest_snapshot(store)
        assert snap is not None
        seq, state = snap
        assert {"2001", "2002"} <= set(state.order_map)
        # The service keeps serving while and after the child works.
        assert (await d.process(f.order("2003", qty=5))).status == Status.ACCEPTED
        report = await verify(store, service.rules)
        assert report.snapshot_seq >= seq and report.equal, report.differences
    finally:
        await service.stop()
    assert children_of_this_process() == []


async def test_a_snapshot_child_is_bounded_in_time_and_killed(db_url: str) -> None:
    with pytest.raises(TimeoutError):
        await snapshot_in_child(db_url, f.rules(), timeout_s=0.01)
    assert children_of_this_process() == []  # killed and reaped, not left running


async def test_a_cancelled_snapshot_takes_its_child_with_it(db_url: str) -> None:
    task = asyncio.create_task(snapshot_in_child(db_url, f.rules(), timeout_s=60))

    async def started() -> bool:
        return bool(children_of_this_process())

    await eventually(started, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert children_of_this_process() == []


async def test_a_failing_snapshot_child_says_why(tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/none.db"
    with pytest.raises(SnapshotJobError, match="exited with"):
        await snapshot_in_child(missing, f.rules(), timeout_s=60)


async def test_a_snapshot_child_answers_what_it_did(db_url: str) -> None:
    store = await Store.open(db_url)
    await store.close()
    done = await snapshot_in_child(db_url, f.rules(), timeout_s=60)
    assert done.child_pid != os.getpid() and done.child_max_rss_mb > 0
    # An empty log: the child stores an empty snapshot or says there was nothing new.
    assert done.seq in (None, 0)
