"""CloudEvents 1.0 Kafka binary mode: what goes on the wire and what is refused."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cairn_schemas import topics
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import (
    Envelope,
    InvalidEvent,
    KafkaRecord,
    from_kafka,
    headers_dict,
    new_event_id,
    to_kafka,
)
from cairn_schemas.errors import UnknownEventType
from cairn_schemas.events import MilestoneApproved, PaymentFunded
from cairn_schemas.samples import SAMPLES, sample

WHEN = datetime(2025, 3, 3, 9, 30, 15, 123456, tzinfo=UTC)


def _record(event: Event | None = None) -> KafkaRecord:
    return to_kafka(
        event or sample(MilestoneApproved), source="/cairn/contracts", event_id="evt-1", time=WHEN
    )


def _without(record: KafkaRecord, name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in record.headers if k != name]


def _replaced(record: KafkaRecord, name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in record.headers]


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_event_type_survives_the_round_trip(event_type: str) -> None:
    event = SAMPLES[event_type]
    record = to_kafka(event, source="/cairn/test", event_id="evt-42", time=WHEN)

    assert record.topic == event.topic
    assert record.key == event.key().encode()
    envelope = from_kafka(record.headers, record.value, topic=record.topic)

    assert envelope == Envelope(
        id="evt-42",
        type=event_type,
        source="/cairn/test",
        time=WHEN,
        subject=event.subject(),
        event=event,
    )
    assert type(envelope.event) is type(event)


def test_headers_are_the_cloudevents_kafka_binding() -> None:
    record = _record()
    assert headers_dict(record.headers) == {
        "ce_specversion": "1.0",
        "ce_id": "evt-1",
        "ce_type": "cairn.milestone.approved",
        "ce_source": "/cairn/contracts",
        "ce_time": "2025-03-03T09:30:15.123456Z",
        "ce_subject": "ms_0001",
        "content-type": "application/json",
    }
    assert all(isinstance(value, bytes) for _, value in record.headers)
    assert record.topic == topics.CONTRACTS
    assert record.key == b"ctr_0001"


def test_body_is_the_payload_without_type_or_topic() -> None:
    body = json.loads(_record().value)
    assert body["milestone_id"] == "ms_0001"
    assert body["amount"] == 150_000
    assert body["schema_version"] == 1
    assert "event_type" not in body
    assert "topic" not in body


def test_time_is_sent_in_utc_and_ids_default_to_fresh_uuids() -> None:
    paris = timezone(timedelta(hours=1))
    record = to_kafka(
        sample(PaymentFunded),
        source="/cairn/payments",
        time=datetime(2025, 3, 3, 10, 30, tzinfo=paris),
    )
    headers = headers_dict(record.headers)
    assert headers["ce_time"] == "2025-03-03T09:30:00.000000Z"
    assert len(headers["ce_id"]) == 36
    assert new_event_id() != new_event_id()


def test_to_kafka_refuses_naive_times_and_empty_sources() -> None:
    with pytest.raises(ValueError, match="timezone"):
        to_kafka(sample(PaymentFunded), source="/cairn/payments", time=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="source"):
        to_kafka(sample(PaymentFunded), source="")


def test_headers_may_come_as_a_mapping_of_strings() -> None:
    record = _record()
    envelope = from_kafka(headers_dict(record.headers), record.value)
    assert envelope.id == "evt-1"
    assert envelope.time == WHEN


def test_headers_dict_tolerates_bytes_str_none_and_garbage() -> None:
    assert headers_dict([("a", b"x"), ("b", "y"), ("c", None), ("d", b"\xff")]) == {
        "a": "x",
        "b": "y",
        "c": "",
        "d": "\ufffd",
    }
    assert headers_dict({"a": b"1"}) == {"a": "1"}


def test_unrelated_headers_are_ignored() -> None:
    record = _record()
    headers = [*record.headers, ("traceparent", b"\x00\xff binary"), ("x-retry", b"2")]
    assert from_kafka(headers, record.value).id == "evt-1"


def test_unknown_body_fields_are_ignored_for_forward_compatibility() -> None:
    record = _record()
    body = json.loads(record.value)
    body["added_in_a_later_version"] = {"anything": [1, 2]}
    body["actor"]["team"] = "growth"
    envelope = from_kafka(record.headers, json.dumps(body).encode())
    assert envelope.event == sample(MilestoneApproved)


@pytest.mark.parametrize("header", ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"])
def test_a_missing_required_header_is_refused(header: str) -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match=f"missing header.*{header}"):
        from_kafka(_without(record, header), record.value)


def test_an_empty_required_header_counts_as_missing() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match=r"missing header.*ce_id") as caught:
        from_kafka(_replaced(record, "ce_id", b""), record.value)
    assert caught.value.event_type == "cairn.milestone.approved"


def test_no_headers_at_all_is_not_a_cloudevent() -> None:
    with pytest.raises(InvalidEvent, match="not a CloudEvent"):
        from_kafka([], b"{}")


def test_another_specversion_is_refused() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match=r"specversion '0\.3'") as caught:
        from_kafka(_replaced(record, "ce_specversion", b"0.3"), record.value)
    assert caught.value.event_id == "evt-1"


@pytest.mark.parametrize("value", [b"yesterday", b"2025-03-03T09:30:00", b"2025-13-01T00:00Z"])
def test_an_invalid_time_is_refused(value: bytes) -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="ce_time"):
        from_kafka(_replaced(record, "ce_time", value), record.value)


def test_a_header_that_is_not_utf8_is_refused() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="ce_source is not UTF-8"):
        from_kafka(_replaced(record, "ce_source", b"\xff\xfe"), record.value)


def test_conflicting_duplicate_headers_are_refused() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="ce_type appears twice"):
        from_kafka([*record.headers, ("ce_type", b"cairn.milestone.released")], record.value)


def test_an_unknown_type_is_refused_with_its_id() -> None:
    record = _record()
    with pytest.raises(UnknownEventType, match=r"cairn\.milestone\.teleported") as caught:
        from_kafka(_replaced(record, "ce_type", b"cairn.milestone.teleported"), record.value)
    assert caught.value.event_id == "evt-1"


def test_a_non_json_content_type_is_refused() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="content-type 'application/avro'"):
        from_kafka(_replaced(record, "content-type", b"application/avro"), record.value)
    charset = _replaced(record, "content-type", b"application/json; charset=utf-8")
    assert from_kafka(charset, record.value).id == "evt-1"


@pytest.mark.parametrize("value", [b"", b"not json", b'{"amount": ', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_refused(value: bytes) -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="is not JSON"):
        from_kafka(record.headers, value)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match="is not a JSON object"):
        from_kafka(record.headers, b"[1, 2]")


def test_a_body_failing_validation_says_which_fields() -> None:
    record = _record()
    body = json.loads(record.value)
    body["amount"] = -5
    del body["actor"]
    with pytest.raises(InvalidEvent) as caught:
        from_kafka(record.headers, json.dumps(body).encode())
    reason = str(caught.value)
    assert reason.startswith("body of cairn.milestone.approved failed validation")
    assert "amount: Input should be greater than or equal to 1" in reason
    assert "actor: Field required" in reason
    assert caught.value.event_id == "evt-1"


def test_an_event_on_the_wrong_topic_is_refused_when_the_topic_is_given() -> None:
    record = _record()
    with pytest.raises(InvalidEvent, match=r"belongs on cairn\.contracts\.v1, not on"):
        from_kafka(record.headers, record.value, topic=topics.PAYMENTS)
