"""Kafka topic names of the Cairn event contract (DESIGN §6).

Every contract-scoped event is keyed by its contract id, so one contract's events stay in
order on one partition; the marketplaces topic is compacted and keyed by marketplace id,
so it always holds the latest settings of every marketplace.
"""

from __future__ import annotations

import re

CONTRACTS = "cairn.contracts.v1"
"""Jobs, proposals, contracts, milestones, disputes, messages (published by contracts)."""
PAYMENTS = "cairn.payments.v1"
"""Outcomes of money movements (published by payments, consumed by contracts)."""
NOTIFICATIONS = "cairn.notifications.v1"
"""Email delivery outcomes (published by notifications)."""
MARKETPLACES = "cairn.marketplaces.v1"
"""Marketplace settings; compacted, key = marketplace id (published by contracts)."""

ALL: tuple[str, ...] = (CONTRACTS, PAYMENTS, NOTIFICATIONS, MARKETPLACES)
COMPACTED: frozenset[str] = frozenset({MARKETPLACES})

_CONSUMER_GROUP = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def dead_letter(consumer_group: str) -> str:
    """The dead-letter topic of one consumer group: ``cairn.dlq.<group>.v1``."""
    if not _CONSUMER_GROUP.fullmatch(consumer_group):
        raise ValueError(
            f"consumer group {consumer_group!r} must be lower-case letters, digits, '.', '_' "
            "or '-' (it becomes part of a topic name)"
        )
    return f"cairn.dlq.{consumer_group}.v1"
