"""The WIP index (issue 14) answers what a scan of every order would, after any sequence of
changes: pages, filters, queue order, counts, overdue."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mes_edge.domain import Event, MemoryState, OperationStatus, Rejection, apply
from mes_edge.domain.events import OrderAction, OrderCommand
from mes_edge.domain.wip_index import OPEN_ORDERS, QUEUE_RANK, due_ts
from tests import factory as f

WCS = ("PRESS-01", "CNC-02", "ASSY-03")


def _brute(state: MemoryState) -> list[tuple[str, str, str, str, float]]:
    return sorted((o.order_id, op.op_no, op.work_center, op.status.value, due_ts(o.due))
                  for o in state.orders() if o.status in OPEN_ORDERS for op in o.operations)


def test_the_index_equals_a_full_scan_after_random_changes() -> None:
    rng = random.Random(14)
    rules = f.rules()
    state = MemoryState()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for step in range(400):
        oid = f"O-{rng.randrange(60):03d}"
        roll = rng.random()
        ev: Event
        if roll < 0.5:
            ev = f.order(oid, qty=10, wcs=tuple(rng.sample(WCS, rng.randint(1, 2))))
            ev = replace(ev, spec=replace(ev.spec, due=now + timedelta(hours=rng.randint(-50, 50))
                                          if rng.random() < 0.8 else None))
        elif roll < 0.8:
            order = state.order(oid)
            if order is None:
                continue
            op = order.operations[0]
            ev = f.start(oid, op.op_no, op.work_center)
        else:
            ev = OrderCommand(event_id=f.eid("cmd"), order_id=oid,
                              action=rng.choice([OrderAction.CANCEL, OrderAction.HOLD]),
                              reason="x", received_ts=f.T0)
        result = apply(state, rules, ev)
        if not isinstance(result, Rejection):
            state.merge(result)
        if step % 50:
            continue
        rows = _brute(state)
        idx = state.index
        total, page = idx.wip_page(limit=1000)
        assert total == len(rows) and page == [(r[0], r[1]) for r in rows]
        for wc in WCS:
            mine = [r for r in rows if r[2] == wc]
            assert idx.wip_page(work_center=wc, limit=1000)[1] == [(r[0], r[1]) for r in mine]
            for status in OperationStatus:
                want = [(r[0], r[1]) for r in mine if r[3] == status.value]
                assert idx.wip_page(work_center=wc, status=status.value, limit=1000) == (
                    len(want), want)
            queue = sorted((QUEUE_RANK[OperationStatus(r[3])], r[4], r[0], r[1]) for r in mine
                           if OperationStatus(r[3]) in QUEUE_RANK)
            assert idx.queue_page(wc, 0, 1000) == (len(queue), [(q[2], q[3]) for q in queue])
            assert idx.queue_page(wc, 2, 3)[1] == [(q[2], q[3]) for q in queue[2:5]]
            overdue = [r for r in mine if r[4] < now.timestamp()
                       and r[3] not in ("completed", "cancelled")]
            assert idx.overdue(wc, now) == len(overdue)
        by_due = sorted(rows, key=lambda r: (r[4], r[0], r[1]))
        assert idx.wip_page(sort="due", limit=7, offset=3)[1] == [
            (r[0], r[1]) for r in by_due[3:10]]
        before = [r for r in by_due if r[4] < now.timestamp()]
        assert idx.wip_page(due_before=now, limit=1000) == (
            len(before), [(r[0], r[1]) for r in before])
    # a full rebuild gives the same index
    rebuilt = MemoryState()
    rebuilt.order_map = dict(state.order_map)
    rebuilt.reindex()
    assert rebuilt.index.wip_page(limit=1000) == state.index.wip_page(limit=1000)
    later = datetime(2100, 1, 1, tzinfo=UTC)
    assert sorted(rebuilt.index.expired(later)) == sorted(state.index.expired(later)) == sorted(
        o.order_id for o in state.orders() if o.status.value in ("cancelled", "closed"))
