"""The chaos harness's HTTP client: every call survives a killed API or a lost answer.

A POST keeps its Idempotency-Key across retries, as a careful front end does; connection
errors, 5xx and "still in progress" are retried with backoff.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt


class ScenarioError(Exception):
    """A lifecycle could not go on: the message says which step and what was answered."""


class Api:
    """Calls the three services as any user, minting tokens on the fly."""

    def __init__(self, urls: dict[str, str], jwt_secret: str) -> None:
        self.urls = urls
        self.secret = jwt_secret
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(20.0, connect=3.0), limits=httpx.Limits(max_connections=200)
        )
        self.retries = 0

    async def close(self) -> None:
        await self.http.aclose()

    def token(self, role: str, sub: str, marketplace: str) -> str:
        now = int(time.time())
        return jwt.encode(
            {
                "sub": sub,
                "role": role,
                "marketplace": marketplace,
                "email": f"{sub}@chaos.test",
                "name": sub.replace("-", " ").title(),
                "iat": now,
                "exp": now + 6 * 3600,
            },
            self.secret,
            algorithm="HS256",
        )

    async def call(
        self,
        token: str,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        deadline_s: float = 240.0,
    ) -> Any:
        """The JSON answer of a successful call; ScenarioError on a refusal."""
        headers = {"authorization": f"Bearer {token}"}
        if method == "POST":
            headers["idempotency-key"] = uuid.uuid4().hex
        deadline = time.monotonic() + deadline_s
        delay = 0.1
        while True:
            try:
                r = await self.http.request(
                    method, self.urls[service] + path, json=body, headers=headers
                )
                retry = r.status_code >= 500 or (
                    r.status_code == 409
                    and r.headers.get("content-type", "").startswith("application/problem")
                    and r.json().get("code") == "idempotency.in_progress"
                )
                if not retry:
                    if r.status_code in ok:
                        return r.json()
                    raise ScenarioError(f"{method} {service}{path} -> {r.status_code}: {r.text}")
                last = f"{r.status_code}: {r.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            self.retries += 1
            if time.monotonic() > deadline:
                raise ScenarioError(f"{method} {service}{path} kept failing: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def until(self, what: str, check: Any, *, timeout: float = 240.0) -> Any:
        """Poll the async ``check`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = await check()
            except ScenarioError:
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                raise ScenarioError(f"timed out waiting for {what}")
            await asyncio.sleep(0.25)

    async def wait_for_milestone(
        self,
        token: str,
        contract_id: str,
        milestone_id: str,
        states: tuple[str, ...],
        *,
        timeout: float = 240.0,
    ) -> dict[str, Any]:
        """The milestone once it is in one of ``states`` (polled: the harness kills the
        APIs, and a poll survives that as every other call does)."""

        async def check() -> dict[str, Any] | None:
            c = await self.call(token, "GET", "contracts", f"/v1/contracts/{contract_id}")
            found: dict[str, Any] = next(m for m in c["milestones"] if m["id"] == milestone_id)
            return found if found["state"] in states else None

        found: dict[str, Any] = await self.until(
            f"milestone {milestone_id} in {states}", check, timeout=timeout
        )
        return found
