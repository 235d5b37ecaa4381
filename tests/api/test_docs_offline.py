"""/docs and /redoc work on a plant network with no internet: every asset they load is served by
the service itself (from the pinned fastapi-offline package), nothing from a CDN."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from tests.api.conftest import plant

pytestmark = pytest.mark.timeout(60)

# src/href attributes, and url(...) in inline CSS.
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture
async def base_url(sqlite_url: str) -> AsyncIterator[str]:
    settings = parse_settings(plant(sqlite_url))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        yield f"http://127.0.0.1:{settings.api.port}"
    finally:
        await service.stop()


def _references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCES.findall(html)]


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
    ("/redoc", {"redoc.standalone.js"}),
])
async def test_docs_page_loads_only_local_assets(base_url: str, page: str,
                                                 expected: set[str]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        refs = _references(html)
        assert refs, html
        for ref in refs:
            assert not re.match(r"^(?:[a-z]+:)?//", ref, re.I), f"{page} loads {ref} from elsewhere"
        # No absolute URL anywhere in the page (scripts build none either: no validator, fonts).
        assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
        assert {ref.rsplit("/", 1)[-1] for ref in refs} >= expected
        assert "/openapi.json" in html
        for ref in refs:
            asset = await client.get(urljoin(page, ref))
            assert asset.status_code == 200, ref
            assert len(asset.content) > 1000, ref  # the real bundle, not an empty file
        spec = await client.get("/openapi.json")
        assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")


async def test_asset_types_are_served_as_such(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        js = await client.get("/docs-assets/swagger-ui-bundle.js")
        css = await client.get("/docs-assets/swagger-ui.css")
        assert "javascript" in js.headers["content-type"]
        assert css.headers["content-type"].startswith("text/css")
        assert (await client.get("/docs-assets/no-such-file.js")).status_code == 404
