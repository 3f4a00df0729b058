"""Messages on a contract's thread (topic ``cairn.contracts.v1``, key = contract id)."""

from __future__ import annotations

from cairn_schemas import topics
from cairn_schemas.base import Actor, ContractScoped, Id, Text


class MessagePosted(ContractScoped):
    """Someone wrote on the contract thread (a change request is also posted here)."""

    event_type = "cairn.message.posted"
    topic = topics.CONTRACTS

    message_id: Id
    milestone_id: Id | None = None
    author: Actor
    body: Text
