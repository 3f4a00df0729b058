"""Cairn's event contract: typed milestone lifecycle events, topics and CloudEvents helpers.

Modules: ``topics`` (topic names), ``base`` (parties, actors, event bases, money types),
``settings`` (marketplace settings), ``events`` (the catalogue), ``registry`` (event class
by type), ``cloudevents`` (Kafka binary-mode encoding), ``samples`` (one valid instance
per type), ``export`` and ``compat`` (published JSON Schemas and their compatibility).
"""

from __future__ import annotations

from cairn_schemas.base import Actor, ContractScoped, Event, MilestoneEvent, MilestoneState, Party
from cairn_schemas.cloudevents import Envelope, KafkaRecord, from_kafka, new_event_id, to_kafka
from cairn_schemas.errors import InvalidEvent, UnknownEventType
from cairn_schemas.registry import EVENT_TYPES, event_class
from cairn_schemas.settings import Branding, MarketplaceSettings

__all__ = [
    "EVENT_TYPES",
    "Actor",
    "Branding",
    "ContractScoped",
    "Envelope",
    "Event",
    "InvalidEvent",
    "KafkaRecord",
    "MarketplaceSettings",
    "MilestoneEvent",
    "MilestoneState",
    "Party",
    "UnknownEventType",
    "event_class",
    "from_kafka",
    "new_event_id",
    "to_kafka",
]
