"""Confirmation policy, timed confirmations, auto-complete and reversals."""

from __future__ import annotations

from mes_edge.domain import (
    ConfirmationPolicy,
    OperationAction,
    OperationStatus,
    OrderAction,
    OrderStatus,
    Quantities,
    RejectCode,
)
from mes_edge.domain.confirming import confirmation_id
from tests.domain.strategies import MACHINE, OPERATOR, Plant, order_spec, plant_rules

START, PAUSE, COMPLETE = OperationAction.START, OperationAction.PAUSE, OperationAction.COMPLETE


def running_plant(policy: ConfirmationPolicy | None = None, **rule_changes: object) -> Plant:
    """WO-1: 10 pcs, 0010 on PRESS-01 (machine) running, 0020 on ASSY-02 (operator)."""
    plant = Plant(rules=plant_rules(policy=policy or ConfirmationPolicy(), **rule_changes))
    plant.ok(plant.receive(order_spec()))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    return plant


def with_assy_running(plant: Plant, handed_over: int = 6) -> Plant:
    plant.ok(plant.report("PRESS-01", MACHINE, good=handed_over))
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    return plant


# -- policy -----------------------------------------------------------------------------------

def test_operator_reports_are_confirmed_on_report() -> None:
    plant = with_assy_running(running_plant())
    event = plant.report("ASSY-02", OPERATOR, good=2, scrap={"dent": 1})
    decision = plant.ok(event)
    [conf] = decision.confirmations
    assert conf.quantities == Quantities(good=2, scrap={"dent": 1})
    assert not conf.final and conf.op_no == "0020" and conf.event_id == event.event_id
    assert conf.confirmation_id == confirmation_id(event.event_id, "WO-1", "0020", "partial")
    assert plant.op("0020").unconfirmed.is_zero
    assert plant.op("0020").last_confirmed_at == event.ts


def test_machine_counts_are_not_confirmed_on_report() -> None:
    plant = running_plant()
    decision = plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    assert decision.confirmations == []
    assert plant.op("0010").unconfirmed.good == 3


def test_without_on_report_operator_reports_wait_for_completion() -> None:
    plant = with_assy_running(running_plant(ConfirmationPolicy(on_report=False)))
    assert plant.ok(plant.report("ASSY-02", OPERATOR, good=2)).confirmations == []
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    [final] = plant.ok(plant.op_cmd(COMPLETE, "ASSY-02")).confirmations
    assert final.final and final.quantities.good == 2


def test_every_units_confirms_once_enough_accumulated() -> None:
    plant = running_plant(ConfirmationPolicy(every_units=5))
    assert plant.ok(plant.report("PRESS-01", MACHINE, good=3)).confirmations == []
    [conf] = plant.ok(plant.report("PRESS-01", MACHINE, good=1, scrap={"": 1})).confirmations
    assert conf.quantities == Quantities(good=4, scrap={"machine": 1})
    assert plant.op("0010").unconfirmed.is_zero
    assert plant.ok(plant.report("PRESS-01", MACHINE, good=4)).confirmations == []


def test_every_seconds_confirms_on_the_timer_tick() -> None:
    plant = running_plant(ConfirmationPolicy(every_seconds=60))
    plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    assert plant.ok(plant.due(advance_s=30)).confirmations == []  # 32 s after the start
    due = plant.due(advance_s=30)
    [conf] = plant.ok(due).confirmations
    assert conf.quantities.good == 3 and conf.confirmation_id == confirmation_id(
        due.event_id, "WO-1", "0010", "partial")
    assert plant.op("0010").last_confirmed_at == due.ts
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    assert plant.ok(plant.due(advance_s=30)).confirmations == []
    assert plant.ok(plant.due(advance_s=30)).confirmations[0].quantities.good == 2
    assert not plant.ok(plant.due(advance_s=600)).changed  # nothing left to confirm


def test_timer_tick_without_every_seconds_does_nothing() -> None:
    plant = running_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    assert not plant.ok(plant.due(advance_s=3600)).changed


def test_timer_tick_confirms_orders_on_hold_too() -> None:
    plant = running_plant(ConfirmationPolicy(every_seconds=60))
    plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    plant.ok(plant.order_cmd(OrderAction.HOLD))
    assert plant.ok(plant.due(advance_s=120)).confirmations[0].quantities.good == 3


# -- auto-complete ----------------------------------------------------------------------------

def test_auto_complete_when_planned_good_is_reached() -> None:
    plant = running_plant(ConfirmationPolicy(every_units=4), auto_complete=True)
    plant.ok(plant.report("PRESS-01", MACHINE, good=3))
    decision = plant.ok(plant.report("PRESS-01", MACHINE, good=7))
    assert plant.op("0010").status == OperationStatus.COMPLETED
    assert plant.state.wc_map["PRESS-01"].running == ()
    partial, final = decision.confirmations  # every_units fired, then the final one
    assert (partial.final, partial.quantities.good) == (False, 10)
    assert (final.final, final.quantities.is_zero) == (True, True)
    assert plant.op("0020").status == OperationStatus.READY


def test_auto_complete_waits_for_predecessors() -> None:
    plant = with_assy_running(running_plant(auto_complete=True), handed_over=9)
    plant.ok(plant.report("PRESS-01", MACHINE, good=1))  # 0010 completes itself at 10
    assert plant.op("0010").status == OperationStatus.COMPLETED
    plant.ok(plant.report("ASSY-02", OPERATOR, good=10))
    assert plant.op("0020").status == OperationStatus.COMPLETED
    assert plant.order().status == OrderStatus.COMPLETED


def test_no_auto_complete_by_default() -> None:
    plant = running_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=10))
    assert plant.op("0010").status == OperationStatus.RUNNING


# -- reversals --------------------------------------------------------------------------------

def test_reversal_takes_the_quantities_back() -> None:
    plant = with_assy_running(running_plant())
    [conf] = plant.ok(plant.report("ASSY-02", OPERATOR, good=3, scrap={"dent": 1})).confirmations
    event = plant.reversal(conf.confirmation_id, reason="counted twice")
    [reversal] = plant.ok(event).confirmations
    assert reversal.reverses == conf.confirmation_id and reversal.reason == "counted twice"
    assert reversal.quantities == conf.quantities and not reversal.final
    assert reversal.personnel == "supervisor"
    assert plant.op("0020").done.is_zero
    assert plant.state.reversal_of(conf.confirmation_id) == reversal.confirmation_id


def test_double_reversal_and_reversal_of_a_reversal_are_refused() -> None:
    plant = with_assy_running(running_plant())
    [conf] = plant.ok(plant.report("ASSY-02", OPERATOR, good=3)).confirmations
    [reversal] = plant.ok(plant.reversal(conf.confirmation_id)).confirmations
    plant.refused(plant.reversal(conf.confirmation_id), RejectCode.NOT_REVERSIBLE)
    plant.refused(plant.reversal(reversal.confirmation_id), RejectCode.NOT_REVERSIBLE)


def test_reversal_of_unknown_confirmation_or_of_another_order_is_refused() -> None:
    plant = with_assy_running(running_plant())
    [conf] = plant.ok(plant.report("ASSY-02", OPERATOR, good=3)).confirmations
    plant.refused(plant.reversal("no-such-id"), RejectCode.NOT_REVERSIBLE)
    plant.refused(plant.reversal(conf.confirmation_id, order_id="WO-2"),
                  RejectCode.NOT_REVERSIBLE)


def test_reversal_that_would_break_the_successors_chain_is_refused() -> None:
    plant = running_plant(ConfirmationPolicy(every_units=1))
    [conf] = plant.ok(plant.report("PRESS-01", MACHINE, good=4)).confirmations
    plant.ok(plant.op_cmd(START, "ASSY-02", op_no="0020"))
    plant.ok(plant.report("ASSY-02", OPERATOR, good=1))
    plant.refused(plant.reversal(conf.confirmation_id), RejectCode.SEQUENCE)
    assert plant.op("0010").done.good == 4


def test_reversal_of_predecessor_leaves_successor_waiting() -> None:
    plant = running_plant(ConfirmationPolicy(every_units=1))
    [conf] = plant.ok(plant.report("PRESS-01", MACHINE, good=4)).confirmations
    assert plant.op("0020").status == OperationStatus.READY
    plant.ok(plant.reversal(conf.confirmation_id))
    assert plant.op("0020").status == OperationStatus.WAITING


def test_reversing_a_final_confirmation_reopens_the_operation_and_the_order() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec(ops=(("0010", "PRESS-01"),))))
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=10))
    [final] = plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010")).confirmations
    assert plant.order().status == OrderStatus.COMPLETED
    plant.ok(plant.reversal(final.confirmation_id))
    op = plant.op("0010")
    assert op.status == OperationStatus.PAUSED and op.actual_end is None and op.done.is_zero
    order = plant.order()
    assert order.status == OrderStatus.IN_PROGRESS and order.actual_end is None
    # Reopened: the right count is reported again and the op completed again.
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    plant.ok(plant.report("PRESS-01", MACHINE, good=9))
    [again] = plant.ok(plant.op_cmd(COMPLETE, "PRESS-01")).confirmations
    assert again.final and again.quantities.good == 9
    assert plant.order().status == OrderStatus.COMPLETED


def test_reversal_on_a_cancelled_or_closed_order_is_refused() -> None:
    plant = with_assy_running(running_plant())
    [conf] = plant.ok(plant.report("ASSY-02", OPERATOR, good=3)).confirmations
    plant.ok(plant.order_cmd(OrderAction.CANCEL))
    plant.refused(plant.reversal(conf.confirmation_id), RejectCode.ORDER_NOT_ACTIVE)
    plant.ok(plant.order_cmd(OrderAction.CLOSE))
    plant.refused(plant.reversal(conf.confirmation_id), RejectCode.ORDER_NOT_ACTIVE)


def test_confirmation_ids_are_deterministic_per_event_operation_and_kind() -> None:
    ids = {confirmation_id("ev-1", "WO-1", "0010", kind) for kind in ("partial", "final")}
    ids |= {confirmation_id("ev-1", "WO-1", "0020", "partial"),
            confirmation_id("ev-2", "WO-1", "0010", "partial")}
    assert len(ids) == 4
    assert confirmation_id("ev-1", "WO-1", "0010", "final") == confirmation_id(
        "ev-1", "WO-1", "0010", "final")


def test_posting_date_is_the_plants_local_date() -> None:
    """23:30 UTC on 31 March is already 1 April in Berlin (CEST, +2): the ERP books it there."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from mes_edge.domain.confirming import posting_date

    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert posting_date(late, ZoneInfo("Europe/Berlin")) == date(2026, 4, 1)
    assert posting_date(late, ZoneInfo("America/New_York")) == date(2026, 3, 31)
    assert posting_date(late, UTC) == date(2026, 3, 31)
