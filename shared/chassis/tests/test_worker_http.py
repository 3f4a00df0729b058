"""A worker's probe and metrics endpoint answers what Kubernetes and Prometheus need."""

from __future__ import annotations

import asyncio

import httpx
from cairn_chassis import runtime, worker_http
from cairn_chassis.messaging import make_broker
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.procs import free_port


async def test_worker_endpoint_reports_liveness_readiness_and_metrics() -> None:
    port = free_port()
    stopping = asyncio.Event()
    alive = {"ok": True}

    async def database_ok() -> None:
        return None

    async def broker_down() -> None:
        raise ConnectionError("no broker")

    server = asyncio.create_task(
        worker_http.serve(
            "127.0.0.1",
            port,
            stopping,
            alive=lambda: alive["ok"],
            checks=[("database", database_ok), ("broker", broker_down)],
        )
    )
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["broker"].startswith("failed: ConnectionError")
        assert "python_info" in (await client.get("/metrics")).text
        assert (await client.get("/nope")).status_code == 404
        alive["ok"] = False
        assert (await client.get("/healthz")).status_code == 503
    stopping.set()
    await server


async def test_a_worker_started_during_a_broker_outage_waits_for_the_broker(
    settings: ServiceSettings, kafka_bootstrap: str
) -> None:
    down = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    stopping = asyncio.Event()
    broker = make_broker(down)
    attempt = asyncio.create_task(runtime._start_broker(broker, stopping))
    await asyncio.sleep(1.5)
    assert not attempt.done(), "it keeps trying instead of crashing"
    stopping.set()
    assert await attempt is False

    up = make_broker(settings)
    assert await runtime._start_broker(up, asyncio.Event()) is True
    await up.stop()
