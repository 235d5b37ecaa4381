"""Push mode: POST every confirmation to the ERP, in order per work order, never dropping one.

Delivery state lives in the database (confirmation_deliveries), so a restart resumes where the
last run stopped; a confirmation that was sent but whose answer was lost is sent again with the
same `Idempotency-Key` (its confirmation_id) and the ERP dedups it. A failure holds back the
later confirmations of the same work order (order per work order), not those of other orders,
and is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx

from drivers import Backoff
from mes_edge.api.confirmations import confirmation_out
from mes_edge.dispatcher import CommittedBatch
from mes_edge.erp.worker import BackgroundWorker
from mes_edge.store import Store, feed

log = logging.getLogger(__name__)


class PushWorker(BackgroundWorker):
    """Delivers confirmations to `url`; owns one background task."""

    task_name = "erp-push"

    def __init__(self, store: Store, url: str, *, token: str | None = None,
                 timeout: float = 10.0, batch: int = 200, idle_poll: float = 5.0,
                 backoff: Backoff | None = None) -> None:
        super().__init__()
        self.store = store
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._batch = batch
        self._idle_poll = idle_poll
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._wake = asyncio.Event()
        self._retry_at: dict[str, float] = {}  # order_id -> monotonic time of the next try
        self.delivered = 0
        self.failures = 0
        self.outage_since: float | None = None

    def on_commit(self, batch: CommittedBatch) -> None:
        """Dispatcher listener: new confirmations wake the worker."""
        if batch.confirmations:
            self._wake.set()

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            while True:
                try:
                    progressed, waiting = await self.deliver_pending(client)
                except Exception:  # the database is away, or a bug: log, wait, try again
                    log.exception("ERP push pass failed; retrying")
                    progressed, waiting = False, self._backoff.next_delay()
                if progressed:
                    continue
                self._wake.clear()
                delay = min(waiting, self._idle_poll) if waiting is not None else self._idle_poll
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(delay, 0.01))

    async def deliver_pending(self, client: httpx.AsyncClient) -> tuple[bool, float | None]:
        """One pass over what is pending. Returns (anything delivered, seconds to next retry)."""
        now = time.monotonic()
        # Orders waiting for a retry are left out of the query, so one order's pile of held
        # confirmations never hides the others'.
        waiting_orders = {o for o, due in self._retry_at.items() if due > now}
        rows = await feed.undelivered(self.store, self._batch, exclude_orders=waiting_orders)
        blocked: set[str] = set(waiting_orders)
        progressed = False
        next_retry: float | None = min((self._retry_at[o] - now for o in waiting_orders),
                                       default=None)
        for row in rows:
            if row.order_id in blocked:
                continue
            ok = await self._send(client, row)
            if ok:
                progressed = True
                self._retry_at.pop(row.order_id, None)
            else:
                blocked.add(row.order_id)  # keep the order of this work order's confirmations
                wait = self._backoff.next_delay()
                self._retry_at[row.order_id] = time.monotonic() + wait
                next_retry = wait if next_retry is None else min(next_retry, wait)
        if progressed:
            self._backoff.reset()
        return progressed, next_retry

    async def _send(self, client: httpx.AsyncClient, row: Any) -> bool:
        body = confirmation_out(row).model_dump(mode="json", by_alias=True)
        body.pop("delivery", None)
        attempts = int(row.attempts or 0) + 1
        try:
            response = await client.post(self.url, json=body,
                                         headers={"Idempotency-Key": row.confirmation_id})
        except httpx.HTTPError as err:
            await self._failed(row, attempts, f"{type(err).__name__}: {err}")
            return False
        if response.is_success or response.status_code == 409:  # 409: the ERP has it already
            await feed.mark(self.store, row, "delivered", None, attempts)
            self.delivered += 1
            if self.outage_since is not None:
                log.warning("ERP push recovered after %.1fs", time.monotonic() - self.outage_since)
                self.outage_since = None
            return True
        await self._failed(row, attempts, f"HTTP {response.status_code}: {response.text[:500]}")
        return False

    async def _failed(self, row: Any, attempts: int, message: str) -> None:
        self.failures += 1
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.error("ERP push failing (will retry, nothing is dropped): %s", message)
        await feed.mark(self.store, row, "error", message, attempts)
