"""The scrap window across restarts, the retention of delivered webhooks, who acknowledged at a
station, and the order-late check over open orders only: real dispatcher, real SQLite files,
real restarts of the service, a real HTTP API; the alert clock is the test's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mes_edge.api.app import create_api
from mes_edge.app.history import purge_webhooks
from mes_edge.app.service import EdgeService
from mes_edge.config import Settings, parse_settings
from mes_edge.domain import MachineState, OperationAction, OperationSpec, OrderReceived, OrderSpec
from mes_edge.store import Store
from mes_edge.store import alerts as alert_store
from mes_edge.store.tables import alert_webhooks
from mes_edge.store.tokens import Role, create_token, upsert_operator
from tests.api.conftest import plant
from tests.factory import T0, command, machine_count, machine_state, order, start


async def eventually(check: Any, seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def scrap_plant(url: str, **extra: Any) -> Settings:
    return parse_settings(plant(url, alerts={
        "evaluate_every_s": 300,
        "thresholds": {"scrap_rate_pct": 10, "scrap_min_quantity": 20,
                       "scrap_window_minutes": 60, "down_minutes": 5,
                       "stalled_minutes": 600, "late_enabled": False}}, **extra))


async def started(settings: Settings, now: datetime, **kw: Any) -> EdgeService:
    service = EdgeService(settings, **kw)
    await service.start()
    assert service.alerts is not None
    service.alerts.clock = lambda: now
    return service


def kinds(service: EdgeService) -> list[tuple[str, int]]:
    assert service.alerts is not None
    return [(a["kind"], a["id"]) for a in service.alerts.current()]


async def test_the_scrap_window_is_restored_from_the_event_log_after_a_restart(
        sqlite_url: str) -> None:
    settings = scrap_plant(sqlite_url)
    # Before the restart: 15 parts, 6 of them scrap (40 %) but under the minimum quantity.
    service = await started(settings, T0 + timedelta(seconds=30))
    try:
        d = service.dispatcher
        assert d is not None and service.alerts is not None
        for ev in (order("A1", qty=100), start("A1", "0010", "PRESS-01")):
            assert (await d.process(ev)).ok
        for i in range(3):
            assert (await d.process(machine_count("PRESS-01", good=3, scrap=2, at=i))).ok
        # An old count (2 h before): committed now, but outside the window whatever happens.
        assert (await d.process(machine_count("PRESS-01", good=0, scrap=50, at=-7200))).ok
        await service.alerts.evaluate()
        assert kinds(service) == []
        before = service.alerts.scrap.totals("PRESS-01", T0 - timedelta(minutes=59, seconds=30))
        assert before == (9, 6)
    finally:
        await service.stop()

    # A real restart on the same file: the window comes back from the event log, so 5 more
    # good parts make 20 with 6 scrap (30 %): raised with the counts from before the restart.
    service = await started(settings, T0 + timedelta(seconds=40))
    try:
        d, engine = service.dispatcher, service.alerts
        assert d is not None and engine is not None
        assert engine.scrap.totals("PRESS-01", T0 - timedelta(minutes=59, seconds=30)) == before
        assert (await d.process(machine_count("PRESS-01", good=5, at=35))).ok
        await engine.evaluate()
        scrap = [a for a in engine.current() if a["kind"] == "scrap_rate"]
        assert len(scrap) == 1, engine.current()
        assert (scrap[0]["details"]["good"], scrap[0]["details"]["scrap"]) == (14, 6)
        state_before = engine.current()
        totals_before = engine.scrap.totals("PRESS-01", T0 - timedelta(minutes=59, seconds=20))
    finally:
        await service.stop()

    # Restarted again: the same active alert (same row), the same window; judging again
    # neither clears it nor raises it twice.
    service = await started(settings, T0 + timedelta(seconds=40))
    try:
        engine = service.alerts
        assert engine is not None
        assert engine.current() == state_before
        assert engine.scrap.totals("PRESS-01",
                                   T0 - timedelta(minutes=59, seconds=20)) == totals_before
        await engine.evaluate()
        assert engine.current() == state_before
        rows = await alert_store.listing(service.store)  # type: ignore[arg-type]
        assert [(r["kind"], r["cleared_at"]) for r in rows] == [("scrap_rate", None)]
        # The window rolls on after a restart too: an hour later the alert clears.
        engine.clock = lambda: T0 + timedelta(minutes=61)
        await engine.evaluate()
        assert engine.current() == []
    finally:
        await service.stop()


async def test_the_restored_window_counts_nothing_twice_and_reads_only_recent_commits(
        db_url: str) -> None:
    """Counts told by the dispatcher while the log is read are merged by seq; the query is
    bounded by commit time (SQLite and PostgreSQL)."""
    settings = scrap_plant(db_url)
    service = await started(settings, T0 + timedelta(seconds=30))
    try:
        d, engine = service.dispatcher, service.alerts
        assert d is not None and engine is not None and service.store is not None
        for ev in (order("B1", qty=100), start("B1", "0010", "PRESS-01")):
            assert (await d.process(ev)).ok
        for i in range(4):
            assert (await d.process(machine_count("PRESS-01", good=4, scrap=1, at=i))).ok
        since = T0 - timedelta(minutes=30)
        assert engine.scrap.totals("PRESS-01", since) == (16, 4)
        # Read again while every count is already in memory: nothing is added twice, and a
        # count told after the read (a seq already read) is not added either.
        assert await engine.restore_scrap_window() == 4
        assert engine.scrap.totals("PRESS-01", since) == (16, 4)
        recent = await alert_store.recent_counts(
            service.store, datetime.now(UTC) - timedelta(hours=1), ["PRESS-01", "CNC-02"], 10)
        assert [(r[1], r[3], r[4]) for r in recent] == [("PRESS-01", 4, 1)] * 4
        # Each work center's newest ones only, at most the window's length.
        newest = await alert_store.recent_counts(
            service.store, datetime.now(UTC) - timedelta(hours=1), ["PRESS-01"], 2)
        assert [r[0] for r in newest] == [r[0] for r in recent[-2:]]
        seq, wc, ts, good, scrap = recent[-1]
        engine.scrap.add(wc, ts, good, scrap, seq)
        assert engine.scrap.totals("PRESS-01", since) == (16, 4)
        # Bounded by commit time: nothing was committed in the future.
        future = datetime.now(UTC) + timedelta(minutes=1)
        assert await alert_store.recent_counts(service.store, future, ["PRESS-01"], 10) == []
    finally:
        await service.stop()


async def _webhook_rows(store: Store) -> list[tuple[str, str, bool]]:
    rows = await store.rows(alert_webhooks, order_by=[alert_webhooks.c.id])
    return [(r.message_id, r.destination, r.delivered_at is not None) for r in rows]


async def test_delivered_webhooks_are_purged_after_the_kept_days_by_the_history_task(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = parse_settings(plant(db_url, alerts={"webhook_keep_days": 2},
                                    history={"check_every_s": 0.1}))
    assert parse_settings(plant(db_url)).alerts.webhook_keep_days == 7.0  # the default
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=3), now - timedelta(hours=2)
    # Rows as the outbox writes them: two destinations, delivered long ago (purged), delivered
    # recently (kept), and undelivered ones written long ago (never purged).
    rows = [("old-a1", "a", old, old), ("old-a2", "a", old, old), ("new-a", "a", recent, recent),
            ("stuck-a", "a", old - timedelta(days=30), None), ("old-b1", "b", old, old),
            ("old-b2", "b", old, old), ("old-b3", "b", old, old), ("stuck-b", "b", old, None)]
    store = await Store.open(db_url)
    try:
        async with store.transaction() as conn:
            await conn.execute(alert_webhooks.insert(), [
                {"destination": d, "message_id": m, "payload": {"m": m}, "created_at": c,
                 "attempts": 1, "delivered_at": at} for m, d, c, at in rows])
    finally:
        await store.close()
    monkeypatch.setattr(alert_store, "PURGE_BATCH", 2)  # several batches per destination
    service = EdgeService(settings)
    await service.start()
    try:
        assert service.store is not None
        store = service.store

        async def purged() -> bool:
            return len(await _webhook_rows(store)) == 3

        await eventually(purged)
        assert await _webhook_rows(store) == [("new-a", "a", True), ("stuck-a", "a", False),
                                              ("stuck-b", "b", False)]
        # Undelivered rows are kept whatever their age; null keeps everything.
        assert await purge_webhooks(store, 0.0001, now + timedelta(days=365)) == 1
        assert await purge_webhooks(store, None, now + timedelta(days=365)) == 0
        assert [m for m, _, _ in await _webhook_rows(store)] == ["stuck-a", "stuck-b"]
    finally:
        await service.stop()


async def test_a_station_acknowledgement_records_the_operator_signed_in_there(
        sqlite_url: str) -> None:
    settings = scrap_plant(sqlite_url)
    service = await started(settings, T0 + timedelta(minutes=10), api_factory=create_api)
    try:
        d, engine, store = service.dispatcher, service.alerts, service.store
        assert d is not None and engine is not None and store is not None
        for ev in (order("C1", qty=100), start("C1", "0010", "PRESS-01"),
                   machine_state("PRESS-01", MachineState.DOWN, at=0)):
            assert (await d.process(ev)).ok
        for i in range(4):
            assert (await d.process(machine_count("PRESS-01", good=5, scrap=5, at=i))).ok
        await engine.evaluate()
        ids = {a["kind"]: a["id"] for a in engine.current("PRESS-01")}
        assert set(ids) == {"scrap_rate", "machine_down", "reason_missing"}
        await upsert_operator(store, "B-17", "Li Wei", "4711", ["PRESS-01"])
        tablet = await create_token(store, Role.OPERATOR, "press-tablet", ["PRESS-01"])
        sup = await create_token(store, Role.SUPERVISOR, "sue")
        base = f"http://127.0.0.1:{settings.api.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10, headers={
                "Authorization": f"Bearer {tablet}"}) as http:
            r = await http.post("/api/v1/stations/PRESS-01/login",
                                json={"badge": "B-17", "pin": "4711"})
            assert r.status_code == 200, r.text
            r = await http.post(f"/api/v1/alerts/{ids['machine_down']}/ack")
            assert r.status_code == 200, r.text
            assert (r.json()["acked_by"], r.json()["acked_station"]) == ("B-17", "PRESS-01")
            # Nobody signed in: like the station's other writes, the token's name.
            assert (await http.post("/api/v1/stations/PRESS-01/logout")).status_code == 200
            r = await http.post(f"/api/v1/alerts/{ids['reason_missing']}/ack")
            assert r.status_code == 200, r.text
            assert (r.json()["acked_by"], r.json()["acked_station"]) == ("press-tablet",
                                                                         "PRESS-01")
            # A supervisor (the board) is recorded by name, at no station, even while an
            # operator is signed in at the alert's work center.
            await http.post("/api/v1/stations/PRESS-01/login",
                            json={"badge": "B-17", "pin": "4711"})
            r = await http.post(f"/api/v1/alerts/{ids['scrap_rate']}/ack",
                                headers={"Authorization": f"Bearer {sup}"})
            assert r.status_code == 200, r.text
            assert (r.json()["acked_by"], r.json()["acked_station"]) == ("sue", None)
            listed = (await http.get("/api/v1/alerts?work_center=PRESS-01")).json()
        assert {(a["kind"], a["acked_by"], a["acked_station"]) for a in listed} == {
            ("machine_down", "B-17", "PRESS-01"), ("reason_missing", "press-tablet", "PRESS-01"),
            ("scrap_rate", "sue", None)}
        # The pages show a name: a badge acknowledged at a station reads as the operator's.
        assert {a["kind"]: a["acked_by_name"] for a in listed} == {
            "machine_down": "Li Wei", "reason_missing": "press-tablet", "scrap_rate": "sue"}
    finally:
        await service.stop()
    # Durable: the database has it after a restart.
    service = await started(settings, T0 + timedelta(minutes=10))
    try:
        row = await alert_store.get(service.store, ids["machine_down"])  # type: ignore[arg-type]
        assert row is not None and (row["acked_by"], row["acked_station"]) == ("B-17",
                                                                               "PRESS-01")
    finally:
        await service.stop()


def _order(order_id: str, due: datetime | None) -> OrderReceived:
    spec = OrderSpec(order_id=order_id, revision=1, material="M", quantity=10, due=due,
                     operations=(OperationSpec(op_no="0010", work_center="PRESS-01"),
                                 OperationSpec(op_no="0020", work_center="CNC-02")))
    return OrderReceived(event_id=f"o-{order_id}", spec=spec, received_ts=T0)


async def test_order_late_is_judged_over_the_open_orders_of_the_wip_index(
        sqlite_url: str) -> None:
    doc = plant(sqlite_url, alerts={"thresholds": {"stalled_minutes": 600}})
    doc["work_centers"][0]["ideal_cycle_s"] = 60.0
    doc["work_centers"][1]["ideal_cycle_s"] = 60.0
    service = await started(parse_settings(doc), T0 + timedelta(minutes=5))
    try:
        d, engine = service.dispatcher, service.alerts
        assert d is not None and engine is not None
        due = T0 + timedelta(minutes=10)
        for ev in (_order("LATE", due), _order("EARLY", T0 + timedelta(days=2)),
                   _order("NODUE", None), _order("DONE", due),
                   start("DONE", "0010", "PRESS-01"), machine_count("PRESS-01", good=10, at=1),
                   command(OperationAction.COMPLETE, "PRESS-01", "DONE", "0010", at=2),
                   start("DONE", "0020", "CNC-02", at=3), machine_count("CNC-02", good=10, at=4),
                   command(OperationAction.COMPLETE, "CNC-02", "DONE", "0020", at=5),
                   start("LATE", "0010", "PRESS-01", at=6)):
            assert (await d.process(ev)).ok, ev
        state = d.state
        done = state.order("DONE")
        assert done is not None and done.status.value == "completed"
        # Only open orders with an unfinished operation and a due date, earliest due first.
        assert state.index.open_orders_with_due() == ["LATE", "EARLY"]
        await engine.evaluate()  # LATE: 2 x 10 parts x 60 s left at 06:05, due 06:10
        assert [(a["kind"], a["subject"], a["severity"]) for a in engine.current()] == [
            ("order_late", "LATE", "warning")]
        # LATE finished: the index forgets it, and so does the check.
        for ev in (machine_count("PRESS-01", good=10, at=7),
                   command(OperationAction.COMPLETE, "PRESS-01", "LATE", "0010", at=8),
                   start("LATE", "0020", "CNC-02", at=9), machine_count("CNC-02", good=10, at=10),
                   command(OperationAction.COMPLETE, "CNC-02", "LATE", "0020", at=11)):
            assert (await d.process(ev)).ok, ev
        assert state.index.open_orders_with_due() == ["EARLY"]
        await engine.evaluate()
        assert engine.current() == []
    finally:
        await service.stop()
