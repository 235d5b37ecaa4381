"""apply(state, event): the one entry point of the WIP model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mes_edge.domain.confirming import reverse
from mes_edge.domain.events import (
    ConfirmationReversed,
    ConfirmationsDue,
    DowntimeReasonGiven,
    Event,
    MachineStateChanged,
    OperationCommand,
    OrderCommand,
    OrderReceived,
    QuantityReported,
    UnassignedResolved,
)
from mes_edge.domain.operations import command_operation, confirmations_due, report_quantity
from mes_edge.domain.orders import command_order, receive_order
from mes_edge.domain.plant import Decision, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.unassigned import resolve_unassigned
from mes_edge.domain.workcenters import change_machine_state, give_downtime_reason

#: Times outside this range are refused: they would overflow conversions (0001-01-01 with an
#: offset) and no shop floor produces them.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_HANDLERS: dict[type[Event], Callable[[StateView, PlantRules, Any, Decision], None]] = {
    OrderReceived: receive_order,
    OrderCommand: command_order,
    OperationCommand: command_operation,
    QuantityReported: report_quantity,
    MachineStateChanged: change_machine_state,
    DowntimeReasonGiven: give_downtime_reason,
    ConfirmationsDue: confirmations_due,
    ConfirmationReversed: reverse,
    UnassignedResolved: resolve_unassigned,
}


def _bad_time(ts: datetime | None) -> Rejection | None:
    if ts is None:
        return None
    if ts.utcoffset() is None:
        return Rejection(RejectCode.INVALID, "event times must carry a UTC offset")
    if not EARLIEST <= ts <= LATEST:  # e.g. a terminal whose clock reset: refuse, do not store
        return Rejection(RejectCode.INVALID, f"time {ts.isoformat()} is out of range "
                                             f"({EARLIEST.year}..{LATEST.year})")
    return None


def apply(view: StateView, rules: PlantRules, event: Event) -> Decision | Rejection:
    """Decide what `event` does to the state seen through `view`.

    Returns the decision (new versions of what changed; empty when the event changes nothing)
    or the rejection. Pure: reads `view`, never writes it, does no I/O.
    """
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return Rejection(RejectCode.INVALID, f"unknown event type {type(event).__name__}")
    # A naive time cannot be compared with the aware ones already in the state: accepting
    # one would make every later timer tick fail (TypeError) instead of being decided.
    bad = _bad_time(event.received_ts) or _bad_time(event.source_ts) or (
        _bad_time(event.spec.due) if isinstance(event, OrderReceived) else None)
    if bad is not None:
        return bad
    decision = Decision(timezone=rules.timezone)
    try:
        handler(view, rules, event, decision)
    except Rejection as rejection:
        return rejection
    return decision
