"""The batch commit path: one transaction per dispatcher batch, as fast as the backend allows.

SQLite: a dedicated writer thread with a synchronous connection (pysqlite). A whole batch -
dedup lookup, the decisions, every INSERT / UPSERT and the COMMIT - is ONE hop to that thread
instead of one hop per statement through aiosqlite; WAL checkpoints run on a connection of
their own in the background, so a checkpoint never stalls a commit.
PostgreSQL: the async engine (asyncpg), statements pipelined in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import Table, create_engine, event, null, select, union_all
from sqlalchemy.engine import Connection, Engine, make_url

from mes_edge.domain import Event, event_to_json
from mes_edge.store.engine import _sqlite_pragmas, json_serializer
from mes_edge.store.sqlite_raw import EVENTS_SQL, RawStatement, event_params
from mes_edge.store.tables import (
    confirmations,
    counter_checkpoints,
    downtimes,
    events,
    high_water,
    operations,
    rejected_events,
    work_centers,
    work_orders,
)

if TYPE_CHECKING:
    from mes_edge.store.repository import BatchWrite, Store

log = logging.getLogger(__name__)
T = TypeVar("T")
Build = Callable[[dict[str, "Verdict"]], tuple["BatchWrite", T]]


#: How an id was settled before: None when it was logged (accepted or unchanged), else the
#: refusal's (reason_code, reason), so a resend meets the same verdict.
Verdict = tuple[str, str] | None


def known_ids_statements(ids: Sequence[str]) -> Iterator[Any]:
    """SELECTs finding which ids were settled before (event log or refused), 500 at a time.

    Rows are (event_id, reason_code, reason); the codes are NULL for logged events."""
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        yield union_all(
            select(events.c.event_id, null().label("reason_code"), null().label("reason"))
            .where(events.c.event_id.in_(chunk)),
            select(rejected_events.c.event_id, rejected_events.c.reason_code,
                   rejected_events.c.reason).where(rejected_events.c.event_id.in_(chunk)))


def _verdict(row: Any) -> Verdict:
    return None if row[1] is None else (str(row[1]), str(row[2]))


def event_row(seq: int, event: Event, committed_at: datetime | None) -> dict[str, Any]:
    """The events-table row of one logged event."""
    return {
        "seq": seq, "event_id": event.event_id, "type": event.kind,
        "work_center": event.work_center_ref, "order_id": event.order_ref,
        "source": event.source, "actor": event.actor, "source_ts": event.source_ts,
        "received_ts": event.received_ts, "committed_at": committed_at,
        "payload": event_to_json(event),
    }


def batch_statements(store: Store, b: BatchWrite) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """The statements of one batch, in an order that keeps every constraint satisfied."""
    if b.event_log:
        yield events.insert(), [event_row(seq, e, b.committed_at) for seq, e in b.event_log]
    if b.rejected:
        yield store._insert(rejected_events).on_conflict_do_nothing(), b.rejected
    upserts: tuple[tuple[Table, list[dict[str, Any]]], ...] = (
        (work_orders, b.orders), (operations, b.operations), (work_centers, b.work_centers),
        (downtimes, b.downtimes), (counter_checkpoints, b.checkpoints),
        (high_water, b.high_water))
    for table, rows in upserts:
        if rows:
            yield store._upsert(table), rows
    if b.confirmations:
        yield confirmations.insert(), b.confirmations


_RAW = {
    "rejected_events": RawStatement(rejected_events, ignore_conflicts=True),
    "work_orders": RawStatement(work_orders, upsert_keys=["order_id"]),
    "operations": RawStatement(operations, upsert_keys=["order_id", "op_no"]),
    "work_centers": RawStatement(work_centers, upsert_keys=["work_center"]),
    "downtimes": RawStatement(downtimes, upsert_keys=["downtime_id"]),
    "counter_checkpoints": RawStatement(counter_checkpoints, upsert_keys=["device", "tag"]),
    "high_water": RawStatement(high_water, upsert_keys=["name"]),
    "confirmations": RawStatement(confirmations),
}


def _raw_batch(b: BatchWrite) -> Iterator[tuple[RawStatement, list[dict[str, Any]]]]:
    """batch_statements' order, as plain SQL for the SQLite writer thread."""
    for name, rows in (("rejected_events", b.rejected),
                       ("work_orders", b.orders), ("operations", b.operations),
                       ("work_centers", b.work_centers), ("downtimes", b.downtimes),
                       ("counter_checkpoints", b.checkpoints), ("high_water", b.high_water),
                       ("confirmations", b.confirmations)):
        if rows:
            yield _RAW[name], rows


class BatchCommitter:
    """Commits dispatcher batches; owns the SQLite writer thread and checkpointer."""

    def __init__(self, store: Store, *, checkpoint_every: float = 1.0) -> None:
        self.store = store
        self._sync: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_every = checkpoint_every
        url = store.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._path = str(url.database)
            self._sync = create_engine(make_url(f"sqlite+pysqlite:///{self._path}"),
                                       pool_size=1, max_overflow=0,
                                       json_serializer=json_serializer,
                                       json_deserializer=orjson.loads)
            event.listen(self._sync, "connect", _sqlite_pragmas)
            # Checkpoints are the background task's job, not the committing connection's.
            event.listen(self._sync, "connect", _no_autocheckpoint)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mes-writer")

    def start(self) -> None:
        """Start the background WAL checkpoints (SQLite only); needs a running loop."""
        if self._sync is not None and self._checkpointer is None:
            self._checkpointer = asyncio.get_running_loop().create_task(
                self._checkpoint_loop(), name="sqlite-checkpoint")

    async def commit(self, ids: Sequence[str], build: Build[T]) -> T:
        """One transaction: find which `ids` are known, let `build` decide with that, write
        the rows it returns, commit. Returns what `build` returned alongside the rows."""
        if self._sync is not None and self._executor is not None:
            if self._checkpointer is None:
                self.start()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._commit_sync, ids, build)
        async with self.store.engine.begin() as conn:
            known: dict[str, Verdict] = {}
            for stmt in known_ids_statements(ids):
                known.update((r[0], _verdict(r)) for r in await conn.execute(stmt))
            rows, result = build(known)
            for stmt, params in batch_statements(self.store, rows):
                await conn.execute(stmt, params)
            return result

    def _commit_sync(self, ids: Sequence[str], build: Build[T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            known = self._known(conn, ids)
            rows, result = build(known)
            if rows.event_log:
                conn.exec_driver_sql(EVENTS_SQL, event_params(rows.event_log, rows.committed_at))
            for raw, params in _raw_batch(rows):
                conn.exec_driver_sql(raw.sql, raw.params(params))
            return result

    @staticmethod
    def _known(conn: Connection, ids: Sequence[str]) -> dict[str, Verdict]:
        known: dict[str, Verdict] = {}
        for stmt in known_ids_statements(ids):
            known.update((r[0], _verdict(r)) for r in conn.execute(stmt))
        return known

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_every)
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as err:  # busy or locked: the next round catches up
                log.debug("WAL checkpoint skipped: %s", err)

    def _checkpoint(self) -> None:
        con = sqlite3.connect(self._path, timeout=1.0)
        try:
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            con.close()

    async def close(self) -> None:
        """Stop the checkpointer, close the writer connection and its thread."""
        task, self._checkpointer = self._checkpointer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sync is not None and self._executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._sync.dispose)
            self._executor.shutdown(wait=True)
            self._sync = None


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
