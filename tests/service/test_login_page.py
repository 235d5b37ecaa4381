"""The login page says what is true about the tablet's cookie (not "secure" over plain HTTP)."""

from __future__ import annotations

import re

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.api.i18n import STRINGS
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.store.tokens import Role, create_token
from tests.service.plant import base_plant

pytestmark = pytest.mark.timeout(60)


async def test_login_over_plain_http_says_the_token_is_not_encrypted(sqlite_url: str) -> None:
    doc = base_plant(sqlite_url)
    async with EdgeService(parse_settings(doc), api_factory=create_api) as service:
        assert service.store is not None
        token = await create_token(service.store, Role.SUPERVISOR, "sue")
        base = f"http://127.0.0.1:{doc['api']['port']}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for lang in ("en", "zh"):
                page = (await client.get(f"/login?lang={lang}")).text
                # The visible help paragraph (every string is also embedded as JSON for scripts).
                shown = re.search(r'<p class="muted">(.*?)</p>', page, re.S)
                assert shown is not None
                text = " ".join(shown.group(1).split())
                assert STRINGS[lang]["token_kept_http"] in text
                assert STRINGS[lang]["token_kept_https"] not in text
                assert "secure cookie" not in text.lower()
            r = await client.post("/login", data={"token": token, "next": ""})
            assert r.status_code == 303
            cookie = r.headers["set-cookie"].lower()
            # What the page promises: not readable by scripts; and indeed not Secure over HTTP.
            assert "httponly" in cookie and "secure" not in cookie.replace("samesite", "")
