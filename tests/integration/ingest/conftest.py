"""Ingest as a real process on a free port, against the suite's Kafka and PostgreSQL."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import Message, read_messages, start_service

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
