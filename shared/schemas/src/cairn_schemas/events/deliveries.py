"""Email delivery outcomes (topic ``cairn.notifications.v1``).

Key = the source event's contract id when it had one, else the marketplace id.
"""

from __future__ import annotations

from pydantic import Field

from cairn_schemas import topics
from cairn_schemas.base import EmailAddress, Event, Id, Text


class _Delivery(Event):
    topic = topics.NOTIFICATIONS
    key_description = "contract_id, else marketplace_id"

    delivery_id: Id
    source_event_id: Id = Field(description="The ce_id of the event the email was about.")
    source_event_type: Id
    contract_id: Id | None = None
    recipient: EmailAddress
    recipient_user_id: Id | None = None
    template: Id
    attempts: int = Field(ge=1)

    def key(self) -> str:
        return self.contract_id or self.marketplace_id


class DeliverySucceeded(_Delivery):
    """The SMTP server accepted the email."""

    event_type = "cairn.delivery.succeeded"

    message_id: Id = Field(description="The email's Message-ID header.")


class DeliveryFailed(_Delivery):
    """The email could not be delivered: a permanent (5xx) refusal or retries ran out."""

    event_type = "cairn.delivery.failed"

    reason: Text
    permanent: bool = Field(description="True for a 5xx refusal; False when retries ran out.")
