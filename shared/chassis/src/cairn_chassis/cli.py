"""The console script every service exposes: ``api``, ``worker``, ``migrate``, ``openapi``,
``asyncapi``, ``dev-token`` and ``dead-letters``, plus whatever a service adds."""

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
from cairn_schemas import topics as cairn_topics
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from cairn_chassis.asyncapi import asyncapi_document
from cairn_chassis.auth import ROLES, mint_token
from cairn_chassis.deadletters import read_dead_letters, replay
from cairn_chassis.logging import configure_logging
from cairn_chassis.migrations import upgrade
from cairn_chassis.settings import DevelopmentValuesRefused, ServiceSettings
from cairn_chassis.tracing import configure_tracing

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
        sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document of its events")
        tok = sub.add_parser("dev-token", help="mint a bearer token for the local stack")
        tok.add_argument("--role", required=True, choices=ROLES)
        tok.add_argument("--sub", required=True)
        tok.add_argument("--marketplace", required=True)
        tok.add_argument("--email", default="")
        tok.add_argument("--name", default="")
        tok.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
        dlq = sub.add_parser(
            "dead-letters",
            help="list the messages this service's consumers parked, or replay them",
            description=f"Reads {cairn_topics.dead_letter(self.name)} (commits nothing). "
            "Replaying publishes an event back to its original topic; consumers that "
            "already processed it skip it, so replaying twice is harmless.",
        )
        dlq.add_argument(
            "--replay",
            metavar="EVENT_ID",
            action="append",
            default=[],
            help="replay this event (its ce_id; repeatable)",
        )
        dlq.add_argument(
            "--replay-all", action="store_true", help="replay every replayable parked event"
        )
        dlq.add_argument("--json", action="store_true", help="one JSON object per line")
        handlers: dict[str, Callable[[argparse.Namespace, ServiceSettings], int]] = {}
        for cmd, help_text, configure, run in self.extras:
            configure(sub.add_parser(cmd, help=help_text))
            handlers[cmd] = run
        args = parser.parse_args(argv)
        settings = self.settings()
        if args.command in ("api", "worker", "migrate"):
            configure_logging(self.name, settings.log_level, settings.log_json)
        if args.command in ("api", "worker"):
            configure_tracing(self.name, args.command)
        if args.command in ("api", "worker"):
            try:
                settings.refuse_development_values()
            except DevelopmentValuesRefused as exc:
                print(f"cairn-{self.name}: {exc}", file=sys.stderr)
                return 2
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
            json.dump(self.app(documents_only(settings)).openapi(), sys.stdout, indent=2)
            print()
            return 0
        if args.command == "asyncapi":
            document = asyncapi_document(
                self.broker(settings), title=f"Cairn {self.name}", version=self.version
            )
            json.dump(document, sys.stdout, indent=2)
            print()
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
        if args.command == "dead-letters":
            return asyncio.run(self._dead_letters(args, settings))
        return handlers[args.command](args, settings)

    async def _dead_letters(self, args: argparse.Namespace, settings: ServiceSettings) -> int:
        letters = await read_dead_letters(settings, cairn_topics.dead_letter(self.name))
        if not args.replay and not args.replay_all:
            for letter in letters:
                row = letter.summary()
                if args.json:
                    print(json.dumps(row))
                else:
                    print(
                        f"{row['dlq_partition']}:{row['dlq_offset']}  {row['failed_at'] or '-'}"
                        f"  {row['event_type'] or '(not a Cairn event)'}  {row['event_id'] or '-'}"
                        f"  from {row['original_topic'] or '-'}\n    {row['reason']}"
                        + ("" if letter.replayable else f"\n    not replayable: {letter.refusal}")
                    )
            if not args.json:
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        wanted = set(args.replay)
        chosen = [d for d in letters if d.replayable and (args.replay_all or d.event_id in wanted)]
        sent = await replay(settings, chosen)
        for letter in sent:
            print(f"replayed {letter.event_id} to {letter.header('dlq_original_topic')}")
        missing = wanted - {d.event_id for d in sent}
        refused = {d.event_id: d.refusal for d in letters if d.event_id in missing}
        for event_id in sorted(missing):
            why = refused.get(event_id) or "no such event on the dead-letter topic"
            print(f"not replayed: {event_id}: {why}", file=sys.stderr)
        return 1 if missing else 0


#: Verifies nothing: the OpenAPI document is built from the routes, never from a key.
_DOCUMENTS_ONLY_SECRET = "openapi-document-only-this-key-verifies-nothing"


def documents_only(settings: ServiceSettings) -> ServiceSettings:
    """``settings`` fit to build the app for its OpenAPI document alone: a release's
    pipeline prints it without any of the deployment's secrets (issue 19)."""
    if settings.jwt_secret or settings.jwt_public_key or settings.jwt_jwks_url:
        return settings
    return settings.model_copy(update={"jwt_secret": _DOCUMENTS_ONLY_SECRET})
