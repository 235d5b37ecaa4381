"""The shared driver contract: an async context manager that is an async iterator of batches.

    async with ModbusDriver(cfg) as drv:
        async for batch in drv:          # list[Signal], never empty
            ...

Subclasses implement `_run()`, which owns the connection loop and calls `await self._emit(batch)`.
The batch queue is bounded: when the consumer is slow, `_emit` waits (backpressure), so a
poller slows down rather than dropping values or growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from drivers.health import ConnectionState, DriverHealth
from drivers.signal import Signal


class Driver:
    """Base of every device driver; owns one background task and a bounded batch queue."""

    def __init__(self, name: str, *, queue_size: int = 64) -> None:
        self.name = name
        self.health = DriverHealth(name=name)
        self.log = logging.getLogger(f"drivers.{type(self).__name__}")
        self._queue: asyncio.Queue[list[Signal]] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _emit(self, batch: list[Signal]) -> None:
        """Hand a batch to the consumer, waiting while the queue is full."""
        if batch:
            self.health.values += len(batch)
            await self._queue.put(batch)

    async def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run_guarded(), name=f"driver:{self.name}")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The driver's loop task while it runs (None before start() and after close()), so
        a supervisor can watch it end."""
        return self._task

    async def _run_guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("%s: driver loop crashed", self.name)
            self.health.set_state(ConnectionState.DISCONNECTED, self.log, "driver loop crashed")
            raise

    async def close(self) -> None:
        """Cancel and await the background loop, then release resources."""
        task, self._task = self._task, None
        if task is not None:
            # On Python 3.11 a cancellation that meets an expiring asyncio.timeout() can be
            # turned into TimeoutError and lost (fixed in 3.12); a poller that then blocks on a
            # full queue would never end. So the cancel is repeated until the task is done.
            for _ in range(100):
                task.cancel()
                done, _pending = await asyncio.wait({task}, timeout=0.1)
                if done:
                    break
            else:
                self.log.error("%s: driver loop did not stop", self.name)
            if task.done() and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()
        await self._disconnect()
        self.health.set_state(ConnectionState.CLOSED, self.log)

    async def _disconnect(self) -> None:
        """Close the protocol client; subclasses override."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[list[Signal]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[Signal]]:
        while True:
            yield await self._queue.get()
