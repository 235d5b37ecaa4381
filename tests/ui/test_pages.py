"""The server-rendered pages over HTTP: tablet login by token cookie, redirects, languages."""

from __future__ import annotations

from tests.api.conftest import Running


async def test_login_sets_http_only_cookie_and_leads_to_the_station(running: Running) -> None:
    async with running.client() as c:
        r = await c.get("/station/PRESS-01")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/station/PRESS-01"
        r = await c.get("/login", params={"next": "/station/PRESS-01"})
        assert r.status_code == 200 and 'name="token"' in r.text
        r = await c.post("/login", data={"token": "mes_nope", "next": "/station/PRESS-01"})
        assert r.status_code == 401 and "not valid" in r.text
        assert "mes_token" not in r.headers.get("set-cookie", "")
        r = await c.post("/login", data={"token": running.tokens["operator"],
                                         "next": "//evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/station/PRESS-01"
        cookie = r.headers["set-cookie"]
        assert "mes_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        r = await c.get("/station/PRESS-01")  # the cookie now authenticates page and API
        assert r.status_code == 200 and "PRESS-01" in r.text and "/static/station.js" in r.text
        assert (await c.get("/api/v1/stations/PRESS-01")).status_code == 200
        assert (await c.get("/station/ASSY-03")).status_code == 403
        assert (await c.get("/board")).status_code == 403
        r = await c.post("/logout")
        assert r.status_code == 303
        assert (await c.get("/api/v1/stations/PRESS-01")).status_code == 401


async def test_erp_token_cannot_open_the_ui_and_board_needs_supervisor(running: Running) -> None:
    async with running.client() as c:
        r = await c.post("/login", data={"token": running.tokens["erp"]})
        assert r.status_code == 403 and "mes_token" not in r.headers.get("set-cookie", "")
        r = await c.post("/login", data={"token": running.tokens["supervisor"]})
        assert r.headers["location"] == "/board"
        r = await c.get("/board")
        assert r.status_code == 200 and "/static/board.js" in r.text
        assert (await c.get("/")).headers["location"] == "/board"


async def test_language_from_query_cookie_or_browser(running: Running) -> None:
    async with running.client() as c:
        r = await c.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert "连接此平板" in r.text and 'lang="zh-CN"' in r.text
        r = await c.get("/login", params={"lang": "en", "next": "/board"},
                        headers={"Accept-Language": "zh-CN"})
        assert "Connect this tablet" in r.text
        assert 'href="?lang=zh&amp;next=%2Fboard"' in r.text or "next=%2Fboard" in r.text
        r = await c.get("/login", headers={"Accept-Language": "zh-CN"})  # remembered choice
        assert "Connect this tablet" in r.text
        assert (await c.get("/static/app.css")).status_code == 200
