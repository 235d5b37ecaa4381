"""Push mode: POST every confirmation to the ERP, in order per work order, never dropping one.

Delivery state lives in the database (confirmation_deliveries), so a restart resumes where the
last run stopped; a confirmation that was sent but whose answer was lost is sent again with the
same `Idempotency-Key` (its confirmation_id) and the ERP dedups it.

What an answer means:
- 2xx, or 409 (the ERP already has this key): delivered.
- 408, 429, 5xx, a timeout or no connection: state `retrying`; sent again after a backoff that
  belongs to the work order alone (a `Retry-After` header is honoured, up to the backoff's cap).
- any other 4xx: state `error` with the ERP's message. The ERP refused this confirmation, so
  sending it again would not help: it waits for a supervisor to retry or skip it, and the later
  confirmations of its work order wait behind it. Other work orders go on.

Each work order is sent by its own short-lived task (at most `concurrency` at a time), so a slow
or failing work order never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from drivers import Backoff
from mes_edge.contracts.erp import confirmation_out
from mes_edge.dispatcher import CommittedBatch
from mes_edge.erp.worker import BackgroundWorker
from mes_edge.store import Store, feed

log = logging.getLogger(__name__)

#: How much of the ERP's answer is kept as the message of a delivery error.
MESSAGE_CHARS = 1000
#: 4xx answers that are about the moment, not about the confirmation: retried with backoff.
TRANSIENT_4XX = frozenset({408, 425, 429})

AlertListener = Callable[[dict[str, Any]], None]


@dataclass
class _OrderBackoff:
    """Retry schedule of one work order."""

    backoff: Backoff
    due: float = field(default=0.0)


class PushWorker(BackgroundWorker):
    """Delivers confirmations to `url`; owns its loop and one task per work order in flight."""

    task_name = "erp-push"

    def __init__(self, store: Store, url: str, *, token: str | None = None,
                 timeout: float = 10.0, batch: int = 200, idle_poll: float = 5.0,
                 backoff: Backoff | None = None, concurrency: int = 4) -> None:
        super().__init__()
        self.store = store
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._batch = batch
        self._idle_poll = idle_poll
        self._template = backoff or Backoff(initial=0.2, maximum=5.0)
        self._concurrency = max(1, concurrency)
        self._store_backoff = Backoff(initial=0.5, maximum=10.0)
        self._wake = asyncio.Event()
        self._retry: dict[str, _OrderBackoff] = {}  # work orders waiting for their next try
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[AlertListener] = []
        self.delivered = 0
        self.failures = 0
        self.refused = 0
        self.outage_since: float | None = None

    def on_commit(self, batch: CommittedBatch) -> None:
        """Dispatcher listener: new confirmations wake the worker."""
        if batch.confirmations:
            self._wake.set()

    def wake(self) -> None:
        """Look for work now (a supervisor retried or skipped a delivery error)."""
        self._wake.set()

    def subscribe(self, listener: AlertListener) -> Callable[[], None]:
        """Call `listener(alert)` on every delivery error; returns the function that undoes it.

        The alert is a dict: kind `delivery_error`, severity, work_center, order_id,
        confirmation_id, http_status, message. Listeners must not block.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            try:
                while True:
                    self._wake.clear()  # before looking: a commit meanwhile wakes the next pass
                    try:
                        delay = await self._start_pending(client)
                        self._store_backoff.reset()
                    except Exception:  # the database is away, or a bug: log, wait, try again
                        log.exception("ERP push pass failed; retrying")
                        delay = self._store_backoff.next_delay()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(delay, 0.01)):
                            await self._wake.wait()
            finally:
                tasks = list(self._in_flight.values())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._in_flight.clear()

    async def _start_pending(self, client: httpx.AsyncClient) -> float:
        """Start a task for each work order with something to send; seconds until a retry."""
        now = time.monotonic()
        waiting = {o: r.due for o, r in self._retry.items() if r.due > now}
        free = self._concurrency - len(self._in_flight)
        if free > 0:
            busy = set(self._in_flight) | set(waiting)
            rows = await feed.undelivered(self.store, self._batch, exclude_orders=busy)
            by_order: dict[str, list[Any]] = {}
            for row in rows:
                if row.order_id in by_order or len(by_order) < free:
                    by_order.setdefault(row.order_id, []).append(row)
            for order_id, order_rows in by_order.items():
                self._spawn(client, order_id, order_rows)
        delay = min((due - now for due in waiting.values()), default=self._idle_poll)
        return min(delay, self._idle_poll)

    def _spawn(self, client: httpx.AsyncClient, order_id: str, rows: list[Any]) -> None:
        task = asyncio.create_task(self._deliver_order(client, order_id, rows),
                                   name=f"erp-push:{order_id}")
        self._in_flight[order_id] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._in_flight.get(order_id) is task:
                del self._in_flight[order_id]
            self._wake.set()  # the order may have more, or a slot is free for another

        task.add_done_callback(done)

    async def _deliver_order(self, client: httpx.AsyncClient, order_id: str,
                             rows: list[Any]) -> None:
        """Send one work order's confirmations in cursor order; stop at the first failure."""
        try:
            for row in rows:
                if not await self._send(client, row):
                    return
            self._retry.pop(order_id, None)
        except Exception:  # the database failed while recording: retry this order later
            log.exception("ERP push of work order %s failed; retrying", order_id)
            self._schedule_retry(order_id, None)

    def _schedule_retry(self, order_id: str, retry_after: float | None) -> None:
        entry = self._retry.get(order_id)
        if entry is None:
            entry = self._retry[order_id] = _OrderBackoff(
                Backoff(initial=self._template.initial, maximum=self._template.maximum,
                        factor=self._template.factor))
        delay = entry.backoff.next_delay()
        if retry_after is not None:
            delay = min(max(delay, retry_after), self._template.maximum)
        entry.due = time.monotonic() + delay

    async def _send(self, client: httpx.AsyncClient, row: Any) -> bool:
        """POST one confirmation and record the outcome; True when it is delivered."""
        body = confirmation_out(row).model_dump(mode="json", by_alias=True)
        body.pop("delivery", None)
        attempts = int(row.attempts or 0) + 1
        try:
            response = await client.post(self.url, json=body,
                                         headers={"Idempotency-Key": row.confirmation_id})
        except httpx.HTTPError as err:
            await self._transient(row, attempts, f"{type(err).__name__}: {err}", None, None)
            return False
        code = response.status_code
        if response.is_success or code == 409:  # 409: the ERP has this key already
            await feed.mark(self.store, row, "delivered", None, attempts, code)
            self.delivered += 1
            if self.outage_since is not None:
                log.warning("ERP push recovered after %.1fs", time.monotonic() - self.outage_since)
                self.outage_since = None
            return True
        message = f"HTTP {code}: {response.text[:MESSAGE_CHARS]}"
        if code >= 500 or code in TRANSIENT_4XX or code < 400:
            await self._transient(row, attempts, message, code,
                                  _retry_after(response.headers.get("retry-after")))
            return False
        await self._refused(row, attempts, message, code)
        return False

    async def _transient(self, row: Any, attempts: int, message: str, code: int | None,
                         retry_after: float | None) -> None:
        self.failures += 1
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.error("ERP push failing (will retry, nothing is dropped): %s", message)
        await feed.mark(self.store, row, "retrying", message, attempts, code)
        self._schedule_retry(row.order_id, retry_after)

    async def _refused(self, row: Any, attempts: int, message: str, code: int) -> None:
        self.refused += 1
        await feed.mark(self.store, row, "error", message, attempts, code)
        self._retry.pop(row.order_id, None)
        log.error("ERP refused confirmation %s of work order %s (%s); its later confirmations "
                  "wait for a supervisor to retry or skip it", row.confirmation_id, row.order_id,
                  message)
        alert = {"kind": "delivery_error", "severity": "error", "work_center": row.work_center,
                 "order_id": row.order_id, "confirmation_id": row.confirmation_id,
                 "http_status": code, "message": message}
        for listener in list(self._listeners):
            try:
                listener(alert)
            except Exception:  # a broken listener must not stop deliveries
                log.exception("delivery error listener failed")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None
