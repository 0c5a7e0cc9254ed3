"""An SMTP hop between notify and Mailpit that can turn slow or failing, on the wire.

Notify sends to the proxy's port; the proxy relays bytes both ways to the real SMTP server.
Its mode changes what every new or open connection meets:

- `healthy`: bytes pass as they are;
- `slow`: each of the server's answers is held back `delay` seconds, so a message takes many
  times that (greeting, EHLO, MAIL, RCPT, DATA, the final answer);
- `failing`: a new connection is answered `421` (the server is shutting down, try later) and
  closed, as a real server under maintenance does; connections already open are cut.
"""

import asyncio
import contextlib
from typing import Literal

from services.devstack.ports import LOOPBACK

Mode = Literal["healthy", "slow", "failing"]
_CHUNK = 65536


class SmtpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.mode: Mode = "healthy"
        self.delay = 2.0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, LOOPBACK, self.port)

    async def stop(self) -> None:
        self._cut_open_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def set(self, mode: Mode, delay: float = 2.0) -> None:
        self.mode, self.delay = mode, delay
        if mode == "failing":
            self._cut_open_connections()

    def _cut_open_connections(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        if self.mode == "failing":
            client_out.write(b"421 4.3.2 Service not available, try again later\r\n")
            with contextlib.suppress(ConnectionError):
                await client_out.drain()
            client_out.close()
            return
        try:
            server_in, server_out = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_out.transport.abort()
            return
        self._open.update((client_out, server_out))
        try:
            await asyncio.gather(
                self._pipe(client_in, server_out, slow=False),
                self._pipe(server_in, client_out, slow=True),
            )
        finally:
            for writer in (client_out, server_out):
                self._open.discard(writer)
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while chunk := await reader.read(_CHUNK):
                if slow and self.mode == "slow":
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()  # one side closed: so does the other
