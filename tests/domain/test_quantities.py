"""Quantity reports: where counts go, counting source, sequence, tolerance and bad input."""

from __future__ import annotations

import pytest

from mes_edge.domain import (
    OperationAction,
    OperationStatus,
    Quantities,
    RejectCode,
)
from mes_edge.domain.sequence import with_tolerance
from tests.domain.strategies import MACHINE, OPERATOR, Plant, order_spec, plant_rules

START, PAUSE = OperationAction.START, OperationAction.PAUSE


def running_plant(**rule_changes: object) -> Plant:
    """WO-1: 10 pcs, 0010 on PRESS-01 (machine) running, 0020 on ASSY-02 (operator)."""
    plant = Plant(rules=plant_rules(**rule_changes))
    plant.ok(plant.receive(order_spec()))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    return plant


@pytest.fixture
def plant() -> Plant:
    return running_plant()


def test_machine_counts_go_to_the_running_operation(plant: Plant) -> None:
    event = plant.report("PRESS-01", MACHINE, good=3, scrap={"": 1}, rework=1)
    plant.ok(event)
    op = plant.op("0010")
    assert op.done == Quantities(good=3, scrap={"machine": 1}, rework=1)
    assert op.unconfirmed == op.done  # machine counts wait for a confirmation trigger
    assert op.last_report == event.ts
    plant.ok(plant.report("PRESS-01", MACHINE, good=2, scrap={"machine": 1}))
    assert plant.op("0010").done == Quantities(good=5, scrap={"machine": 2}, rework=1)


def test_machine_counts_without_a_running_operation_become_unassigned(plant: Plant) -> None:
    plant.ok(plant.op_cmd(PAUSE, "PRESS-01"))
    first = plant.report("PRESS-01", MACHINE, good=1)
    decision = plant.ok(first)
    assert any("unassigned production" in n.message for n in decision.notices)
    plant.ok(plant.report("PRESS-01", MACHINE, good=2, scrap={"": 1}, order_id="WO-1",
                          op_no="0010"))
    wc = plant.state.wc_map["PRESS-01"]
    assert wc.unassigned == Quantities(good=3, scrap={"machine": 1})
    assert wc.unassigned_reasons == {"no_running_operation": 1, "bad_state": 3}
    assert wc.unassigned_since == first.ts
    assert plant.op("0010").done.is_zero  # nothing went to the paused operation


def test_counting_source_is_enforced(plant: Plant) -> None:
    plant.refused(plant.report("PRESS-01", OPERATOR, good=1), RejectCode.COUNTING_SOURCE)
    plant.ok(plant.report("PRESS-01", MACHINE, good=4))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.report("ASSY-02", MACHINE, good=1))  # a fact: kept, not added to 0020
    assert plant.op("0020").done.is_zero
    assert plant.state.wc_map["ASSY-02"].unassigned_reasons == {"counting_source": 1}


def test_operator_may_report_on_a_paused_operation(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, good=4))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.op_cmd(PAUSE, "ASSY-02"))
    plant.ok(plant.report("ASSY-02", OPERATOR, good=2, order_id="WO-1", op_no="0020"))
    assert plant.op("0020").done.good == 2
    assert plant.op("0020").status == OperationStatus.PAUSED


def test_operator_report_on_an_unstarted_operation_is_refused(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, good=4))
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, order_id="WO-1", op_no="0020"),
                  RejectCode.BAD_STATE)


def test_sequence_rule_is_checked_on_every_report(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, scrap={"dent": 1}, rework=1),
                  RejectCode.SEQUENCE)
    plant.ok(plant.report("ASSY-02", OPERATOR, good=1, rework=1))
    plant.refused(plant.report("ASSY-02", OPERATOR, scrap={"dent": 1}), RejectCode.SEQUENCE)


def test_machine_good_beyond_planned_is_recorded_and_flagged(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, good=10))
    decision = plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    assert [n.message for n in decision.notices if "over-production" in n.message]
    assert "planned 10" in decision.notices[0].message
    assert (plant.op("0010").done.good, plant.op("0010").over_produced) == (12, 2)
    again = plant.ok(plant.report("PRESS-01", MACHINE, good=1))
    assert not again.notices  # warned once when it crossed the limit, counted all the same
    assert plant.op("0010").over_produced == 3
    plant.ok(plant.report("PRESS-01", MACHINE, scrap={"": 3}))  # scrap is not over-production
    assert plant.op("0010").over_produced == 3


def test_operator_good_beyond_planned_is_refused_at_entry() -> None:
    plant = running_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=10))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    rejection = plant.refused(plant.report("ASSY-02", OPERATOR, good=11),
                              RejectCode.OVER_PRODUCTION)
    assert "planned 10" in rejection.message


def test_hold_policy_keeps_the_excess_as_unassigned_production() -> None:
    plant = running_plant(over_production_hold=True)
    plant.ok(plant.report("PRESS-01", MACHINE, good=8))
    plant.ok(plant.report("PRESS-01", MACHINE, good=5))
    assert plant.op("0010").done.good == 10
    wc = plant.state.wc_map["PRESS-01"]
    assert wc.unassigned == Quantities(good=3)
    assert wc.unassigned_reasons == {"over_production": 3}


def test_machine_count_beyond_the_hand_over_is_recorded_and_flagged() -> None:
    plant = Plant(rules=plant_rules())
    plant.ok(plant.receive(order_spec(ops=(("0010", "PRESS-01"), ("0020", "LASER-03")))))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    plant.ok(plant.op_cmd(START, "LASER-03", op_no="0020"))
    decision = plant.ok(plant.report("LASER-03", MACHINE, good=5))
    assert plant.op("0020").done.good == 5 and plant.op("0020").beyond_handover == 3
    assert any("handed over" in n.message for n in decision.notices)


def test_over_production_within_the_plant_tolerance() -> None:
    plant = running_plant(tolerance_pct=10.0)
    plant.ok(plant.report("PRESS-01", MACHINE, good=11))
    assert plant.op("0010").over_produced == 0
    plant.ok(plant.report("PRESS-01", MACHINE, good=1))
    assert plant.op("0010").over_produced == 1
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.report("ASSY-02", OPERATOR, good=11, scrap={"dent": 1}))  # 12 + 10% = 13
    plant.ok(plant.report("ASSY-02", OPERATOR, rework=1))
    plant.refused(plant.report("ASSY-02", OPERATOR, rework=1), RejectCode.SEQUENCE)


def test_order_tolerance_overrides_the_plant_tolerance() -> None:
    plant = Plant(rules=plant_rules(tolerance_pct=50.0))
    plant.ok(plant.receive(order_spec(tolerance_pct=0.0)))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=11))
    assert plant.op("0010").over_produced == 1


@pytest.mark.parametrize(("qty", "pct", "limit"), [
    (10, 0.0, 10), (10, 10.0, 11), (10, 14.9, 11), (10, 15.0, 11), (7, 33.3, 9), (1, 99.0, 1),
    (100_000, 0.1, 100_100),
])
def test_tolerance_rounds_down_to_whole_units(qty: int, pct: float, limit: int) -> None:
    assert with_tolerance(qty, pct) == limit


@pytest.mark.parametrize(("good", "scrap", "rework", "code"), [
    (-1, {}, 0, RejectCode.INVALID),
    (0, {"": -2}, 0, RejectCode.INVALID),
    (0, {}, -1, RejectCode.INVALID),
    (-5, {"": 5}, 0, RejectCode.INVALID),
    (0, {}, 0, RejectCode.INVALID),
    (0, {"": 0}, 0, RejectCode.INVALID),
])
def test_negative_and_zero_quantities_are_refused(
        plant: Plant, good: int, scrap: dict[str, int], rework: int, code: RejectCode) -> None:
    plant.refused(plant.report("PRESS-01", MACHINE, good=good, scrap=scrap, rework=rework), code)


@pytest.mark.parametrize(("good", "scrap"), [(100_001, {}), (60_000, {"dent": 40_001})])
def test_absurd_operator_reports_are_refused(good: int, scrap: dict[str, int]) -> None:
    plant = running_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=5))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.refused(plant.report("ASSY-02", OPERATOR, good=good, scrap=scrap),
                  RejectCode.ABSURD_QUANTITY)


def test_an_absurd_machine_count_is_kept_for_a_supervisor(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, good=10**18))
    wc = plant.state.wc_map["PRESS-01"]
    assert wc.unassigned.good == 10**18 and wc.unassigned_reasons == {"absurd_quantity": 10**18}
    assert plant.op("0010").done.is_zero


def test_unnamed_and_machine_scrap_reason_add_up(plant: Plant) -> None:
    plant.ok(plant.report("PRESS-01", MACHINE, scrap={"": 2, "machine": 3}))
    assert plant.op("0010").done.scrap == {"machine": 5}
    plant.refused(plant.report("PRESS-01", MACHINE, scrap={"": -5, "machine": 3}),
                  RejectCode.INVALID)


def test_unknown_scrap_reason_is_refused_when_reasons_are_configured() -> None:
    plant = running_plant(scrap_reasons=frozenset({"dent", "crack"}))
    plant.ok(plant.report("PRESS-01", MACHINE, good=5))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    rejection = plant.refused(plant.report("ASSY-02", OPERATOR, scrap={"bogus": 1}),
                              RejectCode.UNKNOWN_REASON)
    assert "bogus" in rejection.message
    plant.ok(plant.report("ASSY-02", OPERATOR, scrap={"crack": 1}))
    # The machine's own scrap reason is not an operator's choice.
    plant.ok(plant.report("PRESS-01", MACHINE, scrap={"": 1}))


def test_any_scrap_reason_is_accepted_without_a_configured_list() -> None:
    plant = running_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=5))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.report("ASSY-02", OPERATOR, scrap={"whatever": 1}))


def test_unknown_references_in_reports(plant: Plant) -> None:
    plant.refused(plant.report("MILL-99", MACHINE, good=1), RejectCode.UNKNOWN_WORK_CENTER)
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, order_id="WO-404", op_no="0010"),
                  RejectCode.UNKNOWN_ORDER)
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, order_id="WO-1", op_no="0099"),
                  RejectCode.UNKNOWN_OPERATION)
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, order_id="WO-1", op_no="0010"),
                  RejectCode.WRONG_WORK_CENTER)
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1), RejectCode.NO_RUNNING_OPERATION)
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, op_no="0020"), RejectCode.INVALID)
    # The same references on a machine count: the parts exist, so they are kept as
    # unassigned production of the work center, with the reason.
    for order_id, op_no in (("WO-404", "0010"), ("WO-1", "0099")):
        plant.ok(plant.report("PRESS-01", MACHINE, good=1, order_id=order_id, op_no=op_no))
    plant.ok(plant.report("LASER-03", MACHINE, good=1))
    assert plant.state.wc_map["PRESS-01"].unassigned_reasons == {
        "unknown_order": 1, "unknown_operation": 1}
    assert plant.state.wc_map["LASER-03"].unassigned.good == 1
