"""Which dead letters may be replayed, and what a replay sends back."""

from __future__ import annotations

from cairn_chassis.deadletters import DeadLetter
from cairn_schemas import topics


def letter(**headers: str) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=7,
        key=b"ct_1",
        value=b"{}",
        headers=tuple((k, v.encode()) for k, v in headers.items()),
    )


def test_an_event_goes_back_to_its_topic() -> None:
    parked = letter(ce_id="e1", ce_type="cairn.payment.funded", dlq_original_topic=topics.PAYMENTS)
    assert parked.replayable
    assert parked.summary()["replayable"] is True


def test_a_message_that_is_not_an_event_is_never_replayed() -> None:
    assert letter(dlq_original_topic=topics.PAYMENTS).refusal == "not a Cairn event"


def test_a_settings_version_is_not_republished_on_the_compacted_topic() -> None:
    # Compaction keeps the last record per marketplace: an old version republished would
    # become the one a fresh consumer sees.
    parked = letter(ce_id="e2", dlq_original_topic=topics.MARKETPLACES)
    assert not parked.replayable
    assert "compacted" in (parked.refusal or "")
