"""Ingest as a real process on a free port, against the suite's Kafka and PostgreSQL."""

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.ports import free_port
from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import (
    ADMIN_TOKEN,
    Message,
    RunningService,
    read_messages,
    start_service,
    wait_ready,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
# Small enough for a test to exceed quickly, large enough for every other test.
RATE_PER_SECOND = 100
RATE_BURST = 500


INGEST_LIMITS = {
    "RETAIN_WRITE_KEY_CACHE_SECONDS": "0.5",
    "RETAIN_RATE_LIMIT_PER_SECOND": str(RATE_PER_SECOND),
    "RETAIN_RATE_LIMIT_BURST": str(RATE_BURST),
}


@pytest.fixture(scope="session")
def ingest_url(settings: ServiceSettings) -> Iterator[str]:
    ingest = start_service("ingest", settings, **INGEST_LIMITS)
    try:
        yield ingest.url
    finally:
        ingest.stop()


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
) -> list[tuple[bytes | None, dict[str, object]]]:
    """(key, JSON value) of the first `count` messages on `topic` matching `predicate`."""

    def matches(message: Message) -> bool:
        return message.value is not None and predicate(orjson.loads(message.value))

    found = await read_messages(settings, topic, matches, count)
    return [(m.key, orjson.loads(m.value or b"null")) for m in found]


def from_source(source_id: str) -> Callable[[dict[str, object]], bool]:
    return lambda value: value.get("sourceId", value.get("source_id")) == source_id


@dataclass(frozen=True)
class LoggedIngest:
    url: str
    host: str
    port: int
    log: Path

    def log_lines(self) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines()
        return [orjson.loads(line) for line in lines if line.startswith("{")]


# Short enough for a test to wait out, long enough for any request of the suite.
HEADER_TIMEOUT_SECONDS = 1.0
BODY_TIMEOUT_SECONDS = 1.5


@pytest.fixture(scope="session")
def logged_ingest(
    settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoggedIngest]:
    """An ingest of its own with short read timeouts, its JSON log written to a file."""
    port = free_port()
    log = tmp_path_factory.mktemp("ingest-log") / "ingest.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env.update(
        RETAIN_ENV="local",
        RETAIN_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        RETAIN_DATABASE_URL=settings.database_url.get_secret_value(),
        RETAIN_ADMIN_TOKEN=ADMIN_TOKEN,
        RETAIN_INGEST_PORT=str(port),
        RETAIN_LOG_FORMAT="json",
        RETAIN_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT_SECONDS),
        RETAIN_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT_SECONDS),
        **INGEST_LIMITS,
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"], cwd=REPO_ROOT, env=env, stderr=sink
        )
    running = RunningService(f"http://127.0.0.1:{port}", process)
    try:
        wait_ready(running)
        yield LoggedIngest(running.url, "127.0.0.1", port, log)
    finally:
        running.stop()
