"""A TCP proxy in front of the broker that the chaos harness can cut and restore.

The local broker keeps its log in memory, so restarting the process would lose every
record — something a replicated Kafka never does to acknowledged writes. A broker
"restart" is therefore simulated the way clients experience it: every connection is cut
and new ones are refused for a while, then the broker answers again with its data intact.
The broker advertises the proxy's address, so clients always come back through it.
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    """Forwards ``listen_port`` to ``target_port`` on 127.0.0.1 until cut."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    async def start(self) -> None:
        """Accept connections."""
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.listen_port, reuse_address=True
        )

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        self.cuts += 1
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    @property
    def is_cut(self) -> bool:
        """True while connections are refused."""
        return self._server is None

    async def restore(self) -> None:
        """Accept connections again."""
        if self._server is None:
            await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links.discard(writer)
        self._links.discard(up_writer)
