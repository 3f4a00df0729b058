"""Run the SMTP side and the web side of the sink together on one event loop.

One loop means the SMTP handler and the web API share the store and the fault settings
without locks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from cairn_devstack.mailsink.faults import SmtpFaults
from cairn_devstack.mailsink.smtp import SinkHandler, make_smtp_protocol
from cairn_devstack.mailsink.store import MessageStore
from cairn_devstack.mailsink.web import make_web_app

__all__ = ["DEFAULT_HTTP_PORT", "DEFAULT_SMTP_PORT", "MailSinkServer", "serve"]

DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8025


class MailSinkServer:
    """SMTP sink + web page, started and stopped inside a running event loop."""

    def __init__(
        self,
        smtp_port: int = DEFAULT_SMTP_PORT,
        http_port: int = DEFAULT_HTTP_PORT,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.store = MessageStore(data_dir)
        self.faults = SmtpFaults()
        self._smtp: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind both ports; raises OSError if either is taken."""
        handler = SinkHandler(self.store, self.faults)
        loop = asyncio.get_running_loop()
        self._smtp = await loop.create_server(
            lambda: make_smtp_protocol(handler), self.host, self.smtp_port
        )
        self._runner = web.AppRunner(
            make_web_app(self.store, self.faults), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.http_port).start()

    async def stop(self) -> None:
        """Close both servers (open SMTP sessions are cut)."""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _serve_until_signal(server: MailSinkServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(
        f"mail sink: SMTP on {server.host}:{server.smtp_port}, "
        f"page on http://{server.host}:{server.http_port}/",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop()


def serve(
    smtp_port: int = DEFAULT_SMTP_PORT,
    http_port: int = DEFAULT_HTTP_PORT,
    data_dir: Path | None = None,
    host: str = "127.0.0.1",
) -> None:
    """Run the sink in the foreground until SIGINT/SIGTERM (then return normally)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO; our own log line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(_serve_until_signal(MailSinkServer(smtp_port, http_port, data_dir, host)))
