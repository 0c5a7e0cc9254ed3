"""The profile service as a real process, fed through the real ingest and Kafka."""

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import ADMIN_TOKEN, RunningService, running_service

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="session")
def ingest(settings: ServiceSettings) -> Iterator[RunningService]:
    with running_service("ingest", settings) as service:
        yield service


@pytest.fixture(scope="session")
def profile(settings: ServiceSettings, ingest: RunningService) -> Iterator[RunningService]:
    with running_service("profile", settings) as service:
        yield service


@pytest.fixture
def processes() -> Iterator[list[RunningService]]:
    """Profile processes a test starts for itself; stopped when it ends."""
    started: list[RunningService] = []
    try:
        yield started
    finally:
        for service in started:
            service.stop()


@pytest.fixture(scope="session")
async def write_key(settings: ServiceSettings) -> str:
    await run_migrations(settings, "ingest")
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        created = await WriteKeyRepository(engine).create(f"profile-tests-{uuid.uuid4().hex[:6]}")
    finally:
        await engine.dispose()
    return created.key


class Storefront:
    """Posts events through ingest the way an SDK does (100-event batches)."""

    def __init__(self, ingest_url: str, write_key: str) -> None:
        self._url = f"{ingest_url}/v1/batch"
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        self._headers = {"Authorization": f"Basic {auth}"}

    async def send(self, events: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            for start in range(0, len(events), 100):
                batch = {"batch": events[start : start + 100]}
                response = await client.post(self._url, json=batch, headers=self._headers)
                assert response.status_code == 200, response.text
                assert response.json() == {"success": True}, response.text


@pytest.fixture
def storefront(ingest: RunningService, write_key: str) -> Storefront:
    return Storefront(ingest.url, write_key)


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, seconds: float = 60, interval: float = 0.3
) -> Any:
    """Poll `check` until it returns something truthy; fail with the last answer otherwise."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {seconds}s; last answer: {last!r}")


async def customer_by_user(profile_url: str, user_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{profile_url}/v1/customers", params={"user_id": user_id}, headers=ADMIN
        )
    assert response.status_code == 200, response.text
    customers: list[dict[str, Any]] = response.json()["customers"]
    return customers[0] if customers else None


@pytest.fixture
async def isolated_database(settings: ServiceSettings) -> AsyncIterator[str]:
    """A database of its own, for profile processes whose state a test must see alone."""
    url = make_url(settings.database_url.get_secret_value())
    name = f"isolated_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.dispose()


def order(
    user_id: str,
    order_id: str,
    revenue: float,
    *,
    product: str = "p-1",
    category: str = "shoes",
    **extra: Any,
) -> dict[str, Any]:
    """Order Completed for one unit of one product, priced at the whole revenue."""
    return {
        "type": "track",
        "userId": user_id,
        "event": "Order Completed",
        "messageId": f"{order_id}-completed",
        "properties": {
            "order_id": order_id,
            "revenue": revenue,
            "currency": "EUR",
            "products": [
                {"product_id": product, "category": category, "price": revenue, "quantity": 1}
            ],
        },
        **extra,
    }
