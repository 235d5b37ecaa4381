"""Group commit of audit lines (store/audit.AuditWriter), on SQLite and a real PostgreSQL:
concurrent appends share transactions and keep their order, a failing database fails every
waiting caller (nothing hangs), a cancelled caller does not strand the others, and through the
API every write's line is committed before its answer arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text

from mes_edge.store import Store
from mes_edge.store.audit import AuditKind, AuditRecord, AuditWriter, append, query
from mes_edge.store.tables import audit_log
from tests.api.conftest import Running

ORDER = {"revision": 1, "quantity": 10, "unit": "pcs", "material": "M-1",
         "operations": [{"op_no": "0010", "work_center": "ASSY-03", "planned_qty": 10}]}


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated store on a throwaway database."""
    s = await Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()


def count_commits(store: Store) -> list[int]:
    """A one-item list holding the number of COMMITs on the store's engine from now on."""
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(store.engine.sync_engine, "commit", on_commit)
    return commits


def line(n: int) -> AuditRecord:
    return AuditRecord(AuditKind.WRITE, f"client-{n % 12}", detail={"n": n})


async def numbers(store: Store) -> list[int]:
    """The `n` of every line, in id order."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(audit_log.c.detail).order_by(audit_log.c.id))
        return [int(r.detail["n"]) for r in rows]


async def test_concurrent_appends_share_transactions_in_order(store: Store) -> None:
    commits = count_commits(store)
    async with asyncio.timeout(60):
        await asyncio.gather(*(append(store, line(n)) for n in range(300)))
    assert await numbers(store) == list(range(300))
    assert 1 <= commits[0] < 300, commits[0]


async def test_batches_are_bounded_and_keep_the_order_across_them(store: Store) -> None:
    writer = AuditWriter(store.engine, max_batch=50, max_pending=120)
    commits = count_commits(store)
    async with asyncio.timeout(60):
        await asyncio.gather(*(writer.append(line(n)) for n in range(430)))
    assert await numbers(store) == list(range(430))
    assert 430 // 50 < commits[0] < 430, commits[0]  # at least 9 batches of at most 50


async def test_a_failing_database_fails_every_waiting_caller(store: Store) -> None:
    async with store.transaction() as conn:
        await conn.execute(text("DROP TABLE audit_log"))  # a throwaway database
    writer = AuditWriter(store.engine, max_batch=7)
    async with asyncio.timeout(60):
        outcomes = await asyncio.gather(*(writer.append(line(n)) for n in range(40)),
                                        return_exceptions=True)
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    # Nobody is left holding the lead: once the table is back, appends go through again.
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: audit_log.create(sync))
    async with asyncio.timeout(60):
        await asyncio.gather(*(writer.append(line(n)) for n in range(40, 50)))
    assert await numbers(store) == list(range(40, 50))


async def test_a_cancelled_leader_hands_on_before_its_flush(store: Store) -> None:
    writer = AuditWriter(store.engine)
    tasks = [asyncio.create_task(writer.append(line(n))) for n in range(20)]
    await asyncio.sleep(0)  # every task has queued its line; the first one leads
    tasks[0].cancel()
    async with asyncio.timeout(60):
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes[1:] == [None] * 19
    # The cancelled caller's line was queued: it is written, in its place.
    assert await numbers(store) == list(range(20))


async def test_a_leader_cancelled_during_its_commit_still_answers_the_others(
        store: Store) -> None:
    writer = AuditWriter(store.engine)
    began = asyncio.Event()
    event.listen(store.engine.sync_engine, "begin", lambda _conn: began.set())
    tasks = [asyncio.create_task(writer.append(line(n))) for n in range(20)]
    async with asyncio.timeout(60):
        await began.wait()
        tasks[0].cancel()  # the leader, while (or just after) its batch is written
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes[1:] == [None] * 19
    assert outcomes[0] is None or isinstance(outcomes[0], asyncio.CancelledError)
    assert await numbers(store) == list(range(20))  # each line once, in order


async def test_every_write_is_audited_before_its_answer(running: Running) -> None:
    store = running.service.store
    assert store is not None

    async def write(c: httpx.AsyncClient, n: int) -> None:
        r = await c.put(f"/api/v1/work-orders/AUD-{n:03d}", json=ORDER)
        assert r.status_code == 201, r.text
        mine = [a for a in await query(store, kind="write", limit=1000)
                if a["detail"]["path"] == f"/api/v1/work-orders/AUD-{n:03d}"]
        assert len(mine) == 1 and mine[0]["detail"]["status"] == 201

    async with running.client("erp") as c, asyncio.timeout(120):
        await asyncio.gather(*(write(c, n) for n in range(24)))
    writes = await query(store, kind="write", limit=1000)
    assert len([w for w in writes if w["detail"]["path"].startswith("/api/v1/work-orders/AUD-")
                ]) == 24
