"""Issue 14: the board and the station queue are paged and filtered on the server, from the
dispatcher's indexes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import Running

pytestmark = pytest.mark.timeout(120)

NOW = datetime.now(UTC)


def _order(wc: str, due: datetime, qty: int = 10) -> dict[str, object]:
    return {"revision": 1, "material": "M-1", "quantity": qty, "due": due.isoformat(),
            "operations": [{"op_no": "0010", "work_center": wc}]}


async def _put_orders(running: Running) -> None:
    async with running.client("erp") as c:
        # 12 at ASSY-03 (4 overdue), 6 at CNC-02 (none overdue)
        for i in range(12):
            due = NOW + timedelta(days=i - 4 if i < 4 else i)
            r = await c.put(f"/api/v1/work-orders/A-{i:03d}", json=_order("ASSY-03", due))
            assert r.status_code in (200, 201), r.text
        for i in range(6):
            r = await c.put(f"/api/v1/work-orders/C-{i:03d}",
                            json=_order("CNC-02", NOW + timedelta(days=30 + i)))
            assert r.status_code in (200, 201), r.text


async def test_wip_is_paged_and_filtered_on_the_server(running: Running) -> None:
    await _put_orders(running)
    async with running.client("assy") as t:
        r = await t.post("/api/v1/stations/ASSY-03/start",
                         json={"order_id": "A-010", "op_no": "0010"})
        assert r.status_code == 200, r.text
    async with running.client("supervisor") as c:
        page = (await c.get("/api/v1/board/wip", params={"limit": 5})).json()
        assert page["total"] == 18 and len(page["items"]) == 5
        assert [i["order_id"] for i in page["items"]] == [f"A-{i:03d}" for i in range(5)]
        nxt = (await c.get("/api/v1/board/wip", params={"limit": 5, "offset": 15})).json()
        assert [i["order_id"] for i in nxt["items"]] == ["C-003", "C-004", "C-005"]
        cnc = (await c.get("/api/v1/board/wip", params={"work_center": "CNC-02"})).json()
        assert cnc["total"] == 6 and {i["work_center"] for i in cnc["items"]} == {"CNC-02"}
        run = (await c.get("/api/v1/board/wip", params={"status": "running"})).json()
        assert [(i["order_id"], i["status"]) for i in run["items"]] == [("A-010", "running")]
        late = (await c.get("/api/v1/board/wip", params={"due_before": NOW.isoformat()})).json()
        assert late["total"] == 4
        assert [i["order_id"] for i in late["items"]] == ["A-000", "A-001", "A-002", "A-003"]
        by_due = (await c.get("/api/v1/board/wip", params={"sort": "due", "limit": 3,
                                                           "work_center": "ASSY-03"})).json()
        assert [i["order_id"] for i in by_due["items"]] == ["A-000", "A-001", "A-002"]
        bad = await c.get("/api/v1/board/wip", params={"status": "bogus"})
        assert bad.status_code == 422
        board = (await c.get("/api/v1/board", params={"wip_limit": 4})).json()
        assert board["wip_total"] == 18 and len(board["wip"]) == 4
        tiles = {t["work_center"]: t for t in board["work_centers"]}
        assert tiles["ASSY-03"]["counts"] == {"ready": 11, "running": 1}
        assert tiles["ASSY-03"]["queue_length"] == 11 and tiles["ASSY-03"]["late"] == 4
        assert tiles["CNC-02"]["late"] == 0 and tiles["CNC-02"]["queue_length"] == 6
        assert board["late_total"] == 4
        assert [a["order_id"] for a in board["late"]] == ["A-000", "A-001", "A-002", "A-003"]


async def test_station_queue_is_the_next_n_with_paging(running: Running) -> None:
    await _put_orders(running)
    async with running.client("assy") as t:
        r = await t.post("/api/v1/stations/ASSY-03/start",
                         json={"order_id": "A-010", "op_no": "0010"})
        assert r.status_code == 200, r.text
        first = await t.get("/api/v1/stations/ASSY-03/queue", params={"limit": 3})
        assert first.headers["X-Total-Count"] == "12"
        # running first, then ready by due date
        assert [i["order_id"] for i in first.json()] == ["A-010", "A-000", "A-001"]
        rest = await t.get("/api/v1/stations/ASSY-03/queue", params={"limit": 50, "offset": 3})
        assert [i["order_id"] for i in rest.json()] == [
            f"A-{i:03d}" for i in (2, 3, 4, 5, 6, 7, 8, 9, 11)]
        assert (await t.get("/api/v1/stations/ASSY-03/queue",
                            params={"limit": 0})).status_code == 422
