"""Operator sign-in at a station (badge, or badge + PIN) and the throttling of failures.

Throttling never lets one person lock out the others: failures count per badge (wherever they
happen) and per station. A badge is locked after `FREE_FAILURES` wrong attempts, for a time
that doubles with each further failure (up to `MAX_LOCK_S`). The station's count only slows down
badges that are unknown or have failed themselves: an operator whose badge has no recent failure
signs in at once, whatever someone else typed at that station before.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from mes_edge.store.audit import AuditKind, AuditRecord, append
from mes_edge.store.tokens import Principal, check_pin, find_operator

FREE_FAILURES = 5  # wrong attempts before the first lockout
BASE_LOCK_S = 30.0  # the first lockout; each further failure doubles it
MAX_LOCK_S = 900.0
FORGET_AFTER_S = 3600.0  # a failure this old no longer counts
MAX_TRACKED = 10_000  # bounded memory: beyond it the stalest entries are forgotten


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed sign-ins per badge and per station, with exponential lockout (in memory)."""

    def __init__(self) -> None:
        self._badges: dict[str, _Failures] = {}
        self._stations: dict[str, _Failures] = {}

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _get(self, table: dict[str, _Failures], key: str) -> _Failures:
        entry = table.get(key)
        now = self._now()
        if entry is not None and now - entry.last > FORGET_AFTER_S:
            del table[key]
            entry = None
        return entry or _Failures()

    def badge_failures(self, badge: str) -> int:
        """Recent failures of this badge."""
        return self._get(self._badges, badge).count

    def wait_s(self, badge: str, work_center: str, *, known: bool) -> float:
        """Seconds this attempt must wait (0: go ahead)."""
        now = self._now()
        wait = self._get(self._badges, badge).locked_until - now
        if not known or self.badge_failures(badge) > 0:
            wait = max(wait, self._get(self._stations, work_center).locked_until - now)
        return max(0.0, wait)

    def failed(self, badge: str, work_center: str) -> None:
        """Count a failure of this badge at this station."""
        for table, key in ((self._badges, badge), (self._stations, work_center)):
            entry = self._get(table, key)
            entry.count += 1
            entry.last = self._now()
            if entry.count >= FREE_FAILURES:
                lock = min(BASE_LOCK_S * 2 ** (entry.count - FREE_FAILURES), MAX_LOCK_S)
                entry.locked_until = entry.last + lock
            table[key] = entry
            if len(table) > MAX_TRACKED:
                stalest = sorted(table, key=lambda k: table[k].last)[: len(table) // 10]
                for k in stalest:
                    del table[k]

    def succeeded(self, badge: str) -> None:
        """The badge proved itself: its own failures are forgotten (not the station's)."""
        self._badges.pop(badge, None)


def throttle_of(request: Request) -> LoginThrottle:
    """The API's throttle (created on first use)."""
    state = request.app.state
    throttle: LoginThrottle | None = getattr(state, "login_throttle", None)
    if throttle is None:
        throttle = state.login_throttle = LoginThrottle()
    return throttle


def _refuse(code: str, message: str, status_code: int = status.HTTP_401_UNAUTHORIZED,
            **details: object) -> HTTPException:
    detail: dict[str, object] = {"code": code, "message": message}
    if details:
        detail["details"] = details
    return HTTPException(status_code, detail)


async def _audit(request: Request, kind: AuditKind, badge: str, work_center: str,
                 caller: Principal | None, **detail: object) -> None:
    await append(request.app.state.service.store, AuditRecord(
        kind, badge, token_id=caller.token_id if caller else None, work_center=work_center,
        detail={"via": "station", **detail}))


async def login_operator(request: Request, work_center: str, badge: str, pin: str | None,
                         caller: Principal | None = None, *, via: str = "pin") -> None:
    """Sign `badge` in at the station; 401 (unknown badge, PIN needed or wrong), 403 (not
    qualified, no PIN where the plant requires one), 429 (locked for a while)."""
    service = request.app.state.service
    throttle = throttle_of(request)
    found = await find_operator(service.store, badge)
    wait = throttle.wait_s(badge, work_center, known=found is not None)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, {
            "code": "login_throttled",
            "message": f"too many failed sign-ins: try again in {math.ceil(wait)} s"},
            headers={"Retry-After": str(math.ceil(wait))})
    stored = str(found["pin_hash"]) if found is not None and found.get("pin_hash") else None
    if found is None:
        throttle.failed(badge, work_center)
        await _audit(request, AuditKind.LOGIN_FAILED, badge, work_center, caller,
                     reason="unknown_badge", by=via)
        raise _refuse("unknown_badge", "unknown or disabled badge")
    if stored is None and service.settings.security.require_pin:
        await _audit(request, AuditKind.LOGIN_FAILED, badge, work_center, caller,
                     reason="pin_not_set", by=via)
        raise _refuse("pin_not_set", f"operator {badge} has no PIN and this plant requires one",
                      status.HTTP_403_FORBIDDEN, badge=badge)
    if stored is not None and pin is None:
        raise _refuse("pin_required", f"badge {badge} signs in with its PIN", badge=badge)
    # scrypt is deliberately slow: keep it off the event loop.
    if pin is not None and not (stored is not None
                                and await asyncio.to_thread(check_pin, pin, stored)):
        throttle.failed(badge, work_center)
        await _audit(request, AuditKind.LOGIN_FAILED, badge, work_center, caller,
                     reason="wrong_pin", by=via)
        raise _refuse("wrong_pin", "wrong PIN")
    allowed = list(found.get("work_centers") or [])  # type: ignore[call-overload]
    if allowed and work_center not in allowed:
        raise _refuse("not_qualified", f"operator {badge} is not qualified for {work_center}",
                      status.HTTP_403_FORBIDDEN, badge=badge, work_center=work_center)
    throttle.succeeded(badge)
    service.operators.login(work_center, badge)
    request.app.state.operator_names[badge] = str(found["name"])
    request.app.state.live.station_changed(work_center)
    await _audit(request, AuditKind.LOGIN, badge, work_center, caller, by=via)
