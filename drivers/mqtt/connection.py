"""Builds and starts a configured paho client; the one place that knows paho's setup calls."""

from __future__ import annotations

import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drivers.errors import DriverConfigError
from drivers.mqtt.config import MqttConfig


def build_client(
    cfg: MqttConfig, *, client_id: str, manual_ack: bool, persistent: bool
) -> paho.Client:
    """A paho client (callback API v2) with credentials, TLS and reconnect delays applied."""
    if cfg.protocol == "5":
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=manual_ack,
        )
    else:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=MQTTProtocolVersion.MQTTv311,
            manual_ack=manual_ack,
        )
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    if cfg.use_tls:
        client.tls_set_context(_tls_context(cfg))
    client.connect_timeout = cfg.connect_timeout
    # paho doubles the delay per failed attempt up to the maximum and resets it on CONNACK.
    client.reconnect_delay_set(cfg.reconnect_min_delay, cfg.reconnect_max_delay)  # type: ignore[arg-type]
    # Our own queues bound what waits for the broker; paho's queue must never refuse a publish.
    client.max_queued_messages_set(0)
    return client


def _tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    tls = cfg.tls
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls is not None and tls.ca_file else None
        )
        if tls is not None and tls.cert_file is not None:
            context.load_cert_chain(
                str(tls.cert_file), str(tls.key_file) if tls.key_file else None
            )
    except (OSError, ssl.SSLError) as err:
        raise DriverConfigError(f"MQTT TLS material cannot be loaded: {err}") from err
    if tls is not None and tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def start_client(
    client: paho.Client, cfg: MqttConfig, *, persistent: bool, receive_maximum: int | None = None
) -> None:
    """Queue the connect and start paho's network thread, which connects and reconnects.

    Non-blocking: the TCP connect happens in paho's thread, so the event loop never waits on it.
    """
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = cfg.session_expiry
        if receive_maximum is not None:
            # The broker sends at most this many unacked QoS 1 messages: flow control at the
            # protocol level, so our bounded queue is never the place where a flood piles up.
            props.ReceiveMaximum = receive_maximum
        client.connect_async(
            cfg.host, cfg.port, cfg.keepalive, clean_start=not persistent, properties=props
        )
    else:
        client.connect_async(cfg.host, cfg.port, cfg.keepalive)
    client.loop_start()


def reason_text(reason: object) -> str:
    """Readable text of a paho reason code or error code."""
    if isinstance(reason, paho.MQTTErrorCode):
        return paho.error_string(reason)
    return str(reason)
