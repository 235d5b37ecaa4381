"""After each commit: work-center state and alerts to MQTT, without blocking the writer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from mes_edge.dispatcher import CommittedBatch, Dispatcher
from mes_edge.domain import MemoryState


class StatePublisher(Protocol):
    """What we need of the MQTT publisher (non-blocking calls)."""

    def publish_state(self, site: str, work_center: str, payload: dict[str, Any]) -> None: ...

    def publish_alert(self, site: str, payload: dict[str, Any]) -> None: ...


def work_center_view(state: MemoryState, work_center: str) -> dict[str, Any]:
    """The state message of one work center: machine state and the running operation."""
    wc = state.work_center(work_center)
    out: dict[str, Any] = {
        "work_center": work_center,
        "machine_state": wc.machine_state.value if wc else "unknown",
        "since": wc.since.isoformat() if wc and wc.since else None,
        "operation": None,
        "ts": datetime.now(UTC).isoformat(),
    }
    if wc and wc.running:
        order_id, op_no = wc.running[0]
        order = state.order(order_id)
        op = order.op(op_no) if order else None
        if order and op:
            out["operation"] = {
                "order": order_id, "operation": op_no, "status": op.status.value,
                "material": order.material, "planned": op.planned_qty, "good": op.done.good,
                "scrap": op.done.scrap_total, "rework": op.done.rework, "unit": order.unit,
            }
    return out


class CommitPublisher:
    """Dispatcher listener: publishes the state of every touched work center, and alerts."""

    def __init__(self, site: str, dispatcher: Dispatcher, publisher: StatePublisher) -> None:
        self.site = site
        self.dispatcher = dispatcher
        self.publisher = publisher

    def __call__(self, batch: CommittedBatch) -> None:
        for wc in sorted(batch.touched_work_centers()):
            self.publisher.publish_state(self.site, wc, work_center_view(self.dispatcher.state, wc))
        for r in batch.rejections:
            self.publisher.publish_alert(self.site, {
                "kind": "rejected_event", "work_center": r.work_center, "event_id": r.event_id,
                "code": r.reason_code, "reason": r.reason, "source": r.source})
        for n in batch.notices:
            self.publisher.publish_alert(self.site, {
                "kind": "notice", "severity": n.severity, "work_center": n.work_center,
                "message": n.message})
