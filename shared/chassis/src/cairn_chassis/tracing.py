"""OpenTelemetry traces across Cairn (DESIGN §7), off unless the standard variables ask.

One trace follows a command from its HTTP request through the outbox row (its
``traceparent`` column), the Kafka record (the CloudEvents distributed-tracing extension,
header ``ce_traceparent``), the consumer that handles it, and what that consumer does in
turn: Stripe calls (httpx), SMTP sends, its own events. Configuration is OpenTelemetry's:

- ``OTEL_TRACES_EXPORTER``: ``otlp`` (OTLP over HTTP; ``OTEL_EXPORTER_OTLP_ENDPOINT`` …),
  ``console`` (stdout), ``file`` (Cairn's: one JSON span per line in
  ``CAIRN_OTEL_TRACES_DIR``/<service>-<role>-<pid>.jsonl), comma-separated; unset or
  ``none``: no tracing at all (the default). ``OTEL_SDK_DISABLED=true`` turns it off too.
- ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` (+ ``_ARG``),
  ``OTEL_PROPAGATORS``, ``OTEL_BSP_*`` as the SDK reads them.

A span without a parent starts a trace only where work starts (a request, a consumed
event, a publish); a lone database query or HTTP call of a background loop does not (the
outbox relay polls every few milliseconds).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import Attributes

__all__ = [
    "configure_tracing",
    "current_traceparent",
    "enabled",
    "instrument_app",
    "instrument_engine",
    "parent_context",
    "tracer",
]

_state: dict[str, bool] = {"enabled": False}
TRACES_DIR_ENV = "CAIRN_OTEL_TRACES_DIR"


def enabled() -> bool:
    """True once :func:`configure_tracing` installed a tracer provider."""
    return _state["enabled"]


def tracer() -> trace.Tracer:
    """Cairn's tracer (a no-op one while tracing is off)."""
    return trace.get_tracer("cairn")


def _exporter_names() -> list[str]:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = os.environ.get("OTEL_TRACES_EXPORTER", "none")
    return [n.strip().lower() for n in names.split(",") if n.strip() and n.strip() != "none"]


def configure_tracing(service: str, role: str) -> bool:
    """Install the SDK for one process when ``OTEL_TRACES_EXPORTER`` names an exporter;
    instrument httpx and aiokafka, and log each line's trace and span ids. False (and
    nothing installed) when tracing is off."""
    names = _exporter_names()
    if not names or _state["enabled"]:
        return _state["enabled"]
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, str] = {"cairn.role": role}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = f"cairn-{service}"
    provider = TracerProvider(
        resource=Resource.create(attributes), sampler=_EntrySampler(_sampler_from_env())
    )
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, service, role)))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    AIOKafkaInstrumentor().instrument()
    _state["enabled"] = True
    return True


def _sampler_from_env() -> Any:
    from opentelemetry.sdk.trace import sampling

    return sampling._get_from_env_or_default()


def _exporter(name: str, service: str, role: str) -> Any:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    if name == "file":
        folder = Path(os.environ.get(TRACES_DIR_ENV) or ".data/traces")
        folder.mkdir(parents=True, exist_ok=True)
        out = (folder / f"{service}-{role}-{os.getpid()}.jsonl").open("a", buffering=1)
        return ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")
    raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console, file, none)")


class _EntrySampler(Sampler):
    """Drops a parentless CLIENT span (a background loop's query or call); everything
    else is the configured sampler's to decide."""

    def __init__(self, delegate: Any) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Any] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        result: SamplingResult = self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        return result

    def get_description(self) -> str:
        """The sampler's name, as the SDK reports it."""
        return f"CairnEntrySampler({self._delegate.get_description()})"


def instrument_app(app: Any) -> None:
    """Server spans for a FastAPI app (not for the probes and the metrics)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")


def instrument_engine(engine: Any) -> None:
    """Spans for a SQLAlchemy engine's statements (an async engine's ``sync_engine``)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1; the engine events it hooks are the
    # same in 2.1 (tests/e2e/test_tracing.py sees the statements in the trace).
    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False, skip_dep_check=True)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if one is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def parent_context(*traceparents: str | None) -> Context:
    """The context the first given ``traceparent`` names (an empty one if none does)."""
    for value in traceparents:
        if value:
            return propagate.extract({"traceparent": value})
    return otel_context.Context()


def add_trace_ids(_logger: Any, _method: str, event_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: the trace and span ids of the current span, when recording."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid and isinstance(event_dict, dict):
        event_dict.setdefault("trace_id", format(span.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span.span_id, "016x"))
    return event_dict
