"""The MQTT publisher on a port that does not speak MQTT: one clear line, like the inbound
driver (the CONNACK watchdog they share, drivers/mqtt/watchdog.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers import ConnectionState
from drivers.mqtt import MqttPublisher
from tests.drivers.test_wrong_protocol import HttpServer, http_server, lines, mqtt_config
from tests.service.plant import wait_until as until

__all__ = ["http_server"]  # the fixture, imported to be used here


async def test_publisher_on_an_http_port_logs_one_line(
        http_server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with MqttPublisher(mqtt_config(http_server.port)) as publisher:
        await until(lambda: http_server.connections >= 3, 30, "three connection attempts")
        await asyncio.sleep(0.6)  # the last attempt's CONNACK wait has run out too
        ours = lines(caplog, "drivers.MqttPublisher")
        assert len(ours) == 1, ours
        assert (f"127.0.0.1:{http_server.port} does not answer MQTT: ") in ours[0], ours
        assert publisher.health.state == ConnectionState.DISCONNECTED
