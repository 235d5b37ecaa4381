"""Optional pull adapter: polls an ERP URL for released work orders and imports them.

The ERP answers with JSON (`{"work_orders": [{"order_id": ..., <PUT body fields>}]}` or a bare
list) or with B2MML (`ProcessOperationsSchedule`). Each order goes through the dispatcher like a
PUT; its event id is `erp-pull:<order>:<revision>`, so polling the same revision again is a
duplicate that changes nothing, and a refused revision is recorded once, not on every poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import httpx
from pydantic import ValidationError

from drivers import Backoff
from mes_edge.contracts.erp import WorkOrderIn
from mes_edge.dispatcher import Dispatcher
from mes_edge.domain import OrderReceived, OrderSpec, RawRejection
from mes_edge.erp.worker import BackgroundWorker

log = logging.getLogger(__name__)


class OrderPuller(BackgroundWorker):
    """Imports the ERP's released orders every `interval` seconds; owns one task."""

    task_name = "erp-order-pull"

    def __init__(self, dispatcher: Dispatcher, url: str, *, token: str | None = None,
                 interval: float = 30.0, timeout: float = 10.0) -> None:
        super().__init__()
        self.dispatcher = dispatcher
        self.url = url
        self.interval = interval
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._backoff = Backoff(initial=1.0, maximum=max(interval, 1.0))
        self.polls = 0
        self.errors = 0
        self.failing = False

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            while True:
                try:
                    await self.poll_once(client)
                    if self.failing:
                        log.warning("ERP order pull recovered")
                    self.failing = False
                    self._backoff.reset()
                    delay = self.interval
                except (httpx.HTTPError, ValueError) as err:
                    self.errors += 1
                    if not self.failing:
                        log.error("ERP order pull failing: %s", err)
                    self.failing = True
                    delay = self._backoff.next_delay()
                await asyncio.sleep(delay)

    async def poll_once(self, client: httpx.AsyncClient) -> int:
        """Fetch and import once; returns how many orders were submitted (new revisions)."""
        self.polls += 1
        r = await client.get(self.url, headers={"Accept": "application/json, application/xml"})
        r.raise_for_status()
        items = await self._parse(r)
        submitted = 0
        for item in items:
            if isinstance(item, RawRejection):
                await self.dispatcher.submit(item)
                continue
            current = self.dispatcher.state.order(item.order_id)
            if current is not None and current.revision >= item.revision:
                continue  # nothing new: do not even queue it
            await self.dispatcher.submit(OrderReceived(
                event_id=f"erp-pull:{item.order_id}:{item.revision}", source="erp-pull",
                actor="erp", spec=item))
            submitted += 1
        return submitted

    async def _parse(self, r: httpx.Response) -> list[OrderSpec | RawRejection]:
        if r.headers.get("content-type", "").split(";")[0].strip() in ("application/xml",
                                                                        "text/xml"):
            from mes_edge.erp.b2mml import B2mmlError, parse_operations_schedule

            try:
                return list(await asyncio.to_thread(parse_operations_schedule, r.content))
            except B2mmlError as err:
                return [RawRejection(source="erp-pull", reason_code="invalid",
                                     event_id=_content_id(r.content),
                                     reason=f"B2MML from {self.url}: {err.problems[0].message}",
                                     payload={"problems": [p.as_dict() for p in err.problems]})]
        data: Any = r.json()
        raw = data.get("work_orders", []) if isinstance(data, dict) else data
        if not isinstance(raw, list):
            raise ValueError("the ERP answered neither a list nor {\"work_orders\": [...]}")
        out: list[OrderSpec | RawRejection] = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("order_id"), str):
                out.append(RawRejection(source="erp-pull", reason_code="invalid",
                                        event_id=_content_id(repr(entry).encode()),
                                        reason="an order without a string order_id",
                                        payload={"entry": repr(entry)[:500]}))
                continue
            body = {k: v for k, v in entry.items() if k != "order_id"}
            try:
                out.append(WorkOrderIn.model_validate(body).to_spec(entry["order_id"]))
            except ValidationError as err:
                first = err.errors(include_url=False)[0]
                out.append(RawRejection(
                    source="erp-pull", reason_code="invalid",
                    event_id=f"erp-pull:{entry['order_id']}:{body.get('revision')}:invalid",
                    reason=f"order {entry['order_id']}: {'.'.join(map(str, first['loc']))}: "
                           f"{first['msg']}", payload={"order": entry}))
        return out


def _content_id(content: bytes) -> str:
    # The same bad document polled again is the same refusal: recorded once, not every poll.
    return f"erp-pull:invalid:{hashlib.sha256(content).hexdigest()[:32]}"
