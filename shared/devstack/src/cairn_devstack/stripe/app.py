"""Assemble and run localstripe with Cairn's extensions, bound to 127.0.0.1 only.

Stock ``localstripe`` listens on every interface ("::") and keeps its data in
``/tmp/localstripe.pickle``; this runner binds one address and keeps the data in a
directory of our choosing. Everything is installed into localstripe's own module-level
``app`` before it starts, so one process serves one instance.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from aiohttp import web
from localstripe.resources import store
from localstripe.server import app as localstripe_app

from cairn_devstack.stripe.accounts import add_account_routes
from cairn_devstack.stripe.admin import add_admin_routes
from cairn_devstack.stripe.compat import install_compat
from cairn_devstack.stripe.errors import crash_middleware
from cairn_devstack.stripe.faults import add_fault_routes, fault_middleware
from cairn_devstack.stripe.idempotency import idempotency_middleware
from cairn_devstack.stripe.store import (
    configure_store,
    flush_store,
    load_webhooks,
    register_webhook,
)
from cairn_devstack.stripe.transfers import add_transfer_routes

__all__ = ["DEFAULT_PORT", "build_app", "serve"]

DEFAULT_PORT = 8420
_built: list[web.Application] = []


def build_app(data_dir: Path, *, from_scratch: bool = False) -> web.Application:
    """Install the extensions on localstripe's app and load saved state.

    ``from_scratch`` starts with no Stripe objects (webhook registrations, which are
    configuration, are kept). Can be called once per process: localstripe's app and
    store are module globals.
    """
    if _built:
        raise RuntimeError("localstripe's app is a module global; build it once per process")
    configure_store(data_dir)
    install_compat()
    add_account_routes(localstripe_app)
    add_transfer_routes(localstripe_app)
    add_fault_routes(localstripe_app)
    add_admin_routes(localstripe_app)
    # Outermost first: a fault decides before anything runs (or after it all ran);
    # idempotency sits outside localstripe's error middleware so it sees final answers.
    localstripe_app.middlewares.insert(0, crash_middleware)
    localstripe_app.middlewares.insert(0, idempotency_middleware)
    localstripe_app.middlewares.insert(0, fault_middleware)
    if from_scratch:
        store.clear()
        store.dump_to_disk()
    else:
        store.try_load_from_disk()
    load_webhooks()
    app: web.Application = localstripe_app

    async def _flush_on_stop(_app: web.Application) -> None:
        flush_store(store)

    app.on_cleanup.append(_flush_on_stop)
    _built.append(app)
    return app


def serve(
    port: int = DEFAULT_PORT,
    data_dir: Path = Path(".data/stripe"),
    *,
    host: str = "127.0.0.1",
    from_scratch: bool = False,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    quiet: bool = False,
) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM (then return normally)."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    app = build_app(data_dir, from_scratch=from_scratch)
    if webhook_url:
        if not webhook_secret:
            raise ValueError("a webhook URL needs a signing secret")
        register_webhook("cli", webhook_url, webhook_secret)
    print(
        f"localstripe (cairn) on http://{host}:{port}, data in {data_dir}",
        file=sys.stderr,
        flush=True,
    )
    # A short shutdown grace: a request hung by an injected timeout fault must not hold
    # SIGTERM up for the default 60 s.
    web.run_app(app, host=host, port=port, print=None, handle_signals=True, shutdown_timeout=1.0)
