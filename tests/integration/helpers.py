"""Helpers for integration tests: services as real processes, topics read from the start, and
the email Mailpit caught."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from services.devstack.ports import free_port
from services.runtime.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-" + "x" * 32


@dataclass
class RunningService:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(
    service: str, settings: ServiceSettings, database_url: str | None = None, **extra: str
) -> RunningService:
    """`python -m services.<service>` on a free port against the suite's Kafka and database."""
    running = spawn(service, settings, extra, database_url=database_url)
    wait_ready(running)
    return running


def spawn_service(
    service: str, settings: ServiceSettings, database_url: str | None = None, **extra: str
) -> RunningService:
    """`start_service` without waiting for it to be ready (its URL is known at once): start
    several, then `wait_ready` each."""
    return spawn(service, settings, extra, database_url=database_url)


def spawn(
    service: str,
    settings: ServiceSettings,
    extra_env: Mapping[str, str],
    *,
    database_url: str | None = None,
    port: int | None = None,
    log_file: Path | None = None,
) -> RunningService:
    """The service's process on `port` (a free one by default), its output to `log_file`
    (else the test's); not yet ready."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env.update(
        RETAIN_ENV="local",
        RETAIN_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        RETAIN_DATABASE_URL=database_url or settings.database_url.get_secret_value(),
        RETAIN_ADMIN_TOKEN=ADMIN_TOKEN,
        **{f"RETAIN_{service.upper()}_PORT": str(port)},
        **extra_env,
    )
    with contextlib.ExitStack() as files:
        output = files.enter_context(log_file.open("ab")) if log_file else None
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
        )
    return RunningService(f"http://127.0.0.1:{port}", process)


@contextlib.contextmanager
def running_service(
    service: str, settings: ServiceSettings, database_url: str | None = None, **extra: str
) -> Iterator[RunningService]:
    """`start_service` for a fixture's lifetime: stopped when the fixture ends."""
    running = start_service(service, settings, database_url, **extra)
    try:
        yield running
    finally:
        running.stop()


def wait_ready(service: RunningService, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"service at {service.url} exited during start-up")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    service.stop()
    raise AssertionError(f"service at {service.url} not ready after {timeout}s")


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


async def read_messages(
    settings: ServiceSettings,
    topic: str,
    predicate: Callable[[Message], bool],
    count: int,
    wait_seconds: float = 30,
) -> list[Message]:
    """The first `count` messages on `topic` matching `predicate`, reading from the start."""
    # No group: the consumer takes every partition and reads from the earliest offset.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        found: list[Message] = []
        deadline = time.monotonic() + wait_seconds
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    message = Message(r.key, r.value, r.partition, r.offset)
                    if predicate(message):
                        found.append(message)
        return found
    finally:
        await consumer.stop()


class MailpitInbox:
    """The messages Mailpit caught, through its REST API (`{ui_url}/api/v1`).

    A message summary (`messages()`) has `ID`, `MessageID`, `Subject`, `From`, `To`, `Cc`,
    `Snippet`, `Created`, `Size`...; `message(id)` adds `Text`, `HTML` and `Attachments`, and
    `headers(id)` maps each header name to its values. Mailpit answers newest first.
    """

    def __init__(self, ui_url: str) -> None:
        self.api = f"{ui_url}/api/v1"

    async def messages(self) -> list[dict[str, Any]]:
        """Summaries of every message, newest first."""
        answer = await self._call("GET", "/messages", params={"limit": 1000})
        messages: list[dict[str, Any]] = answer.json()["messages"]
        return messages

    async def messages_to(self, address: str) -> list[dict[str, Any]]:
        """Summaries of every message to `address`, newest first."""
        answer = await self._call("GET", "/search", params={"query": f'to:"{address}"'})
        found: list[dict[str, Any]] = answer.json()["messages"]
        return [m for m in found if address in {to["Address"] for to in m["To"]}]

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message by Mailpit's `ID`: subject, addresses, `Text`, `HTML`, attachments."""
        message: dict[str, Any] = (await self._call("GET", f"/message/{message_id}")).json()
        return message

    async def headers(self, message_id: str) -> dict[str, list[str]]:
        """One message's headers as sent, each name with its values."""
        answer = await self._call("GET", f"/message/{message_id}/headers")
        headers: dict[str, list[str]] = answer.json()
        return headers

    async def delete_all(self) -> None:
        await self._call("DELETE", "/messages")

    async def wait_for(self, count: int = 1, wait_seconds: float = 10) -> list[dict[str, Any]]:
        """Summaries once at least `count` messages arrived; AssertionError after wait_seconds."""
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = await self.messages()
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(messages)} message(s) after {wait_seconds}s, not {count}"
                )
            await asyncio.sleep(0.1)

    async def _call(
        self, method: str, path: str, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            response = await client.request(method, f"{self.api}{path}", params=params)
        response.raise_for_status()
        return response
