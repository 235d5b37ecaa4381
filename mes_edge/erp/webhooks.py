"""Alert webhooks, signed the Standard Webhooks way, delivered from a durable outbox.

Every alert event (raised, cleared, acknowledged) is written to `alert_webhooks` in the alert's
own transaction, one row per destination. One owned task per destination sends its rows in the
order they were written: a message is sent again (same `webhook-id`, new timestamp and
signature) after a backoff until the receiver answers 2xx, and the messages behind it wait, so
each receiver sees the events in order and none is dropped. A restart resumes from the table.
Delivered rows are deleted `alerts.webhook_keep_days` after delivery by the history task
(app/history.py); an undelivered row is never deleted (there is no giving up).

Headers: `webhook-id` (the message id, stable across retries: receivers dedup by it),
`webhook-timestamp` (integer seconds of this attempt) and `webhook-signature`:
`v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), the key being the base64 after
`whsec_` of the destination's secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import orjson

from drivers import Backoff
from mes_edge.config.settings import WebhookSettings
from mes_edge.erp.worker import BackgroundWorker
from mes_edge.store import Store
from mes_edge.store import alerts as alert_store

log = logging.getLogger(__name__)

#: How much of a receiver's answer is kept as the last error of a message.
ERROR_CHARS = 500


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *,
           tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """What a receiver checks: a `v1` signature of id, timestamp and body, with a fresh
    timestamp (constant-time comparison; several space-separated signatures allowed)."""
    message_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    expected = sign(secret, message_id, int(stamp), body)
    return any(hmac.compare_digest(expected, s)
               for s in headers.get("webhook-signature", "").split())


class WebhookWorker(BackgroundWorker):
    """Delivers the alert webhook outbox; owns one task per destination."""

    task_name = "alert-webhooks"

    def __init__(self, store: Store, destinations: Sequence[WebhookSettings], *,
                 backoff: Backoff | None = None, idle_poll: float = 5.0,
                 batch: int = 100) -> None:
        super().__init__()
        self.store = store
        self.destinations = list(destinations)
        self._template = backoff or Backoff(initial=0.5, maximum=60.0)
        self._idle_poll = idle_poll
        self._batch = batch
        self._wakes = {d.name: asyncio.Event() for d in self.destinations}
        self.delivered = 0
        self.failures = 0
        #: The last error per destination (None once it delivers again).
        self.last_error: dict[str, str | None] = {d.name: None for d in self.destinations}

    def wake(self) -> None:
        """New messages were committed: look now."""
        for event in self._wakes.values():
            event.set()

    async def _run(self) -> None:
        tasks = [asyncio.create_task(self._destination(d), name=f"alert-webhook:{d.name}")
                 for d in self.destinations]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _destination(self, dest: WebhookSettings) -> None:
        wake = self._wakes[dest.name]
        backoff = Backoff(initial=self._template.initial, maximum=self._template.maximum,
                          factor=self._template.factor)
        secret = dest.secret.get_secret_value()
        async with httpx.AsyncClient(timeout=dest.timeout_s) as client:
            while True:
                wake.clear()
                try:
                    pending = await alert_store.pending_webhooks(self.store, dest.name,
                                                                 self._batch)
                    delay = self._idle_poll
                    for message in pending:
                        if not await self._send(client, dest, secret, message):
                            delay = backoff.next_delay()
                            break
                        backoff.reset()
                    else:
                        if len(pending) == self._batch:
                            continue  # more behind this page
                except Exception:  # the database is away: wait and look again
                    log.exception("alert webhooks to %s: pass failed; retrying", dest.name)
                    delay = backoff.next_delay()
                    await asyncio.sleep(delay)  # a wake must not shorten a storage backoff
                    continue
                if delay != self._idle_poll:
                    await asyncio.sleep(delay)  # in order: the same message goes again first
                else:
                    # not wait_for: on Python 3.11 it can lose a cancellation (gh-86296)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()

    async def _send(self, client: httpx.AsyncClient, dest: WebhookSettings, secret: str,
                    message: dict[str, object]) -> bool:
        body = orjson.dumps(message["payload"])
        message_id = str(message["message_id"])
        stamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(secret, message_id, stamp, body)}
        attempts = int(str(message["attempts"])) + 1
        error: str | None
        try:
            response = await client.post(dest.url, content=body, headers=headers)
            error = None if response.is_success else (
                f"HTTP {response.status_code}: {response.text[:ERROR_CHARS]}")
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:ERROR_CHARS]
        delivered = datetime.now(UTC) if error is None else None
        await alert_store.mark_webhook(self.store, int(str(message["id"])), attempts,
                                       delivered_at=delivered, error=error)
        if error is None:
            self.delivered += 1
            if self.last_error[dest.name] is not None:
                log.warning("alert webhooks to %s recovered", dest.name)
            self.last_error[dest.name] = None
            return True
        self.failures += 1
        if self.last_error[dest.name] is None:
            log.error("alert webhooks to %s failing (kept, retried in order): %s",
                      dest.name, error)
        self.last_error[dest.name] = error
        return False
