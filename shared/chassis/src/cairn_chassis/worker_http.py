"""The internal HTTP endpoint of every process: ``/healthz``, ``/readyz`` and ``/metrics``.

Workers have no API, yet Kubernetes needs to probe them and Prometheus to scrape them; an
API serves its metrics here too, off the port front ends reach.
This is a deliberately tiny HTTP/1.1 server on asyncio streams (GET only, one request per
connection): it adds no dependency and installs no signal handlers of its own, so the
worker's graceful shutdown stays in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from cairn_chassis.health import Check, run_checks


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[
        status
    ]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def serve(
    host: str,
    port: int,
    stopping: asyncio.Event,
    *,
    alive: Callable[[], bool],
    checks: Sequence[Check],
    registry: CollectorRegistry = REGISTRY,
) -> None:
    """Serve until ``stopping``; ``alive()`` false (a loop died) fails ``/healthz``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            method, path, *_ = [*line.decode("latin-1").split(" "), "", ""]
            while (await asyncio.wait_for(reader.readline(), timeout=5)).strip():
                pass  # headers are not needed
        except (TimeoutError, ConnectionError, ValueError):
            writer.close()
            return
        if method != "GET":
            await _answer(writer, 405, b"", "text/plain")
        elif path == "/healthz":
            ok = alive()
            await _answer(
                writer,
                200 if ok else 503,
                json.dumps({"status": "ok" if ok else "a worker loop died"}).encode(),
                "application/json",
            )
        elif path == "/readyz":
            ok, results = await run_checks(checks)
            body = {"status": "ok" if ok else "unavailable", "checks": results}
            await _answer(writer, 200 if ok else 503, json.dumps(body).encode(), "application/json")
        elif path == "/metrics":
            await _answer(writer, 200, generate_latest(registry), CONTENT_TYPE_LATEST)
        else:
            await _answer(writer, 404, b"", "text/plain")

    server = await asyncio.start_server(handle, host, port, reuse_address=True)
    try:
        await stopping.wait()
    finally:
        server.close()
        await server.wait_closed()
