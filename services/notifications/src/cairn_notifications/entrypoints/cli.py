"""``cairn-notifications``: api, worker, migrate, openapi, asyncapi, dev-token, render-all."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn_chassis.cli import ServiceCLI
from cairn_chassis.db import Database
from cairn_chassis.settings import ServiceSettings
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from cairn_notifications import __version__
from cairn_notifications.config import MIGRATIONS, Settings, load_settings
from cairn_notifications.entrypoints import api, consumers, worker
from cairn_notifications.service.gallery import render_gallery
from cairn_notifications.service.requeue import requeue


def _settings(s: ServiceSettings) -> Settings:
    assert isinstance(s, Settings)
    return s


def _app(s: ServiceSettings) -> FastAPI:
    return api.create(_settings(s))


def _broker(s: ServiceSettings) -> KafkaBroker:
    return consumers.build_broker(_settings(s))


def _worker(s: ServiceSettings) -> Any:
    return worker.run(_settings(s))


def _configure_render_all(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("gallery"), help="folder to write the HTML files to"
    )


def _render_all(args: argparse.Namespace, s: ServiceSettings) -> int:
    written = render_gallery(args.out, _settings(s))
    print(f"wrote {len(written)} emails to {args.out}/ (open {args.out / 'index.html'})")
    return 0


def _configure_requeue(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--id", action="append", default=[], dest="ids", help="a failed email's id (repeatable)"
    )
    parser.add_argument(
        "--failed-since",
        type=_aware_datetime,
        help="every email that failed at or after this ISO time (e.g. 2026-12-01T08:00Z)",
    )
    parser.add_argument("--marketplace", help="only this marketplace's emails")


def _aware_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _requeue(args: argparse.Namespace, s: ServiceSettings) -> int:
    if not args.ids and args.failed_since is None:
        print("name the emails: --id ID (repeatable) and/or --failed-since TIME", file=sys.stderr)
        return 2
    settings = _settings(s)

    async def run() -> int:
        db = Database(settings.database_url, pool_size=1)
        try:
            rows = await requeue(
                db,
                settings,
                marketplace_id=args.marketplace,
                delivery_ids=args.ids,
                failed_since=args.failed_since,
            )
        finally:
            await db.dispose()
        for row in rows:
            print(f"requeued {row.id}  {row.template}  to {row.recipient_email}")
        print(f"{len(rows)} email(s) re-queued", file=sys.stderr)
        missing = set(args.ids) - {row.id for row in rows}
        for delivery_id in sorted(missing):
            print(f"not requeued: {delivery_id}: no such failed email", file=sys.stderr)
        return 1 if missing else 0

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    return ServiceCLI(
        name="notifications",
        version=__version__,
        settings=load_settings,
        app=_app,
        broker=_broker,
        worker=_worker,
        migrations_dir=MIGRATIONS,
        extras=[
            (
                "requeue",
                "send failed emails again (a new retry window starts for each)",
                _configure_requeue,
                _requeue,
            ),
            (
                "render-all",
                "write every email, rendered with sample data for two marketplaces, as HTML",
                _configure_render_all,
                _render_all,
            ),
        ],
    ).main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
