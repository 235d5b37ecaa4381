"""Operator login at a station (badge, or badge + PIN) with throttling of failed attempts."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from fastapi import HTTPException, Request, status

from mes_edge.store.tokens import check_pin, find_operator

_PIN_FAILURES_ALLOWED = 5
_PIN_WINDOW_S = 60.0


def _pin_failures(request: Request, work_center: str) -> deque[float]:
    failures: dict[str, deque[float]] = request.app.state.pin_failures
    recent = failures.setdefault(work_center, deque(maxlen=_PIN_FAILURES_ALLOWED))
    while recent and time.monotonic() - recent[0] > _PIN_WINDOW_S:
        recent.popleft()
    return recent


async def login_operator(request: Request, work_center: str, badge: str, pin: str | None,
                         ) -> None:
    """Log `badge` in at the station (PIN checked when given); 401/403/429 when refused."""
    service = request.app.state.service
    failures = _pin_failures(request, work_center)
    if len(failures) >= _PIN_FAILURES_ALLOWED:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, {
            "code": "login_throttled",
            "message": "too many failed logins at this station: wait a minute"})
    found = await find_operator(service.store, badge)
    ok = found is not None
    if ok and pin is not None:
        stored = found.get("pin_hash") if found else None
        # scrypt is deliberately slow: keep it off the event loop.
        ok = bool(stored) and await asyncio.to_thread(check_pin, pin, str(stored))
    if not ok or found is None:
        failures.append(time.monotonic())
        code = "unknown_badge" if found is None else "wrong_pin"
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            {"code": code, "message": code.replace("_", " ").replace("pin", "PIN")})
    allowed = list(found.get("work_centers") or [])  # type: ignore[call-overload]
    if allowed and work_center not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, {
            "code": "not_qualified", "message": f"operator {badge} is not qualified for "
            f"{work_center}", "details": {"badge": badge, "work_center": work_center}})
    service.operators.login(work_center, badge)
    request.app.state.operator_names[badge] = str(found["name"])
    request.app.state.live.station_changed(work_center)
