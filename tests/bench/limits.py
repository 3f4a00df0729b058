"""The two limits an event hop cannot beat on this machine, measured in the same run:

- the broker's raw consume -> produce round trip with aiokafka (a forwarder that reads one
  topic and writes another, acks=all, as a relay does), at Cairn's event size;
- PostgreSQL's rate of small commits (one row insert + commit) over several connections.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cairn_devstack.broker import create_topics
from cairn_devstack.postgres import acreate_database, drop_database

from tests.bench.stats import ms


def _payload(size: int, sent_at: float) -> bytes:
    head = json.dumps({"t": sent_at}).encode()
    return head + b" " * max(0, size - len(head))


def _sent_at(value: bytes) -> float:
    return float(json.loads(value.split(b"}", 1)[0] + b"}")["t"])


async def broker_round_trip(
    bootstrap: str,
    *,
    message_size: int,
    messages: int = 5000,
    paced_rate: float = 200.0,
    paced_seconds: float = 5.0,
    fetch_max_wait_ms: int = 5,
) -> dict[str, Any]:
    """Messages/s through consume -> produce (saturated) and one hop's latency (paced).

    A hop here is what a Cairn hop costs the broker: a producer writes to topic A (acks=all),
    a forwarder in a consumer group reads A and writes B (acks=all, awaited), a sink reads B.
    Latency is the produce -> forwarder-consume time of each message, at a paced rate well
    below saturation.
    """
    run = uuid.uuid4().hex[:6]
    a, b = f"bench.raw.a.{run}", f"bench.raw.b.{run}"
    await create_topics(bootstrap, {a: 3, b: 3})
    consumer_opts: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "max_poll_records": 500,
        "enable_auto_commit": True,
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    forward_producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    forwarder = AIOKafkaConsumer(a, group_id=f"bench-fwd-{run}", **consumer_opts)
    sink = AIOKafkaConsumer(b, group_id=f"bench-sink-{run}", **consumer_opts)
    await asyncio.gather(
        producer.start(), forward_producer.start(), forwarder.start(), sink.start()
    )
    hop_latencies: list[float] = []
    received = 0
    stop = asyncio.Event()
    try:

        async def forward() -> None:
            while not stop.is_set():
                batches = await forwarder.getmany(timeout_ms=50, max_records=500)
                futures = []
                now = time.time()
                for records in batches.values():
                    for rec in records:
                        hop_latencies.append(now - _sent_at(rec.value))
                        futures.append(await forward_producer.send(b, rec.value, key=rec.key))
                for fut in futures:
                    await fut

        async def drain() -> None:
            nonlocal received
            while not stop.is_set():
                batches = await sink.getmany(timeout_ms=50, max_records=500)
                received += sum(len(r) for r in batches.values())

        tasks = [asyncio.create_task(forward()), asyncio.create_task(drain())]
        # Wait until both groups own their partitions (a first send makes that visible).
        warm_deadline = time.monotonic() + 30
        while received == 0 and time.monotonic() < warm_deadline:
            await (await producer.send(a, _payload(message_size, time.time()), key=b"warm"))
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)

        # Paced phase: latency of one hop well below saturation.
        hop_latencies.clear()
        interval = 1.0 / paced_rate
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < paced_seconds:
            await producer.send(a, _payload(message_size, time.time()), key=str(n).encode())
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * interval - time.monotonic()))
        await asyncio.sleep(0.5)
        paced = list(hop_latencies)

        # Saturated phase: as many messages as the forwarder can take.
        base = received
        start = time.monotonic()
        futures = [
            await producer.send(a, _payload(message_size, time.time()), key=str(i).encode())
            for i in range(messages)
        ]
        for fut in futures:
            await fut
        deadline = time.monotonic() + 120
        while received - base < messages and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - start
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for client in (producer, forward_producer, forwarder, sink):
            await client.stop()
    got = received - base
    return {
        "message_bytes": message_size,
        "messages": got,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(got / elapsed, 1),
        "paced_rate_per_s": paced_rate,
        "hop_latency_ms": ms(paced, 2),
        "fetch_max_wait_ms": fetch_max_wait_ms,
    }


async def postgres_commits(
    *, connections: int = 4, seconds: float = 5.0, row_bytes: int = 600
) -> dict[str, Any]:
    """Small commits per second: each connection loops INSERT one row (its own commit)."""
    name = f"cairn_bench_commits_{uuid.uuid4().hex[:8]}"
    url = (await acreate_database(name)).replace("postgresql+asyncpg", "postgresql")
    try:
        setup = await asyncpg.connect(url)
        await setup.execute(
            "CREATE TABLE t (id bigserial PRIMARY KEY, event_id text, body text, "
            "at timestamptz DEFAULT now())"
        )
        await setup.close()
        body = "x" * row_bytes
        counts = [0] * connections
        latencies: list[float] = []
        deadline = time.monotonic() + seconds

        async def loop(i: int) -> None:
            conn = await asyncpg.connect(url)
            try:
                stmt = await conn.prepare("INSERT INTO t (event_id, body) VALUES ($1, $2)")
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    await stmt.fetch(uuid.uuid4().hex, body)
                    latencies.append(time.perf_counter() - t)
                    counts[i] += 1
            finally:
                await conn.close()

        start = time.monotonic()
        await asyncio.gather(*(loop(i) for i in range(connections)))
        elapsed = time.monotonic() - start
    finally:
        await asyncio.to_thread(drop_database, name)
    return {
        "connections": connections,
        "commits": sum(counts),
        "seconds": round(elapsed, 3),
        "commits_per_s": round(sum(counts) / elapsed, 1),
        "commit_latency_ms": ms(latencies, 3),
    }
