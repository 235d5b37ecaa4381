"""The history task of the service: WIP snapshots and retention with export (issue 14), and
the retention of delivered alert webhooks (issue 11)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mes_edge.app.snapshot_job import snapshot_in_child
from mes_edge.config.settings import HistorySettings
from mes_edge.dispatcher.replay import take_snapshot
from mes_edge.domain import PlantRules
from mes_edge.store import Store, history
from mes_edge.store import alerts as alert_store

log = logging.getLogger(__name__)


async def history_round(store: Store, rules: PlantRules, cfg: HistorySettings, *,
                        snapshot: bool = True, child_url: str | None = None
                        ) -> tuple[int | None, int, int]:
    """One round: a snapshot (when due), then retention; (snapshot seq, events purged,
    refusals purged). With `child_url` (the service) the snapshot is taken by a child process
    on that database, so the replay's memory never lands in the caller's heap."""
    seq = None
    if snapshot and child_url is not None:
        done = await snapshot_in_child(child_url, rules, timeout_s=cfg.snapshot_timeout_s)
        seq = done.seq
        log.info("WIP snapshot process %d: %s in %.1f s, peak %.0f MB", done.child_pid,
                 f"after event {seq}" if seq is not None else "no new events", done.seconds,
                 done.child_max_rss_mb)
    elif snapshot:
        seq = await take_snapshot(store, rules)
    export = Path(cfg.export_dir) if cfg.export_dir else None
    purged_events = 0
    files: list[str] = []
    if cfg.events_days is not None or cfg.events_days_by_kind:
        purged_events, files = await history.purge_events(
            store, keep_days=cfg.events_days, keep_days_by_kind=cfg.events_days_by_kind,
            export_dir=export)
    purged_rej, more = await history.purge_rejections(
        store, keep_days=cfg.rejections_days, export_dir=export)
    if purged_events or purged_rej:
        log.info("retention: purged %d events and %d refused events, exported to %s",
                 purged_events, purged_rej, ", ".join(files + more))
    return seq, purged_events, purged_rej


async def purge_webhooks(store: Store, keep_days: float | None,
                         now: datetime | None = None) -> int:
    """Delete the alert webhook messages delivered more than `keep_days` ago (None: keep
    them); undelivered ones stay whatever their age. Returns how many were deleted."""
    if keep_days is None:
        return 0
    cut = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    purged = await alert_store.purge_webhooks(store, cut)
    if purged:
        log.info("retention: purged %d alert webhook messages delivered before %s",
                 purged, cut.isoformat())
    return purged


async def history_loop(store: Store, rules: PlantRules, cfg: HistorySettings, *,
                       database_url: str, webhook_keep_days: float | None = None) -> None:
    """Every `check_every_s`: a snapshot when `snapshot_every_s` has passed (taken by a child
    process on `database_url`), then retention (events, refusals, delivered alert webhooks
    older than `webhook_keep_days`)."""
    last_snapshot = time.monotonic()  # not at start: the service has just loaded its state
    while True:
        await asyncio.sleep(cfg.check_every_s)
        due = (cfg.snapshot_every_s is not None
               and time.monotonic() - last_snapshot >= cfg.snapshot_every_s)
        try:
            await history_round(store, rules, cfg, snapshot=due, child_url=database_url)
            if due:
                last_snapshot = time.monotonic()
        except Exception:  # the database may be away; try again next round
            log.exception("history round (snapshot, retention) failed")
        try:
            await purge_webhooks(store, webhook_keep_days)
        except Exception:  # the database may be away; try again next round
            log.exception("alert webhook retention failed")
