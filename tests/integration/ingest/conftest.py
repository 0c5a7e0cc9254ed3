"""Ingest as a real process on a free port, against the suite's Kafka and PostgreSQL."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.ports import free_port
from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
# Small enough for a test to exceed quickly, large enough for every other test.
RATE_PER_SECOND = 100
RATE_BURST = 500


def start_ingest(settings: ServiceSettings, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env.update(
        RETAIN_ENV="local",
        RETAIN_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        RETAIN_DATABASE_URL=settings.database_url.get_secret_value(),
        RETAIN_INGEST_PORT=str(port),
        RETAIN_WRITE_KEY_CACHE_SECONDS="0.5",
        RETAIN_RATE_LIMIT_PER_SECOND=str(RATE_PER_SECOND),
        RETAIN_RATE_LIMIT_BURST=str(RATE_BURST),
        **extra,
    )
    return subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=REPO_ROOT, env=env)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "ingest exited during start-up"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"ingest at {url} not ready after {timeout}s")


@pytest.fixture(scope="session")
def ingest_url(settings: ServiceSettings) -> Iterator[str]:
    port = free_port()
    process = start_ingest(settings, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class Source:
    key: str
    id: str
    key_id: str


@pytest.fixture
async def new_source(settings: ServiceSettings) -> AsyncIterator[Callable[[], Awaitable[Source]]]:
    """Makes a fresh source with a write key; each test filters topics by its source id."""
    await run_migrations(settings, "ingest")
    engine = create_async_engine(settings.database_url.get_secret_value())
    repository = WriteKeyRepository(engine)

    async def make() -> Source:
        created = await repository.create(f"shop-{uuid.uuid4().hex[:10]}")
        return Source(created.key, created.source.id, created.id)

    try:
        yield make
    finally:
        await engine.dispose()


async def read_topic(
    settings: ServiceSettings,
    topic: str,
    predicate: Callable[[dict[str, object]], bool],
    count: int,
    wait_seconds: float = 30,
) -> list[tuple[bytes | None, dict[str, object]]]:
    """(key, value) of the first `count` messages matching `predicate`, from the start."""
    # No group: the consumer takes every partition and reads from the earliest offset.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        found: list[tuple[bytes | None, dict[str, object]]] = []
        deadline = time.monotonic() + wait_seconds
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    if predicate(value):
                        found.append((record.key, value))
        return found
    finally:
        await consumer.stop()


def from_source(source_id: str) -> Callable[[dict[str, object]], bool]:
    return lambda value: value.get("sourceId", value.get("source_id")) == source_id
