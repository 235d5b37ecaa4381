"""What the WIP model needs to know of the plant, and the outcome type of applying an event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Protocol

from mes_edge.domain.model import (
    ConfirmationPolicy,
    CountingSource,
    Downtime,
    Quantities,
    WorkCenterState,
    WorkOrder,
)
from mes_edge.domain.wip_index import WipIndex


@dataclass(frozen=True, slots=True)
class PlantRules:
    """Plant-wide settings the domain applies (copied into an order when it is imported)."""

    work_centers: Mapping[str, CountingSource] = field(default_factory=dict)
    tolerance_pct: float = 0.0
    policy: ConfirmationPolicy = field(default_factory=ConfirmationPolicy)
    auto_complete: bool = False
    scrap_reasons: frozenset[str] = frozenset()  # empty: any reason accepted
    downtime_reasons: frozenset[str] = frozenset()
    machine_scrap_reason: str = "machine"
    max_quantity_per_event: int = 100_000
    max_order_quantity: int = 100_000_000
    recent_downtimes_kept: int = 20
    #: Machine counts beyond plan + tolerance: False = confirm them (flagged), True = hold the
    #: excess as unassigned production of the work center for a supervisor.
    over_production_hold: bool = False
    #: Unassigned production goes to the next operation started on its work center.
    auto_assign_unassigned: bool = False
    #: The plant's time zone: posting dates are its local dates (None: the host's zone).
    timezone: tzinfo | None = None


class StateView(Protocol):
    """Read access to the current state; the domain never writes through it."""

    def order(self, order_id: str) -> WorkOrder | None: ...

    def work_center(self, work_center: str) -> WorkCenterState | None: ...

    def orders(self) -> Iterable[WorkOrder]: ...

    def confirmation(self, confirmation_id: str) -> Confirmation | None: ...

    def reversal_of(self, confirmation_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A production confirmation for the ERP (never edited once committed)."""

    confirmation_id: str
    order_id: str
    op_no: str
    work_center: str
    quantities: Quantities
    unit: str
    final: bool
    actual_start: datetime | None
    actual_end: datetime | None
    posting_date: date
    personnel: str | None
    event_id: str
    created_at: datetime
    reverses: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something people must know (becomes an alert on MQTT and the supervisor board)."""

    severity: str
    work_center: str | None
    message: str


@dataclass(slots=True)
class Decision:
    """The effects of an accepted event: new versions of what changed, and what follows."""

    orders: dict[str, WorkOrder] = field(default_factory=dict)
    work_centers: dict[str, WorkCenterState] = field(default_factory=dict)
    confirmations: list[Confirmation] = field(default_factory=list)
    downtimes: list[Downtime] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    #: The plant's zone for posting dates while this decision is made (set by apply).
    timezone: tzinfo | None = None

    @property
    def changed(self) -> bool:
        return bool(self.orders or self.work_centers or self.confirmations or self.downtimes)


class Overlay:
    """A StateView that sees a decision in progress on top of a base view."""

    def __init__(self, base: StateView, decision: Decision) -> None:
        self.base = base
        self.decision = decision

    def order(self, order_id: str) -> WorkOrder | None:
        found = self.decision.orders.get(order_id)
        return found if found is not None else self.base.order(order_id)

    def work_center(self, work_center: str) -> WorkCenterState | None:
        found = self.decision.work_centers.get(work_center)
        return found if found is not None else self.base.work_center(work_center)

    def confirmation(self, confirmation_id: str) -> Confirmation | None:
        for c in self.decision.confirmations:
            if c.confirmation_id == confirmation_id:
                return c
        return self.base.confirmation(confirmation_id)

    def reversal_of(self, confirmation_id: str) -> str | None:
        for c in self.decision.confirmations:
            if c.reverses == confirmation_id:
                return c.confirmation_id
        return self.base.reversal_of(confirmation_id)

    def orders(self) -> Iterable[WorkOrder]:
        for o in self.base.orders():
            yield self.decision.orders.get(o.order_id, o)
        for oid, o in self.decision.orders.items():
            if self.base.order(oid) is None:
                yield o


class MemoryState:
    """The plain in-memory state: what the dispatcher keeps and what replay rebuilds.

    `index` (WipIndex) follows every change, so pages and counts never scan all orders.

    With `keep_confirmations=False` (the service) committed confirmations are not kept: a long
    running order may carry a confirmation per report for months, and the database has them all.
    Then `conf_map` only holds what was read back for the batch being decided (the originals a
    reversal names, with their reversals), and `forget_confirmations` empties it."""

    def __init__(self, *, keep_confirmations: bool = True) -> None:
        self.keep_confirmations = keep_confirmations
        self.order_map: dict[str, WorkOrder] = {}
        self.wc_map: dict[str, WorkCenterState] = {}
        self.conf_map: dict[str, Confirmation] = {}
        self.reversals: dict[str, str] = {}  # reversed confirmation id -> reversal id
        self.conf_by_order: dict[str, list[str]] = {}
        self.index = WipIndex()

    def order(self, order_id: str) -> WorkOrder | None:
        return self.order_map.get(order_id)

    def work_center(self, work_center: str) -> WorkCenterState | None:
        return self.wc_map.get(work_center)

    def orders(self) -> Iterable[WorkOrder]:
        return self.order_map.values()

    def confirmation(self, confirmation_id: str) -> Confirmation | None:
        return self.conf_map.get(confirmation_id)

    def reversal_of(self, confirmation_id: str) -> str | None:
        return self.reversals.get(confirmation_id)

    def put_order(self, order: WorkOrder) -> None:
        """Add or replace an order (and index it)."""
        self.order_map[order.order_id] = order
        self.index.update(order.order_id, order)

    def add_confirmation(self, c: Confirmation) -> None:
        """Add a committed confirmation."""
        if c.confirmation_id not in self.conf_map:
            self.conf_by_order.setdefault(c.order_id, []).append(c.confirmation_id)
        self.conf_map[c.confirmation_id] = c
        if c.reverses is not None:
            self.reversals[c.reverses] = c.confirmation_id

    def merge(self, decision: Decision) -> None:
        """Make a committed decision part of the state."""
        for order in decision.orders.values():
            self.put_order(order)
        self.wc_map.update(decision.work_centers)
        if self.keep_confirmations:
            for c in decision.confirmations:
                self.add_confirmation(c)

    def forget_confirmations(self) -> None:
        """Drop the confirmations read back for a batch (state without kept confirmations)."""
        if not self.keep_confirmations:
            self.conf_map.clear()
            self.reversals.clear()
            self.conf_by_order.clear()

    def reindex(self) -> None:
        """Rebuild the index from scratch (after a bulk load), finished orders oldest first."""
        self.index = WipIndex()
        epoch = datetime.min.replace(tzinfo=UTC)
        for order in sorted(self.order_map.values(),
                            key=lambda o: o.updated_at or o.actual_end or epoch):
            self.index.update(order.order_id, order)

    def evict(self, order_id: str) -> None:
        """Forget a finished order and its confirmations (the database keeps them)."""
        self.order_map.pop(order_id, None)
        self.index.update(order_id, None)
        for cid in self.conf_by_order.pop(order_id, ()):
            c = self.conf_map.pop(cid, None)
            self.reversals.pop(cid, None)
            if c is not None and c.reverses is not None:
                self.reversals.pop(c.reverses, None)
