"""Sending an API write through the dispatcher and turning its outcome into HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import HTTPException, status

from mes_edge.dispatcher import Outcome, Status
from mes_edge.domain import Event

if TYPE_CHECKING:
    from mes_edge.app.service import EdgeService

_HTTP_OF_CODE = {
    "unknown_order": status.HTTP_404_NOT_FOUND,
    "unknown_operation": status.HTTP_404_NOT_FOUND,
    "not_reversible": status.HTTP_409_CONFLICT,
    "stale_revision": status.HTTP_409_CONFLICT,
    "order_not_active": status.HTTP_409_CONFLICT,
    "bad_state": status.HTTP_409_CONFLICT,
    "sequence": status.HTTP_409_CONFLICT,
    "over_production": status.HTTP_409_CONFLICT,
    "counting_source": status.HTTP_409_CONFLICT,
    "no_running_operation": status.HTTP_409_CONFLICT,
    "work_center_busy": status.HTTP_409_CONFLICT,
    "wrong_work_center": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "unknown_work_center": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "absurd_quantity": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "unknown_reason": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


async def submit(service: EdgeService, event: Event) -> Outcome:
    """Commit the event; raise the HTTP error of its rejection (which is recorded all the same)."""
    assert service.dispatcher is not None
    outcome = await service.dispatcher.process(event)
    if outcome.status == Status.REJECTED:
        raise HTTPException(_HTTP_OF_CODE.get(outcome.code or "", status.HTTP_409_CONFLICT),
                            detail={"code": outcome.code, "message": outcome.reason,
                                    "event_id": outcome.event_id})
    return outcome
