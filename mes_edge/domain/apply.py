"""apply(state, event): the one entry point of the WIP model."""

from __future__ import annotations

from collections.abc import Callable
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
)
from mes_edge.domain.operations import command_operation, confirmations_due, report_quantity
from mes_edge.domain.orders import command_order, receive_order
from mes_edge.domain.plant import Decision, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection
from mes_edge.domain.workcenters import change_machine_state, give_downtime_reason

_HANDLERS: dict[type[Event], Callable[[StateView, PlantRules, Any, Decision], None]] = {
    OrderReceived: receive_order,
    OrderCommand: command_order,
    OperationCommand: command_operation,
    QuantityReported: report_quantity,
    MachineStateChanged: change_machine_state,
    DowntimeReasonGiven: give_downtime_reason,
    ConfirmationsDue: confirmations_due,
    ConfirmationReversed: reverse,
}


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
    if any(ts is not None and ts.utcoffset() is None
           for ts in (event.source_ts, event.received_ts)):
        return Rejection(RejectCode.INVALID, "event times must carry a UTC offset")
    decision = Decision()
    try:
        handler(view, rules, event, decision)
    except Rejection as rejection:
        return rejection
    return decision
