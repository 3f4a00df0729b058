"""The SSE reader dispatches events as a browser's EventSource would."""

from __future__ import annotations

from cairn_devstack.sse import events


def test_events_are_dispatched_on_blank_lines_with_their_type_id_and_data() -> None:
    stream = [
        ": ping",
        "",
        "event: snapshot",
        "id: 3.7",
        'data: {"state": "live"}',
        "",
        "data: first",
        "data: second",
        "",
        "id: 9.9",
    ]
    got = [(e.event, e.id, e.data) for e in events(stream)]
    assert got == [("snapshot", "3.7", '{"state": "live"}'), ("message", None, "first\nsecond")]
