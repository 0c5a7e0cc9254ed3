"""The infrastructure every service opens the same way at start-up.

A composition root calls `open_infrastructure` first: it waits for PostgreSQL and applies the
service's migrations, creates missing topics, starts the idempotent producer, and returns them
with the /readyz checks wired. Everything opened is registered on the caller's exit stack.
"""

from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.consumer import BatchHandler, ConsumerConfig, ConsumerLoop, StoredPositions
from services.runtime.db import create_engine, database_reachable, run_migrations
from services.runtime.http import Readiness
from services.runtime.kafka import create_producer, ensure_topics, kafka_reachable
from services.runtime.service import Worker, wait_for
from services.runtime.settings import ServiceSettings


@dataclass(frozen=True)
class Infrastructure:
    engine: AsyncEngine
    producer: AIOKafkaProducer
    readiness: Readiness


async def open_infrastructure(
    service: str, settings: ServiceSettings, resources: AsyncExitStack
) -> Infrastructure:
    timeout = settings.startup_timeout_seconds
    database = make_url(settings.database_url.get_secret_value())
    engine = create_engine(settings)
    resources.push_async_callback(engine.dispose)
    await wait_for(
        f"PostgreSQL at {database.host}:{database.port or 5432}",
        partial(run_migrations, settings, service),
        timeout,
    )
    kafka = f"Kafka at {settings.kafka_bootstrap_servers}"
    if settings.kafka_create_topics:
        await wait_for(
            kafka, partial(ensure_topics, settings, client_id=f"retain-{service}"), timeout
        )
    producer = create_producer(settings, client_id=f"retain-{service}")
    await wait_for(kafka, producer.start, timeout)
    resources.push_async_callback(producer.stop)
    readiness = Readiness(
        {
            "kafka": partial(kafka_reachable, producer),
            "postgres": partial(database_reachable, engine),
        }
    )
    return Infrastructure(engine=engine, producer=producer, readiness=readiness)


def consumer_worker(
    settings: ServiceSettings,
    config: ConsumerConfig,
    handler: BatchHandler,
    producer: AIOKafkaProducer,
    positions: StoredPositions | None = None,
) -> Worker:
    """A worker running one consumer loop; dead letters go out through the service's producer."""
    return ConsumerLoop(settings, config, handler, producer, positions).run
