"""The email catalogue: which (event, recipient) pairs get which email (DESIGN §5).

Pure data and one pure function, :func:`notices_for`. A template name ``<name>.<audience>``
maps to ``templates/<name>.<audience>.html`` and ``.txt``; its subject is a Jinja string
rendered without HTML escaping (it is a header, not markup).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cairn_schemas import events as ev
from cairn_schemas.base import Event, Role

Audience = Literal["customer", "freelancer", "operators"]
PARTIES: tuple[Audience, Audience] = ("customer", "freelancer")
AUDIENCES: tuple[Audience, ...] = ("customer", "freelancer", "operators")


@dataclass(frozen=True)
class EmailKind:
    """One email of the catalogue: its template, who gets it and its subject."""

    name: str
    audience: Audience
    subject: str

    @property
    def template(self) -> str:
        """The template name: ``<name>.<audience>``."""
        return f"{self.name}.{self.audience}"


def _kinds(name: str, **subjects: str) -> dict[Audience, EmailKind]:
    result: dict[Audience, EmailKind] = {}
    for audience in AUDIENCES:
        if audience in subjects:
            result[audience] = EmailKind(name, audience, subjects.pop(audience))
    if subjects:
        raise ValueError(f"unknown audience(s) {sorted(subjects)} for {name}")
    return result


_MS = "“{{ event.title }}”"
_AMOUNT = "{{ event.amount | money(event.currency) }}"

# event type -> audience -> email. Which of the audiences actually get it is decided by
# the rule of the event type (see _RULES), e.g. "the other party" of an edit.
EMAILS: dict[str, dict[Audience, EmailKind]] = {
    ev.ProposalSubmitted.event_type: _kinds(
        "proposal_submitted",
        customer="New proposal from {{ event.freelancer.name }} for “{{ event.job_title }}”",
    ),
    ev.ProposalDeclined.event_type: _kinds(
        "proposal_declined",
        freelancer="Your proposal for “{{ event.job_title }}” was declined",
    ),
    ev.ProposalWithdrawn.event_type: _kinds(
        "proposal_withdrawn",
        customer="{{ event.freelancer.name }} withdrew their proposal for “{{ event.job_title }}”",
    ),
    ev.ContractStarted.event_type: _kinds(
        "proposal_accepted",
        freelancer="{{ event.customer.name }} accepted your proposal for “{{ event.job_title }}”",
    ),
    ev.ContractEnded.event_type: _kinds(
        "contract_ended",
        customer="The contract for “{{ event.job_title }}” has ended",
        freelancer="The contract for “{{ event.job_title }}” has ended",
    ),
    ev.MilestoneCreated.event_type: _kinds(
        "milestone_created",
        customer=f"New milestone {_MS} ({_AMOUNT}) is ready for you to fund",
    ),
    ev.MilestoneSentForApproval.event_type: _kinds(
        "milestone_sent_for_approval",
        freelancer=f"New task to review: {_MS} ({_AMOUNT})",
    ),
    ev.MilestoneApproved.event_type: _kinds(
        "milestone_approved",
        customer=f"{{{{ contract.freelancer_name }}}} approved the task {_MS}",
    ),
    ev.MilestoneChangesRequested.event_type: _kinds(
        "milestone_changes_requested",
        customer=f"{{{{ contract.freelancer_name }}}} asked for changes to {_MS}",
    ),
    ev.MilestoneEdited.event_type: _kinds(
        "milestone_edited",
        customer=f"The milestone {_MS} was changed",
        freelancer=f"The task {_MS} was changed",
    ),
    ev.MilestoneDeleted.event_type: _kinds(
        "milestone_deleted",
        customer=f"The milestone {_MS} was deleted",
        freelancer=f"The task {_MS} was deleted",
    ),
    ev.MilestoneFunded.event_type: _kinds(
        "milestone_funded",
        freelancer=f"{_AMOUNT} is in escrow for {_MS}: you can start work",
    ),
    ev.MilestonePaymentFailed.event_type: _kinds(
        "milestone_payment_failed",
        customer=f"Your payment of {_AMOUNT} for {_MS} did not go through",
    ),
    ev.MilestonePaymentActionRequired.event_type: _kinds(
        "milestone_payment_action_required",
        customer=f"Please confirm your payment of {_AMOUNT} for {_MS}",
    ),
    ev.MilestoneSubmitted.event_type: _kinds(
        "milestone_submitted",
        customer=f"Work submitted for {_MS}: please review",
    ),
    ev.MilestoneReleased.event_type: _kinds(
        "milestone_released",
        freelancer=(
            "You have been paid {{ event.amount_to_freelancer | money(event.currency) }} "
            f"for {_MS}"
        ),
        customer=f"Receipt: {_AMOUNT} released for {_MS}",
    ),
    ev.MilestoneRefundRequested.event_type: _kinds(
        "milestone_refund_requested",
        freelancer=f"{{{{ contract.customer_name }}}} asked for a refund of {_MS}",
        customer=f"Your refund request for {_MS} was sent",
    ),
    ev.MilestoneRefundRequestDeclined.event_type: _kinds(
        "milestone_refund_request_declined",
        customer=f"Your refund request for {_MS} was declined",
    ),
    ev.MilestoneRefunded.event_type: _kinds(
        "milestone_refunded",
        customer=f"{_AMOUNT} for {_MS} was refunded to you",
        freelancer=f"{_AMOUNT} for {_MS} was refunded to the customer",
    ),
    ev.MilestoneSettled.event_type: _kinds(
        "milestone_settled",
        customer=f"The dispute over {_MS} is settled",
        freelancer=f"The dispute over {_MS} is settled",
    ),
    ev.MilestoneAutoReleaseReminder.event_type: _kinds(
        "auto_release_reminder",
        customer=f"{_MS} will be released to {{{{ contract.freelancer_name }}}} "
        "on {{ event.releases_at | date }}",
    ),
    ev.MilestoneRefundDeadlineReminder.event_type: _kinds(
        "refund_deadline_reminder",
        freelancer=f"Please answer the refund request for {_MS} by {{{{ event.deadline | date }}}}",
    ),
    ev.MilestoneHoldingLimitReminder.event_type: _kinds(
        "holding_limit_reminder",
        customer=f"Action needed: the escrow for {_MS} ends on {{{{ event.limit_at | date }}}}",
        freelancer=f"Add your payout details: {_MS} waits for you until "
        "{{ event.limit_at | date }}",
        operators=f"Escrow holding limit near for {_MS} ({_AMOUNT})",
    ),
    ev.DisputeOpened.event_type: _kinds(
        "dispute_opened",
        freelancer="{{ contract.customer_name }} disputed “{{ event.milestone_title }}”",
        operators="Dispute to decide: “{{ event.milestone_title }}” "
        f"({_AMOUNT}) on “{{{{ contract.job_title }}}}”",
    ),
    ev.DisputeResolved.event_type: _kinds(
        "dispute_resolved",
        customer="The dispute over “{{ event.milestone_title }}” was decided",
        freelancer="The dispute over “{{ event.milestone_title }}” was decided",
    ),
    ev.MessagePosted.event_type: _kinds(
        "message_posted",
        customer="New message from {{ author_name }} on “{{ contract.job_title }}”",
        freelancer="New message from {{ author_name }} on “{{ contract.job_title }}”",
    ),
    ev.PaymentReleasePending.event_type: _kinds(
        "release_pending_payout_details",
        freelancer=f"Add your payout details to receive {_AMOUNT}",
    ),
    # Not from a consumed event: queued by the sender when an email fails (service/alerts).
    ev.DeliveryFailed.event_type: _kinds(
        "delivery_failed",
        operators="An email could not be delivered to {{ event.recipient }} ({{ event.template }})",
    ),
    ev.PaymentChargebackOpened.event_type: _kinds(
        "chargeback_opened",
        operators="Chargeback opened: {{ event.chargeback_amount | money(event.currency) }} "
        "on “{{ contract.job_title }}”",
    ),
}


def _other_party(role: Role) -> tuple[Audience, ...]:
    if role == "customer":
        return ("freelancer",)
    if role == "freelancer":
        return ("customer",)
    return PARTIES  # an operator or the system acted: both parties hear about it


def _audiences(event: Event) -> tuple[Audience, ...]:
    """Who hears about ``event``, by the rule of its type."""
    rule = _RULES.get(event.event_type)
    if rule is not None:
        return rule(event)
    return tuple(EMAILS.get(event.event_type, {}))


def _created(event: Event) -> tuple[Audience, ...]:
    # Freelancer mode: the customer is told and pays. In customer mode the freelancer hears
    # about the task when it is sent for approval, not while the customer drafts it.
    assert isinstance(event, ev.MilestoneCreated)
    return ("customer",) if event.created_by == "freelancer" else ()


def _by_actor(event: Event) -> tuple[Audience, ...]:
    actor = getattr(event, "actor", None) or getattr(event, "ended_by", None)
    role: Role = actor.role if actor is not None else "system"
    return _other_party(role)


# States of a customer's task the freelancer is not reviewing: a draft they were never
# sent, or one they asked to change, which comes back to them with the re-send's email.
_NOT_WITH_THE_FREELANCER = frozenset({"draft", "changes_requested"})


def _edited(event: Event) -> tuple[Audience, ...]:
    # Editing a draft or an amendment is the customer's own business until it is sent: the
    # freelancer gets one email for an amendment ("new task to review"), not two.
    assert isinstance(event, ev.MilestoneEdited)
    if event.actor.role == "customer" and event.state in _NOT_WITH_THE_FREELANCER:
        return ()
    return _by_actor(event)


def _deleted(event: Event) -> tuple[Audience, ...]:
    # A draft the freelancer was never sent is not theirs to hear about.
    assert isinstance(event, ev.MilestoneDeleted)
    if event.actor.role == "customer" and event.previous_state == "draft":
        return ()
    return _by_actor(event)


def _holding_limit(event: Event) -> tuple[Audience, ...]:
    # A release waiting for the freelancer's payout details: only they can act (and the
    # operators decide at the limit); otherwise the customer holds the money's fate.
    assert isinstance(event, ev.MilestoneHoldingLimitReminder)
    if event.state == "releasing":
        return ("freelancer", "operators")
    return ("customer", "operators")


def _message(event: Event) -> tuple[Audience, ...]:
    assert isinstance(event, ev.MessagePosted)
    return _other_party(event.author.role)


def _queued_by_the_sender(event: Event) -> tuple[Audience, ...]:
    # The sender queues the operators' email about a failed delivery in the transaction
    # that records the failure (service/alerts); the event on the topic emails nobody.
    return ()


_RULES: dict[str, Callable[[Event], tuple[Audience, ...]]] = {
    ev.DeliveryFailed.event_type: _queued_by_the_sender,
    ev.MilestoneCreated.event_type: _created,
    ev.MilestoneEdited.event_type: _edited,
    ev.MilestoneDeleted.event_type: _deleted,
    ev.ContractEnded.event_type: _by_actor,
    ev.MessagePosted.event_type: _message,
    ev.MilestoneHoldingLimitReminder.event_type: _holding_limit,
}


def notices_for(event: Event) -> tuple[EmailKind, ...]:
    """The emails ``event`` causes, one per audience; empty if nobody should be told."""
    kinds = EMAILS.get(event.event_type, {})
    return tuple(kinds[a] for a in _audiences(event) if a in kinds)


def all_kinds() -> tuple[EmailKind, ...]:
    """Every email of the catalogue (for the gallery and the template tests)."""
    return tuple(kind for kinds in EMAILS.values() for kind in kinds.values())
