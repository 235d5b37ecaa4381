"""The board's state-timeline strip at screen resolution: GET /api/v1/progress/shift with
`resolution_s` merges each work center's spans into segments at least that long (issue 11).

The merge itself on hand-made timelines (gaps, joins, tails), then a real service on SQLite with
a flickering work center driven through the dispatcher: the segments cover exactly the time the
spans cover, long spans come back untouched with their reason and who gave it, a merged segment
is coloured by the state that takes most of its time and counts its spans, and the figures,
downtime minutes and Pareto are the same with or without the parameter."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from mes_edge.api.app import create_api
from mes_edge.api.progress import downtime_out
from mes_edge.api.shift_view import merge_timeline as merge_with_memo
from mes_edge.api.shift_view import shift_views
from mes_edge.app.service import EdgeService
from mes_edge.config import parse_settings
from mes_edge.domain import MachineState
from mes_edge.domain.events import DowntimeReasonGiven
from mes_edge.store.progress import spans
from mes_edge.store.tokens import Role, create_token
from tests.api.conftest import Running
from tests.api.test_progress import send, state
from tests.api.test_progress_shift import ShiftNow, drive_shift, shift_now, shift_plant

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def entry(state: str, a: float, b: float, *, stop: str | None = None, micro: bool = False,
          reason: str | None = None) -> dict[str, Any]:
    """A timeline entry as shift_view draws it, from second `a` to second `b` after T0."""
    return {"state": state, "start": T0 + timedelta(seconds=a), "end": T0 + timedelta(seconds=b),
            "open": False, "downtime_id": stop, "reason": reason,
            "reason_text": None if reason is None else {"en": reason}, "reason_by": None,
            "micro_stop": micro, "in_planned_time": True}


def merge_timeline(timeline: list[dict[str, Any]], r: timedelta) -> list[dict[str, Any]]:
    return merge_with_memo(timeline, r)[0]


def covered(timeline: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    """The time a timeline covers, as disjoint intervals (touching ones joined)."""
    out: list[tuple[datetime, datetime]] = []
    for x in timeline:
        if out and out[-1][1] == x["start"]:
            out[-1] = (out[-1][0], x["end"])
        else:
            out.append((x["start"], x["end"]))
    return out


def check(raw: list[dict[str, Any]], merged: list[dict[str, Any]], r: timedelta) -> None:
    """What every merge keeps: exact coverage, no overlap, cuts only where spans meet, every
    span counted once, seconds per state adding up, stops and long spans untouched."""
    assert covered(merged) == covered(raw)
    assert all(a["end"] <= b["start"] for a, b in pairwise(merged))
    assert all(x["start"] < x["end"] for x in merged)
    bounds = {x["start"] for x in raw} | {x["end"] for x in raw}
    assert all(x["start"] in bounds and x["end"] in bounds for x in merged)
    assert sum(x.get("merged", 1) for x in merged) == len(raw)
    for x in merged:
        if "merged" in x:
            length = (x["end"] - x["start"]).total_seconds()
            assert abs(sum(x["seconds"].values()) - length) < 0.01
            assert x["seconds"][x["state"]] == max(x["seconds"].values())
            assert x["downtime_id"] is None and x["reason"] is None
    for x in raw:  # a stop at least as long as the resolution comes back as it was
        if x["downtime_id"] is not None and x["end"] - x["start"] >= r:
            assert x in merged


def test_short_runs_merge_long_spans_stay() -> None:
    r = timedelta(seconds=60)
    raw = [entry("running", 0, 600),
           # ten 10-s micro-stops 20 s apart: 300 s of flicker, two thirds running
           *[e for i in range(10) for e in (
               entry("down", 600 + 30 * i, 610 + 30 * i, stop=f"m{i}", micro=True),
               entry("running", 610 + 30 * i, 630 + 30 * i))],
           entry("down", 900, 1500, stop="d1", reason="tooling"),
           entry("setup", 1500, 1530), entry("idle", 1530, 1560), entry("setup", 1560, 1575),
           entry("running", 1575, 2000)]
    merged = merge_timeline(raw, r)
    check(raw, merged, r)
    assert merged[0] is raw[0] and merged[-1] is raw[-1]
    flicker = [x for x in merged if T0 + timedelta(seconds=600) <= x["start"]
               and x["end"] <= T0 + timedelta(seconds=900)]
    assert [x["merged"] for x in flicker] == [4] * 5  # 60 s each: down 10, run 20, twice
    assert all(x["state"] == "running" and not x["micro_stop"] for x in flicker)
    assert flicker[0]["seconds"] == {"down": 20.0, "running": 40.0}
    assert (flicker[0]["stops"], flicker[0]["micro_stops"]) == (2, 2)
    [stop] = [x for x in merged if x["downtime_id"] == "d1"]
    assert stop["reason"] == "tooling" and "merged" not in stop
    # setup 30 s, idle 30 s, setup 15 s: one 75-s segment, setup the larger share.
    [mixed] = [x for x in merged if x["start"] == T0 + timedelta(seconds=1500)]
    assert (mixed["state"], mixed["merged"], mixed["seconds"], mixed["stops"]) == (
        "setup", 3, {"setup": 45.0, "idle": 30.0}, 0)


def test_dominant_micro_stops_tails_gaps_and_joins() -> None:
    r = timedelta(seconds=60)
    raw = [entry("running", 0, 20), entry("running", 20, 50), entry("running", 50, 100),
           # 2 x (down 20 micro, running 10), then a 25-s tail, then a gap
           entry("down", 100, 120, stop="a", micro=True), entry("running", 120, 130),
           entry("down", 130, 150, stop="b", micro=True), entry("running", 150, 160),
           entry("down", 160, 185, stop="c", micro=True),
           entry("idle", 300, 310), entry("down", 310, 330, stop="d", reason="material"),
           entry("running", 330, 340)]
    merged = merge_timeline(raw, r)
    check(raw, merged, r)
    # Running spans that meet join (no stop among them): one 100-s segment.
    assert (merged[0]["state"], merged[0]["merged"], merged[0]["seconds"]) == (
        "running", 3, {"running": 100.0})
    # The flicker: one 60-s segment and the 25-s tail joined to it, down (all micro) dominant.
    assert merged[1]["merged"] == 5 and merged[1]["end"] == T0 + timedelta(seconds=185)
    assert merged[1]["state"] == "down" and merged[1]["micro_stop"]
    assert merged[1]["seconds"] == {"down": 65.0, "running": 20.0}
    # After the gap: a run shorter than the resolution is one segment, it never crosses a gap.
    assert merged[2]["start"] == T0 + timedelta(seconds=300) and merged[2]["merged"] == 3
    assert (merged[2]["state"], merged[2]["stops"], merged[2]["micro_stop"]) == ("down", 1, False)
    assert len(merged) == 3
    # A single short span between long ones stays itself; coarser than everything: few segments.
    lone = [entry("running", 0, 100), entry("down", 100, 105, stop="x", micro=True),
            entry("running", 105, 200)]
    assert merge_timeline(lone, r) == lone
    coarse = merge_timeline(raw, timedelta(hours=1))
    check(raw, coarse, timedelta(hours=1))
    assert len(coarse) == 2  # the gap splits it
    assert merge_timeline([], r) == []


def test_a_refresh_reuses_the_last_merge_and_answers_the_same() -> None:
    """Timelines growing span by span (the last one open, growing), some reasons changed on
    the way: the merge with the previous call's memo equals a merge from scratch."""
    rng = random.Random(7)
    for r in (timedelta(seconds=30), timedelta(seconds=90), timedelta(seconds=400)):
        closed: list[dict[str, Any]] = []
        memo = None
        t = 0.0
        for step in range(300):
            length = rng.choice((5, 12, 25, 40, 70, 95, 200, 500))
            st = rng.choice(("running", "running", "down", "idle", "setup"))
            stop = f"s{step}" if st == "down" else None
            gap = 50 if rng.random() < 0.03 else 0
            e = entry(st, t + gap, t + gap + length, stop=stop, micro=stop is not None
                      and length < 60)
            if closed and rng.random() < 0.05:  # a reason given to a recent stop
                i = rng.randrange(max(0, len(closed) - 5), len(closed))
                closed[i] = {**closed[i], "reason": "tooling"}
            tail = {**e, "open": True, "end": e["end"] + timedelta(seconds=rng.choice((1, 90)))}
            timeline = [*closed, tail]
            got, memo = merge_with_memo(timeline, r, memo)
            assert got == merge_timeline(timeline, r), (r, step)
            check(timeline, got, r)
            closed.append(e)
            t += gap + length
        assert memo is not None and len(memo.restarts) > 10


@pytest.fixture
async def strip_running(sqlite_url: str) -> AsyncIterator[tuple[Running, ShiftNow]]:
    s = shift_now()
    settings = parse_settings(shift_plant(sqlite_url, s))
    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    assert service.store is not None
    tokens = {"operator": await create_token(service.store, Role.OPERATOR, "t", ["PRESS-01"])}
    try:
        yield Running(service, f"http://127.0.0.1:{settings.api.port}", tokens), s
    finally:
        await service.stop()


async def flicker(r: Running, s: ShiftNow, wc: str = "CNC-02") -> None:
    """Running, a 4-minute stop given a reason, then ten minutes of flicker: five minutes of
    (down 10 s, running 20 s), five of (down 20 s, running 10 s), then running on."""
    await send(r, state(wc, MachineState.RUNNING, s.at(2)))
    await send(r, state(wc, MachineState.DOWN, s.at(10)))
    await send(r, state(wc, MachineState.RUNNING, s.at(14)))
    assert r.service.store is not None
    [stop] = [x for x in await spans(r.service.store, s.at(0), s.at(60), work_centers=[wc],
                                     stops_only=True) if x.start == s.at(10)]
    assert stop.downtime_id is not None
    await send(r, DowntimeReasonGiven(event_id=f"fl-{wc}", source="tablet", actor="olga",
                                      work_center=wc, reason="material",
                                      downtime_id=stop.downtime_id))
    sec = lambda n: s.start + timedelta(seconds=n)  # noqa: E731
    for i in range(10):
        await send(r, state(wc, MachineState.DOWN, sec(42 * 60 + 30 * i)))
        await send(r, state(wc, MachineState.RUNNING, sec(42 * 60 + 30 * i + 10)))
    for i in range(10):
        await send(r, state(wc, MachineState.DOWN, sec(47 * 60 + 30 * i)))
        await send(r, state(wc, MachineState.RUNNING, sec(47 * 60 + 30 * i + 20)))


def without_timeline(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in w.items() if k != "timeline"} for w in views]


async def test_resolution_merges_the_strip_and_nothing_else(
        strip_running: tuple[Running, ShiftNow]) -> None:
    r, s = strip_running
    await drive_shift(r, s)
    await flicker(r, s)
    service = r.service
    assert service.store is not None
    wcs = [(w.id, w.id) for w in service.settings.work_centers]
    now = datetime.now(UTC)
    out = lambda x, at: downtime_out(service, x, at)  # noqa: E731
    raw = await shift_views(service.store, service.progress, wcs, now, out)
    res = timedelta(seconds=60)
    merged = await shift_views(service.store, service.progress, wcs, now, out, res)
    # A, P, Q, OEE, downtime minutes, micro-stops and the Pareto do not come from the merge.
    assert without_timeline(merged) == without_timeline(raw)
    by_raw = {w["work_center"]: w["timeline"] for w in raw}
    by_merged = {w["work_center"]: w["timeline"] for w in merged}
    for wc, timeline in by_raw.items():
        check(timeline, by_merged[wc], res)
    assert by_merged["PRESS-01"] == by_raw["PRESS-01"]  # nothing to merge there (one short span)
    cnc = by_merged["CNC-02"]
    assert len(by_raw["CNC-02"]) == 3 + 40
    assert len(cnc) == 3 + 9 + 1
    [stop] = [x for x in cnc if x["downtime_id"] is not None]
    assert (stop["reason"], stop["reason_by"], stop["reason_text"]["en"]) == (
        "material", "olga", "material")
    assert stop in by_raw["CNC-02"]
    flick = [x for x in cnc if "merged" in x]
    assert [x["state"] for x in flick] == ["running"] * 5 + ["down"] * 4
    assert flick[0]["seconds"] == {"down": 20.0, "running": 40.0}
    assert flick[5]["seconds"] == {"down": 40.0, "running": 20.0}
    assert all(x["micro_stop"] for x in flick[5:]) and not any(x["micro_stop"] for x in flick[:5])
    assert [x["merged"] for x in flick] == [4] * 8 + [7]  # the 50-s tail joins the last one
    assert all(x["stops"] == x["merged"] // 2 + x["merged"] % 2 for x in flick)

    async with r.client("operator") as c:
        plain = await c.get("/api/v1/progress/shift", params={"work_center": "CNC-02"})
        coarse = await c.get("/api/v1/progress/shift",
                             params={"work_center": "CNC-02", "resolution_s": 60})
        bad = await c.get("/api/v1/progress/shift", params={"resolution_s": 0})
    assert plain.status_code == coarse.status_code == 200
    assert bad.status_code == 422
    [p], [m] = plain.json()["work_centers"], coarse.json()["work_centers"]
    assert not any("merged" in x for x in p["timeline"]) and len(p["timeline"]) == 43
    assert [x.get("merged", 1) for x in m["timeline"]] == [1, 1, 1] + [4] * 8 + [7, 1]
    assert len(coarse.content) < len(plain.content)
