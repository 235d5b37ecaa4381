"""The dispatcher and store suite; every test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from mes_edge.dispatcher import Dispatcher, Outcome, RawRejection, Status
from mes_edge.dispatcher.replay import compare_states, rebuild_state, verify
from mes_edge.domain import ConfirmationReversed, MachineState, OperationAction
from mes_edge.store import Store
from mes_edge.store.tables import confirmations, counter_checkpoints, events, rejected_events
from tests import factory as f

pytestmark = pytest.mark.timeout(120)


async def open_dispatcher(url: str, **kw: object) -> tuple[Store, Dispatcher]:
    store = await Store.open(url)
    d = Dispatcher(store, f.rules(), **kw)  # type: ignore[arg-type]
    await d.start()
    return store, d


async def test_accepted_events_commit_and_survive_a_restart(db_url: str) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        assert (await d.process(f.order("1001", qty=50))).status == Status.ACCEPTED
        assert (await d.process(f.start("1001", "0010", "PRESS-01"))).status == Status.ACCEPTED
        outcomes = [await d.process(f.machine_count("PRESS-01", good=2, value=2 * i))
                    for i in range(1, 8)]
        assert all(o.status == Status.ACCEPTED for o in outcomes)
        assert [o.seq for o in outcomes] == list(range(3, 10))
        live = d.state
    finally:
        await d.stop()
        await store.close()
    store, d = await open_dispatcher(db_url)
    try:
        op = d.state.order("1001").operations[0]  # type: ignore[union-attr]
        assert op.done.good == 14
        assert compare_states(live, d.state) == []
        assert d.checkpoints[("plc1", "PRESS-01/good")].value == 14
        assert d.last_seq == 9
        conf = await store.rows(confirmations, order_by=[confirmations.c.cursor])
        assert [c.yield_qty for c in conf] == [10]  # every_units=10
    finally:
        await d.stop()
        await store.close()


async def test_duplicate_event_ids_change_nothing(db_url: str) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001"))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        first = await d.process(f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3"))
        # the same id again, in the same batch and in later batches
        futures = [await d.submit(f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3"))
                   for _ in range(5)]
        again = await asyncio.gather(*futures)
        assert first.status == Status.ACCEPTED
        assert {o.status for o in again} == {Status.DUPLICATE}
        await d.stop()
        # and after a restart, when only the database knows the id
        await d.start()
        late = await d.process(f.machine_count("PRESS-01", good=3, event_id="plc1/good/0/3"))
        assert late.status == Status.DUPLICATE
        assert d.state.order("1001").operations[0].done.good == 3  # type: ignore[union-attr]
        assert len(await store.rows(events)) == 3
    finally:
        await d.stop()
        await store.close()


async def test_rejections_are_recorded_with_reason_and_change_nothing(db_url: str) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=10))
        before = (dict(d.state.order_map), dict(d.state.wc_map))
        bad = [
            f.start("1001", "0020", "ASSY-03"),  # sequence: nothing handed over yet
            f.operator_report("ASSY-03", "1001", "0020", good=1),  # not started
            f.start("9999", "0010", "PRESS-01"),  # unknown order
            f.start("1001", "0010", "NOPE-9"),  # unknown work center
        ]
        outcomes = [await d.process(e) for e in bad]
        raw = await d.process(RawRejection(source="mqtt", reason_code="malformed",
                                           reason="malformed JSON: expected value",
                                           payload={"raw": "{not json"}))
        assert [o.status for o in outcomes] == [Status.REJECTED] * 4
        assert [o.code for o in outcomes] == ["sequence", "bad_state",
                                              "unknown_order", "unknown_work_center"]
        assert raw.status == Status.REJECTED
        assert (dict(d.state.order_map), dict(d.state.wc_map)) == before
        rows = await store.rows(rejected_events, order_by=[rejected_events.c.id])
        assert [r.reason_code for r in rows] == ["sequence", "bad_state",
                                                 "unknown_order", "unknown_work_center",
                                                 "malformed"]
        assert "handed nothing over" in rows[0].reason
        assert len(await store.rows(events)) == 1
        # A machine count with nothing running is a fact: recorded, not refused.
        kept = await d.process(f.machine_count("PRESS-01", good=1))
        assert kept.status == Status.ACCEPTED
        assert d.state.wc_map["PRESS-01"].unassigned.good == 1
    finally:
        await d.stop()
        await store.close()


async def test_group_commit_keeps_each_event_atomic_and_in_order(db_url: str) -> None:
    store, d = await open_dispatcher(db_url, max_batch=500)
    try:
        await d.process(f.order("1001", qty=1000, wcs=("PRESS-01",)))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        items = []
        for i in range(1, 1201):
            items.append(f.machine_count("PRESS-01", good=1, value=i, event_id=f"c/{i}"))
        futures = [await d.submit(e) for e in items]
        outcomes = await asyncio.gather(*futures)
        accepted = [o for o in outcomes if o.status == Status.ACCEPTED]
        # 1000 planned + 5% tolerance = 1050; a machine count is a fact, so the 150 beyond are
        # recorded too, as over-production of the operation (flagged, never refused)
        assert len(accepted) == 1200
        op = d.state.order_map["1001"].operations[0]
        assert (op.done.good, op.over_produced) == (1200, 150)
        assert d.stats.batches < 1200 / 2  # they were grouped
        seqs = [o.seq or 0 for o in accepted]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        cp = (await store.rows(counter_checkpoints))[0]
        assert cp.value == 1200
        rows = await store.rows(events, order_by=[events.c.seq])
        assert [r.event_id for r in rows[2:]] == [f"c/{i}" for i in range(1, 1201)]
    finally:
        await d.stop()
        await store.close()


async def test_listeners_are_told_only_after_commit(db_url: str) -> None:
    store, d = await open_dispatcher(db_url)
    seen: list[tuple[int, bool]] = []
    checks: list[asyncio.Task[None]] = []

    async def check(seq: int) -> None:
        rows = await store.rows(events, events.c.seq == seq)
        seen.append((seq, len(rows) == 1))

    def listener(batch: object) -> None:
        for seq, _ in batch.events:  # type: ignore[attr-defined]
            checks.append(asyncio.create_task(check(seq)))

    unsubscribe = d.subscribe(listener)
    try:
        await d.process(f.order("1001"))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        await asyncio.gather(*checks)
        assert seen and all(ok for _, ok in seen)
        unsubscribe()
        await d.process(f.machine_count("PRESS-01"))
        assert len(seen) == 2
    finally:
        await d.stop()
        await store.close()


async def test_backpressure_and_drain_on_stop(db_url: str) -> None:
    store, d = await open_dispatcher(db_url, queue_size=8, max_batch=4)
    try:
        await d.process(f.order("1001", qty=10_000, wcs=("PRESS-01",)))
        await d.process(f.start("1001", "0010", "PRESS-01"))

        async def produce() -> list[asyncio.Future[Outcome]]:
            return [await d.submit(f.machine_count("PRESS-01", value=i)) for i in range(1, 301)]

        futures = await asyncio.wait_for(produce(), 60)
        assert d.queue_depth <= 8  # the producer waited instead of growing the queue
    finally:
        await d.stop()  # drains: every queued event is committed before it returns
    assert all(fut.done() and fut.result().status == Status.ACCEPTED for fut in futures)  # type: ignore[attr-defined]
    rows = await store.rows(events)
    assert len(rows) == 302
    await store.close()


async def test_replay_equals_live_state(db_url: str) -> None:
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=30))
        await d.process(f.order("1002", qty=20, wcs=("CNC-02", "ASSY-03")))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        await d.process(f.machine_state("PRESS-01", MachineState.RUNNING))
        for i in range(1, 26):
            await d.process(f.machine_count("PRESS-01", value=i, at=i))
        await d.process(f.machine_state("PRESS-01", MachineState.DOWN, at=30))
        await d.process(f.start("1001", "0020", "ASSY-03", at=31))
        await d.process(f.operator_report("ASSY-03", "1001", "0020", good=12,
                                          scrap={"dent": 2}, at=32))
        await d.process(f.command(OperationAction.COMPLETE, "PRESS-01", at=33))
        await d.process(f.start("1002", "0010", "CNC-02", at=34))
        live_rebuilt, count = await rebuild_state(store, f.rules())
        assert count == d.last_seq
        assert compare_states(d.state, live_rebuilt) == []
        assert d.state.conf_map == {}  # the service keeps no confirmation in memory
        stored = (await store.load()).state
        assert stored.conf_map and compare_states(stored, live_rebuilt) == []
        report = await verify(store, f.rules())
        assert report.equal, report.differences
        assert report.events == count
    finally:
        await d.stop()
        await store.close()


async def test_a_resend_of_a_refused_event_gets_the_same_refusal(db_url: str) -> None:
    """A tablet retrying a tap whose first attempt was refused sees that refusal again, not a
    "duplicate" success; the refusal is recorded once, also after a restart (from the store)."""
    store = await Store.open(db_url)
    d = Dispatcher(store, f.rules())
    await d.start()
    try:
        await d.process(f.order("R-1", qty=10, wcs=("ASSY-03",)))
        report = f.operator_report("ASSY-03", "R-1", "0010", good=3, event_id="tap-1")
        first = await d.process(report)  # the operation is not running: refused
        assert first.status == Status.REJECTED and first.code == "bad_state"
        again = await d.process(report)
        assert (again.status, again.code, again.reason) == (first.status, first.code,
                                                            first.reason)
        await d.stop()
        d = Dispatcher(store, f.rules())
        await d.start()  # the in-memory ids are gone: the verdict comes from the database
        third = await d.process(report)
        assert (third.status, third.code, third.reason) == (first.status, first.code,
                                                            first.reason)
        rows = await store.rows(rejected_events, rejected_events.c.event_id == "tap-1")
        assert len(rows) == 1
    finally:
        await d.stop()
        await store.close()


def _reverse(order_id: str, confirmation_id: str, at: int = 0) -> ConfirmationReversed:
    return ConfirmationReversed(event_id=f.eid("reverse"), order_id=order_id,
                                confirmation_id=confirmation_id, reason="miscount",
                                actor="sup", received_ts=f.T0 + timedelta(seconds=at))


async def test_reversals_read_confirmations_back_from_the_database(db_url: str) -> None:
    """The service keeps no confirmation in memory (a long-running order would carry one per
    report for months): a reversal reads back the one it names, also after a restart, and
    refuses a second reversal that only the database or the same batch knows of."""
    store, d = await open_dispatcher(db_url)
    try:
        await d.process(f.order("1001", qty=50))
        await d.process(f.start("1001", "0010", "PRESS-01"))
        for i in range(1, 4):
            await d.process(f.machine_count("PRESS-01", good=10, value=10 * i, at=i))
        assert d.state.conf_map == {} and d.state.reversals == {}
    finally:
        await d.stop()
        await store.close()
    rows = await _confirmation_rows(db_url)
    press = [r.confirmation_id for r in rows if r.op_no == "0010"]
    assert len(press) == 3

    store, d = await open_dispatcher(db_url)
    try:
        assert d.state.conf_map == {}
        # After a restart: read back, applied, and memory empty again after the batch.
        ok = await d.process(_reverse("1001", press[0], at=10))
        assert ok.status == Status.ACCEPTED, ok
        assert d.state.order("1001").operations[0].done.good == 20  # type: ignore[union-attr]
        # The reversal is only in the database now: a second one is refused.
        again = await d.process(_reverse("1001", press[0], at=11))
        assert again.status == Status.REJECTED and "already reversed" in (again.reason or "")
        # Two reversals of the same confirmation in one batch: the second is refused.
        twice = await d.submit_many([_reverse("1001", press[1], at=12),
                                     _reverse("1001", press[1], at=13)])
        first, second = await asyncio.gather(*twice)
        assert first.status == Status.ACCEPTED, first
        assert second.status == Status.REJECTED and "already reversed" in (second.reason or "")
        # A reversal cannot be reversed; a confirmation of another order is not found.
        rows = await _confirmation_rows(db_url)
        reversal = next(r.confirmation_id for r in rows if r.reverses == press[0])
        r1 = await d.process(_reverse("1001", reversal, at=14))
        assert r1.status == Status.REJECTED and "cannot be reversed" in (r1.reason or "")
        r2 = await d.process(_reverse("9999", press[2], at=15))
        assert r2.status == Status.REJECTED and "not found" in (r2.reason or "")
        assert d.state.conf_map == {} and d.state.reversals == {}
        report = await verify(store, f.rules())
        assert report.equal, report.differences
    finally:
        await d.stop()
        await store.close()


async def _confirmation_rows(url: str) -> list[Any]:
    store = await Store.open(url)
    try:
        return await store.rows(confirmations, order_by=[confirmations.c.cursor])
    finally:
        await store.close()
