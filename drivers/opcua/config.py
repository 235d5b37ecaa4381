"""Validated configuration of one OPC UA device: endpoint, security, subscription and tags.

Durations of our own (timeouts, watchdog, polling) are in seconds; OPC UA's own intervals keep the
protocol's unit and say so in their names (`publishing_interval_ms`, `sampling_interval_ms`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from asyncua import ua
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: "idx:Name" segments separated by "/", starting below the Root folder.
_BROWSE_SEGMENT = re.compile(r"^\d+:[^/]+$")
#: What a string node id starts with ("ns=2;s=...", "i=2258", "nsu=urn:...;s=...").
_NODE_ID_PREFIX = re.compile(r"^(ns|nsu|i|s|g|b)=")

DeadbandType = Literal["none", "absolute", "percent"]


def _check_deadband(kind: str, value: float) -> None:
    if kind == "percent" and value > 100.0:
        raise ValueError("a percent deadband must be between 0 and 100")
    if kind != "none" and value <= 0.0:
        raise ValueError(f"a {kind} deadband needs a deadband_value > 0")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpcUaSecurityConfig(_Strict):
    """Secure channel policy and the client's application instance certificate."""

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] | None = Field(
        default=None, description="defaults to None for policy None, SignAndEncrypt otherwise")
    certificate: Path | None = Field(default=None, description="client certificate (DER or PEM)")
    private_key: Path | None = Field(default=None, description="client private key (PEM)")
    private_key_password: str | None = Field(default=None, repr=False)
    server_certificate: Path | None = Field(
        default=None, description="pin the server's certificate; else taken from its endpoints")
    application_uri: str = Field(
        default="urn:mes-edge:opcua-client",
        description="must match the URI in the client certificate's subjectAltName")

    @model_validator(mode="after")
    def _check_policy(self) -> Self:
        if self.policy == "None":
            if self.mode not in (None, "None"):
                raise ValueError(f"mode {self.mode!r} needs policy Basic256Sha256, not None")
            return self
        if self.mode == "None":
            raise ValueError("policy Basic256Sha256 needs mode Sign or SignAndEncrypt")
        if self.certificate is None or self.private_key is None:
            raise ValueError("policy Basic256Sha256 needs 'certificate' and 'private_key' paths")
        return self

    @property
    def effective_mode(self) -> str:
        """The message security mode actually used."""
        if self.policy == "None":
            return "None"
        return self.mode or "SignAndEncrypt"


class OpcUaSubscriptionConfig(_Strict):
    """Subscription defaults; each tag may override sampling interval and deadband."""

    publishing_interval_ms: float = Field(default=500.0, gt=0)
    sampling_interval_ms: float = Field(default=250.0, ge=0)
    deadband_type: DeadbandType = "none"
    deadband_value: float = Field(default=0.0, ge=0)
    queue_size: int = Field(default=1, ge=1, description="values the server queues per item")
    keepalive_count: int = Field(default=10, ge=1)
    lifetime_count: int = Field(default=100, ge=3)
    max_notifications_per_publish: int = Field(default=0, ge=0, description="0 = no limit")

    @model_validator(mode="after")
    def _check_deadband(self) -> Self:
        _check_deadband(self.deadband_type, self.deadband_value)
        if self.lifetime_count < 3 * self.keepalive_count:
            raise ValueError("lifetime_count must be at least 3 x keepalive_count (OPC UA Part 4)")
        return self


class OpcUaTagConfig(_Strict):
    """One value to read: a node given as a string node id or a browse path."""

    name: str = Field(min_length=1)
    node: str = Field(
        min_length=1,
        description='string node id ("ns=2;s=Machine.GoodCount", "ns=2;i=1001") or browse path '
        '("0:Objects/2:Machine/2:GoodCount", from the Root folder)')
    mode: Literal["subscribe", "poll"] = "subscribe"
    sampling_interval_ms: float | None = Field(default=None, ge=0)
    deadband_type: DeadbandType | None = None
    deadband_value: float | None = Field(default=None, ge=0)
    poll_interval: float | None = Field(default=None, gt=0, description="seconds, for mode poll")

    @field_validator("node")
    @classmethod
    def _check_node(cls, value: str) -> str:
        value = value.strip()
        if _NODE_ID_PREFIX.match(value):
            try:
                ua.NodeId.from_string(value)
            except Exception as err:  # asyncua raises several types for bad strings
                raise ValueError(f"invalid node id {value!r}: {err}") from None
            return value
        segments = value.strip("/").split("/")
        bad = [s for s in segments if not _BROWSE_SEGMENT.match(s)]
        if bad:
            raise ValueError(
                f"{value!r} is neither a node id (ns=2;s=Name, ns=2;i=1001) nor a browse path of "
                f"'index:Name' segments (0:Objects/2:Machine/2:GoodCount); bad segment {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _check_tag_deadband(self) -> Self:
        if self.deadband_type is not None:
            _check_deadband(self.deadband_type, self.deadband_value or 0.0)
        return self

    @property
    def is_browse_path(self) -> bool:
        """True when `node` is a browse path to translate on connect."""
        return not _NODE_ID_PREFIX.match(self.node)

    @property
    def browse_path(self) -> list[ua.QualifiedName]:
        """The path's qualified names (only for browse paths)."""
        names = []
        for segment in self.node.strip("/").split("/"):
            index, _, name = segment.partition(":")
            names.append(ua.QualifiedName(name, int(index)))
        return names


class OpcUaDeviceConfig(_Strict):
    """A device reached over OPC UA (one session, one subscription)."""

    name: str = Field(min_length=1)
    endpoint: str = Field(description="opc.tcp://host:port/path")
    timeout: float = Field(default=4.0, gt=0, description="seconds per request")
    connect_timeout: float = Field(default=10.0, gt=0, description="seconds for a whole connect")
    watchdog_interval: float = Field(default=2.0, gt=0, description="seconds between health reads")
    watchdog_timeout: float = Field(default=3.0, gt=0, description="seconds a health read may take")
    reconnect_initial: float = Field(default=0.5, gt=0)
    reconnect_max: float = Field(default=10.0, gt=0)
    security: OpcUaSecurityConfig = Field(default_factory=OpcUaSecurityConfig)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    subscription: OpcUaSubscriptionConfig = Field(default_factory=OpcUaSubscriptionConfig)
    poll_interval: float = Field(default=1.0, gt=0, description="seconds, polled and fallback tags")
    poll_report: Literal["change", "always"] = Field(
        default="change", description="emit polled values on change only, or every read")
    poll_batch_size: int = Field(default=100, ge=1, le=10_000, description="nodes per Read request")
    queue_size: int = Field(default=64, ge=1, description="batches buffered for the consumer")
    tags: list[OpcUaTagConfig] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if not value.startswith("opc.tcp://") or len(value) <= len("opc.tcp://"):
            raise ValueError(f"endpoint must look like opc.tcp://host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_device(self) -> Self:
        seen: set[str] = set()
        for tag in self.tags:
            if tag.name in seen:
                raise ValueError(f"duplicate tag name {tag.name!r}")
            seen.add(tag.name)
        if self.watchdog_interval + self.watchdog_timeout > 10.0:
            raise ValueError("watchdog_interval + watchdog_timeout must be <= 10 s: a dead session "
                             "has to be detected within 10 s")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must be >= reconnect_initial")
        return self
