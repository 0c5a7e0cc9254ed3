"""The infrastructure every service opens the same way at start-up.

A composition root calls `open_infrastructure` first: it waits for PostgreSQL and applies the
service's migrations, creates missing topics, starts the idempotent producer, and returns them
with the /readyz checks wired. Everything opened is registered on the caller's exit stack.
A service that consumes topics then builds a `ConsumerKit` (docs/consumer-kit.md). A service
with a producer of its own (ingest) takes the parts: `open_database`, `create_missing_topics`.
"""

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.consumer import ConsumerConfig, ConsumerLoop
from services.runtime.db import create_engine, database_reachable, run_migrations
from services.runtime.http import Readiness
from services.runtime.kafka import create_producer, ensure_topics, kafka_reachable
from services.runtime.outbox import Outbox, OutboxRelay
from services.runtime.service import Worker, wait_for
from services.runtime.settings import ServiceSettings
from services.runtime.transactional import Apply, Decode, TransactionalConsumer

T = TypeVar("T")


@dataclass(frozen=True)
class Infrastructure:
    engine: AsyncEngine
    producer: AIOKafkaProducer
    readiness: Readiness


async def open_database(
    service: str, settings: ServiceSettings, resources: AsyncExitStack
) -> AsyncEngine:
    """The service's database engine, once PostgreSQL answers and its migrations are applied."""
    database = make_url(settings.database_url.get_secret_value())
    engine = create_engine(settings)
    resources.push_async_callback(engine.dispose)
    await wait_for(
        f"PostgreSQL at {database.host}:{database.port or 5432}",
        partial(run_migrations, settings, service),
        settings.startup_timeout_seconds,
    )
    return engine


async def create_missing_topics(service: str, settings: ServiceSettings) -> None:
    """Create the topics that are missing, unless topics are managed elsewhere."""
    if settings.kafka_create_topics:
        await wait_for(
            kafka_description(settings),
            partial(ensure_topics, settings, client_id=f"retain-{service}"),
            settings.startup_timeout_seconds,
        )


def kafka_description(settings: ServiceSettings) -> str:
    """How start-up names the cluster it waits for."""
    return f"Kafka at {settings.kafka_bootstrap_servers}"


async def open_infrastructure(
    service: str, settings: ServiceSettings, resources: AsyncExitStack
) -> Infrastructure:
    engine = await open_database(service, settings, resources)
    await create_missing_topics(service, settings)
    producer = create_producer(settings, client_id=f"retain-{service}")
    await wait_for(kafka_description(settings), producer.start, settings.startup_timeout_seconds)
    resources.push_async_callback(producer.stop)
    readiness = Readiness(
        {
            "kafka": partial(kafka_reachable, producer),
            "postgres": partial(database_reachable, engine),
        }
    )
    return Infrastructure(engine=engine, producer=producer, readiness=readiness)


class ConsumerKit:
    """The transactional consumer kit wired for one service schema: its outbox, the relay that
    publishes it, and consumer loops that apply records and record offsets in one transaction.

    Every part reports to the service's /readyz (a stopped consumer, a stalled relay).
    """

    def __init__(
        self, settings: ServiceSettings, infrastructure: Infrastructure, schema: str
    ) -> None:
        self._settings = settings
        self._infrastructure = infrastructure
        self.outbox = Outbox(schema)
        self.relay_wakeup = asyncio.Event()
        relay = OutboxRelay(
            infrastructure.engine, infrastructure.producer, self.outbox, self.relay_wakeup
        )
        infrastructure.readiness.add("outbox_relay", relay.readiness)
        self.relay: Worker = relay.run

    def consumer(self, config: ConsumerConfig, decode: Decode[T], apply: Apply[T]) -> Worker:
        """A worker consuming `config.topics`: decode each record, apply batches transactionally."""
        handler = TransactionalConsumer(
            self._infrastructure.engine,
            self.outbox,
            group_id=config.group_id,
            dead_letter_topic=config.dead_letter_topic,
            decode=decode,
            apply=apply,
            relay_wakeup=self.relay_wakeup,
        )
        loop = ConsumerLoop(self._settings, config, handler, handler)
        self._infrastructure.readiness.add(f"consumer:{config.group_id}", loop.readiness)
        return loop.run
