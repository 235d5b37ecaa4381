"""The WIP model's state: work orders, their routing operations, work centers, confirmations.

All state objects are frozen; a change makes a new object (evolve), so the dispatcher
can apply a batch to copies and throw them away if the transaction fails.
Quantities are whole units of the order's unit of measure (int): counting is exact.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

_T = TypeVar("_T")
_COPIERS: dict[type, Callable[[Any, dict[str, object]], Any]] = {}


def evolve(obj: _T, changes: dict[str, object]) -> _T:
    """A copy of a frozen slots dataclass with some fields changed.

    What dataclasses.replace does, without re-running __init__ (these objects validate
    nothing there): one copier made once per class, since this sits on the hot path of
    every count.
    """
    copier = _COPIERS.get(type(obj))
    if copier is None:
        copier = _COPIERS[type(obj)] = _make_copier(type(obj))
    return copier(obj, changes)  # type: ignore[no-any-return]


def _make_copier(cls: type) -> Callable[[Any, dict[str, object]], Any]:
    """The copier of one class, generated as straight-line code (the one place in the project
    that generates code): copying a ~20-field operation this way takes about 60 % of the time a
    loop over the fields does (measured: 2.8 us against 4.6 us per copy), and three copies sit
    on the path of every machine count (benchmarks/README.md)."""
    names = tuple(f.name for f in fields(cls))
    if not all(n.isidentifier() for n in names):  # dataclass field names always are
        raise TypeError(f"{cls.__name__}: unexpected field names {names}")
    allowed = frozenset(names)
    body = ["def copy(obj, changes):",
            "    if not changes.keys() <= allowed:",
            "        unknown = sorted(changes.keys() - allowed)",
            "        raise TypeError(f'{cls.__name__} has no field {unknown}')",
            "    new = new_(cls)"]
    # Copy every field, then overwrite the few that change: cheaper than asking the changes
    # for each of ~20 fields.
    body.extend(f"    set_(new, {n!r}, obj.{n})" for n in names)
    body.extend(["    for k, v in changes.items():", "        set_(new, k, v)", "    return new"])
    scope: dict[str, Any] = {"cls": cls, "allowed": allowed, "new_": object.__new__,
                             "set_": object.__setattr__}
    exec("\n".join(body), scope)  # source built above from field names only
    copier: Callable[[Any, dict[str, object]], Any] = scope["copy"]
    return copier


class OrderStatus(enum.StrEnum):
    """Life cycle of a work order (README and docs/architecture.md, the WIP model)."""

    PLANNED = "planned"
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


class OperationStatus(enum.StrEnum):
    """Life cycle of one routing operation of a work order."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


class CountingSource(enum.StrEnum):
    """Who reports the quantities of an operation: never both, so nothing is added twice."""

    MACHINE = "machine"
    OPERATOR = "operator"


class DemandType(enum.StrEnum):
    """Why the order is made: for a customer's sales order or for stock."""

    MAKE_TO_ORDER = "make_to_order"
    MAKE_TO_STOCK = "make_to_stock"


class MachineState(enum.StrEnum):
    """Work-center state reported by the PLC (or derived from operation status)."""

    RUNNING = "running"
    IDLE = "idle"
    DOWN = "down"
    SETUP = "setup"
    #: Cannot pass its output on (the next station or the conveyor is full).
    BLOCKED = "blocked"
    #: Waits for input (material, parts from the previous station).
    STARVED = "starved"
    UNKNOWN = "unknown"


#: States that stop production: leaving RUNNING for one of them opens a downtime.
STOP_STATES = frozenset({MachineState.DOWN, MachineState.IDLE, MachineState.SETUP,
                         MachineState.BLOCKED, MachineState.STARVED})


@dataclass(frozen=True, slots=True)
class ConfirmationPolicy:
    """When the dispatcher writes a production confirmation for an operation."""

    on_report: bool = True
    on_complete: bool = True
    every_units: int | None = None
    every_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Quantities:
    """Good, scrap (by reason) and rework of an operation or a confirmation."""

    good: int = 0
    #: Treated as immutable: every change builds a new dict.
    scrap: dict[str, int] = field(default_factory=dict)
    rework: int = 0

    @property
    def scrap_total(self) -> int:
        return sum(self.scrap.values())

    @property
    def processed(self) -> int:
        """Everything that consumed input: good + scrap + rework."""
        return self.good + self.scrap_total + self.rework

    @property
    def is_zero(self) -> bool:
        return self.good == 0 and self.rework == 0 and not any(self.scrap.values())

    def plus(self, other: Quantities, sign: int = 1) -> Quantities:
        """Sum (or difference with sign=-1), scrap merged by reason; zero reasons dropped."""
        if not other.scrap:  # the common case (a good count): the scrap dict is shared
            return Quantities(good=self.good + sign * other.good, scrap=self.scrap,
                              rework=self.rework + sign * other.rework)
        scrap = dict(self.scrap)
        for reason, qty in other.scrap.items():
            scrap[reason] = scrap.get(reason, 0) + sign * qty
        return Quantities(
            good=self.good + sign * other.good,
            scrap={r: q for r, q in scrap.items() if q != 0},
            rework=self.rework + sign * other.rework,
        )

    def as_dict(self) -> dict[str, object]:
        return {"good": self.good, "scrap": dict(self.scrap), "rework": self.rework}


ZERO = Quantities()


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """What the ERP says about one routing operation."""

    op_no: str
    work_center: str
    description: str = ""
    planned_qty: int | None = None  # defaults to the order quantity
    counting: CountingSource | None = None  # defaults to the work center's configured source
    ideal_cycle_s: float | None = None


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """A material the order consumes (for genealogy and backflush)."""

    material: str
    quantity: int
    op_no: str | None = None


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A work order as the ERP sends it (one revision)."""

    order_id: str
    revision: int
    material: str
    quantity: int
    unit: str = "PCE"
    operations: tuple[OperationSpec, ...] = ()
    components: tuple[ComponentSpec, ...] = ()
    demand_type: DemandType = DemandType.MAKE_TO_STOCK
    sales_order: str | None = None
    customer: str | None = None
    due: datetime | None = None
    release: bool = True
    tolerance_pct: float | None = None  # None: the plant's default


@dataclass(frozen=True, slots=True)
class Operation:
    """One routing operation of an order with its WIP."""

    op_no: str
    work_center: str
    planned_qty: int
    counting: CountingSource
    status: OperationStatus = OperationStatus.WAITING
    description: str = ""
    ideal_cycle_s: float | None = None
    done: Quantities = ZERO
    #: Quantities reported but not yet confirmed to the ERP.
    unconfirmed: Quantities = ZERO
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    last_report: datetime | None = None
    last_confirmed_at: datetime | None = None
    personnel: str | None = None
    status_before_hold: OperationStatus | None = None
    #: Machine-counted good beyond planned + tolerance (a fact, recorded and flagged).
    over_produced: int = 0
    #: Machine-counted units beyond what the predecessor handed over (+ tolerance), flagged.
    beyond_handover: int = 0

    @property
    def is_open(self) -> bool:
        return self.status not in (OperationStatus.COMPLETED, OperationStatus.CANCELLED)

    def with_(self, **changes: object) -> Operation:
        return evolve(self, changes)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """A work order with its operations in routing sequence."""

    order_id: str
    revision: int
    material: str
    quantity: int
    unit: str
    status: OrderStatus
    operations: tuple[Operation, ...]
    tolerance_pct: float
    policy: ConfirmationPolicy
    auto_complete: bool = False
    components: tuple[ComponentSpec, ...] = ()
    demand_type: DemandType = DemandType.MAKE_TO_STOCK
    sales_order: str | None = None
    customer: str | None = None
    due: datetime | None = None
    hold_reason: str | None = None
    status_before_hold: OrderStatus | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    updated_at: datetime | None = None

    def index_of(self, op_no: str) -> int | None:
        for i, op in enumerate(self.operations):
            if op.op_no == op_no:
                return i
        return None

    def op(self, op_no: str) -> Operation | None:
        i = self.index_of(op_no)
        return None if i is None else self.operations[i]

    def with_op(self, index: int, op: Operation, **changes: object) -> WorkOrder:
        """The order with operation `index` replaced (and other fields changed)."""
        ops = list(self.operations)
        ops[index] = op
        return evolve(self, {**changes, "operations": tuple(ops)})

    def with_(self, **changes: object) -> WorkOrder:
        return evolve(self, changes)

    def handed_over(self, index: int) -> int:
        """All input handed to operation `index`: the order qty, or the predecessor's good."""
        if index == 0:
            return self.quantity
        return self.operations[index - 1].done.good

    def available(self, index: int) -> int:
        """What operation `index` may still take: handed over minus what it already processed."""
        return self.handed_over(index) - self.operations[index].done.processed


@dataclass(frozen=True, slots=True)
class Downtime:
    """A period a work center was not running, with the reason an operator gave."""

    downtime_id: str
    work_center: str
    state: MachineState
    start: datetime
    end: datetime | None = None
    reason: str | None = None
    reason_by: str | None = None


@dataclass(frozen=True, slots=True)
class WorkCenterState:
    """Live state of a work center: machine state, what runs on it, its open downtime."""

    work_center: str
    machine_state: MachineState = MachineState.UNKNOWN
    since: datetime | None = None
    running: tuple[tuple[str, str], ...] = ()  # (order_id, op_no) running here
    downtime: Downtime | None = None  # the open one
    recent_downtimes: tuple[Downtime, ...] = ()  # closed ones still open for a reason
    #: Unassigned production: machine counts made while no operation could take them (none
    #: running, paused, completed, on hold, or a counter jump to check). Never lost: a
    #: supervisor assigns them to an operation or writes them off.
    unassigned: Quantities = ZERO
    unassigned_since: datetime | None = None
    unassigned_last: datetime | None = None
    #: Why they are unassigned: reason -> units (no_running_operation, order_not_active, ...).
    unassigned_reasons: dict[str, int] = field(default_factory=dict)
    #: "device/tag" -> (first, last) counter reading the open quantities came from.
    unassigned_readings: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Cumulative: assigned to operations (then confirmed like any report) and written off.
    assigned_total: Quantities = ZERO
    written_off_total: Quantities = ZERO

    def with_(self, **changes: object) -> WorkCenterState:
        return evolve(self, changes)
