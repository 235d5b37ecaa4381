"""A device port that answers in another protocol: one clear line, then backoff; no flapping.

The wrong servers are real: an HTTP server, a Mosquitto broker and the Modbus simulator, each on
127.0.0.1 on a free port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from drivers import Backoff, ConnectionState
from drivers.modbus import ModbusDeviceConfig, ModbusDriver
from drivers.mqtt import MqttInboundDriver
from drivers.mqtt.config import MqttConfig
from mes_edge.contracts.terminal import TERMINAL_SCHEMAS
from simulators.modbus_plc import ModbusPlc
from tests.servers import MosquittoBroker, free_port
from tests.service.plant import wait_until as until

pytestmark = pytest.mark.timeout(60)


class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class HttpServer:
    """A real HTTP server in a thread that counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        outer = self

        class Counting(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                outer.connections += 1
                super().process_request(request, client_address)

        self.server = Counting(("127.0.0.1", free_port()), _Http)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(logger)]


def modbus_device(port: int) -> ModbusDriver:
    cfg = ModbusDeviceConfig.model_validate({
        "name": "plc1", "host": "127.0.0.1", "port": port, "timeout": 0.3,
        "poll_groups": {"default": 0.1},
        "tags": [{"name": "count", "table": "holding_register", "address": 0,
                  "data_type": "uint16"}]})
    return ModbusDriver(cfg, backoff=Backoff(initial=0.05, maximum=0.2))


async def assert_one_modbus_line(drv: ModbusDriver, port: int,
                                 caplog: pytest.LogCaptureFixture) -> None:
    # Several full attempts (each one request that gets no Modbus answer).
    await until(lambda: drv.health.requests >= 4, 30, "four connection attempts")
    ours = lines(caplog, "drivers.ModbusDriver")
    assert ours == [f"plc1: cannot connect: 127.0.0.1:{port} does not answer Modbus TCP: "
                    + ours[0].split("does not answer Modbus TCP: ", 1)[1]], ours
    assert drv.health.state == ConnectionState.DISCONNECTED
    assert drv.health.reconnects == 0  # never counted as connected, so never "recovered"
    assert lines(caplog, "pymodbus") == []  # no hex dumps


async def test_modbus_driver_on_an_http_port_logs_one_line(
        http_server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers")
    caplog.set_level(logging.INFO)
    async with modbus_device(http_server.port) as drv:
        await assert_one_modbus_line(drv, http_server.port, caplog)
        assert http_server.connections >= 2  # it retried, quietly


async def test_modbus_driver_on_an_mqtt_broker_logs_one_line(
        mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with modbus_device(mosquitto.port) as drv:
        await assert_one_modbus_line(drv, mosquitto.port, caplog)
        assert "the connection was closed" in (drv.health.last_error or "")


async def test_modbus_driver_backs_off_and_connects_once_the_plc_answers(
        caplog: pytest.LogCaptureFixture) -> None:
    """The same driver still connects normally to a real Modbus server (one line)."""
    caplog.set_level(logging.INFO)
    async with ModbusPlc(port=free_port()) as plc, modbus_device(plc.port) as drv:
        await until(lambda: drv.health.state == ConnectionState.CONNECTED, 15, "connected")
        assert lines(caplog, "drivers.ModbusDriver") == ["plc1: connected"]


def mqtt_config(port: int) -> MqttConfig:
    return MqttConfig.model_validate({
        "url": f"mqtt://127.0.0.1:{port}", "client_id": "wrong-port", "connect_timeout": 0.5,
        "reconnect_min_delay": 0.1, "reconnect_max_delay": 0.4})


async def test_mqtt_url_on_an_http_port_logs_one_line(
        http_server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    inbound = MqttInboundDriver(mqtt_config(http_server.port), schemas=TERMINAL_SCHEMAS)
    async with inbound:
        await until(lambda: http_server.connections >= 3, 30, "three connection attempts")
        await asyncio.sleep(0.6)  # the last attempt's CONNACK wait has run out too
        ours = lines(caplog, "drivers.MqttInboundDriver")
        # The HTTP server answers the CONNECT bytes with an error page and closes, or waits
        # for the rest of a request line: either way no CONNACK, and one line says so.
        assert len(ours) == 1, ours
        assert ours[0].startswith(f"mqtt-in:wrong-port: cannot connect: 127.0.0.1:"
                                  f"{http_server.port} does not answer MQTT: "), ours
        assert inbound.health.state == ConnectionState.DISCONNECTED


async def test_mqtt_url_on_a_modbus_port_logs_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with ModbusPlc(port=free_port()) as plc:
        inbound = MqttInboundDriver(mqtt_config(plc.port), schemas=TERMINAL_SCHEMAS)
        async with inbound:
            def logged() -> bool:
                return bool(lines(caplog, "drivers.MqttInboundDriver"))

            await until(logged, 30, "the line")
            await asyncio.sleep(2.0)  # several more attempts: still one line
            ours = lines(caplog, "drivers.MqttInboundDriver")
            assert len(ours) == 1, ours
            assert ours[0].startswith(
                f"mqtt-in:wrong-port: cannot connect: 127.0.0.1:{plc.port} does not answer MQTT: ")
            assert inbound.health.state == ConnectionState.DISCONNECTED
