"""Request bodies of the contracts API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Money = Annotated[
    int,
    Field(ge=1, le=100_000_000_00, strict=True, description="Minor units (cents), never a float"),
]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class JobIn(Strict):
    title: Title
    description: LongText = ""


class ProposalIn(Strict):
    cover_letter: LongText = ""
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        None, description="The freelancer's ISO country (US escrow may be held 2 years)"
    )


class ReasonIn(Strict):
    reason: Sentence | None = None


class MilestoneIn(Strict):
    title: Title
    description: LongText = ""
    amount: Money


class MilestonePatch(Strict):
    title: Title | None = None
    description: LongText | None = None
    amount: Money | None = None


class ApproveIn(Strict):
    version: int = Field(ge=1, description="The milestone version the freelancer reviewed")


class MessageIn(Strict):
    body: Sentence
    milestone_id: str | None = None


class ChangesIn(Strict):
    message: Sentence


class DisputeIn(Strict):
    reason: Sentence


class RefundAnswerIn(Strict):
    accept: bool
    message: Sentence | None = None


class ResolveIn(Strict):
    outcome: Literal["release", "refund", "split"]
    amount_to_freelancer: Money | None = Field(
        None, description="Split only: the freelancer's part; the rest is refunded"
    )
    note: Sentence
