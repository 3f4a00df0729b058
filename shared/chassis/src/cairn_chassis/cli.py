"""The console script every service exposes: ``api``, ``worker``, ``migrate``, ``openapi``,
``asyncapi`` and ``dev-token``, plus whatever a service adds."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from cairn_chassis.auth import ROLES, mint_token
from cairn_chassis.logging import configure_logging
from cairn_chassis.migrations import upgrade
from cairn_chassis.settings import ServiceSettings

Extra = tuple[
    str,
    str,
    Callable[[argparse.ArgumentParser], None],
    Callable[[argparse.Namespace, ServiceSettings], int],
]


@dataclass
class ServiceCLI:
    """Wires a service's factories into one argparse program."""

    name: str
    version: str
    settings: Callable[[], ServiceSettings]
    app: Callable[[ServiceSettings], FastAPI]
    broker: Callable[[ServiceSettings], KafkaBroker]
    worker: Callable[[ServiceSettings], Any]  # coroutine running the worker until a signal
    migrations_dir: Path
    extras: Sequence[Extra] = field(default_factory=tuple)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse ``argv`` and run the chosen subcommand."""
        parser = argparse.ArgumentParser(prog=f"cairn-{self.name}")
        sub = parser.add_subparsers(dest="command", required=True)
        api = sub.add_parser("api", help="serve the HTTP API")
        api.add_argument("--host")
        api.add_argument("--port", type=int)
        sub.add_parser("worker", help="run the event consumers, the outbox relay and timers")
        sub.add_parser("migrate", help="bring the database schema up to date")
        sub.add_parser("openapi", help="print the OpenAPI document (JSON)")
        sub.add_parser("asyncapi", help="print the AsyncAPI document FastStream generates")
        tok = sub.add_parser("dev-token", help="mint a bearer token for the local stack")
        tok.add_argument("--role", required=True, choices=ROLES)
        tok.add_argument("--sub", required=True)
        tok.add_argument("--marketplace", required=True)
        tok.add_argument("--email", default="")
        tok.add_argument("--name", default="")
        tok.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
        handlers: dict[str, Callable[[argparse.Namespace, ServiceSettings], int]] = {}
        for cmd, help_text, configure, run in self.extras:
            configure(sub.add_parser(cmd, help=help_text))
            handlers[cmd] = run
        args = parser.parse_args(argv)
        settings = self.settings()
        if args.command in ("api", "worker", "migrate"):
            configure_logging(self.name, settings.log_level, settings.log_json)
        if args.command == "api":
            uvicorn.run(
                self.app(settings),
                host=args.host or settings.api_host,
                port=args.port or settings.api_port,
                log_config=None,
                access_log=False,
            )
            return 0
        if args.command == "worker":
            asyncio.run(self.worker(settings))
            return 0
        if args.command == "migrate":
            upgrade(self.migrations_dir, settings.database_url)
            return 0
        if args.command == "openapi":
            json.dump(self.app(settings).openapi(), sys.stdout, indent=2)
            print()
            return 0
        if args.command == "asyncapi":
            spec = AsyncAPI(
                self.broker(settings),
                title=f"Cairn {self.name}",
                version=self.version,
                description=f"Events the Cairn {self.name} service consumes and publishes.",
            )
            print(spec.to_specification().to_json())
            return 0
        if args.command == "dev-token":
            print(
                mint_token(
                    settings,
                    sub=args.sub,
                    role=args.role,
                    marketplace=args.marketplace,
                    email=args.email,
                    name=args.name,
                    ttl_s=args.ttl,
                )
            )
            return 0
        return handlers[args.command](args, settings)
