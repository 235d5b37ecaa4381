"""Issue 12, the attacks of a plant network against the API, each against a real service:
cross-site writes with a tablet cookie, sign-in without the PIN, lockout of every badge by one
person, one token taking every live-update slot, expired and revoked tokens, the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.store.tokens import Role, create_token, upsert_operator
from tests.api.conftest import plant
from tests.servers import free_port

ASSY = "/api/v1/stations/ASSY-03"
ORDER = {"revision": 1, "quantity": 10, "unit": "pcs", "material": "M-1",
         "operations": [{"op_no": "0010", "work_center": "ASSY-03", "planned_qty": 10}]}
EVIL = "http://evil.example"


@asynccontextmanager
async def serve(url: str, **extra: Any) -> AsyncIterator[tuple[EdgeService, str, dict[str, str]]]:
    """A service with this plant file, its base URL and a token per role."""
    settings = parse_settings(plant(url, **extra))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {
        "erp": await create_token(service.store, Role.ERP, "erp"),
        "supervisor": await create_token(service.store, Role.SUPERVISOR, "sue"),
        "admin": await create_token(service.store, Role.ADMIN, "ada"),
        "press": await create_token(service.store, Role.OPERATOR, "press-tablet", ["PRESS-01"]),
        "assy": await create_token(service.store, Role.OPERATOR, "assy-tablet", ["ASSY-03"]),
    }
    scheme = "https" if settings.api.tls.enabled else "http"
    try:
        yield service, f"{scheme}://127.0.0.1:{settings.api.port}", tokens
    finally:
        await service.stop()


def bearer(base: str, token: str, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                             timeout=30, **kw)


async def order_status(base: str, tokens: dict[str, str], order_id: str) -> str:
    async with bearer(base, tokens["erp"]) as c:
        return str((await c.get(f"/api/v1/work-orders/{order_id}")).json()["status"])


async def test_cross_site_writes_with_the_tablet_cookie_are_refused(sqlite_url: str) -> None:
    async with serve(sqlite_url) as (_, base, tokens):
        async with bearer(base, tokens["erp"]) as c:
            assert (await c.put("/api/v1/work-orders/WO-1", json=ORDER)).status_code == 201
        # The supervisor's tablet signs in through the page: HttpOnly token + CSRF cookie.
        async with httpx.AsyncClient(base_url=base, timeout=30) as tab:
            r = await tab.post("/login", data={"token": tokens["supervisor"]},
                               headers={"Origin": base})
            assert r.status_code == 303, r.text
            csrf = tab.cookies.get("mes_csrf")
            assert csrf and tab.cookies.get("mes_token")
            # The reproduction of the issue: an empty form post from another origin.
            form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL}
            for path in ("/api/v1/work-orders/WO-1/cancel", "/api/v1/confirmations/flush"):
                r = await tab.post(path, content=b"", headers=form)
                assert r.status_code == 415, (path, r.text)
            # JSON from another origin (another app on the same host, other port), even with
            # the right token: refused by origin.
            r = await tab.post("/api/v1/work-orders/WO-1/cancel", json={},
                               headers={"Origin": "http://127.0.0.1:1880", "X-CSRF-Token": csrf})
            assert r.status_code == 403 and r.json()["detail"]["code"] == "csrf_origin"
            # Our origin without the CSRF header: refused.
            r = await tab.post("/api/v1/work-orders/WO-1/cancel", json={},
                               headers={"Origin": base})
            assert r.status_code == 403 and r.json()["detail"]["code"] == "csrf_token"
            assert await order_status(base, tokens, "WO-1") != "cancelled"
            # Our page, with the token it can read: accepted.
            r = await tab.post("/api/v1/work-orders/WO-1/hold", json={},
                               headers={"Origin": base, "X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text
        # Bearer clients are not affected (no Origin, no CSRF token).
        async with bearer(base, tokens["supervisor"]) as c:
            assert (await c.post("/api/v1/work-orders/WO-1/cancel")).status_code == 200
            assert (await c.post("/api/v1/work-orders/WO-1/cancel",
                                 headers={"Content-Type": "text/plain"})).status_code == 415
        # A sign-in form posted from another site is refused too (login CSRF).
        async with httpx.AsyncClient(base_url=base, timeout=30) as other:
            r = await other.post("/login", data={"token": tokens["supervisor"]},
                                 headers={"Origin": EVIL})
            assert r.status_code == 403


async def test_a_badge_with_a_pin_needs_the_pin(sqlite_url: str) -> None:
    async with serve(sqlite_url) as (service, base, tokens):
        assert service.store is not None
        await upsert_operator(service.store, "B-17", "Li Wei", "4711", ["ASSY-03"])
        async with bearer(base, tokens["assy"]) as c:
            r = await c.post(f"{ASSY}/login", json={"badge": "B-17"})
            assert r.status_code == 401 and r.json()["detail"]["code"] == "pin_required"
            r = await c.post(f"{ASSY}/scan", json={"code": "OP:B-17"})
            assert r.status_code == 401 and r.json()["detail"]["code"] == "pin_required"
            assert service.operators.of("ASSY-03") is None
            r = await c.post(f"{ASSY}/login", json={"badge": "B-17", "pin": "4711"})
            assert r.status_code == 200 and service.operators.of("ASSY-03") == "B-17"


async def test_where_the_plant_requires_pins_an_operator_without_one_cannot_sign_in(
        sqlite_url: str) -> None:
    async with serve(sqlite_url, security={"require_pin": True}) as (service, base, tokens):
        assert service.store is not None
        await upsert_operator(service.store, "B-5", "No Pin", None, [])
        async with bearer(base, tokens["assy"]) as c:
            for path, body in ((f"{ASSY}/login", {"badge": "B-5"}),
                               (f"{ASSY}/scan", {"code": "OP:B-5"})):
                r = await c.post(path, json=body)
                assert r.status_code == 403 and r.json()["detail"]["code"] == "pin_not_set"
        assert service.operators.of("ASSY-03") is None


async def test_one_person_guessing_pins_does_not_lock_out_the_others(sqlite_url: str) -> None:
    async with serve(sqlite_url) as (service, base, tokens):
        assert service.store is not None
        await upsert_operator(service.store, "B-1", "Ann", "1234", [])
        await upsert_operator(service.store, "B-2", "Bo", "5678", [])
        async with bearer(base, tokens["assy"]) as c:
            codes = [(await c.post(f"{ASSY}/login", json={"badge": "B-1", "pin": "0000"}))
                     .status_code for _ in range(6)]
            assert codes == [401] * 5 + [429]
            locked = await c.post(f"{ASSY}/login", json={"badge": "B-1", "pin": "1234"})
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
            # Unknown badges tried at this station are slowed down as well ...
            for i in range(5):
                await c.post(f"{ASSY}/login", json={"badge": f"X-{i}", "pin": "1"})
            assert (await c.post(f"{ASSY}/login", json={"badge": "X-9"})).status_code == 429
            # ... but another operator signs in at once at this very station.
            r = await c.post(f"{ASSY}/login", json={"badge": "B-2", "pin": "5678"})
            assert r.status_code == 200, r.text


async def test_tokens_expire_are_revoked_at_once_and_stay_at_their_work_center(
        sqlite_url: str) -> None:
    async with serve(sqlite_url) as (service, base, tokens):
        assert service.store is not None
        expired = await create_token(service.store, Role.SUPERVISOR, "brief",
                                     expires_in=timedelta(microseconds=1))
        async with bearer(base, expired) as c:
            r = await c.get("/api/v1/board")
            assert r.status_code == 401
        async with bearer(base, tokens["press"]) as c:
            r = await c.post(f"{ASSY}/start", json={})
            assert r.status_code == 403  # a token of PRESS-01 cannot act on ASSY-03
        async with bearer(base, tokens["admin"]) as adm:
            r = await adm.post("/api/v1/admin/tokens", json={
                "role": "supervisor", "name": "night shift", "expires_in_s": 3600})
            assert r.status_code == 201, r.text
            created = r.json()
            async with bearer(base, created["token"]) as night:
                assert (await night.get("/api/v1/board")).status_code == 200  # now cached
                r = await adm.post(f"/api/v1/admin/tokens/{created['token_id']}/revoke")
                assert r.status_code == 200 and r.json()["state"] == "revoked"
                assert (await night.get("/api/v1/board")).status_code == 401
            listed = {t["token_id"]: t for t in (await adm.get("/api/v1/admin/tokens")).json()}
            assert listed[created["token_id"]]["last_used_at"] is not None
            assert listed[created["token_id"]]["expires_at"] is not None
        async with bearer(base, tokens["supervisor"]) as sup:
            assert (await sup.get("/api/v1/admin/tokens")).status_code == 403


async def test_one_token_cannot_take_every_live_update_slot(sqlite_url: str) -> None:
    async with serve(sqlite_url, api={"host": "127.0.0.1", "port": free_port(),
                                      "sse_per_token": 2}) as (_, base, tokens):
        async with bearer(base, tokens["assy"]) as c, bearer(base, tokens["supervisor"]) as s:
            async with contextlib.AsyncExitStack() as open_streams:
                for _ in range(2):
                    resp = await open_streams.enter_async_context(
                        c.stream("GET", f"{ASSY}/events"))
                    assert resp.status_code == 200
                    # Keep the line iterator alive: closing it would end the stream.
                    lines = resp.aiter_lines()
                    open_streams.push_async_callback(lines.aclose)  # type: ignore[attr-defined]
                    await _hello(lines)
                r = await c.get(f"{ASSY}/events")
                assert r.status_code == 429 and "sse_per_token" in r.text
                async with s.stream("GET", "/api/v1/board/events") as board:
                    assert board.status_code == 200  # another token still gets its stream


async def _hello(lines: AsyncIterator[str]) -> None:
    async with asyncio.timeout(10):
        async for line in lines:
            if line.startswith("data:"):
                return


async def test_metrics_and_docs_can_require_a_token(sqlite_url: str) -> None:
    async with serve(sqlite_url, security={"protect_metrics": True, "protect_docs": True}) as (
            _, base, tokens):
        async with httpx.AsyncClient(base_url=base, timeout=30) as anon:
            for path in ("/metrics", "/docs", "/openapi.json"):
                assert (await anon.get(path)).status_code == 401, path
            assert (await anon.get("/healthz")).status_code == 200
        async with bearer(base, tokens["erp"]) as c:
            assert (await c.get("/metrics")).status_code == 200
            assert (await c.get("/openapi.json")).status_code == 200


async def test_audit_trail_records_logins_failures_and_overrides(db_url: str) -> None:
    async with serve(db_url) as (service, base, tokens):
        assert service.store is not None
        await upsert_operator(service.store, "B-3", "Cy", "2468", [])
        async with bearer(base, tokens["erp"]) as c:
            assert (await c.put("/api/v1/work-orders/WO-9", json=ORDER)).status_code == 201
        async with bearer(base, tokens["assy"]) as c:
            await c.post(f"{ASSY}/login", json={"badge": "B-3", "pin": "0000"})
            await c.post(f"{ASSY}/login", json={"badge": "B-3", "pin": "2468"})
        async with bearer(base, tokens["supervisor"]) as c:
            assert (await c.post("/api/v1/work-orders/WO-9/hold")).status_code == 200
            audit: Callable[..., Any] = c.get
            overrides = (await audit("/api/v1/audit", params={"kind": "override"})).json()
            assert overrides[0]["actor"] == "sue"
            assert overrides[0]["detail"]["path"] == "/api/v1/work-orders/WO-9/hold"
            failed = (await audit("/api/v1/audit", params={"kind": "login_failed"})).json()
            assert [(f["actor"], f["detail"]["reason"]) for f in failed] == [("B-3", "wrong_pin")]
            logins = (await audit("/api/v1/audit", params={"kind": "login", "actor": "B-3"}))
            assert [x["work_center"] for x in logins.json()] == ["ASSY-03"]
            writes = (await audit("/api/v1/audit", params={"kind": "write"})).json()
            assert {w["actor"] for w in writes} >= {"erp", "assy-tablet"}
            every = (await audit("/api/v1/audit", params={"limit": 2})).json()
            older = (await audit("/api/v1/audit",
                                 params={"before": every[-1]["id"], "limit": 100})).json()
            assert all(o["id"] < every[-1]["id"] for o in older) and older
        async with bearer(base, tokens["assy"]) as c:
            assert (await c.get("/api/v1/audit")).status_code == 403
        if db_url.startswith("postgresql"):
            with pytest.raises(Exception, match="append-only"):
                async with service.store.transaction() as conn:
                    await conn.execute(text("DELETE FROM audit_log"))
