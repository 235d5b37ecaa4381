"""Indexes of the committed WIP, kept up to date as decisions merge (issue 14).

The board and the station tablets ask for pages and counts: "the next 20 operations of PRESS-01",
"page 3 of the running operations, latest due first", "how many are overdue at CNC-02". These
indexes answer in O(log n + page) and O(work centers), never by scanning every order. They hold
keys only; the orders themselves stay in MemoryState.
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mes_edge.domain.model import OperationStatus, OrderStatus, WorkOrder

#: Orders whose operations are work in progress (shown on the board and in the queues).
OPEN_ORDERS = frozenset({OrderStatus.RELEASED, OrderStatus.IN_PROGRESS, OrderStatus.ON_HOLD})
#: Orders that leave memory some time after they ended (their history stays in the database).
FINISHED_ORDERS = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED})
#: Queue order on the tablet: what runs first, then what was paused, then what can start.
QUEUE_RANK = {OperationStatus.RUNNING: 0, OperationStatus.PAUSED: 1, OperationStatus.READY: 2,
              OperationStatus.WAITING: 3}
_DONE = (OperationStatus.COMPLETED, OperationStatus.CANCELLED)
_NO_DUE = float("inf")

OpKey = tuple[str, str]  # (order_id, op_no)
Filter = tuple[str | None, str | None]  # (work center, operation status); None: any


class SortedKeys:
    """A sorted list of tuples: add/discard by bisection, pages by slicing."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[Any, ...]] = []

    def add(self, key: tuple[Any, ...]) -> None:
        bisect.insort(self.keys, key)

    def discard(self, key: tuple[Any, ...]) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def __len__(self) -> int:
        return len(self.keys)

    def page(self, offset: int, limit: int) -> list[tuple[Any, ...]]:
        return self.keys[offset:offset + limit]

    def below(self, key: tuple[Any, ...]) -> int:
        """How many keys sort before `key`."""
        return bisect.bisect_left(self.keys, key)


def due_ts(due: datetime | None) -> float:
    """The sort value of a due date (no due date sorts last)."""
    return due.timestamp() if due is not None else _NO_DUE


class WipIndex:
    """Operations of open orders by work center / status / due, and finished orders by age."""

    def __init__(self) -> None:
        self.by_order: dict[Filter, SortedKeys] = {}  # keys (order_id, op_no)
        self.by_due: dict[Filter, SortedKeys] = {}  # keys (due_ts, order_id, op_no)
        self.queue: dict[str, SortedKeys] = {}  # keys (rank, due_ts, order_id, op_no)
        self.open_due: dict[str, SortedKeys] = {}  # unfinished operations with a due date
        self.counts: dict[str, Counter[str]] = {}  # work center -> operation status -> count
        self.running: dict[str, set[OpKey]] = {}  # running or paused, per work center
        self._entries: dict[str, list[tuple[str, str, float, str]]] = {}
        #: Machine good beyond plan + tolerance on open operations, per work center (the
        #: /metrics gauge), and each order's share of it (only orders that have some).
        self.over_produced: Counter[str] = Counter()
        self._over: dict[str, dict[str, int]] = {}
        #: Closed and cancelled orders, oldest end first: order id -> when it ended.
        self.finished: OrderedDict[str, datetime] = OrderedDict()

    def update(self, order_id: str, order: WorkOrder | None) -> None:
        """Re-index one order (None: it left memory)."""
        self._update_over(order_id, order)
        if order is not None and order.status in OPEN_ORDERS:
            due = due_ts(order.due)
            entries = [(op.work_center, op.status.value, due, op.op_no)
                       for op in order.operations]
            if self._entries.get(order_id) == entries:
                return  # a count, a report: nothing the index sorts or counts by changed
        else:
            entries = []
        for wc, status, old_due, op_no in self._entries.pop(order_id, ()):
            self._remove(order_id, op_no, wc, status, old_due)
        self.finished.pop(order_id, None)
        if order is None:
            return
        if order.status in FINISHED_ORDERS:
            ended = order.updated_at or order.actual_end
            if ended is not None:
                self.finished[order_id] = ended
            return
        if not entries:
            return
        for wc, status, due, op_no in entries:
            self._add(order_id, op_no, wc, status, due)
        self._entries[order_id] = entries

    def _update_over(self, order_id: str, order: WorkOrder | None) -> None:
        """Keep `over_produced` exact: every order in memory, whatever its status, counts with
        its open operations (as a walk over all orders would), and nothing else."""
        share: dict[str, int] | None = None
        if order is not None:
            for op in order.operations:
                if op.over_produced and op.is_open:
                    if share is None:
                        share = {}
                    share[op.work_center] = share.get(op.work_center, 0) + op.over_produced
        old = self._over.pop(order_id, None) if self._over else None
        if old is None and share is None:
            return  # the usual case: nothing over plan, before or after
        total = self.over_produced
        for wc, qty in (old or {}).items():
            total[wc] -= qty
            if not total[wc]:
                del total[wc]
        if share is not None:
            total.update(share)
            self._over[order_id] = share

    def _filters(self, wc: str, status: str) -> tuple[Filter, ...]:
        return (None, None), (wc, None), (None, status), (wc, status)

    def _add(self, oid: str, op_no: str, wc: str, status: str, due: float) -> None:
        for f in self._filters(wc, status):
            self.by_order.setdefault(f, SortedKeys()).add((oid, op_no))
            self.by_due.setdefault(f, SortedKeys()).add((due, oid, op_no))
        op_status = OperationStatus(status)
        rank = QUEUE_RANK.get(op_status)
        if rank is not None:
            self.queue.setdefault(wc, SortedKeys()).add((rank, due, oid, op_no))
        if op_status not in _DONE and due != _NO_DUE:
            self.open_due.setdefault(wc, SortedKeys()).add((due, oid, op_no))
        if op_status in (OperationStatus.RUNNING, OperationStatus.PAUSED):
            self.running.setdefault(wc, set()).add((oid, op_no))
        self.counts.setdefault(wc, Counter())[status] += 1

    def _remove(self, oid: str, op_no: str, wc: str, status: str, due: float) -> None:
        for f in self._filters(wc, status):
            self.by_order[f].discard((oid, op_no))
            self.by_due[f].discard((due, oid, op_no))
        op_status = OperationStatus(status)
        rank = QUEUE_RANK.get(op_status)
        if rank is not None:
            self.queue[wc].discard((rank, due, oid, op_no))
        if op_status not in _DONE and due != _NO_DUE:
            self.open_due[wc].discard((due, oid, op_no))
        self.running.get(wc, set()).discard((oid, op_no))
        self.counts[wc][status] -= 1

    # -- queries --------------------------------------------------------------------------------

    def wip_page(self, *, work_center: str | None = None, status: str | None = None,
                 due_before: datetime | None = None, sort: str = "order", offset: int = 0,
                 limit: int = 100) -> tuple[int, list[OpKey]]:
        """(total matching, one page of (order_id, op_no)) of operations of open orders.

        sort "order": by order id and operation; "due": earliest due first (overdue first).
        `due_before` keeps operations due before that time (sorted by due)."""
        f: Filter = (work_center, status)
        if due_before is not None or sort == "due":
            keys = self.by_due.get(f) or SortedKeys()
            total = len(keys) if due_before is None else keys.below((due_ts(due_before),))
            page = keys.keys[offset:min(offset + limit, total)]
            return total, [(k[1], k[2]) for k in page]
        keys = self.by_order.get(f) or SortedKeys()
        return len(keys), [(k[0], k[1]) for k in keys.page(offset, limit)]

    def queue_page(self, work_center: str, offset: int = 0,
                   limit: int = 50) -> tuple[int, list[OpKey]]:
        """(length, one page) of the queue of a work center: running, paused, ready, waiting."""
        keys = self.queue.get(work_center) or SortedKeys()
        return len(keys), [(k[2], k[3]) for k in keys.page(offset, limit)]

    def overdue(self, work_center: str, now: datetime) -> int:
        """How many unfinished operations of open orders at the work center are past due."""
        keys = self.open_due.get(work_center)
        return keys.below((now.timestamp(),)) if keys else 0

    def overdue_page(self, work_center: str | None, now: datetime,
                     limit: int) -> list[OpKey]:
        """The earliest-due overdue operations (of one work center or all)."""
        centers: Iterable[str] = [work_center] if work_center else list(self.open_due)
        found: list[tuple[float, str, str]] = []
        cut = now.timestamp()
        for wc in centers:
            keys = self.open_due.get(wc)
            if keys:
                found.extend(k for k in keys.keys[:min(limit, keys.below((cut,)))])
        found.sort()
        return [(k[1], k[2]) for k in found[:limit]]

    def open_orders_with_due(self) -> list[str]:
        """Ids of open orders with an unfinished operation and a due date, earliest due first
        (O(such operations): finished and evicted orders are not looked at)."""
        # An order has one due date: (due, order id) is one entry per order.
        return [oid for _, oid in sorted({(k[0], k[1]) for keys in self.open_due.values()
                                          for k in keys.keys})]

    def status_counts(self, work_center: str) -> dict[str, int]:
        """Operations of open orders at the work center by status (zeros left out)."""
        return {s: n for s, n in self.counts.get(work_center, Counter()).items() if n}

    def queue_length(self, work_center: str) -> int:
        """Operations waiting at the work center (paused, ready, waiting: not running)."""
        keys = self.queue.get(work_center)
        running = self.counts.get(work_center, Counter())[OperationStatus.RUNNING.value]
        return (len(keys) if keys else 0) - running

    def expired(self, before: datetime) -> list[str]:
        """Finished orders that ended before `before` (oldest first)."""
        out = []
        for oid, ended in self.finished.items():
            if ended >= before:
                break
            out.append(oid)
        return out
