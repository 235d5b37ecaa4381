"""The single writer: a bounded queue in, group commits out, listeners told after each commit.

Every event that may change WIP goes through `Dispatcher.submit`. The writer task takes what is
queued (up to `max_batch`), applies each event in arrival order to the WIP model on top of the
committed state, and writes the event log, WIP rows, counter checkpoints, confirmations and
rejections of the whole batch in ONE transaction. Only then are the producers' futures resolved
and the listeners told. If the transaction fails nothing of the batch is kept in memory either,
and the batch is tried again: a transient database outage slows the line's data down (the queue
fills, producers wait) but loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mes_edge.dispatcher.batch import BatchBuilder
from mes_edge.dispatcher.outcome import (
    CommittedBatch,
    Outcome,
    Status,
)
from mes_edge.domain import (
    ConfirmationReversed,
    ConfirmationsDue,
    CounterBaseline,
    Event,
    Item,
    MemoryState,
    PlantRules,
    RawRejection,
    is_single_use_id,
)
from mes_edge.domain.progress import ProgressRules
from mes_edge.store import BatchWrite, Store, Verdict
from mes_edge.store.errors import describe, is_storage_failure

log = logging.getLogger(__name__)

Listener = Callable[[CommittedBatch], Any]

#: A single commit taking longer than this means the storage is in trouble (locked, stalled):
#: /readyz says not ready and API writes answer 503 meanwhile (nothing is refused).
STALL_S = 3.0


class DispatcherClosed(RuntimeError):
    """Raised to producers once the dispatcher stops taking events."""


@dataclass
class DispatcherStats:
    """Counters for /metrics and the benchmark."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    unchanged: int = 0
    batches: int = 0
    largest_batch: int = 0
    commit_retries: int = 0
    last_commit_ms: float = 0.0
    outage_seconds: float = 0.0  # storage outages that ended (see Dispatcher.outage_seconds)


class Dispatcher:
    """Owns the committed WIP state and is the only writer of the store."""

    def __init__(
        self,
        store: Store,
        rules: PlantRules,
        *,
        queue_size: int = 10_000,
        max_batch: int = 1_000,
        tick_seconds: float | None = None,
        recent_ids: int = 100_000,
        progress: ProgressRules | None = None,
        dedup_window_s: float = 3600.0,
        evict_finished_after_s: float | None = 3600.0,
    ) -> None:
        self.store = store
        self.rules = rules
        self.progress = progress  # issue 11: timeline and OEE rollups (None: not kept)
        self.state = MemoryState()
        self.checkpoints: dict[tuple[str, str], Any] = {}
        self.stats = DispatcherStats()
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Outcome]] | None] = asyncio.Queue(
            maxsize=queue_size)
        self._max_batch = max_batch
        self._tick_seconds = tick_seconds
        self._recent: OrderedDict[str, Verdict] = OrderedDict()
        self._recent_max = recent_ids
        #: Event ids settled in the last `dedup_window_s` are remembered here (with when); older
        #: ones are asked of the database, which stays the authority.
        self._recent_at: deque[tuple[float, str]] = deque()
        self._dedup_window_s = dedup_window_s
        #: Closed and cancelled orders leave memory this long after they ended (None: never).
        self._evict_after_s = evict_finished_after_s
        self._next_sweep = 0.0
        self._evicted = False  # whether the database holds orders memory does not
        self._listeners: list[Listener] = []
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed = True
        self._seq = self._cursor = self._rejection = 0
        self._down_since: float | None = None
        self._commit_since: float | None = None
        self.storage_error: str | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the committed state and start the writer (and the confirmation timer)."""
        loaded = await self.store.load(finished_before=self._eviction_cut(),
                                       with_confirmations=False)
        self.state = loaded.state
        self._evicted = loaded.left_out > 0
        self.checkpoints = dict(loaded.checkpoints)
        self._seq, self._cursor, self._rejection = (
            loaded.last_seq, loaded.last_cursor, loaded.last_rejection)
        self._closed = False
        self._writer = asyncio.create_task(self._write_loop(), name="dispatcher-writer")
        if self._tick_seconds:
            self._ticker = asyncio.create_task(self._tick_loop(), name="dispatcher-ticker")

    async def stop(self) -> None:
        """Stop taking events, commit everything already queued, then stop the writer."""
        if self._closed and self._writer is None:
            return
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._writer is not None:
            await self._queue.put(None)  # sentinel: everything before it is drained first
            await self._writer
            self._writer = None

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- producers ---------------------------------------------------------------------------

    async def submit(self, item: Item) -> asyncio.Future[Outcome]:
        """Queue an event (waiting while the queue is full); the future resolves after commit."""
        if self._closed:
            raise DispatcherClosed("the dispatcher is stopped")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return future

    async def submit_many(self, items: Iterable[Item]) -> list[asyncio.Future[Outcome]]:
        """Queue a batch in order (a driver's poll, a burst of messages); one future each.

        Waits only when the queue is full, like submit(), without a coroutine per item.
        """
        if self._closed:
            raise DispatcherClosed("the dispatcher is stopped")
        loop = asyncio.get_running_loop()
        queue = self._queue
        futures: list[asyncio.Future[Outcome]] = []
        for item in items:
            future: asyncio.Future[Outcome] = loop.create_future()
            if queue.full():
                await queue.put((item, future))
            else:
                queue.put_nowait((item, future))
            futures.append(future)
        return futures

    async def process(self, item: Item) -> Outcome:
        """Submit and wait until the event's outcome is committed."""
        return await (await self.submit(item))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(batch)` after every commit; returns the function that unsubscribes.

        Listeners run on the writer's task: they must be quick and must not block (hand the
        batch to a queue of their own).
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def last_cursor(self) -> int:
        """Cursor of the newest committed confirmation."""
        return self._cursor

    # -- the writer ---------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        assert self._tick_seconds
        while True:
            await asyncio.sleep(self._tick_seconds)
            now = datetime.now(UTC)
            with contextlib.suppress(DispatcherClosed):
                await self.submit(ConfirmationsDue(event_id=f"tick/{now.isoformat()}",
                                                   source="timer", received_ts=now))

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            items = [first]
            while len(items) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stopping = True
                    break
                items.append(nxt)
            await self._commit_with_retry(items)

    async def _commit_with_retry(self, items: list[tuple[Item, asyncio.Future[Outcome]]],
                                 *, last_resort: bool = False) -> None:
        """Commit a batch whatever happens, without ever stopping the writer.

        - The storage itself fails (connection lost or refused, server shutting down, disk
          full, database locked, I/O error): that is never an event's fault. Keep the batch,
          re-read the committed state (the failed COMMIT may in fact have gone through) and try
          again with backoff until the storage is back; producers wait meanwhile.
        - Anything else (a value the database refuses, a bug): split the batch, and record the
          one event that cannot be stored as a refused event with a reason that fits.
        - If even that cannot be written, the producer is told it was refused (last resort).
        """
        delay = 0.05
        retried = False
        while True:
            try:
                self._commit_since = time.monotonic()
                try:
                    await self._commit(items, ambiguous=retried)
                finally:
                    self._commit_since = None
                self._storage_ok()
                return
            except Exception as err:
                if is_storage_failure(err):
                    self.stats.commit_retries += 1
                    self._storage_failed(err)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    await self._resync()
                    retried = True  # the failed commit may have landed: look every id up
                    continue
                failure = err
            # IntegrityError, DataError, overflow, a bug: isolate the event it belongs to.
            if len(items) > 1:
                for single in items:
                    await self._commit_with_retry([single], last_resort=last_resort)
                return
            item, future = items[0]
            if last_resort:
                log.error("a refusal cannot be stored either: %s", failure)
                if not future.done():
                    future.set_result(Outcome(Status.REJECTED, None, code="unstorable",
                                              reason=f"cannot be stored: "
                                                     f"{type(failure).__name__}"))
                return
            log.error("event cannot be stored, recorded as refused: %r", failure)
            await self._commit_with_retry([(self._storage_rejection(item, failure), future)],
                                          last_resort=True)
            return

    # -- storage health ---------------------------------------------------------------------

    def _storage_failed(self, err: BaseException) -> None:
        self.storage_error = describe(err)
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("storage lost: %s; events wait and are retried until it is back",
                      self.storage_error)

    def _storage_ok(self) -> None:
        if self._down_since is not None:
            seconds = time.monotonic() - self._down_since
            self.stats.outage_seconds += seconds
            self._down_since = None
            self.storage_error = None
            log.warning("storage back after %.1f s", seconds)

    @property
    def storage_down(self) -> bool:
        """True while commits fail because the storage is away, or while one commit has waited
        longer than `STALL_S` (a database locked by another process, a stalled disk): for
        /readyz and the API."""
        return self._down_since is not None or self.commit_waiting_for >= STALL_S

    @property
    def commit_waiting_for(self) -> float:
        """Seconds the commit in progress has taken so far (0 when none runs)."""
        since = self._commit_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def storage_down_for(self) -> float:
        """Seconds the current outage (or stalled commit) has lasted (0 when the storage is up)."""
        if self._down_since is not None:
            return time.monotonic() - self._down_since
        waiting = self.commit_waiting_for
        return waiting if waiting >= STALL_S else 0.0

    @property
    def storage_reason(self) -> str | None:
        """Why the storage counts as down, for /readyz and the 503 answers."""
        if self._down_since is not None:
            return self.storage_error
        waiting = self.commit_waiting_for
        if waiting >= STALL_S:
            return (f"a commit has waited {waiting:.0f} s: the database is locked by another "
                    "process or the disk stalls")
        return None

    @property
    def outage_seconds(self) -> float:
        """Total seconds of storage outage since start, the current one included."""
        return self.stats.outage_seconds + self.storage_down_for

    async def _resync(self) -> None:
        """Reload the committed state after an ambiguous commit failure (best effort)."""
        try:
            loaded = await self.store.load(finished_before=self._eviction_cut(),
                                           with_confirmations=False)
        except Exception as err:  # still away: the next attempt tries again
            log.debug("resync failed: %s", err)
            return
        self.state = loaded.state
        self._evicted = self._evicted or loaded.left_out > 0
        self.checkpoints.clear()
        self.checkpoints.update(loaded.checkpoints)
        self._seq, self._cursor, self._rejection = (
            loaded.last_seq, loaded.last_cursor, loaded.last_rejection)

    @staticmethod
    def _storage_rejection(item: Item, err: Exception) -> RawRejection:
        """A refusal built only of values that surely fit the rejected_events columns."""
        reason = f"cannot be stored: {type(err).__name__}: {err}"[:1000]

        def fit(value: str | None, size: int) -> str | None:
            return value if value is not None and len(value) <= size else None

        if isinstance(item, CounterBaseline):
            cp = item.checkpoint
            return RawRejection(source=(fit(cp.device, 200) or "device")[:200],
                                reason_code="unstorable", reason=reason,
                                payload={"device": cp.device[:200], "tag": cp.tag[:200]})
        if isinstance(item, RawRejection):
            return RawRejection(source=item.source[:200], reason_code="unstorable",
                                reason=reason, payload={"reason": item.reason[:1000]},
                                work_center=fit(item.work_center, 64))
        return RawRejection(source=item.source[:200], reason_code="unstorable", reason=reason,
                            payload={"type": item.kind}, event_id=fit(item.event_id, 200),
                            type=item.kind, work_center=fit(item.work_center_ref, 64),
                            actor=fit(item.actor, 200))

    @property
    def running(self) -> bool:
        """True while the writer task is alive (for /readyz)."""
        return self._writer is not None and not self._writer.done()

    def _is_known(self, event_id: str) -> bool:
        return event_id in self._recent

    def _eviction_cut(self) -> datetime | None:
        if self._evict_after_s is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._evict_after_s)

    def evict_finished(self) -> int:
        """Forget closed and cancelled orders that ended longer ago than the configured time;
        how many left memory (their history is in the database)."""
        cut = self._eviction_cut()
        if cut is None:
            return 0
        gone = self.state.index.expired(cut)
        for order_id in gone:
            self.state.evict(order_id)
        self._evicted = self._evicted or bool(gone)
        return len(gone)

    def _forget_old_ids(self) -> None:
        cut = time.monotonic() - self._dedup_window_s
        recent, at = self._recent, self._recent_at
        while at and (at[0][0] < cut or len(recent) > self._recent_max):
            recent.pop(at.popleft()[1], None)

    async def _restore(self, items: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        """Read back what the batch needs and memory does not hold, so the domain decides on
        the whole truth: orders that left memory when an event names one (a late reversal,
        the ERP sending a closed order again), and the confirmations a reversal names (the
        service keeps no confirmation in memory) with any reversal of them."""
        state = self.state
        state.forget_confirmations()  # what the previous batch read back
        if self._evicted:  # else every order the database has is in memory
            missing = {ref for item, _ in items if isinstance(item, Event)
                       and (ref := item.order_ref) is not None and state.order(ref) is None}
            if missing:
                orders, confs = await self.store.load_orders(sorted(missing))
                for order in orders:
                    state.put_order(order)
                if state.keep_confirmations:
                    for c in confs:
                        state.add_confirmation(c)
        if not state.keep_confirmations:
            named = sorted({(item.order_id, item.confirmation_id) for item, _ in items
                            if isinstance(item, ConfirmationReversed)})
            for c in await self.store.load_confirmations(named):
                state.add_confirmation(c)

    async def _commit(self, items: list[tuple[Item, asyncio.Future[Outcome]]], *,
                      ambiguous: bool = False) -> None:
        t0 = time.perf_counter()
        await self._restore(items)
        # A single-use id (made by the service for a write without an id of its own) cannot
        # come again from outside: it is neither looked up nor remembered. Except when this
        # batch is retried after a commit that failed ambiguously (`ambiguous`): that commit may
        # have landed, and its events are then duplicates of themselves.
        ids = [i.event_id for i, _ in items
               if isinstance(i, Event | RawRejection) and i.event_id is not None
               and (ambiguous or not is_single_use_id(i.event_id))
               and not self._is_known(i.event_id)]

        def build(known: dict[str, Verdict]) -> tuple[BatchWrite, tuple[BatchBuilder, list[Outcome],
                                                              CommittedBatch]]:
            # Runs inside the batch's transaction (on SQLite: in the writer thread). It only
            # reads the committed state; nothing is merged until the commit succeeded.
            builder = BatchBuilder(self.state, self.rules, seq=self._seq, cursor=self._cursor,
                                   rejection=self._rejection, known=known, recent=self._recent,
                                   progress=self.progress)
            outcomes = [builder.add(item) for item, _ in items]
            rows, committed = builder.finish()
            return rows, (builder, outcomes, committed)

        # Dedup lookup, decisions and writes share one transaction: one commit per batch.
        builder, outcomes, committed = await self.store.commit_batch(ids, build)
        # Committed: only now does the batch become part of the state everyone sees.
        self.state.merge(builder.decision)
        self.state.forget_confirmations()  # read back for this batch only
        self._seq, self._cursor, self._rejection = builder.seq, builder.cursor, builder.rejection
        for key, cp in builder.checkpoints.items():
            self.checkpoints[key] = cp
        now_m = time.monotonic()
        for event_id, verdict in builder.new_ids:
            if is_single_use_id(event_id):
                continue
            self._recent[event_id] = verdict
            self._recent_at.append((now_m, event_id))
        self._forget_old_ids()
        if now_m >= self._next_sweep:
            self._next_sweep = now_m + 5.0
            self.evict_finished()
        self._count(outcomes, len(items), time.perf_counter() - t0)
        for (_, future), outcome in zip(items, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        if committed.events or committed.rejections or committed.work_centers:
            for listener in list(self._listeners):
                try:
                    listener(committed)
                except Exception:
                    log.exception("listener %r failed", listener)

    def _count(self, outcomes: list[Outcome], size: int, seconds: float) -> None:
        s = self.stats
        for o in outcomes:
            if o.status == Status.ACCEPTED:
                s.accepted += 1
            elif o.status == Status.REJECTED and not o.repeated:
                s.rejected += 1
            elif o.status == Status.REJECTED:
                s.duplicates += 1
            elif o.status == Status.DUPLICATE:
                s.duplicates += 1
            else:
                s.unchanged += 1
        s.batches += 1
        s.largest_batch = max(s.largest_batch, size)
        s.last_commit_ms = seconds * 1000
