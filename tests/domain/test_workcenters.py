"""Machine states open and close downtimes; operators give the reasons."""

from __future__ import annotations

import pytest

from mes_edge.domain import MachineState, RejectCode
from tests.domain.strategies import Plant, plant_rules

RUNNING, IDLE, DOWN, SETUP, UNKNOWN = (MachineState.RUNNING, MachineState.IDLE,
                                       MachineState.DOWN, MachineState.SETUP,
                                       MachineState.UNKNOWN)


@pytest.fixture
def plant() -> Plant:
    return Plant()


def test_first_state_is_recorded(plant: Plant) -> None:
    event = plant.machine("PRESS-01", RUNNING)
    decision = plant.ok(event)
    wc = plant.state.wc_map["PRESS-01"]
    assert (wc.machine_state, wc.since, wc.downtime) == (RUNNING, event.ts, None)
    assert decision.downtimes == []


def test_leaving_running_opens_a_downtime_and_returning_closes_it(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", RUNNING))
    down = plant.machine("PRESS-01", DOWN)
    [opened] = plant.ok(down).downtimes
    assert (opened.downtime_id, opened.state, opened.start, opened.end) == (
        down.event_id, DOWN, down.ts, None)
    assert plant.state.wc_map["PRESS-01"].downtime == opened
    back = plant.machine("PRESS-01", RUNNING, advance_s=90)
    [closed] = plant.ok(back).downtimes
    assert closed.downtime_id == opened.downtime_id and closed.end == back.ts
    wc = plant.state.wc_map["PRESS-01"]
    assert wc.downtime is None and wc.recent_downtimes == (closed,)


def test_changing_between_stop_states_closes_one_downtime_and_opens_the_next(
        plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    closed, opened = plant.ok(plant.machine("PRESS-01", SETUP)).downtimes
    assert closed.state == DOWN and closed.end is not None
    assert opened.state == SETUP and opened.end is None
    closed2, idle = plant.ok(plant.machine("PRESS-01", IDLE)).downtimes
    assert closed2.downtime_id == opened.downtime_id and idle.state == IDLE


def test_unknown_state_closes_the_downtime_without_opening_one(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    [closed] = plant.ok(plant.machine("PRESS-01", UNKNOWN)).downtimes
    assert closed.end is not None and plant.state.wc_map["PRESS-01"].downtime is None


def test_the_same_state_again_changes_nothing(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    assert not plant.ok(plant.machine("PRESS-01", DOWN)).changed


def test_recent_downtimes_are_bounded() -> None:
    plant = Plant(rules=plant_rules(recent_downtimes_kept=3))
    for _ in range(5):
        plant.ok(plant.machine("PRESS-01", DOWN))
        plant.ok(plant.machine("PRESS-01", RUNNING))
    recent = plant.state.wc_map["PRESS-01"].recent_downtimes
    assert len(recent) == 3 and recent[-1].state == DOWN


def test_reason_goes_to_the_open_downtime(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    [updated] = plant.ok(plant.downtime_reason("PRESS-01", "tool change")).downtimes
    assert (updated.reason, updated.reason_by) == ("tool change", "op-anna")
    assert plant.state.wc_map["PRESS-01"].downtime == updated
    # Closing keeps the reason.
    [closed] = plant.ok(plant.machine("PRESS-01", RUNNING)).downtimes
    assert closed.reason == "tool change"


def test_reason_goes_to_the_latest_closed_downtime_still_without_one(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    first = plant.state.wc_map["PRESS-01"].downtime
    plant.ok(plant.machine("PRESS-01", RUNNING))
    plant.ok(plant.machine("PRESS-01", IDLE))
    plant.ok(plant.machine("PRESS-01", RUNNING))
    second = plant.state.wc_map["PRESS-01"].recent_downtimes[-1]
    plant.ok(plant.downtime_reason("PRESS-01", "no material"))
    plant.ok(plant.downtime_reason("PRESS-01", "jam"))
    by_id = {d.downtime_id: d for d in plant.state.wc_map["PRESS-01"].recent_downtimes}
    assert first is not None
    assert by_id[second.downtime_id].reason == "no material"
    assert by_id[first.downtime_id].reason == "jam"
    plant.refused(plant.downtime_reason("PRESS-01", "again"), RejectCode.BAD_STATE)


def test_reason_for_a_named_downtime_may_correct_it(plant: Plant) -> None:
    plant.ok(plant.machine("PRESS-01", DOWN))
    plant.ok(plant.machine("PRESS-01", RUNNING))
    [closed] = plant.state.wc_map["PRESS-01"].recent_downtimes
    plant.ok(plant.downtime_reason("PRESS-01", "jam", downtime_id=closed.downtime_id))
    plant.ok(plant.downtime_reason("PRESS-01", "tooling", downtime_id=closed.downtime_id))
    assert plant.state.wc_map["PRESS-01"].recent_downtimes[0].reason == "tooling"
    plant.refused(plant.downtime_reason("PRESS-01", "jam", downtime_id="nope"),
                  RejectCode.BAD_STATE)


def test_reason_without_any_downtime_is_refused(plant: Plant) -> None:
    plant.refused(plant.downtime_reason("PRESS-01", "jam"), RejectCode.BAD_STATE)


def test_unknown_downtime_reason_is_refused_when_reasons_are_configured() -> None:
    plant = Plant(rules=plant_rules(downtime_reasons=frozenset({"jam"})))
    plant.ok(plant.machine("PRESS-01", DOWN))
    plant.refused(plant.downtime_reason("PRESS-01", "coffee"), RejectCode.UNKNOWN_REASON)
    plant.ok(plant.downtime_reason("PRESS-01", "jam"))


def test_unknown_work_center_is_refused(plant: Plant) -> None:
    plant.refused(plant.machine("MILL-99", DOWN), RejectCode.UNKNOWN_WORK_CENTER)
    plant.refused(plant.downtime_reason("MILL-99", "jam"), RejectCode.UNKNOWN_WORK_CENTER)
