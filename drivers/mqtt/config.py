"""Validated settings of the MQTT connection, the inbound topics and the outbound publisher."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from drivers.mqtt.topics import TopicTemplate


class MqttTlsConfig(BaseModel):
    """TLS material; `insecure` skips the host name check (test rigs only, never production)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _key_with_cert(self) -> Self:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


class InboundTopics(BaseModel):
    """Topic templates of the inbound kinds; `{name}` levels bind fields such as work_center."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan: str = "mes/{site}/{work_center}/scan"
    event: str = "mes/{site}/{work_center}/event"

    @field_validator("scan", "event")
    @classmethod
    def _template_works(cls, value: str) -> str:
        template = TopicTemplate.parse(value)  # raises ValueError with the reason
        if "work_center" not in template.placeholders:
            raise ValueError(f"{value!r} must bind {{work_center}}")
        return value

    def templates(self) -> dict[str, TopicTemplate]:
        """Kind -> parsed template."""
        return {"scan": TopicTemplate.parse(self.scan), "event": TopicTemplate.parse(self.event)}


class OutboundTopics(BaseModel):
    """Topic templates of what the edge publishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = "mes/{site}/{work_center}/state"
    alerts: str = "mes/{site}/alerts"


class MqttConfig(BaseModel):
    """One MQTT connection: broker, identity, persistent session, TLS, topics and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://")
    #: Fixed, so the broker keeps our session (subscriptions, unacked messages) across restarts.
    client_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTlsConfig | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    connect_timeout: float = Field(default=5.0, gt=0, le=60)
    #: MQTT 5: how long the broker keeps the session while we are away (seconds).
    session_expiry: int = Field(default=7 * 24 * 3600, ge=60, le=0xFFFFFFFF)
    reconnect_min_delay: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_delay: float = Field(default=30.0, gt=0, le=600)
    #: When set, only this site's topics are subscribed (the `{site}` level is not a wildcard).
    site: str | None = Field(default=None, pattern=r"^[^/+#]+$")
    topics: InboundTopics = InboundTopics()
    outbound: OutboundTopics = OutboundTopics()
    #: Larger payloads are rejected (recorded) without being parsed.
    max_payload_bytes: int = Field(default=16 * 1024, ge=256, le=16 * 1024 * 1024)
    #: Unacked inbound messages at most: the MQTT 5 Receive Maximum and the queue bound.
    max_unacked: int = Field(default=256, ge=1, le=65535)
    #: Outbound alerts waiting for the broker; beyond it the oldest is dropped and counted.
    alert_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    #: Generic publish() calls waiting for the broker; same drop-oldest policy as alerts.
    publish_queue_size: int = Field(default=1000, ge=1, le=1_000_000)

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("broker url must look like mqtt://host:port or mqtts://host:port")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError(f"bad port in broker url: {err}") from err
        return value

    @model_validator(mode="after")
    def _delays(self) -> Self:
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay is below reconnect_min_delay")
        return self

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Broker port; 1883 for mqtt:// and 8883 for mqtts:// unless given."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def use_tls(self) -> bool:
        """TLS is on for mqtts:// or when TLS material is configured."""
        return urlsplit(self.url).scheme == "mqtts" or self.tls is not None
