"""The broker of compose.yaml: a real Mosquitto with the shipped config/mosquitto.conf, ACL and
example users refuses anonymous clients, keeps a terminal to its own work center's scan and
event topics, and lets only the service publish state and alerts."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.servers import MosquittoBroker, _is_root

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
WAIT = 10.0  # generous bound for a local broker's answer; never the thing under test
USERS = dict(line.split(":", 1) for line in
             (CONFIG / "mosquitto.passwd.example").read_text().split())
SITE = "line-a"


def _shipped_conf(workdir: Path, port: int, passwd: Path) -> str:
    """config/mosquitto.conf as shipped, with the container's paths and port made local."""
    out = []
    for line in (CONFIG / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "password_file":
            line = f"password_file {passwd}"
        elif key == "acl_file":
            line = f"acl_file {CONFIG / 'mosquitto.acl'}"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        out.append(line)
    out.append("log_dest stderr")
    if _is_root():
        out.append("user root")
    return "\n".join(out) + "\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd comes with Debian's mosquitto package: run tests/run.sh"
    passwd = tmp_path / "passwd"
    shutil.copyfile(CONFIG / "mosquitto.passwd.example", passwd)
    passwd.chmod(0o600)
    # The README's step: hash the plain-text example in place.
    subprocess.run([tool, "-U", str(passwd)], check=True, capture_output=True, timeout=60)
    assert "change-me" not in passwd.read_text()
    server = MosquittoBroker(tmp_path / "broker")
    server.conf.write_text(_shipped_conf(server.workdir, server.port, passwd))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Client:
    """A paho MQTT 5 client whose answers (CONNACK, PUBACK, messages) are waited for, bounded."""

    def __init__(self, port: int, username: str | None, client_id: str) -> None:
        self.port = port
        self.mqtt = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                protocol=mqtt.MQTTv5)
        if username is not None:
            self.mqtt.username_pw_set(username, USERS[username])
        self.connack: ReasonCode | None = None
        self._connected = threading.Event()
        self._lock = threading.Condition()
        self.pubacks: dict[int, ReasonCode] = {}
        self.granted: list[ReasonCode] = []
        self._subscribed = threading.Event()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_publish = self._on_publish
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = self._on_message

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put((msg.topic, bytes(msg.payload)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.pubacks[mid] = reason
            self._lock.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, _m: int, reasons: list[ReasonCode],
                      _p: Any) -> None:
        self.granted = reasons
        self._subscribed.set()

    def connect(self) -> ReasonCode:
        self.mqtt.connect("127.0.0.1", self.port, keepalive=30)
        self.mqtt.loop_start()
        assert self._connected.wait(WAIT), "no CONNACK from the broker"
        assert self.connack is not None
        return self.connack

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self._subscribed.clear()
        self.mqtt.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(WAIT), "no SUBACK from the broker"
        return self.granted

    def publish(self, topic: str, payload: bytes = b"{}") -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        mid = self.mqtt.publish(topic, payload, qos=1).mid
        with self._lock:
            assert self._lock.wait_for(lambda: mid in self.pubacks, WAIT), "no PUBACK"
            return self.pubacks[mid]

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def connect(broker: MosquittoBroker) -> Iterator[Any]:
    clients: list[Client] = []

    def make(username: str | None) -> Client:
        client = Client(broker.port, username, f"test-{len(clients)}-{username}")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_shipped_conf_refuses_anonymous_and_has_an_acl() -> None:
    conf = (CONFIG / "mosquitto.conf").read_text()
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    assert not re.search(r"^allow_anonymous true", conf, re.M)
    assert re.search(r"^password_file ", conf, re.M) and re.search(r"^acl_file ", conf, re.M)


def test_anonymous_and_wrong_password_are_refused(connect: Any) -> None:
    anonymous = connect(None)
    assert anonymous.connect().is_failure
    stranger = connect("terminal-PRESS-01")
    stranger.mqtt.username_pw_set("terminal-PRESS-01", "not-the-password")
    assert stranger.connect().is_failure
    service = connect("mes-edge")
    assert not service.connect().is_failure


def _next(client: Client) -> tuple[str, bytes]:
    try:
        return client.messages.get(timeout=WAIT)
    except queue.Empty:
        raise AssertionError("the service received nothing") from None


def test_a_terminal_publishes_only_its_own_scans_and_events(connect: Any) -> None:
    service = connect("mes-edge")
    assert not service.connect().is_failure
    # What the service subscribes with mqtt.site set (drivers/mqtt/topics.py), and the outputs.
    granted = service.subscribe(f"mes/{SITE}/+/scan", f"mes/{SITE}/+/event",
                                f"mes/{SITE}/+/state", f"mes/{SITE}/alerts")
    assert all(not g.is_failure for g in granted), granted

    press = connect("terminal-PRESS-01")
    assert not press.connect().is_failure
    refused = [f"mes/{SITE}/WELD-02/scan", f"mes/{SITE}/WELD-02/event",
               f"mes/{SITE}/PRESS-01/state", f"mes/{SITE}/alerts", "mes/other-site/PRESS-01/scan"]
    for topic in refused:
        assert press.publish(topic, b'{"refused": true}').is_failure, topic  # 135 Not authorized
    for n, topic in enumerate([f"mes/{SITE}/PRESS-01/scan", f"mes/{SITE}/PRESS-01/event"]):
        assert not press.publish(topic, f'{{"n": {n}}}'.encode()).is_failure, topic
    # The broker forwards one client's messages in order: had any refused one been routed, it
    # would arrive before these two.
    assert _next(service) == (f"mes/{SITE}/PRESS-01/scan", b'{"n": 0}')
    assert _next(service) == (f"mes/{SITE}/PRESS-01/event", b'{"n": 1}')


def test_only_the_service_publishes_state_and_alerts(connect: Any) -> None:
    pack = connect("terminal-PACK-03")
    assert not pack.connect().is_failure
    # Mosquitto grants any subscription and filters what it delivers by the read ACL: another
    # work center's state is not for this terminal's eyes (checked by the order below).
    assert all(not g.is_failure for g in pack.subscribe(
        f"mes/{SITE}/PACK-03/state", f"mes/{SITE}/alerts", f"mes/{SITE}/PRESS-01/state"))

    service = connect("mes-edge")
    assert not service.connect().is_failure
    assert not service.publish(f"mes/{SITE}/PRESS-01/state", b'{"wc": "PRESS-01"}').is_failure
    assert not service.publish(f"mes/{SITE}/PACK-03/state", b'{"wc": "PACK-03"}').is_failure
    assert not service.publish(f"mes/{SITE}/alerts", b'{"alert": 1}').is_failure
    # PRESS-01's state was published first: delivered, it would arrive first.
    assert _next(pack) == (f"mes/{SITE}/PACK-03/state", b'{"wc": "PACK-03"}')
    assert _next(pack) == (f"mes/{SITE}/alerts", b'{"alert": 1}')
    # A scan is the terminals' to send, not the service's.
    assert service.publish(f"mes/{SITE}/PACK-03/scan").is_failure
