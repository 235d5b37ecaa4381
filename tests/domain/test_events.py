"""Events through the event-log JSON, the apply() envelope, and the state views."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

from mes_edge.domain import (
    Checkpoint,
    ComponentSpec,
    Decision,
    DemandType,
    Event,
    MachineState,
    OperationAction,
    OrderAction,
    Overlay,
    RejectCode,
    Rejection,
    apply,
    event_from_json,
    event_to_json,
)
from mes_edge.domain.events import EVENT_TYPES, UnassignedAction, UnassignedResolved
from tests.domain.strategies import MACHINE, Plant, order_spec


def one_of_each(plant: Plant) -> list[Event]:
    """One event of every type, with the optional fields filled in."""
    spec = order_spec(components=(ComponentSpec("STEEL-2", 12, "0010"),),
                      demand_type=DemandType.MAKE_TO_ORDER, sales_order="SO-9", customer="ACME",
                      due=datetime(2026, 2, 1, 12, tzinfo=UTC), tolerance_pct=2.5)
    report = plant.report("PRESS-01", MACHINE, good=3, scrap={"crack": 1}, rework=2,
                          order_id="WO-1", op_no="0010")
    return [
        plant.receive(spec),
        plant.order_cmd(OrderAction.HOLD, reason="quality check"),
        plant.op_cmd(OperationAction.START, "PRESS-01", op_no="0010"),
        replace(report, checkpoint=Checkpoint("plc1", "good_count", 1043, generation=2),
                source="plc1", actor=None, readings=(1040, 1043), unassigned_reason="x"),
        plant.machine("PRESS-01", MachineState.DOWN),
        plant.downtime_reason("PRESS-01", "jam", downtime_id="ev-5"),
        plant.due(),
        plant.reversal("c-1", reason="wrong count"),
        UnassignedResolved(event_id="ev-u", work_center="PRESS-01",
                           action=UnassignedAction.ASSIGN, good=2, scrap={"crack": 1},
                           order_id="WO-1", op_no="0010", reason="found on the belt"),
    ]


def test_every_event_type_survives_the_event_log_json() -> None:
    events = one_of_each(Plant())
    assert {e.kind for e in events} == set(EVENT_TYPES)
    for event in events:
        data = event_to_json(event)
        assert data["type"] == event.kind
        again = event_from_json(data)
        assert type(again) is type(event) and again == event
        assert again.ts == event.ts


def test_event_json_is_plain_json() -> None:
    for event in one_of_each(Plant()):
        text = json.dumps(event_to_json(event))
        assert event_from_json(json.loads(text)) == event


def test_event_time_is_the_source_time_if_given() -> None:
    plant = Plant()
    event = plant.due()
    assert event.ts == event.source_ts
    later = datetime(2026, 1, 6, tzinfo=UTC)
    assert replace(event, source_ts=None, received_ts=later).ts == later


def test_references_of_events() -> None:
    receive, hold, start, report, machine, *_ = one_of_each(Plant())
    assert receive.order_ref == "WO-1" and receive.work_center_ref is None
    assert hold.order_ref == "WO-1"
    assert (start.work_center_ref, report.work_center_ref) == ("PRESS-01", "PRESS-01")
    assert machine.order_ref is None


def test_events_with_naive_times_are_refused() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec()))
    naive = datetime(2026, 1, 5, 7, 0)
    plant.refused(replace(plant.op_cmd(OperationAction.START, "PRESS-01", op_no="0010"),
                          source_ts=naive), RejectCode.INVALID)
    plant.refused(replace(plant.due(), source_ts=None, received_ts=naive), RejectCode.INVALID)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Unregistered(Event):
    kind: ClassVar[str] = "unregistered"


def test_an_event_type_without_a_rule_is_refused() -> None:
    plant = Plant()
    plant.refused(_Unregistered(event_id="x"), RejectCode.INVALID)


def test_apply_is_deterministic_and_does_not_touch_the_state() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec()))
    event = plant.op_cmd(OperationAction.START, "PRESS-01", op_no="0010")
    before = plant.snapshot()
    first = apply(plant.state, plant.rules, event)
    second = apply(plant.state, plant.rules, event)
    assert isinstance(first, Decision) and first == second
    assert plant.snapshot() == before


def test_rejection_has_code_and_message() -> None:
    rejection = Rejection(RejectCode.SEQUENCE, "op 20 before op 10")
    assert str(rejection) == "op 20 before op 10"
    assert "sequence" in repr(rejection)


def test_overlay_sees_the_decision_on_top_of_the_state() -> None:
    plant = Plant()
    plant.ok(plant.receive(order_spec("WO-1")))
    result = apply(plant.state, plant.rules, plant.receive(order_spec("WO-2")))
    assert isinstance(result, Decision)
    overlay = Overlay(plant.state, result)
    assert overlay.order("WO-2") is result.orders["WO-2"]
    assert overlay.order("WO-1") is plant.state.order("WO-1")
    assert sorted(o.order_id for o in overlay.orders()) == ["WO-1", "WO-2"]
    assert overlay.work_center("PRESS-01") is None
    assert overlay.confirmation("nope") is None and overlay.reversal_of("nope") is None



def test_event_json_text_is_the_same_document_as_event_to_json() -> None:
    """The event log's fast path (JSON text) and the portable one (a dict) agree."""
    import json

    from mes_edge.domain.events import event_json
    from tests.dispatcher.streams import line_stream

    for event in line_stream(5, 200):
        assert json.loads(event_json(event)) == event_to_json(event)
