"""Domain events: everything that can change WIP, as frozen dataclasses with one envelope.

Each event has a unique `event_id` (the idempotency key), who/what produced it and when (source
time and receive time). Events are serialised to JSON for the append-only event log and read back
for replay, through pydantic TypeAdapters keyed by the class name.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import TypeAdapter

from mes_edge.domain.model import CountingSource, MachineState, OrderSpec


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


_SINGLE_USE = re.compile(r"http:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                         r"[0-9a-f]{12}")


def single_use_id() -> str:
    """The id of an event the service makes for a write that brought no id of its own (an API
    call without an Idempotency-Key): `http:<random UUID>`. No client knows it, so it never
    comes again, and the dispatcher need not remember it to refuse a resend (issue 14: the
    dedup memory holds only ids that can come back). Every id a client or device gives is
    namespaced otherwise (`http:<scope>:<key>`, `scan:`, `event:`, `<device>/<tag>/...`)."""
    return f"http:{uuid.uuid4()}"


def is_single_use_id(event_id: str) -> bool:
    """Whether `event_id` is one `single_use_id` made."""
    return len(event_id) == 41 and _SINGLE_USE.fullmatch(event_id) is not None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The raw counter reading an event was derived from; committed with the event."""

    device: str
    tag: str
    value: int
    generation: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Envelope shared by every event."""

    event_id: str
    source: str = "api"
    actor: str | None = None
    source_ts: datetime | None = None
    received_ts: datetime = field(default_factory=utcnow)
    checkpoint: Checkpoint | None = None

    kind: ClassVar[str] = "event"

    @property
    def ts(self) -> datetime:
        """When it happened: the source's time if it gave one, else when we received it."""
        return self.source_ts or self.received_ts

    @property
    def work_center_ref(self) -> str | None:
        return getattr(self, "work_center", None)

    @property
    def order_ref(self) -> str | None:
        return getattr(self, "order_id", None)


class OrderAction(enum.StrEnum):
    """Commands on a whole work order."""

    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"
    CLOSE = "close"


class OperationAction(enum.StrEnum):
    """Commands on one operation at a work center."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderReceived(Event):
    """The ERP sent a work order (a new one or a new revision)."""

    spec: OrderSpec
    kind: ClassVar[str] = "order_received"

    @property
    def order_ref(self) -> str | None:
        return self.spec.order_id


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCommand(Event):
    """Hold, release, cancel or close a work order."""

    order_id: str
    action: OrderAction
    reason: str | None = None
    kind: ClassVar[str] = "order_command"


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationCommand(Event):
    """Start, pause, resume or complete an operation (order/op may be resolved from the WC)."""

    work_center: str
    action: OperationAction
    order_id: str | None = None
    op_no: str | None = None
    #: Why (a pause: the downtime reason the operator gave at the terminal).
    reason: str | None = None
    kind: ClassVar[str] = "operation_command"


@dataclass(frozen=True, kw_only=True, slots=True)
class QuantityReported(Event):
    """Good / scrap (by reason) / rework counted by the machine or reported by an operator."""

    work_center: str
    by: CountingSource
    good: int = 0
    scrap: dict[str, int] = field(default_factory=dict)
    rework: int = 0
    order_id: str | None = None
    op_no: str | None = None
    #: Machine counts only: when set, the quantity is recorded as unassigned production of the
    #: work center with this reason (e.g. "counter_jump": a jump beyond the rule's max_delta, a
    #: fact to be checked by a supervisor), even if an operation runs.
    unassigned_reason: str | None = None
    #: The counter readings the quantity was derived from (from, to), for the record.
    readings: tuple[int, int] | None = None
    kind: ClassVar[str] = "quantity_reported"


@dataclass(frozen=True, kw_only=True, slots=True)
class MachineStateChanged(Event):
    """The PLC reports a new work-center state (running / idle / down / setup)."""

    work_center: str
    state: MachineState
    kind: ClassVar[str] = "machine_state_changed"


@dataclass(frozen=True, kw_only=True, slots=True)
class DowntimeReasonGiven(Event):
    """An operator names the reason of a downtime (the open one, or a given one)."""

    work_center: str
    reason: str
    downtime_id: str | None = None
    kind: ClassVar[str] = "downtime_reason_given"


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmationsDue(Event):
    """Timer tick: confirm what machine-counted operations produced since their last confirmation.

    With `force`, everything not yet confirmed is confirmed now (end of shift, or a drain).
    """

    force: bool = False
    kind: ClassVar[str] = "confirmations_due"


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmationReversed(Event):
    """A supervisor reverses a confirmation (a correction = reversal + new report)."""

    order_id: str
    confirmation_id: str
    reason: str
    kind: ClassVar[str] = "confirmation_reversed"


class UnassignedAction(enum.StrEnum):
    """What a supervisor does with unassigned production."""

    ASSIGN = "assign"
    WRITE_OFF = "write_off"


@dataclass(frozen=True, kw_only=True, slots=True)
class UnassignedResolved(Event):
    """Unassigned production of a work center assigned to an operation, or written off."""

    work_center: str
    action: UnassignedAction
    good: int = 0
    scrap: dict[str, int] = field(default_factory=dict)
    rework: int = 0
    order_id: str | None = None
    op_no: str | None = None
    reason: str | None = None
    kind: ClassVar[str] = "unassigned_resolved"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        OrderReceived,
        OrderCommand,
        OperationCommand,
        QuantityReported,
        MachineStateChanged,
        DowntimeReasonGiven,
        ConfirmationsDue,
        ConfirmationReversed,
        UnassignedResolved,
    )
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {k: TypeAdapter(v) for k, v in EVENT_TYPES.items()}


def event_to_json(event: Event) -> dict[str, Any]:
    """The event as a JSON-able dict with its `type`, for the event log."""
    data: dict[str, Any] = _ADAPTERS[event.kind].dump_python(event, mode="json")
    data["type"] = event.kind
    return data


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event from its event-log JSON."""
    data = dict(data)
    kind = data.pop("type")
    event: Event = _ADAPTERS[kind].validate_python(data)
    return event


def event_json(event: Event) -> str:
    """event_to_json's document as JSON text, serialised in one pass by pydantic-core."""
    body = _ADAPTERS[event.kind].dump_json(event).decode()
    return f'{{"type":"{event.kind}",{body[1:]}' if len(body) > 2 else f'{{"type":"{event.kind}"}}'
