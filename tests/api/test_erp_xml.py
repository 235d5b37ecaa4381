"""B2MML V0700 through HTTP: orders in as ProcessOperationsSchedule, confirmations out as
ShowOperationsPerformance, both validated against the official XSD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from mes_edge.api.app import create_api
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import CountingSource, OperationAction, OperationCommand, QuantityReported
from mes_edge.erp import b2mml
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running, plant

FIXTURE = Path(__file__).parents[1] / "erp" / "fixtures" / "process_operations_schedule.xml"
NS = {"b": "http://www.mesa.org/xml/B2MML"}
XML = {"content-type": "application/xml"}


@pytest.fixture
async def xml_running(sqlite_url: str) -> AsyncIterator[Running]:
    doc = plant(sqlite_url, work_centers=[
        {"id": wc, "counting": "machine"} for wc in
        ("PRESS-01", "WELD-02", "PACK-01", "SAW-03", "DEBURR-01")])
    settings = parse_settings(doc)
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {"erp": await create_token(service.store, Role.ERP, "erp")}
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens)
    finally:
        await service.stop()


async def test_put_b2mml_order(xml_running: Running) -> None:
    raw = FIXTURE.read_bytes()
    async with xml_running.client("erp") as c:
        r = await c.put("/api/v1/work-orders/4711000123", content=raw, headers=XML)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["revision"] == 3
        assert [o["work_center"] for o in body["operations"]] == ["PRESS-01", "WELD-02",
                                                                  "PACK-01"]
        r = await c.put("/api/v1/work-orders/4711000123", content=raw, headers=XML)
        assert r.status_code == 200  # the same revision again: no change
        r = await c.put("/api/v1/work-orders/NOT-IN-DOC", content=raw, headers=XML)
        assert r.status_code == 422 and "exactly one OperationsRequest" in r.text
        bad = raw.replace(b"<Quantity>", b"<Quantitty>", 1).replace(b"</Quantity>",
                                                                     b"</Quantitty>", 1)
        r = await c.put("/api/v1/work-orders/4711000123", content=bad, headers=XML)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][1].startswith("/")
        r = await c.put("/api/v1/work-orders/4711000123", content=b"<not xml", headers=XML)
        assert r.status_code == 422


async def test_confirmation_feed_as_b2mml(xml_running: Running) -> None:
    raw = FIXTURE.read_bytes()
    d = xml_running.service.dispatcher
    assert d is not None
    async with xml_running.client("erp") as c:
        assert (await c.put("/api/v1/work-orders/4711000123", content=raw,
                            headers=XML)).status_code == 201
        await d.process(OperationCommand(event_id="s1", work_center="PRESS-01",
                                         action=OperationAction.START,
                                         order_id="4711000123", op_no="0010"))
        for i in range(3):
            await d.process(QuantityReported(event_id=f"q{i}", work_center="PRESS-01",
                                             by=CountingSource.MACHINE, good=5,
                                             scrap={"machine": 1}))
        await c.post("/api/v1/confirmations/flush")
        json_page = (await c.get("/api/v1/confirmations")).json()
        r = await c.get("/api/v1/confirmations", headers={"accept": "application/xml"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        if b2mml.schema_available():
            b2mml.validate_performance(r.content)  # raises if not valid against the XSD
        root = etree.fromstring(r.content)
        assert etree.QName(root).localname == "ShowOperationsPerformance"
        ids = root.xpath("//b:OperationsResponse/b:ID/text()", namespaces=NS)
        assert ids == [x["confirmation_id"] for x in json_page["confirmations"]]
        assert r.headers["x-next-cursor"] == str(json_page["next_cursor"])
