"""Kafka clients with Retain's guarantees built in.

- `create_producer`: acks=all and idempotence, so an acknowledged send is durable and a client
  retry cannot duplicate it (docs/architecture.md, rule 3); acknowledged records are counted
  per topic (retain_produced_records_total: the relays' output). Ingest publishes through
  librdkafka with the same guarantees and counts alike (services/ingest/publisher.py).
- `ensure_topics`: creates the topics of `schemas.topics` that are missing.
- `kafka_reachable`: the Kafka half of /readyz.
The consumer loop lives in `services.runtime.consumer`.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import TOPICS, TopicSpec
from services.runtime.metrics import PRODUCED_RECORDS
from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_MAX_REPLICATION_FACTOR = 3


# Per partition and produce request; far below the broker's 1 MB message.max.bytes.
_MAX_BATCH_BYTES = 256 * 1024


class _CountingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """Counts each record once the broker acknowledged it, by topic."""

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> "asyncio.Future[Any]":
        acknowledged: asyncio.Future[Any] = await super().send(topic, *args, **kwargs)
        _count_when_acknowledged(acknowledged, topic, lambda: 1)
        return acknowledged


def _count_when_acknowledged(
    acknowledged: "asyncio.Future[Any]", topic: str, records: Callable[[], int]
) -> None:
    counter = PRODUCED_RECORDS.labels(topic)
    acknowledged.add_done_callback(
        lambda future: None if future.cancelled() or future.exception() else counter.inc(records())
    )


def create_producer(
    settings: ServiceSettings, client_id: str, *, linger_ms: int = 0
) -> AIOKafkaProducer:
    """An idempotent producer: a send is acknowledged only once every in-sync replica has it."""
    return _CountingProducer(
        **settings.kafka_client_options(),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        # No lingering: aiokafka keeps one produce request in flight per broker, so under load
        # sends gather into the next request while the previous one is acknowledged. Waiting
        # longer only adds latency (measured in bench/ingest: p99 185 ms with 5 ms, 17 ms
        # without, at 1,000 requests/s).
        linger_ms=linger_ms,
        # The default 16 KB holds ~16 typical events, so a busy partition needed a round trip
        # per 16 events; larger batches carry a whole burst in one request.
        max_batch_size=_MAX_BATCH_BYTES,
        request_timeout_ms=15_000,
    )


async def ensure_topics(
    settings: ServiceSettings, specs: Iterable[TopicSpec] = TOPICS, *, client_id: str = "retain"
) -> list[str]:
    """Create the missing topics; safe when several services race to do it. Returns those made."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options(), client_id=f"{client_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = min(brokers, _MAX_REPLICATION_FACTOR)
        response = await admin.create_topics(
            [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=replication,
                    topic_configs=spec.config(),
                )
                for spec in missing
            ]
        )
        created = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"creating topic {name} failed: {topic_error}")
        if created:
            log.info("created topics", extra={"topics": sorted(created)})
        return created
    finally:
        await admin.close()


async def kafka_reachable(producer: AIOKafkaProducer) -> bool:
    """True when the cluster answers a metadata request through the service's own producer."""
    try:
        await producer.client.fetch_all_metadata()
    except Exception:  # any failure means "not ready"; the reason is logged by the client
        return False
    return True
