"""The four services as real processes, for hostile input: a stack of their own.

They run against a Kafka broker and a database of their own (on the suite's PostgreSQL
server), so that what the fuzzing does (erasing customers, pausing journeys, setting spend,
refitting the model as of some day) reaches no other test, and no other test's events reach
them; email goes to the suite's Mailpit. Everything is started once for this directory and
stopped when its last test ends. A few customers are sent through ingest first, so that the
read APIs have something to find.
"""

import asyncio
import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.kafka import LocalKafka
from services.devstack.mailpit import LocalMailpit
from services.devstack.postgres import LocalPostgres
from services.ingest.keys import WriteKeyRepository
from services.runtime.settings import Environment, ServiceSettings
from tests.conftest import running_kafka
from tests.integration.helpers import ADMIN_TOKEN, RunningService, spawn_service, wait_ready

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Short enough for a test to wait out (a slow body, a slow head).
HEADER_TIMEOUT_SECONDS = 1.0
BODY_TIMEOUT_SECONDS = 1.5
_TIMEOUTS = {
    "RETAIN_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
    "RETAIN_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
}
# Notify signs its links with the first and still accepts the second (the one before a
# rotation); the third was rotated out: a link it signed is revoked.
LINK_SECRET = "hostile-link-secret-" + "a" * 32
PREVIOUS_LINK_SECRET = "hostile-link-secret-" + "b" * 32
REVOKED_LINK_SECRET = "hostile-link-secret-" + "c" * 32
SHOPPERS = 3


@dataclass(frozen=True)
class Stack:
    ingest: RunningService
    profile: RunningService
    scoring: RunningService
    notify: RunningService
    write_key: str
    revoked_write_key: str
    customer_ids: tuple[str, ...]

    def services(self) -> dict[str, RunningService]:
        return {
            "ingest": self.ingest,
            "profile": self.profile,
            "scoring": self.scoring,
            "notify": self.notify,
        }


@pytest.fixture(scope="package")
def hostile_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    yield from running_kafka(tmp_path_factory.mktemp("hostile-kafka"))


@pytest.fixture(scope="package")
async def hostile_database(postgres: LocalPostgres) -> str:
    url = make_url(postgres.url)
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="package")
def hostile_services(
    hostile_kafka: LocalKafka, hostile_database: str, mailpit: LocalMailpit
) -> Iterator[dict[str, RunningService]]:
    own = ServiceSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers=hostile_kafka.bootstrap_servers,
        database_url=SecretStr(hostile_database),
    )
    started: dict[str, RunningService] = {}
    try:
        # Started together, then waited for: each applies its own migrations meanwhile.
        started["ingest"] = spawn_service(
            "ingest",
            own,
            RETAIN_RATE_LIMIT_PER_SECOND="100000",
            RETAIN_RATE_LIMIT_BURST="1000000",
            RETAIN_WRITE_KEY_CACHE_SECONDS="0.5",
        )
        started["profile"] = spawn_service("profile", own, **_TIMEOUTS)
        started["notify"] = spawn_service(
            "notify",
            own,
            RETAIN_SMTP_HOST=mailpit.smtp_host,
            RETAIN_SMTP_PORT=str(mailpit.smtp_port),
            RETAIN_LINK_SECRET=LINK_SECRET,
            RETAIN_LINK_SECRET_PREVIOUS=PREVIOUS_LINK_SECRET,
            **_TIMEOUTS,
        )
        started["scoring"] = spawn_service(
            "scoring",
            own,
            RETAIN_PROFILE_URL=started["profile"].url,
            RETAIN_NOTIFY_URL=started["notify"].url,
            RETAIN_ANALYTICS_SNAPSHOT_SECONDS="5",
            **_TIMEOUTS,
        )
        for service in started.values():
            wait_ready(service)
        yield started
    finally:
        for service in started.values():
            service.stop()


@pytest.fixture(scope="package")
async def stack(hostile_services: dict[str, RunningService], hostile_database: str) -> Stack:
    engine = create_async_engine(hostile_database)
    try:
        keys = WriteKeyRepository(engine)
        created = await keys.create(f"hostile-{uuid.uuid4().hex[:6]}")
        revoked = await keys.create(f"hostile-revoked-{uuid.uuid4().hex[:6]}")
        await keys.revoke(revoked.id)
    finally:
        await engine.dispose()
    ingest, profile = hostile_services["ingest"], hostile_services["profile"]
    customer_ids = await _shoppers(ingest.url, profile.url, created.key)
    await _scored(hostile_services["scoring"].url, customer_ids)
    return Stack(
        **hostile_services,
        write_key=created.key,
        revoked_write_key=revoked.key,
        customer_ids=customer_ids,
    )


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def _shoppers(ingest_url: str, profile_url: str, write_key: str) -> tuple[str, ...]:
    """A few shoppers who signed up and ordered, folded into profiles: their customer ids."""
    events = []
    for n in range(SHOPPERS):
        user = f"hostile-shopper-{n}"
        events += [
            {
                "type": "identify",
                "userId": user,
                "messageId": f"{user}-identify",
                "traits": {"email": f"{user}@example.com", "name": f"Shopper {n}"},
            },
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "messageId": f"{user}-order",
                "properties": {
                    "order_id": f"{user}-o1",
                    "revenue": 20.0 + n,
                    "currency": "EUR",
                    "products": [{"product_id": f"p-{n}", "price": 20.0 + n, "quantity": 1}],
                },
            },
        ]
    async with httpx.AsyncClient(timeout=30) as client:
        sent = await client.post(
            f"{ingest_url}/v1/batch", json={"batch": events}, headers=basic(write_key)
        )
        assert sent.status_code == 200, sent.text
        found: list[str] = []
        for n in range(SHOPPERS):
            for _ in range(300):
                answer = await client.get(
                    f"{profile_url}/v1/customers",
                    params={"user_id": f"hostile-shopper-{n}"},
                    headers=ADMIN,
                )
                customers = answer.json()["customers"] if answer.status_code == 200 else []
                if customers:
                    found.append(customers[0]["customer_id"])
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"shopper {n} was not folded into a profile in 30 s")
    return tuple(found)


async def _scored(scoring_url: str, customer_ids: tuple[str, ...]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for customer_id in customer_ids:
            for _ in range(300):
                answer = await client.get(f"{scoring_url}/v1/scores/{customer_id}", headers=ADMIN)
                if answer.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{customer_id} was not scored in 30 s")
