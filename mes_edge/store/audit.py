"""The audit trail: who signed in, who failed to, which token wrote what, supervisor overrides.

Append-only by construction: this module is the only one that touches `audit_log`, and it has
an INSERT and a SELECT, nothing else (on PostgreSQL a trigger refuses UPDATE and DELETE too).

Every API write awaits its audit line before its answer leaves; lines that arrive together are
committed together (`AuditWriter`, one per Store), so a write does not cost a second commit
of its own.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from mes_edge.store.tables import audit_log

#: Lines in one transaction (one INSERT, executemany) at most.
MAX_BATCH = 500
#: Lines queued at most; further callers wait for room (backpressure, nothing dropped).
MAX_PENDING = 2000
#: One group commit may take this long; past it, every caller of the batch gets TimeoutError.
COMMIT_TIMEOUT_S = 30.0


class AuditKind(enum.StrEnum):
    """What an audit record is about."""

    LOGIN = "login"  # an operator signed in at a station, or a tablet token was accepted
    LOGIN_FAILED = "login_failed"  # wrong PIN, unknown badge, disabled operator, bad token
    WRITE = "write"  # a state-changing request by an operator or ERP token
    OVERRIDE = "override"  # a state-changing request by a supervisor or admin
    ADMIN = "admin"  # tokens and operators created, revoked, disabled


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the trail."""

    kind: AuditKind
    actor: str
    token_id: str | None = None
    work_center: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class _Line:
    record: AuditRecord
    #: Resolved False once committed, True when its caller is handed the lead, or the error.
    outcome: asyncio.Future[bool]


class AuditWriter:
    """Group commit of audit lines: the appends of the same moment share one transaction.

    It has no task of its own. The first caller leads: it yields once so that the callers of
    this moment can queue their lines, writes up to `max_batch` of them with one executemany
    in one transaction, and resolves every caller's future (or sets the error on all of them).
    Lines that come meanwhile wait for the next flush; when the leader's own line is in, it
    hands the lead to the first caller still waiting. One flush at a time, lines first in,
    first out: ids follow the order of the appends.
    """

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH,
                 max_pending: int = MAX_PENDING) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: deque[_Line] = deque()
        self._leading = False
        self._room: list[asyncio.Future[None]] = []

    async def append(self, record: AuditRecord) -> None:
        """Queue one line; return once it is committed (or raise the error of its batch)."""
        loop = asyncio.get_running_loop()
        while self._leading and len(self._pending) >= self.max_pending:
            room: asyncio.Future[None] = loop.create_future()
            self._room.append(room)
            await room
        line = _Line(record, loop.create_future())
        self._pending.append(line)
        if self._leading:
            try:
                lead = await line.outcome
            except asyncio.CancelledError:
                if (line.outcome.done() and not line.outcome.cancelled()
                        and line.outcome.result()):
                    self._hand_on()  # handed the lead just as it was cancelled: pass it on
                raise
            if not lead:
                return
            line.outcome = loop.create_future()  # the lead is ours; the commit comes next
        self._leading = True
        try:
            while not line.outcome.done() or self._only_orphans():
                await asyncio.sleep(0)  # let the callers of this moment queue their lines
                await self._flush()
        finally:
            if not line.outcome.done():  # cancelled before its line went: it stays queued
                line.outcome.cancel()
            self._hand_on()
        line.outcome.result()

    def _only_orphans(self) -> bool:
        """Lines are queued but their callers are gone (cancelled): nobody else flushes them."""
        return bool(self._pending) and all(p.outcome.done() for p in self._pending)

    def _hand_on(self) -> None:
        """Give the lead to the first caller still waiting, or stand down."""
        for line in self._pending:
            if not line.outcome.done():
                line.outcome.set_result(True)
                return
        self._leading = False
        self._make_room()  # whoever waits for room leads now (left-over lines are theirs)

    async def _flush(self) -> None:
        """Commit the oldest queued lines in one transaction and resolve their callers. If the
        leader is cancelled meanwhile, its cancellation waits for the end of the transaction
        (bounded by COMMIT_TIMEOUT_S): the other callers of the batch must hear how it went."""
        batch = [self._pending.popleft()
                 for _ in range(min(self.max_batch, len(self._pending)))]
        self._make_room()
        write = asyncio.get_running_loop().create_task(
            self._insert([line.record for line in batch]), name="audit-group-commit")
        cancelled = False
        while not write.done():
            try:
                await asyncio.wait((write,))  # unlike a plain await, never cancels `write`
            except asyncio.CancelledError:
                cancelled = True
        err = (RuntimeError("the audit group commit was cancelled") if write.cancelled()
               else write.exception())
        for line in batch:
            if line.outcome.done():  # its caller was cancelled meanwhile
                continue
            if err is None:
                line.outcome.set_result(False)
            else:
                line.outcome.set_exception(err)
        if cancelled:
            raise asyncio.CancelledError

    def _make_room(self) -> None:
        room, self._room = self._room, []
        for waiter in room:
            if not waiter.done():
                waiter.set_result(None)

    async def _insert(self, records: list[AuditRecord]) -> None:
        rows = [{"ts": r.ts, "kind": r.kind.value, "actor": r.actor[:200],
                 "token_id": r.token_id, "work_center": r.work_center, "detail": r.detail}
                for r in records]
        async with asyncio.timeout(COMMIT_TIMEOUT_S), self.engine.begin() as conn:
            await conn.execute(audit_log.insert(), rows)


class AuditedStore(Protocol):
    """What this module needs of the Store (repository.Store; no import: it builds the
    AuditWriter, so importing it back would be a circle)."""

    engine: AsyncEngine
    audit: AuditWriter


async def append(store: AuditedStore, record: AuditRecord) -> None:
    """Add one record; returns once it is committed (grouped with concurrent appends)."""
    await store.audit.append(record)


async def query(store: AuditedStore, *, kind: str | None = None, actor: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                before: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Records newest first; `before` (an id) pages further back."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(audit_log.c.kind == kind)
    if actor:
        stmt = stmt.where(audit_log.c.actor == actor)
    if since is not None:
        stmt = stmt.where(audit_log.c.ts >= since)
    if until is not None:
        stmt = stmt.where(audit_log.c.ts < until)
    if before is not None:
        stmt = stmt.where(audit_log.c.id < before)
    async with store.engine.connect() as conn:
        return [{"id": r.id, "ts": r.ts, "kind": r.kind, "actor": r.actor,
                 "token_id": r.token_id, "work_center": r.work_center,
                 "detail": dict(r.detail)} for r in await conn.execute(stmt)]
