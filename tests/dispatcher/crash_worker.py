"""Feeds a line stream into a dispatcher as fast as it can (run as a subprocess by tests).

    python -m tests.dispatcher.crash_worker DATABASE_URL SEED COUNT
"""

from __future__ import annotations

import asyncio
import sys

from mes_edge.dispatcher import Dispatcher
from mes_edge.store import Store
from tests import factory
from tests.dispatcher.streams import line_stream


async def feed(url: str, seed: int, count: int) -> None:
    store = await Store.open(url)
    dispatcher = Dispatcher(store, factory.rules(), max_batch=64)
    await dispatcher.start()
    try:
        futures = [await dispatcher.submit(e) for e in line_stream(seed, count)]
        await asyncio.gather(*futures)
    finally:
        await dispatcher.stop()
        await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(feed(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
