"""GET /api/v1/progress/shift keeps what it read of each timeline and re-reads only the spans
written since: a refresh after new stops and reason changes answers exactly what a first read
of the same database answers."""

from __future__ import annotations

from typing import Any

import pytest

from mes_edge.api import shift_view
from mes_edge.domain import MachineState
from mes_edge.domain.events import DowntimeReasonGiven
from tests.api.conftest import Running
from tests.api.test_progress import send, state
from tests.api.test_progress_shift import ShiftNow, drive_shift, shift_running  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def comparable(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts that do not move with the clock (the open span's end and the figures do)."""
    out = []
    for wc in body["work_centers"]:
        timeline = [{k: v for k, v in x.items() if not (x["open"] and k == "end")}
                    for x in wc["timeline"]]
        out.append({"work_center": wc["work_center"], "from": wc["from"],
                    "timeline": timeline, "pareto": wc["pareto"],
                    "downtime_min": wc["downtime_min"], "micro_stops": wc["micro_stops"],
                    "reason_missing": wc["reason_missing"]})
    return out


async def test_refresh_reads_only_changes_and_equals_a_first_read(
        shift_running: tuple[Running, ShiftNow]) -> None:  # noqa: F811
    r, s = shift_running
    first_down = await drive_shift(r, s)
    async with r.client("operator") as c:
        before = (await c.get("/api/v1/progress/shift")).json()
        # A new stop (closed, then running again), a reason for it, and the first breakdown's
        # reason changed from a breakdown to a planned loss.
        await send(r, state("PRESS-01", MachineState.DOWN, s.at(50)))
        await send(r, state("PRESS-01", MachineState.RUNNING, s.at(53)))
        await send(r, DowntimeReasonGiven(event_id="rr-1", source="tablet", actor="op",
                                          work_center="PRESS-01", reason="meeting",
                                          downtime_id=first_down))
        kept = (await c.get("/api/v1/progress/shift")).json()
        assert r.service.store is not None
        shift_view._KEPT.pop(r.service.store, None)  # a first read of the same data
        fresh = (await c.get("/api/v1/progress/shift")).json()
    assert comparable(kept) == comparable(fresh)
    assert comparable(kept) != comparable(before)
    [press] = [w for w in kept["work_centers"] if w["work_center"] == "PRESS-01"]
    reasons = [x["reason"] for x in press["timeline"] if x["state"] == "down"
               and not x["micro_stop"]]
    assert reasons == ["meeting", None]
