"""docs/examples/subscriber.py — the confluent-kafka consumer of docs/subscribers.md, a
client Cairn itself does not use — on the events a running Cairn published.

A contract is driven until its milestone is funded; every record the services published
about it (both topics, keys, bodies and ``ce_*`` headers as they are) is copied in order
to topics of this test's own, followed by what a subscriber must cope with: the funded
event again with its id (a redelivery, or a dead-letter replay another group asked for),
the creation event again under a new id (an old version arriving late), and a copy whose
body breaks its schema. The example must validate the real events against the published
JSON Schemas, handle each once, and say what it skipped and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cairn_devstack.broker import create_topics
from cairn_schemas import topics

from tests.e2e.conftest import Env
from tests.e2e.flows import Flow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "subscriber.py"


async def read_all(bootstrap: str, names: list[str], idle_s: float = 3.0) -> list[Any]:
    """Every record on ``names`` (no group, from the start) until ``idle_s`` of silence."""
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=int(idle_s * 1000)):
            for rs in batch.values():
                records.extend(rs)
    finally:
        await consumer.stop()
    return records


def header(record: Any, name: str) -> str:
    return next(v.decode() for k, v in record.headers if k == name)


def with_header(record: Any, name: str, value: str) -> list[tuple[str, bytes]]:
    return [(k, value.encode() if k == name else v) for k, v in record.headers]


async def test_the_example_subscriber_validates_and_deduplicates_real_events(
    env: Env, e2e_bootstrap: str
) -> None:
    flow = Flow.open(env)
    flow.propose()
    flow.accept()
    milestone = flow.create(flow.freelancer, "Subscriber check", 12_000)
    flow.act(flow.customer, milestone["id"], "pay")
    flow.reach(milestone["id"], "funded")

    # What Cairn published about this contract, in each topic's order (key = contract id).
    everything = await read_all(e2e_bootstrap, [topics.CONTRACTS, topics.PAYMENTS])
    ours = [r for r in everything if r.key == flow.contract_id.encode()]
    by_type = {header(r, "ce_type"): r for r in ours}
    for expected in ("cairn.milestone.created", "cairn.payment.funded", "cairn.milestone.funded"):
        assert expected in by_type, sorted(by_type)

    run = uuid.uuid4().hex[:8]
    copies = {
        topics.CONTRACTS: f"subscriber.{run}.contracts",
        topics.PAYMENTS: f"subscriber.{run}.payments",
    }
    await create_topics(e2e_bootstrap, dict.fromkeys(copies.values(), 1))
    funded, created = by_type["cairn.milestone.funded"], by_type["cairn.milestone.created"]
    late_id, broken_id = str(uuid.uuid4()), str(uuid.uuid4())
    broken = json.loads(funded.value) | {"amount": 0}
    producer = AIOKafkaProducer(bootstrap_servers=e2e_bootstrap)
    await producer.start()
    try:
        for r in ours:
            await producer.send_and_wait(
                copies[r.topic], r.value, key=r.key, headers=list(r.headers)
            )
        extra = [
            (funded.value, list(funded.headers)),  # the same event again, same id
            (created.value, with_header(created, "ce_id", late_id)),  # version 1, late
            (json.dumps(broken).encode(), with_header(funded, "ce_id", broken_id)),
        ]
        for value, headers in extra:
            await producer.send_and_wait(
                copies[topics.CONTRACTS], value, key=funded.key, headers=headers
            )
    finally:
        await producer.stop()

    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=ROOT,
        env={
            **os.environ,
            "CAIRN_BOOTSTRAP": e2e_bootstrap,
            "CAIRN_GROUP": f"subscriber-check-{run}",
            "CAIRN_TOPICS": ",".join(copies.values()),
            "CAIRN_STOP_AFTER": str(len(ours) + len(extra)),
            # The local broker joins a group in about half the session timeout (~22 s at
            # librdkafka's default 45 s): docs/subscribers.md, "Trying it locally".
            "CAIRN_KAFKA_CONFIG": json.dumps({"session.timeout.ms": 6000}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [line.split(" ", 2) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(ours) + len(extra), result.stdout
    # Every real event validated and was handled once (the relay may have published one
    # twice: at least once), and nothing else was.
    first: dict[str, str] = {}
    repeated = []
    for r in ours:
        ce_id, ce_type = header(r, "ce_id"), header(r, "ce_type")
        if ce_id in first:
            repeated.append([ce_id, ce_type, "duplicate"])
        first.setdefault(ce_id, ce_type)
    assert sorted(o[:2] for o in outcomes if o[2] == "ok") == sorted(map(list, first.items()))
    skipped = sorted([i, t, o.split(" ")[0]] for i, t, o in outcomes if o != "ok")
    assert skipped == sorted(
        [
            *repeated,
            [header(funded, "ce_id"), "cairn.milestone.funded", "duplicate"],
            [late_id, "cairn.milestone.created", "stale"],
            [broken_id, "cairn.milestone.funded", "invalid"],
        ]
    ), result.stdout
    (invalid,) = [o for i, _, o in outcomes if i == broken_id]
    assert "0 is less than the minimum of 1" in invalid, invalid
