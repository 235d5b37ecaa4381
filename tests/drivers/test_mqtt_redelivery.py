"""The manual-ack contract: unacked messages come back; broker restarts lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from drivers.mqtt import InboundItem, MqttConfig, MqttInboundDriver, ReceivedScan
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS
from simulators.scanner import ScannerSim
from tests.servers import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]

# A consumer that receives but never acks: it prints each id, then waits to be killed.
CHILD = textwrap.dedent("""
    import asyncio, sys
    from drivers.mqtt import MqttConfig, MqttInboundDriver
    from mes_edge.contracts.terminal import TERMINAL_SCHEMAS

    async def main() -> None:
        cfg = MqttConfig(url=sys.argv[1], client_id=sys.argv[2])
        async with MqttInboundDriver(cfg, schemas=TERMINAL_SCHEMAS) as driver:
            await asyncio.wait_for(driver.wait_ready(), 10)
            print("READY", flush=True)
            async for item in driver:
                print("GOT", item.message.id, flush=True)  # no ack: "crash before commit"

    asyncio.run(main())
""")


def _config(broker: MosquittoBroker, client_id: str) -> MqttConfig:
    return MqttConfig(url=broker.url, client_id=client_id, reconnect_min_delay=0.2,
                      reconnect_max_delay=1.0)


async def _ids(driver: MqttInboundDriver, count: int, *, ack: bool) -> list[InboundItem]:
    items: list[InboundItem] = []
    async with asyncio.timeout(10):
        while len(items) < count:
            item = await anext(driver)
            items.append(item)
            if ack:
                await item.ack()
    return items


async def _nothing_more(driver: MqttInboundDriver, seconds: float = 0.7) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            extra = await anext(driver)
            pytest.fail(f"unexpected redelivery: {extra}")


@pytest.mark.slow
async def test_sigkill_between_receive_and_ack_redelivers(
    mosquitto: MosquittoBroker, tmp_path: Path,
) -> None:
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "consumer.py"
    script.write_text(CHILD)
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), mosquitto.url, client_id, cwd=REPO,
        stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        async with asyncio.timeout(15):
            assert (await child.stdout.readline()).strip() == b"READY"
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            sent = [await sim.scan(f"ORD-{n}") for n in range(3)]
        got: list[str] = []
        async with asyncio.timeout(10):
            while len(got) < 3:
                got.append((await child.stdout.readline()).split()[1].decode())
        assert got == sent  # the child had them in hand ...
    finally:
        child.send_signal(signal.SIGKILL)  # ... and died before acking (no clean disconnect)
        async with asyncio.timeout(10):
            await child.wait()
    assert child.returncode == -signal.SIGKILL

    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        items = await _ids(driver, 3, ack=True)
        assert [i.message.id for i in items if isinstance(i, ReceivedScan)] == sent
        assert all(i.redelivered for i in items)
    # Acked now: the next session with the same client id gets nothing again.
    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        await _nothing_more(driver)


async def test_unacked_messages_survive_a_clean_disconnect(mosquitto: MosquittoBroker) -> None:
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            first, second = await sim.scan("A"), await sim.scan("B")
        items = await _ids(driver, 2, ack=False)
        await items[0].ack()  # only the first one committed
    async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
        third = await sim.scan("C")  # published while the edge is away: kept in its session
    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        items = await _ids(driver, 2, ack=True)
        assert [i.message.id for i in items if isinstance(i, ReceivedScan)] == [second, third]
        assert items[0].redelivered and not items[1].redelivered
        await _nothing_more(driver)
    assert first != second


async def test_ack_after_the_link_was_replaced_is_skipped(mosquitto: MosquittoBroker) -> None:
    """An item from a dead connection must not ack by packet id on the new one."""
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()
        async with ScannerSim(mosquitto.url, "plant1", "PRESS-01") as sim:
            sent = await sim.scan("A")
        (stale,) = await _ids(driver, 1, ack=False)
        await asyncio.to_thread(mosquitto.restart)
        (again,) = await _ids(driver, 1, ack=False)  # redelivered on the new connection
        await stale.ack()
        assert driver.stats.acks_skipped == 1
        await again.ack()
        assert isinstance(again, ReceivedScan) and again.message.id == sent and again.redelivered


@pytest.mark.slow
async def test_broker_restart_during_qos1_publishing_loses_nothing(
    mosquitto: MosquittoBroker,
) -> None:
    client_id = f"edge-{uuid.uuid4().hex[:8]}"
    total = 200
    received: set[str] = set()
    async with MqttInboundDriver(_config(mosquitto, client_id), schemas=TERMINAL_SCHEMAS) as driver:
        async with asyncio.timeout(5):
            await driver.wait_ready()

        async def consume() -> None:
            async for item in driver:
                assert isinstance(item, ReceivedScan)
                received.add(item.message.id)
                await item.ack()

        consumer = asyncio.create_task(consume())
        try:
            async with ScannerSim(mosquitto.url, "plant1", "PRESS-01", timeout=20) as sim:

                async def produce() -> list[str]:
                    ids = []
                    for n in range(total):
                        ids.append(await sim.scan(f"S{n}"))
                        await asyncio.sleep(0.005)
                    return ids

                producer = asyncio.create_task(produce())
                await asyncio.sleep(0.3)
                await asyncio.to_thread(mosquitto.restart)
                async with asyncio.timeout(30):
                    sent = await producer
            async with asyncio.timeout(15):
                while not received >= set(sent):  # noqa: ASYNC110 - polled, bounded
                    await asyncio.sleep(0.05)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    assert len(sent) == total and set(sent) <= received
    assert driver.health.reconnects >= 1
