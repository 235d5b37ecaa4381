"""Numbers handed out never go back: the confirmation cursor after retention purged everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes_edge.dispatcher import Dispatcher, Status
from mes_edge.domain import OperationAction
from mes_edge.store import Store, feed
from tests import factory as f

pytestmark = pytest.mark.timeout(120)


async def _confirm_one(d: Dispatcher, order_id: str) -> int:
    assert (await d.process(f.order(order_id, qty=10, wcs=("ASSY-03",)))).ok
    assert (await d.process(f.start(order_id, "0010", "ASSY-03"))).ok
    out = await d.process(f.operator_report("ASSY-03", order_id, "0010", good=2))
    assert out.status == Status.ACCEPTED
    assert (await d.process(f.command(OperationAction.COMPLETE, "ASSY-03", order_id, "0010"))).ok
    return d.last_cursor


async def test_cursor_goes_on_after_everything_was_purged_and_a_restart(db_url: str) -> None:
    store = await Store.open(db_url)
    d = Dispatcher(store, f.rules())
    await d.start()
    last = await _confirm_one(d, "A-1")
    assert last >= 2
    await feed.ack(store, "erp", last, [])
    await d.stop()
    purged = await feed.purge(store, datetime.now(UTC) + timedelta(days=1))
    assert purged == last  # the whole feed is gone, the event log keeps its seq
    assert await feed.page(store, 0, 100) == []

    d = Dispatcher(store, f.rules())  # a restart
    await d.start()
    try:
        assert d.last_cursor == last
        after = await _confirm_one(d, "A-2")
        rows = await feed.page(store, last, 100)  # what an ERP that read up to `last` asks
        assert [r.cursor for r in rows] == list(range(last + 1, after + 1))
        assert rows and rows[0].order_id == "A-2"
    finally:
        await d.stop()
        await store.close()
