"""The virtual factory's production planner: keeps a line loaded with work orders, for hours.

It plans through the ERP simulator (HTTP only, imports nothing from mes_edge): whenever fewer
than `keep_open` orders are open it releases the next one, numbering on from the highest order
the MES already has (so a demo continuing on kept data never re-sends an old order id), and it
cancels an order that can never finish, as a planner does: one whose next operation waits for
input its finished predecessor never handed over (every part of it was scrap).

    planner = Planner(erp, route=[("0010", "PRESS-01"), ("0020", "CNC-02")], keep_open=3)
    planner.continue_after(order_ids_the_mes_has)
    await planner.top_up(open_orders)      # call it every few seconds
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Protocol

log = logging.getLogger("simulators.planner")
_FINISHED = ("completed", "cancelled")


class OrderSink(Protocol):
    """What the planner needs of the ERP (simulators.erp.ErpSim has it)."""

    async def release_order(self, order_id: str, *, quantity: int,
                            operations: list[tuple[str, str]], **extra: Any) -> dict[str, Any]: ...

    async def order(self, order_id: str) -> dict[str, Any] | None: ...

    async def command(self, order_id: str, action: str, reason: str | None = None) -> int: ...


def dead_end(order: dict[str, Any]) -> str | None:
    """Why `order` can never finish, or None: its first unfinished operation waits for input
    while its predecessor is finished (nothing was handed over and nothing will be)."""
    ops = order["operations"]
    for i, op in enumerate(ops):
        if op["status"] in _FINISHED:
            continue
        if i > 0 and op["status"] == "waiting" and ops[i - 1]["status"] in _FINISHED:
            return (f"operation {ops[i - 1]['op_no']} finished without handing over a good "
                    f"part: nothing left for operation {op['op_no']}")
        return None
    return None


class Planner:
    """Releases orders to keep `keep_open` of them open; cancels dead ends."""

    def __init__(self, erp: OrderSink, route: list[tuple[str, str]], *, prefix: str = "DEMO",
                 quantity: int = 20, keep_open: int = 3, material: str = "BRACKET-7") -> None:
        if keep_open < 1 or quantity < 1:
            raise ValueError("keep_open and quantity must be at least 1")
        self.erp = erp
        self.route = route
        self.prefix = prefix
        self.quantity = quantity
        self.keep_open = keep_open
        self.material = material
        self.number = 0
        self.released: list[str] = []
        self.cancelled: list[str] = []

    def order_id(self, number: int) -> str:
        return f"{self.prefix}-{number:03d}"

    def continue_after(self, known: Iterable[str]) -> None:
        """Number on after the highest `<prefix>-<n>` among `known` order ids."""
        pattern = re.compile(rf"{re.escape(self.prefix)}-(\d+)")
        for order_id in known:
            m = pattern.fullmatch(order_id)
            if m:
                self.number = max(self.number, int(m.group(1)))

    async def release_next(self) -> str:
        """Release the next order whose id the MES does not know yet; returns its id."""
        while True:
            self.number += 1
            order_id = self.order_id(self.number)
            if await self.erp.order(order_id) is None:
                break
        await self.erp.release_order(order_id, quantity=self.quantity, operations=self.route,
                                     material=self.material)
        self.released.append(order_id)
        return order_id

    async def top_up(self, open_orders: list[dict[str, Any]]) -> list[str]:
        """Cancel dead ends among `open_orders`, then release orders until `keep_open` are open
        (at most `keep_open` per call). Returns the ids released."""
        alive = []
        for order in open_orders:
            why = dead_end(order)
            if why is None:
                alive.append(order)
                continue
            status = await self.erp.command(order["order_id"], "cancel", why)
            log.info("planner: cancelled %s (%s): HTTP %s", order["order_id"], why, status)
            self.cancelled.append(order["order_id"])
        return [await self.release_next() for _ in range(self.keep_open - len(alive))]
