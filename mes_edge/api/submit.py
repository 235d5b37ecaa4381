"""Sending an API write through the dispatcher and turning its outcome into HTTP."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request, status

from mes_edge.dispatcher import Dispatcher, Outcome, RawRejection, Status
from mes_edge.domain import Event, single_use_id

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
    "below_made": status.HTTP_409_CONFLICT,
    "not_enough_unassigned": status.HTTP_409_CONFLICT,
}


def idempotency_key(request: Request | None) -> str | None:
    """The request's Idempotency-Key when usable (1-100 printable characters), else None.

    A client that resends a write after a network error sends the same key: event ids derived
    from it make the dispatcher settle the write once (a refusal is repeated, not re-recorded).
    """
    key = request.headers.get("idempotency-key", "") if request is not None else ""
    return key if 0 < len(key) <= 100 and key.isprintable() else None


def event_id_for(request: Request | None, scope: str) -> str:
    """`http:<scope>:<Idempotency-Key>`, or a fresh id when the request carries no usable key."""
    key = idempotency_key(request)
    return f"http:{scope}:{key}" if key is not None else single_use_id()


#: How long a write waits for its commit while the storage is away before answering 503.
STORAGE_WAIT_S = 2.0


def storage_unavailable(dispatcher: Dispatcher) -> HTTPException:
    """503 with Retry-After: the storage is away; nothing was refused."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail={"code": "storage_unavailable",
                "message": "the database is not reachable; nothing was refused - send the same "
                           "request again (with the same Idempotency-Key) later",
                "reason": dispatcher.storage_reason},
        headers={"Retry-After": "5"})


async def process(dispatcher: Dispatcher, event: Event | RawRejection) -> Outcome:
    """Submit and wait for the commit; 503 while the storage is away.

    A write that arrives during an outage is not queued at all. One already queued when the
    storage went away waits a little, then gets 503 too: it stays queued and is committed when
    the storage is back, and a resend with the same event id (Idempotency-Key) meets that
    verdict instead of counting twice.
    """
    if dispatcher.storage_down:
        raise storage_unavailable(dispatcher)
    future = await dispatcher.submit(event)
    while True:
        done, _ = await asyncio.wait({future}, timeout=0.25)
        if done:
            return future.result()
        if dispatcher.storage_down_for >= STORAGE_WAIT_S:
            raise storage_unavailable(dispatcher)


async def submit(service: EdgeService, event: Event) -> Outcome:
    """Commit the event; raise the HTTP error of its rejection (which is recorded all the same)."""
    assert service.dispatcher is not None
    outcome = await process(service.dispatcher, event)
    if outcome.status == Status.REJECTED:
        raise HTTPException(_HTTP_OF_CODE.get(outcome.code or "", status.HTTP_409_CONFLICT),
                            detail={"code": outcome.code, "message": outcome.reason,
                                    "event_id": outcome.event_id})
    return outcome
