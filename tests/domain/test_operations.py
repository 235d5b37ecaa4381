"""Operation rules: start / pause / resume / complete, the sequence rule, one op per work center."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mes_edge.domain import (
    MachineState,
    OperationAction,
    OperationStatus,
    OrderAction,
    OrderStatus,
    RejectCode,
)
from tests.domain.strategies import MACHINE, OPERATOR, T0, Plant, order_spec

START, PAUSE, RESUME, COMPLETE = (OperationAction.START, OperationAction.PAUSE,
                                  OperationAction.RESUME, OperationAction.COMPLETE)


@pytest.fixture
def plant() -> Plant:
    """WO-1: 10 pcs, 0010 on PRESS-01 (machine), 0020 on ASSY-02 (operator)."""
    plant = Plant()
    plant.ok(plant.receive(order_spec()))
    return plant


def test_start_runs_the_operation_and_occupies_the_work_center(plant: Plant) -> None:
    event = plant.op_cmd(START, "PRESS-01", op_no="0010", actor="op-ben")
    plant.ok(event)
    op = plant.op("0010")
    assert op.status == OperationStatus.RUNNING
    assert op.actual_start == event.ts and op.personnel == "op-ben"
    order = plant.order()
    assert order.status == OrderStatus.IN_PROGRESS and order.actual_start == event.ts
    assert plant.state.wc_map["PRESS-01"].running == (("WO-1", "0010"),)


def test_successor_cannot_start_before_anything_is_handed_over(plant: Plant) -> None:
    assert plant.op("0020").status == OperationStatus.WAITING
    plant.refused(plant.op_cmd(START, "ASSY-02", op_no="0020"), RejectCode.SEQUENCE)
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.refused(plant.op_cmd(START, "ASSY-02", op_no="0020"), RejectCode.SEQUENCE)


def test_overlapping_operations_successor_starts_after_a_partial_handover(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    assert plant.op("0020").status == OperationStatus.READY
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    assert plant.op("0010").status == plant.op("0020").status == OperationStatus.RUNNING
    # The successor may process what was handed over, not more.
    plant.ok(plant.report("ASSY-02", OPERATOR, good=2, scrap={"dent": 1}))
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1), RejectCode.SEQUENCE)
    plant.ok(plant.report("PRESS-01", MACHINE, good=1))
    plant.ok(plant.report("ASSY-02", OPERATOR, good=1))


def test_start_of_successor_needs_something_left_to_process(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.report("ASSY-02", OPERATOR, good=2))
    plant.ok(plant.op_cmd(PAUSE, "ASSY-02"))
    # A paused operation that started may resume (the demo's operator was stuck here); the
    # sequence rule still refuses a report of more than was handed over.
    plant.ok(plant.op_cmd(RESUME, "ASSY-02", op_no="0020"))
    refused = plant.refused(plant.report("ASSY-02", OPERATOR, good=1), RejectCode.SEQUENCE)
    assert "2 operation 0010 handed over" in refused.message


def test_start_before_anything_was_handed_over_says_so(plant: Plant) -> None:
    refused = plant.refused(plant.op_cmd(START, "ASSY-02", op_no="0020"), RejectCode.SEQUENCE)
    assert "handed nothing over yet" in refused.message


def test_pause_and_resume(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.op_cmd(PAUSE, "PRESS-01"))  # resolved from the work center
    assert plant.op("0010").status == OperationStatus.PAUSED
    assert plant.state.wc_map["PRESS-01"].running == ()
    plant.refused(plant.op_cmd(PAUSE, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)
    plant.refused(plant.op_cmd(START, "PRESS-01", order_id=None), RejectCode.NO_RUNNING_OPERATION)
    plant.ok(plant.op_cmd(RESUME, "PRESS-01", op_no="0010"))
    assert plant.op("0010").status == OperationStatus.RUNNING
    assert plant.state.wc_map["PRESS-01"].running == (("WO-1", "0010"),)
    plant.refused(plant.op_cmd(RESUME, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)
    plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)


def test_resume_of_a_ready_operation_is_refused(plant: Plant) -> None:
    plant.refused(plant.op_cmd(RESUME, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)


def test_one_running_operation_per_work_center() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec("WO-1", ops=(("0010", "PRESS-01"),))))
    plant.ok(plant.receive(order_spec("WO-2", ops=(("0010", "PRESS-01"),))))
    plant.ok(plant.op_cmd(START, "PRESS-01", "WO-1", "0010"))
    rejection = plant.refused(plant.op_cmd(START, "PRESS-01", "WO-2", "0010"),
                              RejectCode.WORK_CENTER_BUSY)
    assert "WO-1/0010" in rejection.message
    plant.ok(plant.op_cmd(PAUSE, "PRESS-01"))
    plant.ok(plant.op_cmd(START, "PRESS-01", "WO-2", "0010"))
    plant.refused(plant.op_cmd(RESUME, "PRESS-01", "WO-1", "0010"), RejectCode.WORK_CENTER_BUSY)
    assert plant.state.wc_map["PRESS-01"].running == (("WO-2", "0010"),)


def test_complete_needs_predecessors_completed(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=5))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.refused(plant.op_cmd(COMPLETE, "ASSY-02", op_no="0020"), RejectCode.SEQUENCE)
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    assert plant.op("0010").status == OperationStatus.COMPLETED
    assert plant.state.wc_map["PRESS-01"].running == ()
    assert plant.order().status == OrderStatus.IN_PROGRESS
    plant.ok(plant.op_cmd(COMPLETE, "ASSY-02"))
    assert plant.order().status == OrderStatus.COMPLETED
    assert plant.order().actual_end is not None


def test_completing_the_last_operation_completes_the_order_with_final_confirmations() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec(ops=(("0010", "PRESS-01"),))))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=10))
    event = plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010")
    decision = plant.ok(event)
    [conf] = decision.confirmations
    assert conf.final and conf.quantities.good == 10 and conf.work_center == "PRESS-01"
    assert conf.actual_start == T0.replace(second=2) and conf.actual_end == event.ts
    assert conf.personnel == "op-anna" and conf.unit == "PCE"
    assert plant.order().status == OrderStatus.COMPLETED


def test_final_confirmation_even_with_zero_quantities(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    decision = plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    [conf] = decision.confirmations
    assert conf.final and conf.quantities.is_zero


def test_complete_of_a_paused_operation(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.op_cmd(PAUSE, "PRESS-01", op_no="0010"))
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    assert plant.op("0010").status == OperationStatus.COMPLETED


def test_complete_of_an_unstarted_or_finished_operation_is_refused(plant: Plant) -> None:
    plant.refused(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    plant.refused(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)
    plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0010"), RejectCode.BAD_STATE)


def test_unknown_references_are_refused_with_clear_codes(plant: Plant) -> None:
    plant.refused(plant.op_cmd(START, "MILL-99", op_no="0010"), RejectCode.UNKNOWN_WORK_CENTER)
    plant.refused(plant.op_cmd(START, "PRESS-01", "WO-404", "0010"), RejectCode.UNKNOWN_ORDER)
    plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0099"), RejectCode.UNKNOWN_OPERATION)
    plant.refused(plant.op_cmd(START, "ASSY-02", op_no="0010"), RejectCode.WRONG_WORK_CENTER)
    plant.refused(plant.op_cmd(START, "PRESS-01", order_id="WO-1", op_no=None),
                  RejectCode.INVALID)
    plant.refused(plant.op_cmd(PAUSE, "PRESS-01", order_id=None),
                  RejectCode.NO_RUNNING_OPERATION)


def test_operation_commands_on_a_cancelled_order_are_refused(plant: Plant) -> None:
    plant.ok(plant.order_cmd(OrderAction.CANCEL))
    plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0010"), RejectCode.ORDER_NOT_ACTIVE)



def test_resume_without_naming_resumes_the_operation_paused_there(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.op_cmd(PAUSE, "PRESS-01"))
    plant.ok(plant.op_cmd(RESUME, "PRESS-01"))  # an empty body from a terminal
    assert plant.op("0010").status == OperationStatus.RUNNING
    plant.refused(plant.op_cmd(RESUME, "ASSY-02"), RejectCode.NO_RUNNING_OPERATION)


def test_a_pause_with_a_reason_at_a_manual_station_records_the_downtime(plant: Plant) -> None:
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    pause = replace(plant.op_cmd(PAUSE, "ASSY-02"), reason="material")
    plant.ok(pause)
    wc = plant.state.wc_map["ASSY-02"]
    assert wc.downtime is not None and wc.downtime.reason == "material"
    assert wc.downtime.reason_by == "op-anna"
    plant.ok(plant.op_cmd(RESUME, "ASSY-02"))
    wc = plant.state.wc_map["ASSY-02"]
    assert wc.downtime is None and wc.machine_state == MachineState.RUNNING
