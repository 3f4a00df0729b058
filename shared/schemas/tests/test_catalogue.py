"""The catalogue as a whole: every event registered, named, sampled and documented."""

import re
from pathlib import Path

import pytest
from cairn_schemas import topics
from cairn_schemas.base import ContractScoped, Event, MilestoneEvent, WithParties
from cairn_schemas.errors import InvalidEvent, UnknownEventType
from cairn_schemas.events import (
    CATALOGUE,
    DeliveryFailed,
    JobPosted,
    MarketplaceSettingsChanged,
    MessagePosted,
    MilestoneFundingRequested,
    PaymentEvent,
    ProposalSubmitted,
)
from cairn_schemas.registry import EVENT_TYPES, event_class, events_on
from cairn_schemas.samples import SAMPLES, sample

README = Path(__file__).resolve().parents[1] / "README.md"


def _concrete_subclasses(cls: type[Event]) -> set[type[Event]]:
    found: set[type[Event]] = set()
    for sub in cls.__subclasses__():
        if "event_type" in sub.__dict__:
            found.add(sub)
        found |= _concrete_subclasses(sub)
    return found


def test_every_event_class_is_registered_under_its_type() -> None:
    assert _concrete_subclasses(Event) == set(EVENT_TYPES.values())
    assert len(CATALOGUE) == len(EVENT_TYPES)
    for event_type, cls in EVENT_TYPES.items():
        assert cls.event_type == event_type
        assert event_class(event_type) is cls


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_type_names_follow_cairn_entity_verb(event_type: str) -> None:
    assert re.fullmatch(r"cairn\.[a-z]+\.[a-z_]+", event_type)


def test_each_event_is_on_the_topic_its_entity_belongs_to() -> None:
    entity_topics = {
        "marketplace": topics.MARKETPLACES,
        "job": topics.CONTRACTS,
        "proposal": topics.CONTRACTS,
        "contract": topics.CONTRACTS,
        "milestone": topics.CONTRACTS,
        "dispute": topics.CONTRACTS,
        "message": topics.CONTRACTS,
        "payment": topics.PAYMENTS,
        "delivery": topics.NOTIFICATIONS,
    }
    for event_type, cls in EVENT_TYPES.items():
        assert cls.topic == entity_topics[event_type.split(".")[1]], event_type
    assert set(events_on(topics.PAYMENTS)) == _concrete_subclasses(PaymentEvent)


def test_unknown_type_is_an_invalid_event() -> None:
    with pytest.raises(UnknownEventType, match=r"cairn\.milestone\.teleported") as caught:
        event_class("cairn.milestone.teleported")
    assert isinstance(caught.value, InvalidEvent)
    assert caught.value.event_type == "cairn.milestone.teleported"


def test_there_is_a_valid_sample_of_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)
    for event_type, instance in SAMPLES.items():
        assert type(instance) is EVENT_TYPES[event_type]
        assert sample(type(instance)) is instance


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_keys_keep_one_contracts_events_in_order(event_type: str) -> None:
    event = SAMPLES[event_type]
    if isinstance(event, ContractScoped):
        assert event.key() == event.contract_id
        assert event.key_description == "contract_id"
    milestone_id = getattr(event, "milestone_id", None)
    if milestone_id:
        assert event.subject() == milestone_id
    elif isinstance(event, ContractScoped):
        assert event.subject() == event.contract_id


def test_settings_are_keyed_by_marketplace_jobs_by_job_deliveries_by_contract() -> None:
    settings = sample(MarketplaceSettingsChanged)
    assert settings.key() == settings.subject() == "mkt_acme"
    job = sample(JobPosted)
    assert job.key() == job.subject() == job.job_id
    delivery = sample(DeliveryFailed)
    assert delivery.key() == delivery.contract_id
    orphan = delivery.model_copy(update={"contract_id": None})
    assert orphan.key() == orphan.marketplace_id
    message = sample(MessagePosted).model_copy(update={"milestone_id": None})
    assert message.subject() == message.contract_id


def test_proposal_and_contract_events_carry_both_parties() -> None:
    for cls in EVENT_TYPES.values():
        if issubclass(cls, WithParties):
            assert {"customer", "freelancer", "job_title"} <= set(cls.model_fields)
    assert issubclass(ProposalSubmitted, WithParties)


def test_milestone_events_carry_what_an_email_and_a_charge_need() -> None:
    for cls in EVENT_TYPES.values():
        if issubclass(cls, MilestoneEvent):
            assert {"milestone_id", "title", "amount", "currency", "state", "actor"} <= set(
                cls.model_fields
            )
    funding = sample(MilestoneFundingRequested)
    assert (funding.customer_id, funding.attempt, funding.platform_fee_bps) == (
        "usr_ada",
        1,
        1_000,
    )


def test_client_secrets_stay_out_of_reprs_and_logs() -> None:
    for event_type in ("cairn.milestone.payment_action_required", "cairn.payment.action_required"):
        event = SAMPLES[event_type]
        assert "secret" not in repr(event)


def test_readme_documents_every_event_type() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [event_type for event_type in EVENT_TYPES if f"`{event_type}`" not in text]
    assert not missing, f"README.md does not describe {missing}"
