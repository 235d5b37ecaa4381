"""The store: loads the state at start-up and writes one dispatcher batch per transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mes_edge.domain import (
    Checkpoint,
    Confirmation,
    Event,
    MemoryState,
    OrderStatus,
    WorkOrder,
    event_from_json,
)
from mes_edge.store import codec
from mes_edge.store.audit import AuditWriter
from mes_edge.store.batch import (
    BatchWrite,
    batch_statements,
    dialect_insert,
    known_ids_statements,
)
from mes_edge.store.engine import create_engine, upgrade
from mes_edge.store.tables import (
    confirmations,
    counter_checkpoints,
    events,
    high_water,
    rejected_events,
    work_centers,
    work_orders,
)
from mes_edge.store.writer import BatchCommitter, Build, T

_FINISHED = (OrderStatus.CLOSED.value, OrderStatus.CANCELLED.value)


@dataclass
class Loaded:
    """What the dispatcher needs at start-up."""

    state: MemoryState
    last_seq: int
    last_cursor: int
    last_rejection: int
    checkpoints: dict[tuple[str, str], Checkpoint]
    #: Finished orders left in the database only (load with `finished_before`).
    left_out: int = 0


class Store:
    """Owns the engine; every SQL statement of the service goes through here or the readers."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._committer = BatchCommitter(engine)
        #: Audit lines, group-committed (store/audit.py).
        self.audit = AuditWriter(engine)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open (and by default upgrade) the database at `url`."""
        if migrate:
            await upgrade(url)
        return cls(create_engine(url))

    async def close(self) -> None:
        """Close the writer and dispose of the connection pools."""
        await self._committer.close()
        await self.engine.dispose()

    def insert(self, table: Table) -> Any:
        """An INSERT of this backend's dialect (it knows ON CONFLICT)."""
        return dialect_insert(self._dialect, table)

    async def load(self, *, finished_before: datetime | None = None,
                   with_confirmations: bool = True) -> Loaded:
        """Read the committed state: orders, work centers, confirmations, counters, sequences.

        With `finished_before`, closed and cancelled orders that ended before it (and their
        confirmations) stay in the database only: memory holds what is active. With
        `with_confirmations=False` (the service) no confirmation is read: the state keeps none, and
        a reversal reads back the one it names (`load_confirmations`). A log of a million
        events then loads in the time its open orders take."""
        state = MemoryState(keep_confirmations=with_confirmations)
        left_out = 0
        async with self.engine.connect() as conn:
            query = select(work_orders.c.state)
            conf_query = select(confirmations).order_by(confirmations.c.cursor)
            if finished_before is not None:
                # An order with no change time (a row written by hand) stays: NULL would
                # make it neither loaded nor counted as left out.
                gone = (work_orders.c.status.in_(_FINISHED)
                        & work_orders.c.updated_at.is_not(None)
                        & (work_orders.c.updated_at < finished_before))
                query = query.where(~gone)
                left_out = int(await conn.scalar(
                    select(func.count()).select_from(work_orders).where(gone)) or 0)
                conf_query = conf_query.where(confirmations.c.order_id.not_in(
                    select(work_orders.c.order_id).where(gone)))
            for row in await conn.execute(query):
                order = codec.order_from_json(row.state)
                state.order_map[order.order_id] = order
            for row in await conn.execute(select(work_centers.c.state)):
                wc = codec.wc_from_json(row.state)
                state.wc_map[wc.work_center] = wc
            if with_confirmations:
                for row in await conn.execute(conf_query):
                    state.add_confirmation(codec.confirmation_from_row(row))
            state.reindex()
            checkpoints = {
                (r.device, r.tag): Checkpoint(r.device, r.tag, r.value, r.generation)
                for r in await conn.execute(select(counter_checkpoints))
            }
            last_seq = (await conn.scalar(select(func.max(events.c.seq)))) or 0
            last_cursor = (await conn.scalar(select(func.max(confirmations.c.cursor)))) or 0
            last_rej = (await conn.scalar(select(func.max(rejected_events.c.id)))) or 0
            # Retention may have purged every row that carried the newest numbers: the
            # high-water marks keep them going forward.
            marks = {r.name: int(r.value) for r in await conn.execute(select(high_water))}
        return Loaded(state, max(int(last_seq), marks.get("event_seq", 0)),
                      max(int(last_cursor), marks.get("confirmation_cursor", 0)),
                      max(int(last_rej), marks.get("rejection_id", 0)), checkpoints, left_out)

    async def load_orders(self, order_ids: Sequence[str]) -> tuple[list[WorkOrder],
                                                                    list[Confirmation]]:
        """Orders (and their confirmations) that left memory, read back from the database."""
        if not order_ids:
            return [], []
        async with self.engine.connect() as conn:
            orders = [codec.order_from_json(r.state) for r in await conn.execute(
                select(work_orders.c.state).where(work_orders.c.order_id.in_(order_ids)))]
            found = [o.order_id for o in orders]
            confs = [codec.confirmation_from_row(r) for r in await conn.execute(
                select(confirmations).where(confirmations.c.order_id.in_(found))
                .order_by(confirmations.c.cursor))] if found else []
        return orders, confs

    async def closed_orders(self, order_ids: Sequence[str], upto_seq: int
                            ) -> tuple[list[WorkOrder], list[Confirmation]]:
        """Those of these orders that were closed at event `upto_seq` (status closed, last
        changed at or before it), with their confirmations. Closed is final: the row is the
        order as it stood then. Replay reads them back when a WIP snapshot left them out."""
        if not order_ids:
            return [], []
        async with self.engine.connect() as conn:
            orders = [codec.order_from_json(r.state) for r in await conn.execute(
                select(work_orders.c.state).where(
                    work_orders.c.order_id.in_(order_ids),
                    work_orders.c.status == OrderStatus.CLOSED.value,
                    work_orders.c.updated_seq <= upto_seq))]
            found = [o.order_id for o in orders]
            confs = [codec.confirmation_from_row(r) for r in await conn.execute(
                select(confirmations).where(confirmations.c.order_id.in_(found))
                .order_by(confirmations.c.cursor))] if found else []
        return orders, confs

    async def closed_order_ids(self, upto_seq: int) -> set[str]:
        """Every order closed at event `upto_seq` (for `db verify` after a snapshot)."""
        async with self.engine.connect() as conn:
            return {str(r[0]) for r in await conn.execute(
                select(work_orders.c.order_id).where(
                    work_orders.c.status == OrderStatus.CLOSED.value,
                    work_orders.c.updated_seq <= upto_seq))}

    async def load_confirmations(self, named: Sequence[tuple[str, str]]) -> list[Confirmation]:
        """The confirmations named by (order id, confirmation id) and every reversal of one of
        them (looked up within their orders: the order id is indexed), in commit order."""
        if not named:
            return []
        ids = sorted({cid for _, cid in named})
        order_ids = sorted({oid for oid, _ in named})
        async with self.engine.connect() as conn:
            return [codec.confirmation_from_row(r) for r in await conn.execute(
                select(confirmations).where(
                    confirmations.c.confirmation_id.in_(ids)
                    | (confirmations.c.order_id.in_(order_ids)
                       & confirmations.c.reverses.in_(ids)))
                .order_by(confirmations.c.cursor))]

    async def known_event_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these event ids were settled before (in the event log or refused)."""
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for stmt in known_ids_statements(ids):
                found.update(str(r[0]) for r in await conn.execute(stmt))
        return found

    def transaction(self) -> Any:
        """`async with store.transaction() as conn:` one transaction, committed on exit."""
        return self.engine.begin()

    async def commit_batch(self, ids: Sequence[str], build: Build[T]) -> T:
        """One dispatcher batch in one transaction (see writer.BatchCommitter)."""
        return await self._committer.commit(ids, build)

    async def write(self, batch: BatchWrite) -> None:
        """Write a batch in one transaction (tests and tools; the dispatcher uses commit_batch)."""
        async with self.engine.begin() as conn:
            for stmt, params in batch_statements(self._dialect, batch):
                await conn.execute(stmt, params)

    async def read_events(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, Event]]:
        """Events of the log in commit order, for replay and consumers."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(events.c.seq, events.c.payload).where(events.c.seq > after_seq)
                .order_by(events.c.seq).limit(limit))
            return [(r.seq, event_from_json(r.payload)) for r in rows]

    async def iter_events(self, batch: int = 2000) -> list[Event]:
        """The whole event log in commit order."""
        out: list[Event] = []
        after = 0
        while True:
            page = await self.read_events(after, batch)
            if not page:
                return out
            out.extend(e for _, e in page)
            after = page[-1][0]

    async def rows(self, table: Table, *where: Any, order_by: Iterable[Any] = ()) -> list[Any]:
        """Plain rows of a table (for readers and tests)."""
        async with self.engine.connect() as conn:
            stmt = select(table).where(*where).order_by(*order_by)
            return list(await conn.execute(stmt))
