"""What the hostile-input tests send below HTTP clients, and what they check of every answer."""

import asyncio
import contextlib
import re

import httpx

from tests.integration.helpers import REPO_ROOT

# What an answer shows when a server leaks its insides: a traceback, a source file, a path.
_INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|" + re.escape(str(REPO_ROOT)), re.IGNORECASE
)


def assert_no_internals(answer: httpx.Response | bytes) -> None:
    """The answer names no traceback, source file or path of the server."""
    text = answer if isinstance(answer, bytes) else answer.content
    found = _INTERNALS.search(text.decode("utf-8", "replace"))
    assert found is None, f"the answer shows {found.group(0)!r}: {text[:500]!r}"


async def assert_ready(url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{url}/readyz")
    assert answer.status_code == 200, answer.text


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def head(method: str, path: str, headers: dict[str, str], *, content_length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: retain"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(
    url: str, chunks: list[bytes], *, read_timeout: float = 10, pause: float = 0
) -> tuple[int | None, bytes]:
    """Send `chunks` on a raw connection (stopping if the server hangs up), then read until
    it closes or a whole answer arrived: the status of the answer (None if none came) and
    its bytes."""
    reader, writer = await asyncio.open_connection(*host_port(url))
    try:
        for chunk in chunks:
            try:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause)
            except (ConnectionResetError, BrokenPipeError):
                break
        received = b""
        try:
            async with asyncio.timeout(read_timeout):
                while part := await reader.read(65_536):
                    received += part
                    if received.startswith(b"HTTP/1.1 100"):
                        continue  # an interim answer: the final one follows
                    answer_head, _, rest = received.partition(b"\r\n\r\n")
                    length = re.search(rb"(?i)content-length: *(\d+)", answer_head)
                    if length and len(rest) >= int(length.group(1)):
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()
    match = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return (int(match.group(1)) if match else None), received
