"""Building blocks of every Cairn event: field types, parties, actors and the event bases.

Money is always an ``int`` in minor units plus an ISO 4217 ``currency``; floats, booleans
and numeric strings are refused (strict ints), so a rounding error can never reach Stripe.
Every model ignores unknown fields, so a consumer built against an older schema keeps
working when a producer adds an optional field (the compatibility rule, see README).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from cairn_schemas.currencies import check_supported
from cairn_schemas.text import clean_line, clean_text


def _cleaned(clean: Callable[[str], str]) -> BeforeValidator:
    # Placed after the constraints, it runs before them: text that is only control
    # characters is then empty, and refused.
    return BeforeValidator(lambda value: clean(value) if isinstance(value, str) else value)


Id = Annotated[str, StringConstraints(min_length=1)]
"""An opaque identifier (user, contract, milestone, Stripe object...): a non-empty string."""

Text = Annotated[str, StringConstraints(min_length=1, pattern=r"\S"), _cleaned(clean_text)]
"""Human-readable text that must say something (not empty, not only whitespace).

Control characters other than tab, LF and CR, and the bidi controls, are removed
(:mod:`cairn_schemas.text`): the APIs refuse them, and an event written before they did
must still be readable."""

Line = Annotated[str, StringConstraints(min_length=1, pattern=r"\S"), _cleaned(clean_line)]
"""Single-line text that must say something: a name, a title. Line breaks, tabs, other
control characters and the bidi controls become one space (an email header carries it)."""

Amount = Annotated[int, Field(ge=1, strict=True)]
"""A positive amount of money in minor units (cents): 1 or more, never a float."""

AmountOrZero = Annotated[int, Field(ge=0, strict=True)]
"""A share of an amount in minor units that may be nothing (a fee, one side of a split)."""

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(check_supported)]
"""An ISO 4217 currency code in upper case that Stripe can charge in, e.g. ``EUR``
(:mod:`cairn_schemas.currencies`: "XYZ" and "XXX" are refused)."""

_EMAIL_PATTERN = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$"
EmailAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=_EMAIL_PATTERN)
]
"""An email address: one ``@``, no whitespace or header-breaking characters.

Deliberately looser than RFC 5322 (no ``email-validator`` dependency); the SMTP server has
the last word.
"""

BasisPoints = Annotated[int, Field(ge=0, le=10_000, strict=True)]
"""A fee rate in basis points: 250 = 2.5 %; 0..10000."""

Version = Annotated[int, Field(ge=1)]
"""A version number (milestone version, settings version): 1, 2, ..."""

Attempt = Annotated[int, Field(ge=1)]
"""Which attempt at paying a milestone: 1 for the first, one more each time it is retried."""

Timestamp = AwareDatetime
"""A timezone-aware point in time (naive datetimes are refused)."""

Role = Literal["customer", "freelancer", "operator", "system", "payments"]

MilestoneState = Literal[
    "draft",
    "pending_approval",
    "changes_requested",
    "approved",
    "funding",
    "funded",
    "submitted",
    "releasing",
    "released",
    "disputed",
    "refunding",
    "refunded",
    "settled",
    "deleted",
]


class Party(BaseModel):
    """One side of a contract, with what an email to them needs."""

    # Spelled out in each base model, not shared through a variable, so that the pydantic
    # mypy plugin sees ``frozen`` and flags code that mutates an event or its parts.
    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: Id
    email: EmailAddress
    name: Line


class Actor(BaseModel):
    """Who caused an event: a signed-in user, an operator, a timer or the payments service."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: Id
    role: Role


class Event(BaseModel):
    """Base of every event payload; the JSON body of a CloudEvent.

    ``event_type`` and ``topic`` are class attributes, so they travel in the ``ce_type``
    header and the record's topic, never in the body.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]
    key_description: ClassVar[str] = "marketplace_id"
    """What ``key()`` returns, in words (for the published schemas and the README)."""

    schema_version: int = Field(default=1, ge=1)
    marketplace_id: Id

    def key(self) -> str:
        """The Kafka record key: the marketplace id unless a subclass is narrower."""
        return self.marketplace_id

    def subject(self) -> str:
        """The CloudEvents subject: the milestone, else the contract, else the key."""
        for name in ("milestone_id", "contract_id"):
            value = getattr(self, name, None)
            if isinstance(value, str) and value:
                return value
        return self.key()


class ContractScoped(Event):
    """An event about one contract (a proposal is a contract in state ``proposal``).

    Keyed by ``contract_id`` so all of a contract's events stay in order.
    """

    key_description = "contract_id"

    contract_id: Id

    def key(self) -> str:
        return self.contract_id


class WithParties(ContractScoped):
    """A proposal or contract event: carries both parties' contact details and the job.

    The notifications service builds its recipient directory from these events.
    """

    job_id: Id
    job_title: Line
    customer: Party
    freelancer: Party


class MilestoneEvent(ContractScoped):
    """An event in a milestone's life; ``state`` and ``version`` are as of after the event."""

    milestone_id: Id
    title: Line
    amount: Amount
    currency: Currency
    version: Version
    state: MilestoneState
    actor: Actor


def require_sum(total: int, total_name: str, **parts: int) -> None:
    """Raise ``ValueError`` unless ``parts`` add up exactly to ``total`` (money splits)."""
    if sum(parts.values()) != total:
        terms = " + ".join(f"{name} ({value})" for name, value in parts.items())
        raise ValueError(f"{terms} must add up to {total_name} ({total})")
