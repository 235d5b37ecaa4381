"""What a producer learns about its event, and what listeners are told after each commit."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mes_edge.domain import (
    Confirmation,
    Downtime,
    Event,
    Notice,
    WorkCenterState,
    WorkOrder,
)


class Status(enum.StrEnum):
    """How the dispatcher settled an event."""

    ACCEPTED = "accepted"  # applied and committed to the event log
    UNCHANGED = "unchanged"  # valid, but changed nothing (e.g. the same order revision again)
    DUPLICATE = "duplicate"  # its event id was committed before: changes nothing
    REJECTED = "rejected"  # refused, and the refusal committed with its reason


@dataclass(slots=True)  # not frozen: one per event on the hot path, and frozen __init__ is slow
class Outcome:
    """The committed result of one submitted event."""

    status: Status
    event_id: str | None
    seq: int | None = None
    code: str | None = None
    reason: str | None = None
    #: A resend of an id refused before: the same verdict, not recorded again.
    repeated: bool = False

    @property
    def ok(self) -> bool:
        return self.status in (Status.ACCEPTED, Status.UNCHANGED, Status.DUPLICATE)


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """A committed rejection, as the supervisor board and alerts show it."""

    id: int
    event_id: str | None
    type: str | None
    work_center: str | None
    source: str
    reason_code: str
    reason: str


@dataclass(slots=True)
class CommittedBatch:
    """What one group commit changed; handed to listeners after the commit."""

    events: list[tuple[int, Event]] = field(default_factory=list)
    orders: dict[str, WorkOrder] = field(default_factory=dict)
    work_centers: dict[str, WorkCenterState] = field(default_factory=dict)
    confirmations: list[tuple[int, Confirmation]] = field(default_factory=list)
    downtimes: list[Downtime] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    rejections: list[RejectionRecord] = field(default_factory=list)

    def touched_work_centers(self) -> set[str]:
        """The work centers whose state this commit changed: those changed themselves and
        those of every operation of every changed order."""
        touched = set(self.work_centers)
        for order in self.orders.values():
            touched.update(op.work_center for op in order.operations)
        return touched
