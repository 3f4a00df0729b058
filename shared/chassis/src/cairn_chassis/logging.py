"""Structured logging: JSON lines on stdout through structlog."""

from __future__ import annotations

import logging
import sys

import structlog

from cairn_chassis.tracing import add_trace_ids


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog records through one JSON (or console) renderer."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else console_renderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Every Stripe call is 3 INFO lines from the stripe SDK and httpx: per-request noise.
    for noisy in (
        "aiokafka",
        "faststream",
        "sqlalchemy.engine",
        "uvicorn.access",
        "stripe",
        "httpx",
        "httpcore",
        "alembic.runtime.plugins",  # a line per plugin whenever the migrations are read
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.contextvars.bind_contextvars(service=service)


def console_renderer() -> structlog.dev.ConsoleRenderer:
    """Human-readable lines with plain tracebacks. structlog's default (rich, with every
    frame's local variables) takes seconds of CPU per exception and would print secrets
    held in locals (tokens, API keys) into the log."""
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


def configure_plain(level: str = "INFO") -> None:
    """structlog straight to stdout, console lines with plain tracebacks: for tests and
    in-process tools that do not run :func:`configure_logging`."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            console_renderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A bound structlog logger."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
