"""Live updates for tablets and the board: Server-Sent Events fed by a dispatcher listener.

The listener runs on the dispatcher's writer task, so it only formats a small message per
touched work center and offers it to each client's bounded queue without waiting. A client that
falls behind does not make memory grow: what waits in its queue is dropped and replaced by one
"resync" message (the page re-fetches what it shows: the board its summary and WIP page).
Streams end on disconnect (Starlette cancels them) or when the API shuts down (`close()` puts an
end marker in every queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from mes_edge.api.deps import StationCaller, SupervisorDep
from mes_edge.api.station_views import current_of
from mes_edge.dispatcher import CommittedBatch, Dispatcher

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["live updates (SSE)"])

_RESYNC = json.dumps({"type": "resync"})
#: A board notice names at most this many changed orders (more: `orders` is null).
CHANGED_ORDERS_MAX = 100
_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_DESCRIPTION = "`text/event-stream`; each `data:` line is a JSON object with a `type`."


class LiveClient:
    """One connected page: a bounded queue of SSE payloads, coalesced when the page is slow."""

    def __init__(self, work_center: str | None, size: int, owner: str | None = None) -> None:
        self.work_center = work_center  # None: the board (every work center)
        self.owner = owner  # the token holding this connection (per-token limit)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=size)
        self.coalesced = 0

    def offer(self, payload: str | None) -> None:
        """Queue without waiting; when full, replace the backlog by one 'resync' (or the end)."""
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_RESYNC if payload is not None else None)
            self.coalesced += 1


class LiveUpdates:
    """Fans committed changes out to the connected tablets and boards."""

    def __init__(self, dispatcher: Dispatcher, *, queue_size: int = 32,
                 heartbeat_s: float = 15.0, max_clients: int = 200,
                 max_per_token: int = 10) -> None:
        self.dispatcher = dispatcher
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.max_clients = max_clients
        #: One token cannot take every slot and blank the other tablets (issue 12).
        self.max_per_token = max_per_token
        self.clients: set[LiveClient] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = False

    def start(self) -> None:
        """Listen to the dispatcher's commits."""
        self._unsubscribe = self.dispatcher.subscribe(self.on_commit)

    def close(self) -> None:
        """Stop listening and end every open stream (so the HTTP server can shut down)."""
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self.clients):
            client.offer(None)

    # -- producers (called on the dispatcher's task, must not block) ------------------------------

    def on_commit(self, batch: CommittedBatch) -> None:
        """Dispatcher listener: tell the clients of every work center the batch touched."""
        touched = batch.touched_work_centers()
        # A refused event changes nothing, but its station and the board show the refusal.
        touched.update(r.work_center for r in batch.rejections if r.work_center)
        seq = batch.events[-1][0] if batch.events else None
        self._publish(touched, seq, rejected=bool(batch.rejections), orders=list(batch.orders))

    def station_changed(self, work_center: str) -> None:
        """Something outside the event log changed at a station (an operator logged in/out)."""
        self._publish({work_center}, None, rejected=False)

    def _publish(self, touched: set[str], seq: int | None, *, rejected: bool,
                 orders: list[str] | None = None) -> None:
        if not self.clients or (not touched and not rejected and not orders):
            return
        stations = {wc: self._station_message(wc, seq) for wc in touched
                    if any(c.work_center == wc for c in self.clients)}
        # What changed, never the board itself: a page re-fetches the tiles and the WIP page it
        # shows. A big batch names no orders (null): "refetch what you show".
        changed = sorted(orders or ())
        board = json.dumps({"type": "changed", "work_centers": sorted(touched), "seq": seq,
                            "rejected": rejected,
                            "orders": changed if len(changed) <= CHANGED_ORDERS_MAX else None})
        for client in list(self.clients):
            if client.work_center is None:
                client.offer(board)
            elif client.work_center in stations:
                client.offer(stations[client.work_center])

    def _station_message(self, work_center: str, seq: int | None) -> str:
        state = self.dispatcher.state
        wc = state.work_center(work_center)
        current = current_of(state, work_center)
        return json.dumps({
            "type": "station", "work_center": work_center, "seq": seq,
            "machine_state": wc.machine_state.value if wc else "unknown",
            "current": None if current is None else {
                "order_id": current.order_id, "op_no": current.op_no, "status": current.status,
                "good": current.good, "scrap": current.scrap, "rework": current.rework,
                "planned_qty": current.planned_qty, "available": current.available},
            "ts": datetime.now(UTC).isoformat()})

    # -- consumers -----------------------------------------------------------------------------

    async def stream(self, work_center: str | None,
                     owner: str | None = None) -> AsyncIterator[str]:
        """The SSE text of one client until it disconnects or the API closes."""
        client = LiveClient(work_center, self.queue_size, owner)
        self.clients.add(client)
        try:
            # A (re)connected page may have missed changes: it re-fetches on "hello".
            yield f"retry: 3000\ndata: {json.dumps({'type': 'hello'})}\n\n"
            while True:
                try:
                    async with asyncio.timeout(self.heartbeat_s):
                        payload = await client.queue.get()
                except TimeoutError:
                    yield ": heartbeat\n\n"  # keeps proxies and the page's watchdog content
                    continue
                if payload is None:
                    return
                yield f"data: {payload}\n\n"
        finally:
            self.clients.discard(client)

    def response(self, work_center: str | None, owner: str | None = None) -> StreamingResponse:
        """A streaming response for one client; 503 when closing or full, 429 when this
        token (`owner`) already holds its share of connections."""
        if self.closed:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "shutting down")
        if owner is not None and sum(
                1 for c in self.clients if c.owner == owner) >= self.max_per_token:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                f"this token already holds {self.max_per_token} live "
                                "connections (api.sse_per_token)", headers={"Retry-After": "5"})
        if len(self.clients) >= self.max_clients:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "too many live clients")
        # (Both limits count streams that started: requests racing in the same instant may
        # pass together, as for max_clients; the next one is refused.)
        return StreamingResponse(self.stream(work_center, owner),
                                 media_type="text/event-stream", headers=_SSE_HEADERS)


def _live(request: Request) -> LiveUpdates:
    live: LiveUpdates = request.app.state.live
    return live


#: One event of the stream (OpenAPI 3.1 style: the schema describes each event).
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["data"],
    "properties": {
        "retry": {"type": "integer"},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
            "type": "object", "required": ["type"], "properties": {"type": {
                "type": "string", "enum": ["hello", "resync", "station", "changed"]}}}},
    }}
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": _EVENT_SCHEMA}}, "description": _DESCRIPTION}}


@router.get("/stations/{work_center}/events", response_class=StreamingResponse,
            responses=_STREAM)
async def station_events(work_center: str, request: Request,
                         caller: StationCaller) -> StreamingResponse:
    """Live changes of one station: counts, state and current operation as they commit."""
    return _live(request).response(work_center, caller.token_id)


@router.get("/board/events", response_class=StreamingResponse, responses=_STREAM)
async def board_events(request: Request, caller: SupervisorDep) -> StreamingResponse:
    """Live 'changed' notices for the supervisor board (which work centers, any rejection)."""
    return _live(request).response(None, caller.token_id)
