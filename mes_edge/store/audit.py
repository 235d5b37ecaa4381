"""The audit trail: who signed in, who failed to, which token wrote what, supervisor overrides.

Append-only by construction: this module is the only one that touches `audit_log`, and it has
an INSERT and a SELECT, nothing else (on PostgreSQL a trigger refuses UPDATE and DELETE too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mes_edge.store.repository import Store
from mes_edge.store.tables import audit_log


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


async def append(store: Store, record: AuditRecord) -> None:
    """Add one record (its own small transaction)."""
    async with store.transaction() as conn:
        await conn.execute(audit_log.insert().values(
            ts=record.ts, kind=record.kind.value, actor=record.actor[:200],
            token_id=record.token_id, work_center=record.work_center,
            detail=record.detail))


async def query(store: Store, *, kind: str | None = None, actor: str | None = None,
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
