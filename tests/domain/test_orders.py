"""Work-order rules: import with revisions, hold / release / cancel / close."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mes_edge.domain import (
    OperationAction,
    OperationSpec,
    OperationStatus,
    OrderAction,
    OrderStatus,
    RejectCode,
)
from tests.domain.strategies import MACHINE, OPERATOR, Plant, order_spec, plant_rules

START, PAUSE, COMPLETE = OperationAction.START, OperationAction.PAUSE, OperationAction.COMPLETE
HOLD, RELEASE, CANCEL, CLOSE = (OrderAction.HOLD, OrderAction.RELEASE, OrderAction.CANCEL,
                                OrderAction.CLOSE)


@pytest.fixture
def plant() -> Plant:
    return Plant()


def started_plant(**order_changes: object) -> Plant:
    """WO-1 (10 pcs: 0010 on PRESS-01 by machine, 0020 on ASSY-02 by operator), 0010 running."""
    plant = Plant()
    plant.ok(plant.receive(order_spec(**order_changes)))  # type: ignore[arg-type]
    plant.ok(plant.op_cmd(START, "PRESS-01", op_no="0010"))
    return plant


# -- import ---------------------------------------------------------------------------------

def test_new_order_is_created_released_with_first_operation_ready(plant: Plant) -> None:
    decision = plant.ok(plant.receive(order_spec(quantity=12)))
    order = plant.order()
    assert decision.orders["WO-1"] == order
    assert order.status == OrderStatus.RELEASED
    assert order.quantity == 12 and order.revision == 1 and order.tolerance_pct == 0.0
    first, second = order.operations
    assert (first.status, second.status) == (OperationStatus.READY, OperationStatus.WAITING)
    assert first.planned_qty == second.planned_qty == 12
    # The counting source comes from the work center unless the operation names one.
    assert (first.counting, second.counting) == (MACHINE, OPERATOR)


def test_order_not_to_be_released_stays_planned_with_nothing_ready(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec(release=False)))
    order = plant.order()
    assert order.status == OrderStatus.PLANNED
    assert all(op.status == OperationStatus.WAITING for op in order.operations)
    plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0010"), RejectCode.ORDER_NOT_ACTIVE)


def test_operation_plan_and_counting_override_from_the_spec(plant: Plant) -> None:
    spec = replace(order_spec(), operations=(
        OperationSpec("0010", "PRESS-01", planned_qty=11, counting=OPERATOR),
    ), tolerance_pct=5.0)
    plant.ok(plant.receive(spec))
    op = plant.op("0010")
    assert (op.planned_qty, op.counting, plant.order().tolerance_pct) == (11, OPERATOR, 5.0)


def test_same_revision_again_changes_nothing(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec()))
    before = plant.snapshot()
    decision = plant.ok(plant.receive(order_spec(quantity=99)))
    assert not decision.changed
    assert plant.snapshot() == before


def test_older_revision_is_refused_as_stale(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec(revision=3)))
    plant.refused(plant.receive(order_spec(revision=2)), RejectCode.STALE_REVISION)


def test_newer_revision_of_unstarted_order_replaces_the_plan(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec()))
    new = order_spec(revision=2, quantity=20,
                     ops=(("0010", "LASER-03"), ("0020", "ASSY-02"), ("0030", "PRESS-01")))
    decision = plant.ok(plant.receive(new))
    order = plant.order()
    assert order.revision == 2 and order.quantity == 20 and order.status == OrderStatus.RELEASED
    assert [(op.op_no, op.work_center, op.planned_qty) for op in order.operations] == [
        ("0010", "LASER-03", 20), ("0020", "ASSY-02", 20), ("0030", "PRESS-01", 20)]
    assert order.operations[0].status == OperationStatus.READY
    assert not decision.notices


def test_newer_revision_releases_a_planned_order(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec(release=False)))
    plant.ok(plant.receive(order_spec(revision=2)))
    assert plant.order().status == OrderStatus.RELEASED


def test_newer_revision_of_started_order_applies_to_unstarted_ops_and_holds() -> None:
    plant = started_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=4))
    new = order_spec(revision=2, quantity=15, ops=(("0010", "LASER-03"), ("0020", "LASER-03")))
    decision = plant.ok(plant.receive(new))
    order = plant.order()
    first, second = order.operations
    # The started operation keeps its work center and WIP, only its plan moves.
    assert (first.work_center, first.done.good, first.planned_qty) == ("PRESS-01", 4, 15)
    assert first.status == OperationStatus.PAUSED  # held orders run nothing
    assert (second.work_center, second.counting, second.planned_qty) == ("LASER-03", MACHINE, 15)
    assert order.status == OrderStatus.ON_HOLD
    assert order.hold_reason is not None and "revision 2" in order.hold_reason
    assert decision.notices and decision.notices[0].severity == "warning"
    assert plant.state.wc_map["PRESS-01"].running == ()
    # A release after review goes back to where the order was.
    plant.ok(plant.order_cmd(RELEASE))
    assert plant.order().status == OrderStatus.IN_PROGRESS
    assert plant.order().hold_reason is None


def test_revision_may_not_drop_or_reorder_started_operations(plant: Plant) -> None:
    plant = started_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    plant.refused(plant.receive(order_spec(revision=2, ops=(("0020", "ASSY-02"),))),
                  RejectCode.INVALID)
    plant.refused(plant.receive(order_spec(revision=2, ops=(("0020", "ASSY-02"),
                                                            ("0010", "PRESS-01")))),
                  RejectCode.INVALID)
    # after the started part, the routing may change
    plant.ok(plant.receive(order_spec(revision=2, ops=(("0010", "PRESS-01"),
                                                       ("0015", "ASSY-02")))))
    assert [op.op_no for op in plant.order().operations] == ["0010", "0015"]
    assert plant.op("0010").done.good == 2


def test_revision_of_a_finished_order_is_refused() -> None:
    plant = started_plant(ops=(("0010", "PRESS-01"),))
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    assert plant.order().status == OrderStatus.COMPLETED
    plant.refused(plant.receive(order_spec(revision=2)), RejectCode.ORDER_NOT_ACTIVE)


@pytest.mark.parametrize(("changes", "code"), [
    ({"quantity": 0}, RejectCode.ABSURD_QUANTITY),
    ({"quantity": -5}, RejectCode.ABSURD_QUANTITY),
    ({"quantity": 10**12}, RejectCode.ABSURD_QUANTITY),
    ({"order_id": "  "}, RejectCode.INVALID),
    ({"revision": -1}, RejectCode.INVALID),
    ({"ops": ()}, RejectCode.INVALID),
    ({"ops": (("0010", "PRESS-01"), ("0010", "ASSY-02"))}, RejectCode.INVALID),
    ({"ops": (("0010", "MILL-99"),)}, RejectCode.UNKNOWN_WORK_CENTER),
    ({"tolerance_pct": 101.0}, RejectCode.INVALID),
    ({"tolerance_pct": -1.0}, RejectCode.INVALID),
])
def test_bad_order_specs_are_refused(plant: Plant, changes: dict[str, object],
                                     code: RejectCode) -> None:
    plant.refused(plant.receive(order_spec(**changes)), code)  # type: ignore[arg-type]
    assert plant.state.order_map == {}


def test_operation_with_absurd_planned_quantity_is_refused(plant: Plant) -> None:
    spec = replace(order_spec(), operations=(OperationSpec("0010", "PRESS-01", planned_qty=0),))
    plant.refused(plant.receive(spec), RejectCode.ABSURD_QUANTITY)


# -- hold / release / cancel / close ----------------------------------------------------------

def test_hold_pauses_running_operations_and_frees_the_work_center() -> None:
    plant = started_plant()
    plant.ok(plant.order_cmd(HOLD, reason="material blocked"))
    order = plant.order()
    assert order.status == OrderStatus.ON_HOLD and order.hold_reason == "material blocked"
    assert plant.op("0010").status == OperationStatus.PAUSED
    assert plant.state.wc_map["PRESS-01"].running == ()
    rejection = plant.refused(plant.op_cmd(START, "PRESS-01", op_no="0010"),
                              RejectCode.ORDER_NOT_ACTIVE)
    assert "material blocked" in rejection.message
    plant.refused(plant.report("ASSY-02", OPERATOR, good=1, order_id="WO-1", op_no="0020"),
                  RejectCode.ORDER_NOT_ACTIVE)


def test_hold_twice_changes_nothing_and_release_restores() -> None:
    plant = started_plant()
    plant.ok(plant.order_cmd(HOLD))
    assert not plant.ok(plant.order_cmd(HOLD)).changed
    assert plant.op("0010").status == OperationStatus.PAUSED
    plant.ok(plant.order_cmd(RELEASE))
    assert plant.order().status == OrderStatus.IN_PROGRESS
    # The release restores what the hold paused: the machine's parts count again at once.
    assert plant.op("0010").status == OperationStatus.RUNNING
    assert plant.state.wc_map["PRESS-01"].running == (("WO-1", "0010"),)
    plant.ok(plant.report("PRESS-01", MACHINE, good=2))
    assert plant.op("0010").done.good == 2


def test_release_leaves_paused_what_another_operation_took_over_meanwhile() -> None:
    plant = started_plant()
    plant.ok(plant.order_cmd(HOLD))
    plant.ok(plant.receive(order_spec(order_id="WO-2")))
    plant.ok(plant.op_cmd(START, "PRESS-01", order_id="WO-2", op_no="0010"))
    decision = plant.ok(plant.order_cmd(RELEASE))
    assert plant.op("0010").status == OperationStatus.PAUSED
    assert any("stays paused" in n.message for n in decision.notices)


def test_release_of_planned_order_and_of_active_order(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec(release=False)))
    plant.ok(plant.order_cmd(RELEASE))
    assert plant.order().status == OrderStatus.RELEASED
    assert plant.op("0010").status == OperationStatus.READY
    assert not plant.ok(plant.order_cmd(RELEASE)).changed


def test_cancel_of_started_order_confirms_what_was_made() -> None:
    plant = started_plant()
    plant.ok(plant.report("PRESS-01", MACHINE, good=3, scrap={"": 1}))
    decision = plant.ok(plant.order_cmd(CANCEL, reason="customer cancelled"))
    order = plant.order()
    assert order.status == OrderStatus.CANCELLED
    assert all(op.status == OperationStatus.CANCELLED for op in order.operations)
    assert plant.state.wc_map["PRESS-01"].running == ()
    [conf] = decision.confirmations
    assert (conf.op_no, conf.quantities.good, conf.quantities.scrap) == ("0010", 3, {"machine": 1})
    assert not conf.final
    assert plant.op("0010").unconfirmed.is_zero
    assert any("cancelled" in n.message for n in decision.notices)
    assert not plant.ok(plant.order_cmd(CANCEL)).changed
    plant.refused(plant.order_cmd(RELEASE), RejectCode.BAD_STATE)
    plant.refused(plant.order_cmd(HOLD), RejectCode.BAD_STATE)


def test_cancel_of_unstarted_order_confirms_nothing(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec()))
    decision = plant.ok(plant.order_cmd(CANCEL))
    assert decision.confirmations == [] and decision.notices == []


def test_close_only_after_completed_or_cancelled() -> None:
    plant = started_plant(ops=(("0010", "PRESS-01"),))
    plant.refused(plant.order_cmd(CLOSE), RejectCode.BAD_STATE)
    plant.ok(plant.op_cmd(COMPLETE, "PRESS-01", op_no="0010"))
    plant.refused(plant.order_cmd(CANCEL), RejectCode.BAD_STATE)
    plant.ok(plant.order_cmd(CLOSE))
    assert plant.order().status == OrderStatus.CLOSED
    assert not plant.ok(plant.order_cmd(CLOSE)).changed
    plant.refused(plant.order_cmd(RELEASE), RejectCode.BAD_STATE)


def test_cancelled_order_can_be_closed(plant: Plant) -> None:
    plant.ok(plant.receive(order_spec()))
    plant.ok(plant.order_cmd(CANCEL))
    plant.ok(plant.order_cmd(CLOSE))
    assert plant.order().status == OrderStatus.CLOSED


def test_commands_on_unknown_order_are_refused(plant: Plant) -> None:
    for action in OrderAction:
        plant.refused(plant.order_cmd(action, order_id="WO-404"), RejectCode.UNKNOWN_ORDER)


def test_plant_tolerance_is_copied_into_the_order() -> None:
    plant = Plant(rules=plant_rules(tolerance_pct=7.5))
    plant.ok(plant.receive(order_spec()))
    assert plant.order().tolerance_pct == 7.5

