"""Fault injection for tests and the chaos harness: make localstripe fail like a real,
sometimes unhealthy, remote API.

``POST /_config/faults`` with JSON::

    {"error_rate": 0.1, "timeout_rate": 0.05, "timeout_seconds": 30, "seed": 1,
     "paths": ["/v1/payment_intents"], "timeout_mode": "mixed"}

For each ``/v1/`` request whose path starts with one of ``paths`` (all, if absent) one
roll decides: ``error_rate`` of them answer 500 ``api_error`` before anything happens;
``timeout_rate`` of them hang for ``timeout_seconds``. A hanging request either *did*
the work and then hangs (``after``: the client times out not knowing the charge went
through — the case reconciliation exists for) or hangs and then answers 504 without
doing anything (``before``: the request was lost). ``mixed`` (default) picks one of the
two at random per request. ``seed`` makes the sequence repeatable.
``DELETE /_config/faults`` switches it off; ``GET /_config/faults`` shows the plan and
how many faults were injected.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FaultPlan", "add_fault_routes", "fault_counts", "fault_middleware"]

_MODES = ("mixed", "after", "before")


@dataclass(frozen=True)
class FaultPlan:
    """What to break, how often, and for which paths."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    timeout_mode: str = "mixed"
    seed: int | None = None
    paths: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        """Validate a request body; raises ValueError with a readable reason."""
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        rates = [data.get("error_rate", 0.0), data.get("timeout_rate", 0.0)]
        if not all(isinstance(r, int | float) and 0 <= r <= 1 for r in rates) or sum(rates) > 1:
            raise ValueError("error_rate and timeout_rate must be in [0, 1] and sum to <= 1")
        seconds = data.get("timeout_seconds", 30.0)
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError("timeout_seconds must be a non-negative number")
        mode = data.get("timeout_mode", "mixed")
        if mode not in _MODES:
            raise ValueError(f"timeout_mode must be one of {_MODES}")
        seed = data.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        paths = data.get("paths")
        if paths is not None and (
            not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
        ):
            raise ValueError("paths must be a list of path prefixes")
        return cls(
            error_rate=float(rates[0]),
            timeout_rate=float(rates[1]),
            timeout_seconds=float(seconds),
            timeout_mode=mode,
            seed=seed,
            paths=tuple(paths) if paths is not None else None,
        )

    def applies_to(self, path: str) -> bool:
        """True if requests to ``path`` may be broken by this plan."""
        if not path.startswith("/v1/"):
            return False
        return self.paths is None or any(path.startswith(p) for p in self.paths)


@dataclass
class _FaultState:
    plan: FaultPlan = field(default_factory=FaultPlan)
    rng: random.Random = field(default_factory=random.Random)
    counts: dict[str, int] = field(
        default_factory=lambda: {"errors": 0, "timeouts_after": 0, "timeouts_before": 0}
    )


_state = _FaultState()


def fault_counts() -> dict[str, int]:
    """How many faults of each kind were injected since the plan was last set."""
    return dict(_state.counts)


def _api_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"type": "api_error", "message": message}}, status=status)


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Break a share of matching requests as the current plan says."""
    plan = _state.plan
    if (plan.error_rate == 0 and plan.timeout_rate == 0) or not plan.applies_to(request.path):
        response: web.StreamResponse = await handler(request)
        return response
    roll = _state.rng.random()
    if roll < plan.error_rate:
        _state.counts["errors"] += 1
        return _api_error(500, "Injected fault: internal server error (nothing was done).")
    if roll < plan.error_rate + plan.timeout_rate:
        mode = plan.timeout_mode
        if mode == "mixed":
            mode = "after" if _state.rng.random() < 0.5 else "before"
        _state.counts["timeouts_" + mode] += 1
        if mode == "after":
            response = await handler(request)
            await asyncio.sleep(plan.timeout_seconds)
            return response
        await asyncio.sleep(plan.timeout_seconds)
        return _api_error(504, "Injected fault: timed out before processing (nothing was done).")
    response = await handler(request)
    return response


def _describe() -> dict[str, Any]:
    plan = asdict(_state.plan)
    plan["paths"] = list(_state.plan.paths) if _state.plan.paths is not None else None
    return {"plan": plan, "injected": fault_counts()}


async def _set_faults(request: web.Request) -> web.Response:
    try:
        plan = FaultPlan.from_json(await request.json())
    except ValueError as exc:  # also covers a body that is not JSON
        return web.json_response(
            {"error": {"type": "invalid_request_error", "message": str(exc)}}, status=400
        )
    _state.plan = plan
    _state.rng = random.Random(plan.seed)
    _state.counts = {key: 0 for key in _state.counts}
    return web.json_response(_describe())


async def _clear_faults(request: web.Request) -> web.Response:
    _state.plan = FaultPlan()
    return web.json_response(_describe())


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(_describe())


def add_fault_routes(app: web.Application) -> None:
    """Register ``/_config/faults`` (POST, DELETE, GET)."""
    app.router.add_post("/_config/faults", _set_faults)
    app.router.add_delete("/_config/faults", _clear_faults)
    app.router.add_get("/_config/faults", _get_faults)
