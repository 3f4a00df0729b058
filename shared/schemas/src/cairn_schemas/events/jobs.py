"""Jobs, proposals and contracts (topic ``cairn.contracts.v1``).

A proposal *is* a contract in state ``proposal``: its ``contract_id`` stays the same when
the customer accepts it. Every proposal and contract event carries both parties' contact
details and the job title, which is where the notifications directory comes from.
"""

from __future__ import annotations

from cairn_schemas import topics
from cairn_schemas.base import Actor, Event, Id, Line, Party, Version, WithParties


class JobPosted(Event):
    """A customer posted a job. Jobs have no contract yet: the key is ``job_id``."""

    event_type = "cairn.job.posted"
    topic = topics.CONTRACTS
    key_description = "job_id"

    job_id: Id
    title: Line
    description: str
    customer: Party

    def key(self) -> str:
        return self.job_id

    def subject(self) -> str:
        return self.job_id


class ProposalSubmitted(WithParties):
    """A freelancer sent a proposal on a job: a new contract in state ``proposal``."""

    event_type = "cairn.proposal.submitted"
    topic = topics.CONTRACTS

    cover_letter: str
    settings_version: Version
    """The marketplace settings version this contract follows for its whole life."""


class ProposalDeclined(WithParties):
    """The customer declined a proposal; the contract ends in state ``declined``."""

    event_type = "cairn.proposal.declined"
    topic = topics.CONTRACTS

    declined_by: Actor
    reason: str | None = None


class ProposalWithdrawn(WithParties):
    """The freelancer withdrew a proposal; the contract ends in state ``withdrawn``."""

    event_type = "cairn.proposal.withdrawn"
    topic = topics.CONTRACTS

    withdrawn_by: Actor
    reason: str | None = None


class ContractStarted(WithParties):
    """The customer accepted the proposal: the contract is live ("Current Jobs")."""

    event_type = "cairn.contract.started"
    topic = topics.CONTRACTS

    settings_version: Version
    started_by: Actor


class ContractEnded(WithParties):
    """Either party ended a live contract (no milestone had money in flight)."""

    event_type = "cairn.contract.ended"
    topic = topics.CONTRACTS

    ended_by: Actor
