"""OPC UA PLC counts reach the running operation through the subscription, also across a
server restart during which the PLC kept counting."""

from __future__ import annotations

import asyncio

import pytest

from simulators.opcua_plc import OpcUaPlc
from tests.servers import free_port
from tests.service.plant import CNC, opcua_plant, operation, release_order, service_of, wait_until

pytestmark = pytest.mark.timeout(90)
RUNNING, IDLE = 1, 2


async def test_opcua_counts_flow_and_resume_after_server_restart(sqlite_url: str) -> None:
    async with OpcUaPlc(port=free_port(), cycle_time=0.02, scrap_rate=0.0) as plc:
        await plc.set_state(IDLE)
        async with service_of(opcua_plant(sqlite_url, plc.endpoint)) as service:
            assert service.dispatcher is not None
            d = service.dispatcher
            key = ("cnc-plc", "good_count")
            await wait_until(lambda: key in d.checkpoints, 20, "the first GoodCount reading")
            await release_order(d, "2001", CNC)

            async def good() -> int:
                return int(await plc.get_value("GoodCount"))

            await plc.set_state(RUNNING)
            await asyncio.sleep(1.0)
            await plc.set_state(IDLE)
            await asyncio.sleep(0.1)  # a machine cycle already under way finishes
            made = await good()
            assert made > 10
            await wait_until(lambda: operation(d, "2001").done.good == made, 10,
                             f"good == {made} from the subscription")

            # The PLC reboots; while it is away its counter moves on (set by hand here: the
            # simulator's machine does not cycle while its server is stopped).
            await plc.stop_server()
            await wait_until(lambda: service.health()["cnc-plc"]["state"] != "connected", 10,
                             "the OPC UA driver to notice the server is gone")
            await plc.set_counter("GoodCount", made + 37)
            await asyncio.sleep(0.5)
            await plc.start_server()
            await wait_until(lambda: service.health()["cnc-plc"]["state"] == "connected", 20,
                             "the OPC UA driver to reconnect")
            await wait_until(lambda: operation(d, "2001").done.good == made + 37, 10,
                             "the counts made while disconnected to be recovered")
            # And the subscription carries new counts after the restart.
            await plc.set_state(RUNNING)
            await asyncio.sleep(0.5)
            await plc.set_state(IDLE)
            await asyncio.sleep(0.1)
            total = await good()
            assert total > made + 37
            await wait_until(lambda: operation(d, "2001").done.good == total, 10,
                             f"good == {total} after the restart")
            await asyncio.sleep(0.3)
            assert operation(d, "2001").done.good == total
