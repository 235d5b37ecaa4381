"""Small builders of plant rules and events for the tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from mes_edge.domain import (
    Checkpoint,
    ConfirmationPolicy,
    CountingSource,
    MachineState,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    OperationSpec,
    OrderReceived,
    OrderSpec,
    PlantRules,
    QuantityReported,
)

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
_ids = itertools.count(1)


def rules(**kw: object) -> PlantRules:
    """A plant with a machine-counted press, a machine-counted CNC and a manual assembly."""
    base: dict[str, object] = {
        "work_centers": {
            "PRESS-01": CountingSource.MACHINE,
            "CNC-02": CountingSource.MACHINE,
            "ASSY-03": CountingSource.OPERATOR,
        },
        "tolerance_pct": 5.0,
        "policy": ConfirmationPolicy(on_report=True, on_complete=True, every_units=10),
    }
    base.update(kw)
    return PlantRules(**base)  # type: ignore[arg-type]


def eid(prefix: str = "e") -> str:
    return f"{prefix}-{next(_ids)}"


def order(
    order_id: str = "1001",
    qty: int = 100,
    revision: int = 1,
    wcs: tuple[str, ...] = ("PRESS-01", "ASSY-03"),
    **kw: Any,
) -> OrderReceived:
    ops = tuple(
        OperationSpec(op_no=f"{(i + 1) * 10:04d}", work_center=w) for i, w in enumerate(wcs)
    )
    spec = OrderSpec(
        order_id=order_id, revision=revision, material="BRACKET-7", quantity=qty, operations=ops
    )
    return OrderReceived(
        event_id=eid("order"), spec=spec, source="erp", actor="erp", received_ts=T0, **kw
    )


def start(
    order_id: str, op_no: str, wc: str, event_id: str | None = None, at: int = 0
) -> OperationCommand:
    return OperationCommand(
        event_id=event_id or eid("start"),
        work_center=wc,
        action=OperationAction.START,
        order_id=order_id,
        op_no=op_no,
        actor="op-7",
        received_ts=T0 + timedelta(seconds=at),
    )


def command(
    action: OperationAction,
    wc: str,
    order_id: str | None = None,
    op_no: str | None = None,
    at: int = 0,
) -> OperationCommand:
    return OperationCommand(
        event_id=eid(action.value),
        work_center=wc,
        action=action,
        order_id=order_id,
        op_no=op_no,
        received_ts=T0 + timedelta(seconds=at),
    )


def machine_count(
    wc: str,
    good: int = 1,
    value: int | None = None,
    event_id: str | None = None,
    at: int = 0,
    scrap: int = 0,
) -> QuantityReported:
    cp = Checkpoint("plc1", f"{wc}/good", value) if value is not None else None
    return QuantityReported(
        event_id=event_id or eid("count"),
        work_center=wc,
        by=CountingSource.MACHINE,
        good=good,
        scrap={"machine": scrap} if scrap else {},
        checkpoint=cp,
        source="plc1",
        received_ts=T0 + timedelta(seconds=at),
    )


def operator_report(
    wc: str,
    order_id: str,
    op_no: str,
    good: int = 0,
    scrap: dict[str, int] | None = None,
    event_id: str | None = None,
    at: int = 0,
) -> QuantityReported:
    return QuantityReported(
        event_id=event_id or eid("report"),
        work_center=wc,
        by=CountingSource.OPERATOR,
        good=good,
        scrap=scrap or {},
        order_id=order_id,
        op_no=op_no,
        actor="op-7",
        received_ts=T0 + timedelta(seconds=at),
    )


def machine_state(wc: str, state: MachineState, at: int = 0) -> MachineStateChanged:
    return MachineStateChanged(
        event_id=eid("state"), work_center=wc, state=state, received_ts=T0 + timedelta(seconds=at)
    )
