"""Work-center rules: what runs where, machine states and the downtimes they open and close."""

from __future__ import annotations

from datetime import datetime, timedelta

from mes_edge.domain.events import DowntimeReasonGiven, MachineStateChanged, OperationCommand
from mes_edge.domain.model import (
    STOP_STATES,
    CountingSource,
    Downtime,
    MachineState,
    WorkCenterState,
    evolve,
)
from mes_edge.domain.plant import Decision, PlantRules, StateView
from mes_edge.domain.rejections import RejectCode, Rejection

#: How long after a downtime ended its reason may still be set or changed.
REASON_WINDOW = timedelta(hours=24)


def _not_before(ts: datetime, wc: WorkCenterState) -> datetime:
    """The time a state change takes effect: never before the current state began, so the
    timeline never goes backwards (a late, older source time starts at the current start)."""
    return wc.since if wc.since is not None and ts < wc.since else ts


def work_center_state(view: StateView, decision: Decision, work_center: str) -> WorkCenterState:
    """The work center as this decision sees it (a fresh one if nothing happened there yet)."""
    found = decision.work_centers.get(work_center) or view.work_center(work_center)
    return found if found is not None else WorkCenterState(work_center=work_center)


def known_work_center(rules: PlantRules, work_center: str) -> None:
    """Raise unless the work center is configured."""
    if work_center not in rules.work_centers:
        raise Rejection(RejectCode.UNKNOWN_WORK_CENTER, f"unknown work center {work_center!r}")


def running_on(view: StateView, decision: Decision, work_center: str) -> tuple[str, str] | None:
    """The (order, op) running on a work center, if any."""
    wc = work_center_state(view, decision, work_center)
    return wc.running[0] if wc.running else None


def occupy_work_center(view: StateView, decision: Decision, work_center: str,
                       order_id: str, op_no: str) -> None:
    """Mark an operation as the one running on the work center (one at a time)."""
    wc = work_center_state(view, decision, work_center)
    if wc.running and wc.running[0] != (order_id, op_no):
        o, n = wc.running[0]
        raise Rejection(RejectCode.WORK_CENTER_BUSY,
                        f"{work_center} is running {o}/{n}: pause or complete it first")
    decision.work_centers[work_center] = wc.with_(running=((order_id, op_no),))


def release_work_center(view: StateView, decision: Decision, work_center: str,
                        order_id: str, op_no: str) -> None:
    """The operation no longer runs on the work center."""
    wc = work_center_state(view, decision, work_center)
    running = tuple(r for r in wc.running if r != (order_id, op_no))
    if running != wc.running:
        decision.work_centers[work_center] = wc.with_(running=running)


def change_machine_state(view: StateView, rules: PlantRules, event: MachineStateChanged,
                         decision: Decision) -> None:
    """Record the new state; leaving RUNNING opens a downtime, returning to it closes it."""
    known_work_center(rules, event.work_center)
    wc = work_center_state(view, decision, event.work_center)
    if wc.machine_state == event.state:
        return
    ts = _not_before(event.ts, wc)
    recent = wc.recent_downtimes
    if wc.downtime is not None:
        closed = evolve(wc.downtime, {"end": ts})
        decision.downtimes.append(closed)
        recent = (*recent, closed)[-rules.recent_downtimes_kept:]
    downtime = None
    if event.state in STOP_STATES:
        downtime = Downtime(downtime_id=event.event_id, work_center=event.work_center,
                            state=event.state, start=ts)
        decision.downtimes.append(downtime)
    decision.work_centers[event.work_center] = wc.with_(
        machine_state=event.state, since=ts, downtime=downtime, recent_downtimes=recent)


def give_downtime_reason(view: StateView, rules: PlantRules, event: DowntimeReasonGiven,
                         decision: Decision) -> None:
    """Attach an operator's reason to the open downtime, or to a given recent one."""
    known_work_center(rules, event.work_center)
    if rules.downtime_reasons and event.reason not in rules.downtime_reasons:
        raise Rejection(RejectCode.UNKNOWN_REASON, f"unknown downtime reason {event.reason!r}")
    wc = work_center_state(view, decision, event.work_center)
    candidates = ([wc.downtime] if wc.downtime else []) + list(reversed(wc.recent_downtimes))
    if event.downtime_id is None:
        target = next((d for d in candidates if d.reason is None), None)
    else:
        target = next((d for d in candidates if d.downtime_id == event.downtime_id), None)
    if target is None:
        raise Rejection(RejectCode.BAD_STATE,
                        f"{event.work_center} has no downtime waiting for a reason")
    if target.end is not None and event.ts - target.end > REASON_WINDOW:
        raise Rejection(RejectCode.BAD_STATE,
                        f"downtime {target.downtime_id} ended more than 24 h ago: its reason "
                        "can no longer be changed")
    updated = evolve(target, {"reason": event.reason, "reason_by": event.actor})
    decision.downtimes.append(updated)
    if wc.downtime is not None and wc.downtime.downtime_id == target.downtime_id:
        wc = wc.with_(downtime=updated)
    else:
        wc = wc.with_(recent_downtimes=tuple(
            updated if d.downtime_id == target.downtime_id else d for d in wc.recent_downtimes))
    decision.work_centers[event.work_center] = wc


def pause_downtime(view: StateView, rules: PlantRules, decision: Decision,
                   event: OperationCommand) -> None:
    """A pause at a station: the work center is down for the reason the operator gave.

    At an operator-counted station (no state tag) the pause opens the downtime itself, with
    its reason; at a machine-counted one the reason goes to the machine's open downtime.
    """
    if event.reason is not None and rules.downtime_reasons and (
            event.reason not in rules.downtime_reasons):
        raise Rejection(RejectCode.UNKNOWN_REASON, f"unknown downtime reason {event.reason!r}")
    wc = work_center_state(view, decision, event.work_center)
    if rules.work_centers.get(event.work_center) == CountingSource.OPERATOR:
        if wc.downtime is not None:
            return
        downtime = Downtime(downtime_id=event.event_id, work_center=event.work_center,
                            state=MachineState.DOWN, start=_not_before(event.ts, wc),
                            reason=event.reason,
                            reason_by=event.actor if event.reason else None)
        decision.downtimes.append(downtime)
        decision.work_centers[event.work_center] = wc.with_(
            machine_state=MachineState.DOWN, since=downtime.start, downtime=downtime)
    elif event.reason is not None and wc.downtime is not None and wc.downtime.reason is None:
        updated = evolve(wc.downtime, {"reason": event.reason, "reason_by": event.actor})
        decision.downtimes.append(updated)
        decision.work_centers[event.work_center] = wc.with_(downtime=updated)


def end_pause_downtime(view: StateView, rules: PlantRules, decision: Decision,
                       event: OperationCommand) -> None:
    """Work goes on at an operator-counted station: its pause downtime ends."""
    if rules.work_centers.get(event.work_center) != CountingSource.OPERATOR:
        return
    wc = work_center_state(view, decision, event.work_center)
    if wc.downtime is None:
        return
    ts = _not_before(event.ts, wc)
    closed = evolve(wc.downtime, {"end": ts})
    decision.downtimes.append(closed)
    # Kept with or without a reason: a supervisor may still set or change it (24 h).
    recent = (*wc.recent_downtimes, closed)[-rules.recent_downtimes_kept:]
    decision.work_centers[event.work_center] = wc.with_(
        machine_state=MachineState.RUNNING, since=ts, downtime=None,
        recent_downtimes=recent)
