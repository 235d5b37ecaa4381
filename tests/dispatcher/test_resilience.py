"""The writer never stops: values the database refuses, ambiguous commits, absurd times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from mes_edge.dispatcher import Dispatcher, RawRejection, Status
from mes_edge.domain import Checkpoint, CountingSource, QuantityReported, single_use_id
from mes_edge.store import Store
from mes_edge.store.tables import events, rejected_events
from tests import factory as f

pytestmark = pytest.mark.timeout(120)


async def started(url: str) -> tuple[Store, Dispatcher]:
    store = await Store.open(url)
    d = Dispatcher(store, f.rules())
    await d.start()
    await d.process(f.order("1001", qty=1000, wcs=("PRESS-01",)))
    await d.process(f.start("1001", "0010", "PRESS-01"))
    return store, d


async def test_unstorable_values_become_refusals_and_the_writer_goes_on(db_url: str) -> None:
    store, d = await started(db_url)
    try:
        # a reading no 64-bit column can hold, a payload orjson cannot encode, a source longer
        # than the column (PostgreSQL enforces VARCHAR lengths)
        huge = QuantityReported(event_id="huge", work_center="PRESS-01",
                                by=CountingSource.MACHINE, good=1,
                                checkpoint=Checkpoint("plc", "good", 2**70))
        bad_payload = RawRejection(source="erp-pull", reason_code="invalid", reason="x",
                                   payload={"n": 10**30}, event_id="bad-payload")
        long_source = RawRejection(source="mqtt:" + "x" * 300, reason_code="bad_message",
                                   reason="y", payload={"raw": "z"}, work_center="W" * 100)
        outcomes = [await d.process(item) for item in (huge, bad_payload, long_source)]
        assert [o.status for o in outcomes] == [Status.REJECTED] * 3
        assert d.running
        after = await d.process(f.machine_count("PRESS-01", good=2))
        assert after.status == Status.ACCEPTED
        assert d.state.order("1001").operations[0].done.good == 2  # type: ignore[union-attr]
        codes = [r.reason_code for r in await store.rows(rejected_events)]
        assert codes.count("unstorable") >= 2  # what could not be stored is still on record
    finally:
        await d.stop()
        await store.close()


async def test_times_out_of_range_are_refused_not_stored(sqlite_url: str) -> None:
    store, d = await started(sqlite_url)
    try:
        ancient = QuantityReported(event_id="ancient", work_center="PRESS-01",
                                   by=CountingSource.MACHINE, good=1,
                                   source_ts=datetime(1, 1, 1, 0, 30, tzinfo=UTC))
        o = await d.process(ancient)
        assert o.status == Status.REJECTED and o.code == "invalid" and "out of range" in (
            o.reason or "")
        assert d.running
    finally:
        await d.stop()
        await store.close()


@pytest.mark.parametrize("made_here", [False, True], ids=["client-id", "single-use-id"])
async def test_a_commit_that_went_through_but_reported_failure_is_not_applied_twice(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, made_here: bool) -> None:
    """Also for an id the service made itself (`http:<uuid>`, never looked up on a first
    attempt): the retry after an ambiguous failure looks it up, finds it committed, and the
    write is answered as done (a duplicate), not refused, with nothing recorded twice."""
    store, d = await started(sqlite_url)
    real = store.commit_batch
    calls = {"n": 0}

    async def flaky(ids: Any, build: Any) -> Any:
        result = await real(ids, build)
        calls["n"] += 1
        if calls["n"] == 1:  # committed, but the answer is lost (a dropped connection)
            raise OperationalError("COMMIT", {}, Exception("connection lost"))
        return result

    monkeypatch.setattr(store, "commit_batch", flaky)
    amb = single_use_id() if made_here else "amb-1"
    try:
        first = await d.process(f.machine_count("PRESS-01", good=3, event_id=amb))
        assert first.status == Status.DUPLICATE  # the retry found it committed
        assert d.state.order("1001").operations[0].done.good == 3  # type: ignore[union-attr]
        nxt = await d.process(f.machine_count("PRESS-01", good=1, event_id="amb-2"))
        assert nxt.status == Status.ACCEPTED  # seq was re-read: no clash, no storage refusal
        rows = await store.rows(events, order_by=[events.c.seq])
        assert [r.event_id for r in rows][-2:] == [amb, "amb-2"]
        assert rows[-1].seq == rows[-2].seq + 1
        assert await store.rows(rejected_events) == []  # no spurious refusal on record
    finally:
        await d.stop()
        await store.close()
