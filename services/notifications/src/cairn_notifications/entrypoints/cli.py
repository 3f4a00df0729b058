"""``cairn-notifications``: api, worker, migrate, openapi, asyncapi, dev-token, render-all."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn_chassis.cli import ServiceCLI
from cairn_chassis.settings import ServiceSettings
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from cairn_notifications import __version__
from cairn_notifications.config import Settings, load_settings
from cairn_notifications.entrypoints import api, consumers, worker
from cairn_notifications.service.gallery import render_gallery

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    return ServiceCLI(
        name="notifications",
        version=__version__,
        settings=load_settings,
        app=_app,
        broker=_broker,
        worker=_worker,
        migrations_dir=MIGRATIONS_DIR,
        extras=[
            (
                "render-all",
                "write every email, rendered with sample data for two marketplaces, as HTML",
                _configure_render_all,
                _render_all,
            )
        ],
    ).main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
