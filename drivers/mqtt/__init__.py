"""MQTT driver: scanner/terminal messages in (manual ack after commit), state and alerts out."""

from drivers.mqtt.config import InboundTopics, MqttConfig, MqttTlsConfig, OutboundTopics
from drivers.mqtt.inbound import InboundStats, MqttInboundDriver
from drivers.mqtt.items import (
    InboundDelivery,
    InboundItem,
    ReceivedEvent,
    ReceivedScan,
    RejectedMessage,
)
from drivers.mqtt.payloads import PayloadSchemas
from drivers.mqtt.publisher import MqttPublisher, PublisherStats
from drivers.mqtt.topics import TopicTemplate

__all__ = [
    "InboundDelivery",
    "InboundItem",
    "InboundStats",
    "InboundTopics",
    "MqttConfig",
    "MqttInboundDriver",
    "MqttPublisher",
    "MqttTlsConfig",
    "OutboundTopics",
    "PayloadSchemas",
    "PublisherStats",
    "ReceivedEvent",
    "ReceivedScan",
    "RejectedMessage",
    "TopicTemplate",
]
