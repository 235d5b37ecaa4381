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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from mes_edge.store.batch import (
    BatchWrite,
    Verdict,
    batch_statements,
    known_ids_statements,
    verdict,
)
from mes_edge.store.engine import _sqlite_pragmas, json_serializer
from mes_edge.store.sqlite_raw import raw_batch

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Decides a batch given the verdicts of its known ids: (the decisions to write, a result).
Build = Callable[[dict[str, Verdict]], tuple[BatchWrite, T]]


class BatchCommitter:
    """Commits dispatcher batches; owns the SQLite writer thread and checkpointer."""

    def __init__(self, engine: AsyncEngine, *, checkpoint_every: float = 1.0) -> None:
        self.engine = engine
        self._sync: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_every = checkpoint_every
        url = engine.url
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
        async with self.engine.begin() as conn:
            known: dict[str, Verdict] = {}
            for stmt in known_ids_statements(ids):
                known.update((r[0], verdict(r)) for r in await conn.execute(stmt))
            rows, result = build(known)
            for stmt, params in batch_statements(self.engine.dialect.name, rows):
                await conn.execute(stmt, params)
            return result

    def _commit_sync(self, ids: Sequence[str], build: Build[T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            known = self._known(conn, ids)
            rows, result = build(known)
            for sql, params in raw_batch(rows):
                conn.exec_driver_sql(sql, params)
            return result

    @staticmethod
    def _known(conn: Connection, ids: Sequence[str]) -> dict[str, Verdict]:
        known: dict[str, Verdict] = {}
        for stmt in known_ids_statements(ids):
            known.update((r[0], verdict(r)) for r in conn.execute(stmt))
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
