"""A simulated ERP / planning core: releases work orders through the MES's ERP API and takes
confirmations back, by pulling the feed or by receiving pushes, keeping its own totals.

It talks HTTP only (imports nothing from mes_edge). Like a real ERP it dedups confirmations by
`confirmation_id` (or the `Idempotency-Key` of a push), subtracts reversals, and checks that the
confirmations of each work order arrive in commit order (by cursor).

    async with ErpSim("http://127.0.0.1:8000", token, mode="pull") as erp:
        await erp.release_order("WO-1", quantity=40, operations=[("0010", "PRESS-01")])
        ...
        erp.totals_by_work_center()   # {"PRESS-01": {"good": 40, "scrap": 1, "rework": 0}}

Push mode: the simulator listens on `push_port` at POST /erp/confirmations; `set_available(False)`
answers 503 (an ERP outage; `status=500`, and `after_booking=True` for an ERP that books the
confirmation and then fails to answer), `stop_receiver()` closes the port altogether.
`refuse(order_id, 422, "...")` refuses the next confirmation of that order (and that same one
again, as an ERP does while its data is wrong) until `clear_refusal(order_id)`. A key it already
has is answered 200 (`duplicate_status=409` for ERPs that answer 409 Conflict). Every push and
its answer is in `push_log`.

Command line: `python -m simulators.erp --mes-url URL --token T [--mode pull|push] [--orders N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("simulators.erp")


@dataclass
class Received:
    """What the ERP booked: confirmations by id, totals and order checks."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    #: Last cursor seen per work order, to check commit order per order.
    last_cursor: dict[str, int] = field(default_factory=dict)
    order_violations: list[str] = field(default_factory=list)

    def book(self, c: dict[str, Any]) -> bool:
        """Book one confirmation; False when it was a duplicate."""
        cid = c["confirmation_id"]
        if cid in self.by_id:
            self.duplicates += 1
            return False
        order = c["order_id"]
        last = self.last_cursor.get(order, 0)
        if c["cursor"] <= last:
            self.order_violations.append(f"{order}: cursor {c['cursor']} arrived after {last}")
        self.last_cursor[order] = max(last, c["cursor"])
        self.by_id[cid] = c
        return True

    def totals(self, key: str) -> dict[str, dict[str, int]]:
        """good / scrap / rework summed by `key` (work_center, order_id), reversals subtracted."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"good": 0, "scrap": 0, "rework": 0})
        for c in self.by_id.values():
            sign = -1 if c.get("reverses") else 1
            t = out[c[key]]
            t["good"] += sign * c["yield"]
            t["scrap"] += sign * c["scrap"]
            t["rework"] += sign * c["rework"]
        return dict(out)


class ErpSim:
    """The virtual ERP: order release, confirmation intake (pull or push), totals."""

    def __init__(
        self,
        mes_url: str,
        token: str,
        *,
        mode: str = "pull",
        poll_interval: float = 0.5,
        push_host: str = "127.0.0.1",
        push_port: int = 0,
        page: int = 500,
        push_delay: float = 0.0,
        duplicate_status: int = 200,
    ) -> None:
        if mode not in ("pull", "push"):
            raise ValueError("mode is pull or push")
        self.mes_url = mes_url.rstrip("/")
        self.mode = mode
        self.received = Received()
        self.cursor = 0
        self.poll_interval = poll_interval
        self.page = page
        self.push_host = push_host
        self.push_port = push_port or _free_port()
        self.pull_errors = 0
        self.available = True
        self.push_delay = push_delay  # seconds an ERP takes to post one confirmation
        self.unavailable_status = 503
        self.fail_after_booking = False
        self.duplicate_status = duplicate_status
        #: order_id -> [HTTP status, message, the confirmation_id refused (once one came)]
        self.refusals: dict[str, list[Any]] = {}
        #: (confirmation_id, order_id, HTTP status answered) for every push, in arrival order.
        self.push_log: list[tuple[str, str, int]] = []
        #: Orders offered to a MES that pulls them (GET /erp/released-orders).
        self.offered: dict[str, dict[str, Any]] = {}
        self._client = httpx.AsyncClient(
            base_url=self.mes_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: uvicorn.Server | None = None

    @property
    def push_url(self) -> str:
        return f"http://{self.push_host}:{self.push_port}/erp/confirmations"

    async def __aenter__(self) -> ErpSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start pulling, or start the push receiver."""
        if self.mode == "pull":
            self._tasks.append(asyncio.create_task(self._pull_loop(), name="erp-pull"))
        else:
            await self.start_receiver()

    async def close(self) -> None:
        """Stop everything the simulator runs."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.stop_receiver()
        await self._client.aclose()

    # -- orders ---------------------------------------------------------------------------

    async def release_order(
        self,
        order_id: str,
        *,
        quantity: int,
        operations: list[tuple[str, str]],
        revision: int = 1,
        material: str = "PART-100",
        **extra: Any,
    ) -> dict[str, Any]:
        """PUT a work order (retrying while the MES is unreachable); returns the MES answer."""
        body = {
            "revision": revision,
            "material": material,
            "quantity": quantity,
            "operations": [{"op_no": n, "work_center": w} for n, w in operations],
            **extra,
        }
        for attempt in range(200):
            try:
                r = await self._client.put(f"/api/v1/work-orders/{order_id}", json=body)
            except httpx.HTTPError:
                await asyncio.sleep(min(0.1 * (attempt + 1), 2.0))
                continue
            if r.status_code >= 500:
                await asyncio.sleep(0.5)
                continue
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result
        raise RuntimeError(f"the MES did not take order {order_id}")

    async def command(self, order_id: str, action: str, reason: str | None = None) -> int:
        """POST hold / release / cancel for an order; returns the HTTP status."""
        r = await self._client.post(f"/api/v1/work-orders/{order_id}/{action}",
                                    json={"reason": reason})
        return r.status_code

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """The MES's view of an order (None if unknown or unreachable)."""
        try:
            r = await self._client.get(f"/api/v1/work-orders/{order_id}")
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        result: dict[str, Any] = r.json()
        return result

    # -- pull -----------------------------------------------------------------------------

    async def pull_once(self) -> int:
        """Fetch every page after our cursor, book it, ack it. Returns how many were new."""
        new = 0
        while True:
            r = await self._client.get(
                "/api/v1/confirmations", params={"after": self.cursor, "limit": self.page}
            )
            r.raise_for_status()
            page = r.json()
            for c in page["confirmations"]:
                new += self.received.book(c)
            if page["confirmations"]:
                ack = await self._client.post(
                    "/api/v1/confirmations/ack",
                    json={
                        "cursor": page["next_cursor"],
                        "results": [
                            {"confirmation_id": c["confirmation_id"], "status": "posted"}
                            for c in page["confirmations"]
                        ],
                    },
                )
                ack.raise_for_status()
                self.cursor = page["next_cursor"]
            if not page["has_more"]:
                return new

    async def _pull_loop(self) -> None:
        while True:
            try:
                await self.pull_once()
            except (httpx.HTTPError, ValueError, KeyError) as err:
                self.pull_errors += 1
                log.debug("pull failed: %s", err)
            await asyncio.sleep(self.poll_interval)

    # -- push -----------------------------------------------------------------------------

    def set_available(
        self, available: bool, *, status: int = 503, after_booking: bool = False
    ) -> None:
        """False: the receiver answers `status` (the ERP is down for maintenance); with
        `after_booking` it books the confirmation first (its answer is what fails)."""
        self.available = available
        self.unavailable_status = status
        self.fail_after_booking = after_booking

    def refuse(self, order_id: str, status: int = 422, message: str = "refused") -> None:
        """Refuse the next confirmation of `order_id` with `status` and `message`, and that
        same confirmation each time it comes again, until clear_refusal()."""
        self.refusals[order_id] = [status, message, None]

    def clear_refusal(self, order_id: str) -> None:
        """The ERP's data was fixed: the refused confirmation is accepted next time."""
        self.refusals.pop(order_id, None)

    async def _receive(self, request: Request) -> JSONResponse:
        if self.push_delay:
            await asyncio.sleep(self.push_delay)
        key = request.headers.get("idempotency-key")
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            return JSONResponse({"error": "not JSON"}, status_code=400)
        if not isinstance(body, dict) or not key or key != body.get("confirmation_id"):
            return JSONResponse(
                {"error": "Idempotency-Key must equal confirmation_id"}, status_code=400
            )
        response = self._answer(key, body)
        self.push_log.append((key, str(body.get("order_id")), response.status_code))
        return response

    def _answer(self, key: str, body: dict[str, Any]) -> JSONResponse:
        if not self.available:
            if self.fail_after_booking:
                self.received.book(body)
            return JSONResponse({"error": "maintenance"}, status_code=self.unavailable_status)
        refusal = self.refusals.get(str(body.get("order_id")))
        if refusal is not None and key not in self.received.by_id:
            if refusal[2] is None:
                refusal[2] = key
            if refusal[2] == key:
                return JSONResponse({"error": refusal[1]}, status_code=refusal[0])
        fresh = self.received.book(body)
        if fresh:
            return JSONResponse({"status": "posted"}, status_code=201)
        return JSONResponse({"status": "duplicate"}, status_code=self.duplicate_status)

    def offer_order(
        self,
        order_id: str,
        *,
        quantity: int,
        operations: list[tuple[str, str]],
        revision: int = 1,
        material: str = "PART-100",
        **extra: Any,
    ) -> None:
        """Publish an order on GET /erp/released-orders for a MES that pulls orders."""
        self.offered[order_id] = {
            "order_id": order_id,
            "revision": revision,
            "material": material,
            "quantity": quantity,
            **extra,
            "operations": [{"op_no": n, "work_center": w} for n, w in operations],
        }

    async def _released(self, request: Request) -> JSONResponse:
        return JSONResponse({"work_orders": list(self.offered.values())})

    @property
    def orders_url(self) -> str:
        return f"http://{self.push_host}:{self.push_port}/erp/released-orders"

    async def start_receiver(self) -> None:
        """Listen for pushes (and serve released orders) on push_port."""
        if self._server is not None:
            return
        app = Starlette(
            routes=[
                Route("/erp/confirmations", self._receive, methods=["POST"]),
                Route("/erp/released-orders", self._released, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app,
            host=self.push_host,
            port=self.push_port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        server = _Server(config)
        self._server = server
        self._tasks.append(asyncio.create_task(server.serve(), name="erp-receiver"))
        for _ in range(200):
            if server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("the ERP receiver did not start")

    async def stop_receiver(self) -> None:
        """Close the push port (connections are refused until start_receiver)."""
        server, self._server = self._server, None
        if server is not None:
            server.should_exit = True
            for _ in range(250):
                if not server.started or (server.should_exit and not server.servers):
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)

    # -- results --------------------------------------------------------------------------

    def totals_by_work_center(self) -> dict[str, dict[str, int]]:
        """What the ERP booked per work center."""
        return self.received.totals("work_center")

    def totals_by_order(self) -> dict[str, dict[str, int]]:
        """What the ERP booked per work order."""
        return self.received.totals("order_id")


class _Server(uvicorn.Server):
    """uvicorn without signal handling of its own (the host process owns signals)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_scenario(path: Path) -> list[dict[str, Any]]:
    """A planner's script (YAML or JSON): a list, or {"steps": [...]}, of steps

        {at: 5, release: WO-7, quantity: 40, route: [PRESS-01, CNC-02], revision: 1,
         demand_type: make_to_order, sales_order: SO-1}
        {at: 20, hold: WO-7, reason: "material shortage"}   # also: release_held, cancel
    """
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    steps = data.get("steps", []) if isinstance(data, dict) else data
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError(f"{path}: a scenario is a list of steps")
    return sorted(steps, key=lambda s: float(s.get("at", 0)))


async def _play(erp: ErpSim, steps: list[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for step in steps:
        await asyncio.sleep(max(0.0, t0 + float(step.get("at", 0)) - loop.time()))
        if "release" in step:
            route = step.get("route", ["PRESS-01"])
            extra = {k: step[k] for k in ("demand_type", "sales_order", "customer") if k in step}
            await erp.release_order(
                str(step["release"]), quantity=int(step.get("quantity", 10)),
                operations=[(f"{(j + 1) * 10:04d}", wc) for j, wc in enumerate(route)],
                revision=int(step.get("revision", 1)), **extra)
        else:
            for action in ("hold", "release_held", "cancel"):
                if action in step:
                    verb = "release" if action == "release_held" else action
                    await erp.command(str(step[action]), verb, step.get("reason"))
        print(json.dumps({"step": step}), flush=True)


async def _main(args: argparse.Namespace) -> None:
    token = args.token or os.environ.get("MES_ERP_TOKEN", "")
    async with ErpSim(args.mes_url, token, mode=args.mode, push_port=args.port) as erp:
        if args.mode == "push":
            print(f"receiving pushes at {erp.push_url}", flush=True)
        for i in range(args.orders):
            await erp.release_order(
                f"SIM-{i + 1:04d}",
                quantity=args.quantity,
                operations=[
                    (f"{(j + 1) * 10:04d}", wc) for j, wc in enumerate(args.route.split(","))
                ],
            )
        player = (asyncio.create_task(_play(erp, load_scenario(Path(args.scenario))))
                  if args.scenario else None)
        try:
            while True:
                await asyncio.sleep(args.report_every)
                print(json.dumps({"received": len(erp.received.by_id),
                                  "duplicates": erp.received.duplicates,
                                  "by_work_center": erp.totals_by_work_center()}), flush=True)
        finally:
            if player is not None:
                player.cancel()
                await asyncio.gather(player, return_exceptions=True)

def main(argv: list[str] | None = None) -> int:
    """Command line: run the ERP simulator against a MES."""
    p = argparse.ArgumentParser(prog="mes-edge sim erp", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mes-url", default="http://127.0.0.1:8000", help="base URL of the MES")
    p.add_argument("--token", default=None, help="erp token (or MES_ERP_TOKEN)")
    p.add_argument("--mode", choices=["pull", "push"], default="pull",
                   help="read the confirmation feed, or receive pushed confirmations")
    p.add_argument("--port", type=int, default=0, help="push receiver port (0: a free one)")
    p.add_argument("--orders", type=int, default=0, help="orders to release at start")
    p.add_argument("--quantity", type=int, default=50, help="quantity of each released order")
    p.add_argument("--route", default="PRESS-01,CNC-02,ASSY-03",
                   help="work centers of the operations, in order (comma-separated)")
    p.add_argument("--report-every", type=float, default=5.0,
                   help="seconds between progress lines")
    p.add_argument("--scenario", default=None, help="YAML/JSON planner script (see load_scenario)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
