"""Alerts (issue 11): conditions judged from the committed state, raised, cleared and
acknowledged durably, told to MQTT and to webhooks.

What raises an alert (thresholds in `alerts.thresholds`, per work center in
`work_centers[].alerts`):
- order_late: an open order with a due date whose projected finish (now + the remaining
  quantity of each open operation x its ideal cycle) is after the due date; `error` once the
  due date has passed. Without an ideal cycle the projection is unknown and only an order past
  its due date is late.
- operation_stalled: an operation running with no count for `stalled_cycles` x its ideal cycle
  (`stalled_minutes` without one); not while the machine is down (that is machine_down).
- scrap_rate: scrap / (good + scrap) above `scrap_rate_pct` over the last
  `scrap_window_minutes`, judged only with at least `scrap_min_quantity` parts in the window.
  The window lives in memory, fed by commits, and is read back from the event log at start
  (counts committed within the longest window), so it survives a restart.
- machine_down: down longer than `down_minutes`; with `down_error_minutes` a warning first and an
  error once down that long.
- reason_missing: a downtime longer than the work center's `micro_stop_s` still without a reason
  `reason_missing_minutes` after it began.
- device_disconnected: a device not connected for `disconnected_seconds`.
- delivery_error: the ERP refused a pushed confirmation (until a supervisor retries or skips it).
- unassigned_production: unassigned production waiting `unassigned_minutes` for a supervisor.

Each condition has a dedupe key (kind + subject): while it holds, one alert row stays active;
when it ends the row is cleared; if it comes back a new row is raised. Acknowledging does not
clear: it records who saw it and when.

Severity follows the condition while the alert is active (ISA-18.2: a changed alarm is
re-annunciated). A condition that becomes more severe (an order late by projection that is now
past its due date, a machine down past `down_error_minutes`) escalates the same row: the new
severity, message and details, `escalated_at`, told as `escalated` on MQTT (events and the
retained list) and to the webhooks like a raise, and the acknowledgement is withdrawn: who saw the
warning has not seen the error, so the board and the tablet ask again (the superseded
acknowledgement stays in the row's `severity_changes`). A condition that becomes less severe (the
ERP moved the due date out) lowers the severity and is told as `deescalated`; the
acknowledgement stands, since what was seen was worse.

The judging runs in one owned task, woken by commits (event-based kinds react at once) and every
`evaluate_every_s` (time-based kinds).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mes_edge.app.progress import progress_rules
from mes_edge.config import Settings
from mes_edge.config.settings import AlertThresholds
from mes_edge.dispatcher import CommittedBatch, Dispatcher
from mes_edge.domain import MachineState, MemoryState, OperationStatus, OrderStatus
from mes_edge.domain.calendar import planned_intervals
from mes_edge.domain.events import QuantityReported
from mes_edge.erp.webhooks import WebhookWorker
from mes_edge.store import Store, feed
from mes_edge.store import alerts as alert_store

log = logging.getLogger(__name__)

#: Severities, most severe first.
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

#: Orders in these states can be late.
OPEN_ORDERS = frozenset({OrderStatus.RELEASED, OrderStatus.IN_PROGRESS, OrderStatus.ON_HOLD})
OPEN_OPS = frozenset({OperationStatus.WAITING, OperationStatus.READY, OperationStatus.RUNNING,
                      OperationStatus.PAUSED, OperationStatus.ON_HOLD})
DOWNTIME_STATES = frozenset({MachineState.DOWN, MachineState.IDLE, MachineState.SETUP})
#: Most count events kept per work center for the scrap-rate window (bounded memory).
SCRAP_WINDOW_EVENTS = 10_000
#: The scrap window restored at start reads counts committed this much before the window too:
#: a count is committed after its source time, but a source clock may run a little ahead.
SCRAP_RESTORE_SLACK = timedelta(minutes=5)


class AlertKind(enum.StrEnum):
    ORDER_LATE = "order_late"
    OPERATION_STALLED = "operation_stalled"
    SCRAP_RATE = "scrap_rate"
    MACHINE_DOWN = "machine_down"
    REASON_MISSING = "reason_missing"
    DEVICE_DISCONNECTED = "device_disconnected"
    DELIVERY_ERROR = "delivery_error"
    UNASSIGNED = "unassigned_production"


@dataclass(frozen=True)
class Condition:
    """A condition that should have an active alert."""

    key: str
    kind: AlertKind
    severity: str  # info | warning | error
    work_center: str | None
    subject: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class AlertPublisher(Protocol):
    """What we need of the MQTT publisher (non-blocking calls)."""

    def publish_alert(self, site: str, payload: dict[str, Any]) -> None: ...

    def publish(self, topic: str, payload: dict[str, Any], qos: int = 1,
                retain: bool = False) -> None: ...


def alert_view(row: dict[str, Any]) -> dict[str, Any]:
    """An alert as the API, MQTT and webhooks show it (JSON-ready)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    changes = row.get("severity_changes") or []
    return {
        "id": int(row["id"]), "key": row["dedupe_key"], "kind": row["kind"],
        "severity": row["severity"],
        "raised_severity": changes[0]["from"] if changes else row["severity"],
        "escalated_at": iso(row.get("escalated_at")),
        "severity_changes": changes,
        "work_center": row["work_center"],
        "subject": row["subject"], "message": row["message"], "details": row["details"],
        "raised_at": iso(row["raised_at"]), "cleared_at": iso(row["cleared_at"]),
        "acked_by": row["acked_by"], "acked_at": iso(row["acked_at"]),
        "acked_station": row.get("acked_station"),
        "active": row["cleared_at"] is None,
    }


class ScrapWindows:
    """Good and scrap counts per work center over a rolling window (from committed events).

    Entries are kept in commit order with their event's seq, so the window restored from the
    event log at start merges with counts committed meanwhile without counting one twice."""

    def __init__(self) -> None:
        self._counts: dict[str, deque[tuple[datetime, int, int, int]]] = {}
        #: The newest seq read from the event log: a commit told after the read is not added
        #: twice (the single writer commits in seq order, so everything up to it was read).
        self._restored_upto = 0

    def add(self, work_center: str, ts: datetime, good: int, scrap: int, seq: int = 0) -> None:
        if seq and seq <= self._restored_upto:
            return
        if good or scrap:
            self._counts.setdefault(work_center, deque(maxlen=SCRAP_WINDOW_EVENTS)).append(
                (ts, good, scrap, seq))

    def restore(self, counts: Iterable[tuple[int, str, datetime, int, int]]) -> None:
        """Merge counts read from the event log, (seq, work center, ts, good, scrap), with
        those already added: one entry per seq, in commit order."""
        merged: dict[str, dict[int, tuple[datetime, int, int, int]]] = {}
        for seq, wc, ts, good, scrap in counts:
            self._restored_upto = max(self._restored_upto, seq)
            if good or scrap:
                merged.setdefault(wc, {})[seq] = (ts, good, scrap, seq)
        for wc, found in merged.items():
            for entry in self._counts.get(wc, ()):
                found[entry[3]] = entry
            self._counts[wc] = deque((found[s] for s in sorted(found)),
                                     maxlen=SCRAP_WINDOW_EVENTS)

    def totals(self, work_center: str, since: datetime) -> tuple[int, int]:
        """(good, scrap) counted at or after `since` (older entries are forgotten)."""
        window = self._counts.get(work_center)
        if not window:
            return 0, 0
        while window and window[0][0] < since:
            window.popleft()
        # An entry whose time is older than one behind it (clocks of different sources) is
        # not counted either: the window is exactly [since, now].
        inside = [(g, s) for ts, g, s, _ in window if ts >= since]
        return sum(g for g, _ in inside), sum(s for _, s in inside)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


class AlertRules:
    """The pure part: which conditions hold for a state, at a moment."""

    def _in_planned_time(self, work_center: str, start: datetime, end: datetime) -> bool:
        """Whether [start, end) overlaps the work center's planned time (no calendar: always)."""
        plan = self.progress.work_centers.get(work_center)
        if plan is None or plan.calendar is None or end <= start:
            return True
        return bool(planned_intervals(plan.calendar, self.progress.timezone, start, end))

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base = settings.alerts.thresholds
        self.thresholds = {wc.id: base.merged(wc.alerts) for wc in settings.work_centers}
        self.ideal_cycle = {wc.id: wc.ideal_cycle_s for wc in settings.work_centers}
        self.micro_stop = {wc.id: wc.micro_stop_s for wc in settings.work_centers}
        #: Calendars: a stop wholly outside planned time (a break, no shift) needs no reason.
        self.progress = progress_rules(settings)
        self.plant = base
        #: device name -> the work centers whose rules read it
        self.device_work_centers: dict[str, list[str]] = {}
        for rule in settings.rules:
            refs = [c.device for c in rule.counters] + [t.device for t in rule.triggers]
            if rule.state is not None:
                refs.append(rule.state.device)
            for device in refs:
                wcs = self.device_work_centers.setdefault(device, [])
                if rule.work_center not in wcs:
                    wcs.append(rule.work_center)

    def of(self, work_center: str | None) -> AlertThresholds:
        return self.thresholds.get(work_center or "", self.plant)

    def conditions(self, state: MemoryState, now: datetime, scrap: ScrapWindows,
                   disconnected_since: dict[str, datetime],
                   delivery_errors: dict[str, dict[str, Any]]) -> list[Condition]:
        out: list[Condition] = []
        out += self._orders(state, now)
        for wc_id in self.thresholds:
            out += self._work_center(state, wc_id, now, scrap)
        for device, since in disconnected_since.items():
            wcs = self.device_work_centers.get(device, [])
            limit = self.of(wcs[0] if wcs else None).disconnected_seconds
            if (now - since).total_seconds() >= limit:
                out.append(Condition(
                    f"device_disconnected:{device}", AlertKind.DEVICE_DISCONNECTED, "error",
                    wcs[0] if wcs else None, device,
                    f"device {device} disconnected for more than {_minutes(limit)}",
                    {"device": device, "since": since.isoformat(), "work_centers": wcs}))
        for cid, err in delivery_errors.items():
            out.append(Condition(
                f"delivery_error:{cid}", AlertKind.DELIVERY_ERROR, "error",
                err.get("work_center"), cid,
                f"the ERP refused confirmation {cid} of work order {err.get('order_id')}: "
                f"{err.get('message')}",
                {k: err.get(k) for k in ("order_id", "http_status", "message")}))
        return out

    def _orders(self, state: MemoryState, now: datetime) -> list[Condition]:
        out: list[Condition] = []
        # Only open orders with an unfinished operation and a due date can be late: the WIP
        # index knows them, so closed and finished orders kept in memory are never walked.
        for order_id in state.index.open_orders_with_due():
            order = state.order(order_id)
            if order is None or order.due is None or order.status not in OPEN_ORDERS:
                continue
            ops = [op for op in order.operations if op.status in OPEN_OPS]
            if not ops or not self.of(ops[0].work_center).late_enabled:
                continue
            remaining = 0.0
            known = True
            for op in ops:
                cycle = op.ideal_cycle_s or self.ideal_cycle.get(op.work_center)
                left = max(0, op.planned_qty - op.done.good)
                if cycle is None:
                    known = known and left == 0
                else:
                    remaining += left * cycle
            projected = now + timedelta(seconds=remaining) if known else None
            overdue = now > order.due
            if not overdue and (projected is None or projected <= order.due):
                continue
            wc = ops[0].work_center
            message = (f"work order {order.order_id} is past its due date"
                       if overdue else f"work order {order.order_id} will finish after its "
                       f"due date (projected {projected:%Y-%m-%d %H:%M} UTC)")
            out.append(Condition(
                f"order_late:{order.order_id}", AlertKind.ORDER_LATE,
                "error" if overdue else "warning", wc, order.order_id, message,
                {"order_id": order.order_id, "due": order.due.isoformat(),
                 "projected_finish": projected.isoformat() if projected else None}))
        return out

    def _work_center(self, state: MemoryState, wc_id: str, now: datetime,
                     scrap: ScrapWindows) -> list[Condition]:
        t = self.thresholds[wc_id]
        out: list[Condition] = []
        wc = state.work_center(wc_id)
        good, bad = scrap.totals(wc_id, now - timedelta(minutes=t.scrap_window_minutes))
        if good + bad >= t.scrap_min_quantity and bad * 100 > t.scrap_rate_pct * (good + bad):
            rate = round(bad * 100 / (good + bad), 1)
            out.append(Condition(
                f"scrap_rate:{wc_id}", AlertKind.SCRAP_RATE, "warning", wc_id, wc_id,
                f"{wc_id}: scrap rate {rate} % over the last {t.scrap_window_minutes:g} min "
                f"(threshold {t.scrap_rate_pct:g} %)",
                {"rate_pct": rate, "good": good, "scrap": bad,
                 "window_minutes": t.scrap_window_minutes}))
        if wc is None:
            return out
        down = wc.machine_state == MachineState.DOWN
        down_s = (now - wc.since).total_seconds() if down and wc.since is not None else None
        if down_s is not None and down_s >= t.down_minutes * 60:
            error_after = t.down_error_minutes
            severe = error_after is None or down_s >= error_after * 60
            minutes = t.down_minutes if error_after is None or not severe else max(
                t.down_minutes, error_after)
            out.append(Condition(
                f"machine_down:{wc_id}", AlertKind.MACHINE_DOWN,
                "error" if severe else "warning", wc_id, wc_id,
                f"{wc_id} has been down for more than {minutes:g} min",
                {"since": wc.since.isoformat() if wc.since else None, "minutes": minutes}))
        missing_after = max(self.micro_stop[wc_id], t.reason_missing_minutes * 60)
        for dt in ([wc.downtime] if wc.downtime else []) + list(wc.recent_downtimes):
            if dt.reason is not None or dt.state not in DOWNTIME_STATES:
                continue
            length = ((dt.end or now) - dt.start).total_seconds()
            if length < self.micro_stop[wc_id] or (now - dt.start).total_seconds() < (
                    missing_after):
                continue
            if not self._in_planned_time(wc_id, dt.start, dt.end or now):
                continue
            out.append(Condition(
                f"reason_missing:{dt.downtime_id}", AlertKind.REASON_MISSING, "warning", wc_id,
                dt.downtime_id, f"{wc_id}: a stop since {dt.start:%H:%M} UTC has no reason",
                {"downtime_id": dt.downtime_id, "start": dt.start.isoformat(),
                 "end": dt.end.isoformat() if dt.end else None, "state": dt.state.value}))
        for order_id, op_no in wc.running:
            order = state.order(order_id)
            op = order.op(op_no) if order else None
            if op is None or op.status != OperationStatus.RUNNING or down:
                continue
            ref = op.last_report or op.actual_start
            if ref is None:
                continue
            cycle = op.ideal_cycle_s or self.ideal_cycle.get(wc_id)
            limit = t.stalled_cycles * cycle if cycle else t.stalled_minutes * 60
            if (now - ref).total_seconds() >= limit:
                out.append(Condition(
                    f"operation_stalled:{order_id}/{op_no}", AlertKind.OPERATION_STALLED,
                    "warning", wc_id, f"{order_id}/{op_no}",
                    f"{order_id}/{op_no} on {wc_id}: running with no count for more than "
                    f"{_minutes(limit)}",
                    {"order_id": order_id, "operation": op_no, "last_count": ref.isoformat()}))
        if not wc.unassigned.is_zero and wc.unassigned_since is not None and (
                now - wc.unassigned_since).total_seconds() >= t.unassigned_minutes * 60:
            q = wc.unassigned
            out.append(Condition(
                f"unassigned_production:{wc_id}", AlertKind.UNASSIGNED, "warning", wc_id, wc_id,
                f"{wc_id}: unassigned production waits for a supervisor "
                f"(good {q.good}, scrap {q.scrap_total}, rework {q.rework})",
                {"good": q.good, "scrap": q.scrap_total, "rework": q.rework,
                 "since": wc.unassigned_since.isoformat()}))
        return out


class AlertEngine:
    """Owns the alert task: judges the conditions, writes changes, tells MQTT and webhooks."""

    def __init__(self, settings: Settings, store: Store, dispatcher: Dispatcher, *,
                 publisher: AlertPublisher | None = None,
                 health: Callable[[], dict[str, Any]] | None = None,
                 webhooks: WebhookWorker | None = None,
                 check_deliveries: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.site = settings.site
        self.store = store
        self.dispatcher = dispatcher
        self.publisher = publisher
        self.health = health
        self.webhooks = webhooks
        self.check_deliveries = check_deliveries
        self.clock = clock
        self.rules = AlertRules(settings)
        self.scrap = ScrapWindows()
        self.every = settings.alerts.evaluate_every_s
        self.devices = [d.name for d in settings.devices]
        #: key -> the active alert row
        self.active: dict[str, dict[str, Any]] = {}
        self._disconnected: dict[str, datetime] = {}
        self._delivery_errors: dict[str, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.evaluations = 0
        #: The scrap window still has to be read from the event log (done at start, retried
        #: by the next evaluation if the database was away).
        self._restore_scrap = True

    async def start(self) -> None:
        """Load the active alerts and the scrap windows, publish the retained lists, start
        the task."""
        for row in await alert_store.active(self.store):
            self.active[row["dedupe_key"]] = row
        with contextlib.suppress(Exception):  # logged there; the next evaluation retries
            await self.restore_scrap_window()
        for wc in self.settings.work_centers:
            self._publish_current(wc.id)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alerts")

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def restore_scrap_window(self, now: datetime | None = None) -> int:
        """Fill the scrap windows from the counts of the event log committed within the
        longest window (plus a slack for source clocks), so a restart neither forgets a high
        scrap rate nor judges a fresh window as empty; returns how many counts were read."""
        now = now or datetime.now(UTC)  # commit times are the wall clock's
        longest = max([self.rules.plant.scrap_window_minutes]
                      + [t.scrap_window_minutes for t in self.rules.thresholds.values()])
        try:
            counts = await alert_store.recent_counts(
                self.store, now - timedelta(minutes=longest) - SCRAP_RESTORE_SLACK,
                [wc.id for wc in self.settings.work_centers], SCRAP_WINDOW_EVENTS)
        except Exception:
            log.exception("reading the scrap-rate window from the event log failed; retrying")
            raise
        self.scrap.restore(counts)
        self._restore_scrap = False
        return len(counts)

    def on_commit(self, batch: CommittedBatch) -> None:
        """Dispatcher listener: counts feed the scrap window; any change is judged at once."""
        for seq, event in batch.events:
            if isinstance(event, QuantityReported):
                self.scrap.add(event.work_center, event.source_ts or event.received_ts,
                               event.good, sum(event.scrap.values()), seq)
        if batch.events or batch.work_centers or batch.orders:
            self._wake.set()

    def on_delivery_error(self, alert: dict[str, Any]) -> None:
        """PushWorker listener: the ERP refused a confirmation."""
        cid = alert.get("confirmation_id")
        if cid:
            self._delivery_errors[str(cid)] = alert
            self._wake.set()

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as the wake is set (CPython gh-86296), and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.evaluate()
            except Exception:  # the database may be away: judge again next round
                log.exception("alert evaluation failed; retrying")

    def _watch_devices(self, now: datetime) -> None:
        health = self.health() if self.health is not None else {}
        for device in self.devices:
            state = health.get(device, {}).get("state")
            if state == "connected":
                self._disconnected.pop(device, None)
            else:
                self._disconnected.setdefault(device, now)

    async def _refresh_delivery_errors(self) -> None:
        if not self.check_deliveries:
            return
        rows = await feed.deliveries(self.store, state="error", limit=1000)
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            found[r.confirmation_id] = {"work_center": r.work_center, "order_id": r.order_id,
                                        "http_status": r.http_status, "message": r.message}
        self._delivery_errors = found

    async def evaluate(self, now: datetime | None = None) -> None:
        """Judge every condition now; raise the new ones, escalate (or lower) those whose
        severity changed, clear those that ended."""
        async with self._lock:
            if self._restore_scrap:
                await self.restore_scrap_window()
            now = now or self.clock()
            self._watch_devices(now)
            await self._refresh_delivery_errors()
            wanted = {c.key: c for c in self.rules.conditions(
                self.dispatcher.state, now, self.scrap, self._disconnected,
                self._delivery_errors)}
            touched: set[str | None] = set()
            for key, cond in wanted.items():
                if key in self.active:  # still holds: escalate (or lower) if its severity moved
                    if await self._change_severity(self.active[key], cond, now):
                        touched.add(self.active[key]["work_center"])
                    continue
                row = await alert_store.insert(self.store, {
                    "dedupe_key": key, "kind": cond.kind.value, "severity": cond.severity,
                    "work_center": cond.work_center, "subject": cond.subject,
                    "message": cond.message, "details": cond.details, "raised_at": now,
                }, self._outbox("raised", now))
                self.active[key] = row
                self._told("raised", row)
                touched.add(cond.work_center)
            for key in [k for k in self.active if k not in wanted]:
                old = self.active[key]
                cleared = await alert_store.clear(self.store, int(old["id"]), now,
                                                  self._outbox("cleared", now))
                del self.active[key]  # only once the clearing is committed
                if cleared is not None:
                    self._told("cleared", cleared)
                touched.add(old["work_center"])
            for wc in touched:
                if wc is not None:
                    self._publish_current(wc)
            self.evaluations += 1

    async def _change_severity(self, row: dict[str, Any], cond: Condition,
                               now: datetime) -> bool:
        """Escalate (or lower) an active alert whose condition changed severity; True if it
        changed."""
        if cond.severity == row["severity"]:
            return False
        escalate = SEVERITY_RANK.get(cond.severity, 3) < SEVERITY_RANK.get(row["severity"], 3)
        event = "escalated" if escalate else "deescalated"
        changed = await alert_store.change_severity(
            self.store, int(row["id"]), cond.severity, cond.message, cond.details, now,
            self._outbox(event, now), escalate=escalate)
        if changed is None:  # the row changed meanwhile (not by this engine): take it as it is
            fresh = await alert_store.get(self.store, int(row["id"]))
            if fresh is None or fresh["cleared_at"] is not None:
                self.active.pop(cond.key, None)
            else:
                self.active[cond.key] = fresh
            return False
        self.active[cond.key] = changed
        self._told(event, changed)
        return True

    async def acknowledge(self, alert_id: int, by: str, *,
                          station: str | None = None) -> dict[str, Any] | None:
        """Record who acknowledged an alert, and at which station tablet (None: elsewhere);
        None if there is no such alert; acknowledging twice keeps the first."""
        async with self._lock:
            now = self.clock()
            done = await alert_store.acknowledge(self.store, alert_id, by, now,
                                                 self._outbox("acknowledged", now),
                                                 station=station)
            if done is None:
                return await alert_store.get(self.store, alert_id)
            row = done
            if row["cleared_at"] is None:
                self.active[row["dedupe_key"]] = row
            self._told("acknowledged", row)
            if row["work_center"] is not None:
                self._publish_current(row["work_center"])
            return row

    def current(self, work_center: str | None = None) -> list[dict[str, Any]]:
        """Active alerts (views), most severe and oldest first."""
        rows = [r for r in self.active.values()
                if work_center is None or r["work_center"] == work_center]
        rows.sort(key=lambda r: (SEVERITY_RANK.get(r["severity"], 3), r["id"]))
        return [alert_view(r) for r in rows]

    def _outbox(self, event: str, now: datetime) -> alert_store.Outbox:
        destinations = [d.name for d in self.settings.alerts.webhooks]

        def build(row: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
            payload = {"type": f"alert.{event}", "timestamp": now.isoformat(),
                       "data": {"site": self.site, **alert_view(row)}}
            return [(d, f"msg_{uuid.uuid4().hex}", payload) for d in destinations]

        return build

    def _told(self, event: str, row: dict[str, Any]) -> None:
        log.log(logging.WARNING if event in ("raised", "escalated") else logging.INFO,
                "alert %s: %s",
                event, row["message"])
        if self.webhooks is not None:
            self.webhooks.wake()
        if self.publisher is not None:
            self.publisher.publish_alert(self.site, {"event": event, "site": self.site,
                                                     "alert": alert_view(row)})

    def _publish_current(self, work_center: str) -> None:
        if self.publisher is None:
            return
        self.publisher.publish(
            f"mes/{self.site}/{work_center}/alerts",
            {"work_center": work_center, "alerts": self.current(work_center),
             "ts": self.clock().isoformat()}, qos=1, retain=True)
