"""Nothing is lost and nothing happens twice: every event of the slice delivered again
changes nothing, and an event committed while the relay was dead is still delivered."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cairn_devstack.procs import run_sync
from cairn_devstack.stack import wait_until
from cairn_schemas import topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import Env
from tests.e2e.test_slice import live_contract, mails, marketplace, save_card

GROUPS = {
    "contracts": [topics.PAYMENTS],
    "payments": [topics.CONTRACTS],
    "notifications": [topics.CONTRACTS, topics.PAYMENTS, topics.MARKETPLACES],
}


async def _records_for(bootstrap: str, keys: set[bytes]) -> list[Any]:
    """Every record on the Cairn topics whose key is one of ``keys``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p)
            for t in (topics.CONTRACTS, topics.PAYMENTS, topics.MARKETPLACES)
            for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        idle = 0
        while idle < 5:
            batch = await consumer.getmany(timeout_ms=200)
            idle = 0 if batch else idle + 1
            for rs in batch.values():
                out.extend(r for r in rs if r.key in keys)
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def _replay(bootstrap: str, records: list[Any]) -> dict[TopicPartition, int]:
    """Publish each record again, byte for byte (same ce_id); highest offset per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    high: dict[TopicPartition, int] = {}
    try:
        for r in records:
            meta = await producer.send_and_wait(
                r.topic, r.value, key=r.key, headers=list(r.headers)
            )
            tp = TopicPartition(meta.topic, meta.partition)
            high[tp] = max(high.get(tp, -1), meta.offset)
    finally:
        await producer.stop()
    return high


async def _consumed_past(bootstrap: str, high: dict[TopicPartition, int]) -> bool:
    """True once every consumer group committed past the replayed offsets it reads."""
    for group, group_topics in GROUPS.items():
        # A consumer that never subscribes does not join the group; it only reads offsets.
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await reader.start()
        try:
            for tp, offset in high.items():
                if tp.topic not in group_topics:
                    continue
                committed = await reader.committed(tp)
                if committed is None or committed <= offset:
                    return False
        finally:
            await reader.stop()
    return True


async def _unpublished(url: str, key: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT count(*) FROM outbox WHERE published_at IS NULL AND key = :k"),
                {"k": key},
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


def _funded_milestone(env: Env) -> tuple[str, str, str, Any, Any]:
    mk, _, customer, freelancer = marketplace(env)
    save_card(env, customer)
    contract_id = live_contract(customer, freelancer)
    m = freelancer.post(
        "contracts",
        f"/v1/contracts/{contract_id}/milestones",
        {"title": "Icon set", "amount": 12345},
        expect=201,
    )
    customer.post("contracts", f"/v1/milestones/{m['id']}/pay")
    wait_until(
        lambda: (
            customer.get("contracts", f"/v1/contracts/{contract_id}")["milestones"][0]["state"]
            == "funded"
        ),
        timeout=30,
        what="funded",
    )
    wait_until(lambda: len(mails(env, f"free@{mk}.test")) >= 2, what="the freelancer's emails")
    return mk, contract_id, m["id"], customer, freelancer


def test_every_event_delivered_twice_changes_nothing(env: Env) -> None:
    mk, contract_id, milestone_id, customer, _ = _funded_milestone(env)
    bootstrap = env.stack.infra.kafka_bootstrap
    history = customer.get("contracts", f"/v1/milestones/{milestone_id}/history")
    escrow = customer.get("payments", f"/v1/escrow/{milestone_id}")
    emails = sorted((m["to"][0], m["subject"]) for m in env.mail.messages() if mk in m["to"][0])
    charges = env.stripe.stats()["charges"]

    records = run_sync(_records_for(bootstrap, {contract_id.encode(), mk.encode()}))
    types = {dict(r.headers)["ce_type"].decode() for r in records}
    assert {
        "cairn.milestone.funding_requested",
        "cairn.payment.funded",
        "cairn.milestone.funded",
        "cairn.contract.started",
    } <= types
    high = run_sync(_replay(bootstrap, records))
    wait_until(
        lambda: run_sync(_consumed_past(bootstrap, high)),
        timeout=60,
        what="every consumer group to process the replayed events",
    )

    assert env.stripe.stats()["charges"] == charges, "a replayed event charged again"
    assert customer.get("contracts", f"/v1/milestones/{milestone_id}/history") == history
    assert customer.get("payments", f"/v1/escrow/{milestone_id}") == escrow
    assert (
        sorted((m["to"][0], m["subject"]) for m in env.mail.messages() if mk in m["to"][0])
        == emails
    ), "a replayed event sent an email again"


def test_event_committed_while_the_worker_is_dead_is_delivered_after_restart(env: Env) -> None:
    mk, _, customer, freelancer = marketplace(env)
    contract_id = live_contract(customer, freelancer)
    env.stack.kill("contracts", "worker")
    try:
        m = freelancer.post(
            "contracts",
            f"/v1/contracts/{contract_id}/milestones",
            {"title": "Written while the relay was down", "amount": 777},
            expect=201,
        )
        # The state change and its event are committed, but nothing has published it.
        assert run_sync(_unpublished(env.stack.infra.database_urls["contracts"], contract_id)) >= 1
        assert not [s for s in mails(env, f"cust@{mk}.test") if "Written while" in s]
    finally:
        env.stack.start("contracts", "worker")
    wait_until(
        lambda: [s for s in mails(env, f"cust@{mk}.test") if "Written while" in s],
        timeout=60,
        what="the customer's email after the worker came back",
    )
    assert m["state"] == "approved"
