import pytest
from cairn_schemas import topics


def test_the_four_topics_and_the_compacted_one() -> None:
    assert topics.ALL == (
        "cairn.contracts.v1",
        "cairn.payments.v1",
        "cairn.notifications.v1",
        "cairn.marketplaces.v1",
    )
    assert frozenset({"cairn.marketplaces.v1"}) == topics.COMPACTED


def test_dead_letter_topic_is_named_after_the_consumer_group() -> None:
    assert topics.dead_letter("notifications") == "cairn.dlq.notifications.v1"
    assert topics.dead_letter("payments.contract-events") == "cairn.dlq.payments.contract-events.v1"


@pytest.mark.parametrize("group", ["", "Notifications", "has space", "a/b"])
def test_dead_letter_refuses_names_that_cannot_be_part_of_a_topic(group: str) -> None:
    with pytest.raises(ValueError, match="consumer group"):
        topics.dead_letter(group)
