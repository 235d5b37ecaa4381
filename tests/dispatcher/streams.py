"""A deterministic, realistic stream of line events (with bad ones and redeliveries)."""

from __future__ import annotations

import random
from datetime import timedelta

from mes_edge.domain import (
    Checkpoint,
    CountingSource,
    Event,
    MachineState,
    MachineStateChanged,
    OperationAction,
    OperationCommand,
    OperationSpec,
    OrderReceived,
    OrderSpec,
    QuantityReported,
)
from tests.factory import T0


def line_stream(seed: int, n: int) -> list[Event]:
    """About `n` events: orders, starts, machine counts, operator reports, state changes,
    refused events (bad sequence, unknown order), and redeliveries of earlier ids."""
    rng = random.Random(seed)
    out: list[Event] = []
    counter = {"PRESS-01": 0, "CNC-02": 0}
    t = 0

    def ts() -> dict[str, object]:
        nonlocal t
        t += 1
        return {"received_ts": T0 + timedelta(milliseconds=100 * t)}

    orders = [f"2{i:03d}" for i in range(8)]
    for oid in orders:
        spec = OrderSpec(order_id=oid, revision=1, material="PART", quantity=200, operations=(
            OperationSpec("0010", "PRESS-01"), OperationSpec("0020", "CNC-02"),
            OperationSpec("0030", "ASSY-03")))
        out.append(OrderReceived(event_id=f"order/{oid}/1", spec=spec, **ts()))  # type: ignore[arg-type]
    current = 0
    while len(out) < n:
        oid = orders[current % len(orders)]
        for wc, op in (("PRESS-01", "0010"), ("CNC-02", "0020")):
            out.append(OperationCommand(event_id=f"start/{oid}/{op}/{len(out)}", work_center=wc,
                                        action=OperationAction.START, order_id=oid, op_no=op,
                                        **ts()))  # type: ignore[arg-type]
        out.append(MachineStateChanged(event_id=f"state/{len(out)}", work_center="PRESS-01",
                                       state=MachineState.RUNNING, **ts()))  # type: ignore[arg-type]
        for _ in range(rng.randint(20, 60)):
            wc = rng.choice(["PRESS-01", "PRESS-01", "CNC-02"])
            step = rng.randint(1, 3)
            counter[wc] += step
            good = step if rng.random() > 0.1 else 0
            out.append(QuantityReported(
                event_id=f"plc/{wc}/0/{counter[wc]}", work_center=wc, by=CountingSource.MACHINE,
                good=good, scrap={} if good else {"machine": step},
                checkpoint=Checkpoint("plc", wc, counter[wc]), **ts()))  # type: ignore[arg-type]
            r = rng.random()
            if r < 0.05:
                out.append(QuantityReported(event_id=f"report/{len(out)}", work_center="ASSY-03",
                                            by=CountingSource.OPERATOR, good=rng.randint(1, 4),
                                            order_id=oid, op_no="0030", actor="op-1", **ts()))  # type: ignore[arg-type]
            elif r < 0.08:
                out.append(OperationCommand(event_id=f"start/{oid}/0030/{len(out)}",
                                            work_center="ASSY-03", action=OperationAction.START,
                                            order_id=oid, op_no="0030", **ts()))  # type: ignore[arg-type]
            elif r < 0.10:
                out.append(OperationCommand(event_id=f"bad/{len(out)}", work_center="ASSY-03",
                                            action=OperationAction.START, order_id="NOPE",
                                            op_no="0010", **ts()))  # type: ignore[arg-type]
            elif r < 0.13 and len(out) > 10:
                out.append(out[rng.randrange(len(out))])  # an at-least-once redelivery
        out.append(MachineStateChanged(event_id=f"state/{len(out)}", work_center="PRESS-01",
                                       state=MachineState.DOWN, **ts()))  # type: ignore[arg-type]
        for wc, op in (("PRESS-01", "0010"), ("CNC-02", "0020")):
            out.append(OperationCommand(event_id=f"pause/{oid}/{op}/{len(out)}", work_center=wc,
                                        action=OperationAction.PAUSE, **ts()))  # type: ignore[arg-type]
        current += 1
    return out[:n]
