"""One owned background task: started once, cancelled and awaited on stop."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundWorker:
    """Base of the ERP workers (push, order pull): subclasses implement `_run`."""

    task_name = "worker"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def start(self) -> None:
        """Start the loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it; what is pending stays in the database."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
