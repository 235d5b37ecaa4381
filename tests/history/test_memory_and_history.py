"""Issue 14: memory bounded by what is active, and history that does not slow the present.

Every test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from mes_edge.dispatcher import Dispatcher, Status, replay
from mes_edge.dispatcher.replay import take_snapshot, verify
from mes_edge.domain import (
    OperationAction,
    OrderAction,
    OrderCommand,
    OrderStatus,
    is_single_use_id,
    single_use_id,
)
from mes_edge.store import Store, codec, history, reads
from mes_edge.store.tables import events, rejected_events, wip_snapshots, work_orders
from tests import factory as f

pytestmark = pytest.mark.timeout(120)


async def open_dispatcher(url: str, **kw: object) -> tuple[Store, Dispatcher]:
    store = await Store.open(url)
    d = Dispatcher(store, f.rules(), **kw)  # type: ignore[arg-type]
    await d.start()
    return store, d


def cancel(order_id: str) -> OrderCommand:
    return OrderCommand(event_id=f.eid("cancel"), order_id=order_id, action=OrderAction.CANCEL,
                        reason="not needed", source="erp", actor="erp", received_ts=f.T0)


async def test_finished_orders_leave_memory_and_come_back_when_named(db_url: str) -> None:
    store, d = await open_dispatcher(db_url, evict_finished_after_s=60)
    try:
        await d.process(f.order("1001", qty=10))
        await d.process(f.order("1002", qty=10))
        assert (await d.process(cancel("1001"))).status == Status.ACCEPTED
        assert d.state.index.status_counts("PRESS-01") == {"ready": 1}  # 1002 only
        # Cancelled at T0 (long ago): it leaves memory, its history stays in the database.
        assert d.evict_finished() == 1
        assert d.state.order("1001") is None and d.state.order("1002") is not None
        [stored], _ = await store.load_orders(["1001"])
        assert stored.status == OrderStatus.CANCELLED
        # the read model the API serves an evicted order from
        served = await reads.work_order(store, "1001")
        assert served is not None and served.status == OrderStatus.CANCELLED
        assert await reads.work_order(store, "nope") is None
        # The ERP sends the same revision again: the domain must see the cancelled order, not
        # take it for a new one.
        again = await d.process(f.order("1001", qty=10))
        assert again.status == Status.UNCHANGED
        assert d.state.order("1001").status == OrderStatus.CANCELLED  # type: ignore[union-attr]
        # A start on it is refused for what it is (cancelled), not as unknown.
        refused = await d.process(f.start("1001", "0010", "PRESS-01"))
        assert refused.status == Status.REJECTED and refused.code != "unknown_order"
    finally:
        await d.stop()
        await store.close()
    # A restart loads only what is active; verify still compares every order.
    store, d = await open_dispatcher(db_url, evict_finished_after_s=60)
    try:
        assert d.state.order("1001") is None and d.state.order("1002") is not None
        report = await verify(store, f.rules())
        assert report.equal, report.differences
        # still read back when named after the restart
        assert (await d.process(f.order("1001", qty=10))).status == Status.UNCHANGED
        report = await verify(store, f.rules())
        assert report.equal, report.differences
    finally:
        await d.stop()
        await store.close()


async def test_dedup_beyond_the_window_asks_the_database(db_url: str) -> None:
    store, d = await open_dispatcher(db_url, dedup_window_s=0)
    try:
        await d.process(f.order("1001"))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        first = await d.process(f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3"))
        assert first.status == Status.ACCEPTED
        assert "plc1/good/0/3" not in d._recent  # the window is 0 s: nothing remembered
        again = await d.process(f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3"))
        assert again.status == Status.DUPLICATE
        assert d.state.order("1001").operations[0].done.good == 3  # type: ignore[union-attr]
        refused = await d.process(f.start("nope", "0010", "PRESS-01", event_id="tap-1"))
        assert refused.status == Status.REJECTED
        repeat = await d.process(f.start("nope", "0010", "PRESS-01", event_id="tap-1"))
        assert repeat.status == Status.REJECTED and repeat.repeated
        assert repeat.reason == refused.reason
    finally:
        await d.stop()
        await store.close()

async def test_single_use_ids_are_not_remembered_every_other_id_is(db_url: str) -> None:
    """An id the service made for a write without one (`http:<uuid4>`) can never come again:
    the dedup memory keeps only ids a client or device can resend."""
    made = single_use_id()
    assert is_single_use_id(made) and made.startswith("http:")
    # What clients and devices send is never taken for one: keyed API writes, scans, counts.
    for other in ("http:report:" + made[5:], "http:report:key-1", "scan:PRESS-01:17",
                  "plc1/good/0/3", "http:" + made[5:].upper(), made + "x", "erp-pull:1001:1"):
        assert not is_single_use_id(other), other
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001"))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        made_count = f.machine_count("PRESS-01", good=2, event_id=made)
        assert (await d.process(made_count)).status == Status.ACCEPTED
        count = f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3")
        assert (await d.process(count)).status == Status.ACCEPTED
        assert "plc1/good/0/3" in d._recent and made not in d._recent
        assert (await d.process(count)).status == Status.DUPLICATE
        # A resend of a single-use id cannot come from a client; forced here, the unique event
        # id of the log refuses it (recorded with the reason), and nothing is counted twice.
        again = await d.process(made_count)
        assert again.status == Status.REJECTED and again.code == "unstorable"
        assert d.state.order("1001").operations[0].done.good == 5  # type: ignore[union-attr]
    finally:
        await d.stop()
        await store.close()



async def test_snapshot_retention_export_and_verify(db_url: str, tmp_path: Path) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=50))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        for i in range(1, 6):
            await d.process(f.machine_count("PRESS-01", good=1, value=i))
        await d.process(f.start("missing", "0010", "PRESS-01"))  # a refusal
        snap = await take_snapshot(store, f.rules())
        assert snap == d.last_seq == 7
        assert await take_snapshot(store, f.rules()) is None  # nothing new
        await d.process(f.start("1001", "0020", "ASSY-03"))
        await d.process(f.operator_report("ASSY-03", "1001", "0020", good=4))
        await d.process(f.command(OperationAction.PAUSE, "ASSY-03"))
        later = datetime.now(UTC) + timedelta(days=3)
        export = tmp_path / "history"
        purged, files = await history.purge_events(
            store, keep_days=1, keep_days_by_kind={}, export_dir=export, now=later)
        assert purged == 7  # only what the snapshot covers; the 3 after it stay
        day = datetime.now(UTC).date().isoformat()
        assert files == [str(export / f"events-{day}.jsonl.gz")]
        rows = history.read_export(Path(files[0]))
        assert [r["seq"] for r in rows] == list(range(1, 8))
        assert rows[0]["type"] == "order_received" and rows[0]["event_id"] and rows[0]["payload"]
        async with store.engine.connect() as conn:
            left = [r[0] for r in await conn.execute(select(events.c.seq).order_by(events.c.seq))]
        assert left == [8, 9, 10]
        gone, more = await history.purge_rejections(store, keep_days=1, export_dir=export,
                                                    now=later)
        assert gone == 1 and more == [str(export / f"rejections-{day}.jsonl.gz")]
        assert history.read_export(Path(more[0]))[0]["reason_code"]
        async with store.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(rejected_events)) == 0
        # verify: snapshot + the 3 events after it equals the stored WIP
        report = await verify(store, f.rules())
        assert report.equal, report.differences
        assert (report.snapshot_seq, report.events) == (7, 3)
        live = d.state
        last = d.last_seq
    finally:
        await d.stop()
        await store.close()
    # Restart: same state, and numbers keep going up (high-water marks), never reused.
    store, d = await open_dispatcher(db_url)
    try:
        assert d.state.order("1001") == live.order("1001")
        assert d.last_seq == last
        ok = await d.process(f.machine_count("PRESS-01", good=1, value=6))
        assert ok.status == Status.ACCEPTED, ok
        assert ok.seq == last + 1
        # a second export of the same day appends a gzip member to the same file
        await take_snapshot(store, f.rules())
        purged, files = await history.purge_events(
            store, keep_days=1, keep_days_by_kind={}, export_dir=export,
            now=datetime.now(UTC) + timedelta(days=3))
        assert purged >= 3
        assert len(history.read_export(Path(files[0]))) == 7 + purged
        assert (await verify(store, f.rules())).equal
    finally:
        await d.stop()
        await store.close()


async def test_retention_by_kind_keeps_other_kinds(db_url: str, tmp_path: Path) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=50))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        for i in range(1, 4):
            await d.process(f.machine_count("PRESS-01", good=1, value=i))
        await take_snapshot(store, f.rules())
        purged, _ = await history.purge_events(
            store, keep_days=None, keep_days_by_kind={"quantity_reported": 1},
            export_dir=tmp_path, now=datetime.now(UTC) + timedelta(days=2))
        assert purged == 3
        async with store.engine.connect() as conn:
            kinds = {r[0] for r in await conn.execute(select(events.c.type))}
        assert "quantity_reported" not in kinds and "order_received" in kinds
        assert (await verify(store, f.rules())).equal
    finally:
        await d.stop()
        await store.close()


def close(order_id: str) -> OrderCommand:
    return OrderCommand(event_id=f.eid("close"), order_id=order_id, action=OrderAction.CLOSE,
                        received_ts=f.T0)


async def make_and_complete(d: Dispatcher, order_id: str) -> None:
    """A one-operation order of 5 on ASSY-03, made and completed (not closed)."""
    await d.process(f.order(order_id, qty=5, wcs=("ASSY-03",)))
    await d.process(f.start(order_id, "0010", "ASSY-03"))
    await d.process(f.operator_report("ASSY-03", order_id, "0010", good=5))
    await d.process(f.command(OperationAction.COMPLETE, "ASSY-03"))


async def test_snapshots_leave_closed_orders_out_and_replay_reads_them_back(
        db_url: str) -> None:
    """A snapshot holds what is active, not all history: closed orders (final) and their
    confirmations stay in the database only. An event after the snapshot that names one (the
    ERP sending it again, a second close) reads it back on replay; verify stays equal."""
    store, d = await open_dispatcher(db_url)
    try:
        for n in range(3):
            oid = f"C{n}"
            await make_and_complete(d, oid)
            if n < 2:  # C2 stays completed, not closed
                assert (await d.process(close(oid))).status == Status.ACCEPTED
        await d.process(f.order("OPEN", qty=50))
        snap = await take_snapshot(store, f.rules())
        async with store.engine.connect() as conn:
            row = (await conn.execute(select(wip_snapshots))).one()
        assert row.seq == snap and row.orders == 2
        assert {o["order_id"] for o in row.state["orders"]} == {"C2", "OPEN"}
        assert {c["order_id"] for c in row.state["confirmations"]} == {"C2"}
        # After the snapshot: the ERP sends C0 again (same revision: no change), C1 is closed
        # again (no change), C2 is closed, a new order comes.
        again = f.order("C0", qty=5, wcs=("ASSY-03",))
        no_change = (Status.ACCEPTED, Status.UNCHANGED)
        assert (await d.process(again)).status in no_change
        assert (await d.process(close("C1"))).status in no_change
        assert (await d.process(close("C2"))).status == Status.ACCEPTED
        await d.process(f.order("NEW", qty=5))
        report = await verify(store, f.rules())
        assert report.equal, report.differences
        assert report.snapshot_seq == snap and report.events == d.last_seq - snap >= 2
        # The next snapshot leaves C2 out too; verify from it is still equal.
        await take_snapshot(store, f.rules())
        async with store.engine.connect() as conn:
            newest = (await conn.execute(select(wip_snapshots).order_by(
                wip_snapshots.c.seq.desc()).limit(1))).one()
        assert {o["order_id"] for o in newest.state["orders"]} == {"OPEN", "NEW"}
        assert (await verify(store, f.rules())).equal
    finally:
        await d.stop()
        await store.close()


async def test_a_snapshot_replay_forgets_orders_as_they_close(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's hourly snapshot replays the events since the last one: orders closed on
    the way leave the replay's state at once (read back from the database if a later event
    names one), so it holds what is active however many orders went through."""
    monkeypatch.setattr(replay, "PAGE", 3)  # several pages: a closed order read back
    store, d = await open_dispatcher(db_url)
    try:
        for n in range(4):
            oid = f"K{n}"
            await make_and_complete(d, oid)
            await d.process(close(oid))
        # Named again after they closed, pages later: no change, but the replay must know them.
        await d.process(close("K0"))
        await d.process(f.order("K1", qty=5, wcs=("ASSY-03",)))
        await d.process(f.order("OPEN", qty=50))
        state, count, _, _ = await replay.rebuild(store, f.rules(), forget_closed=True)
        assert count == d.last_seq and set(state.order_map) == {"OPEN"}
        assert all(c.order_id == "OPEN" for c in state.conf_map.values())
        snap = await take_snapshot(store, f.rules())
        assert snap == d.last_seq
        report = await verify(store, f.rules())  # verify itself replays every order
        assert report.equal, report.differences
    finally:
        await d.stop()
        await store.close()


async def test_a_finished_order_without_a_change_time_is_loaded_not_lost(db_url: str) -> None:
    """A row with no updated_at (written by hand or by an old tool) is neither old nor new:
    the load keeps it in memory instead of dropping it without counting it as left out."""
    store, d = await open_dispatcher(db_url, evict_finished_after_s=60)
    try:
        await d.process(f.order("1001", qty=10))
        assert (await d.process(cancel("1001"))).status == Status.ACCEPTED
    finally:
        await d.stop()
    try:
        async with store.transaction() as conn:
            await conn.execute(update(work_orders).where(work_orders.c.order_id == "1001")
                               .values(updated_at=None))
        loaded = await store.load(finished_before=datetime.now(UTC) + timedelta(days=1))
        assert loaded.state.order("1001") is not None and loaded.left_out == 0
    finally:
        await store.close()


async def test_verify_catches_a_tampered_order_row(db_url: str) -> None:
    """verify proves something only if it can fail: a stored count that the event log does not
    give is reported, with a snapshot in between or not."""
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=10))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        await d.process(f.machine_count("PRESS-01", good=3))
        assert await take_snapshot(store, f.rules()) is not None
        await d.process(f.machine_count("PRESS-01", good=2))
    finally:
        await d.stop()
    try:
        assert (await verify(store, f.rules())).equal
        [order], _ = await store.load_orders(["1001"])
        op = order.operations[0]
        forged = order.with_op(0, op.with_(done=dataclasses.replace(op.done, good=6)))
        async with store.transaction() as conn:
            await conn.execute(update(work_orders).where(work_orders.c.order_id == "1001")
                               .values(state=codec.order_to_json(forged)))
        report = await verify(store, f.rules())
        assert not report.equal and report.snapshot_seq > 0
        assert any(line.startswith("order 1001:") for line in report.differences)
    finally:
        await store.close()
