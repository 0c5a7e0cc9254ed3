"""Publishing touchpoints and rejections; success only once the broker acknowledged them all.

Touchpoints are written into one record batch per partition, shared by the requests in flight,
instead of one `send()` per event: aiokafka's per-message path (partitioning, accumulator, a
future per message) cost more than validating the event. A partition's batch fills while the
one before it waits for the broker, the same batching aiokafka's accumulator does, and each
request waits for the batches that carry its events.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint


class BrokerUnavailableError(RuntimeError):
    """The broker did not acknowledge in time; the client should retry (same messageIds)."""


@dataclass(frozen=True)
class _FillingBatch:
    """A partition's batch that still takes records, and the task that hands it to the producer
    and completes once the broker acknowledged it."""

    builder: BatchBuilder
    delivered: "asyncio.Task[None]"


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, timeout_seconds: float) -> None:
        self._producer = producer
        self._timeout = timeout_seconds
        # The producer's own partitioner (murmur2 of the key): a key lands where send() put it.
        self._partitioner = DefaultPartitioner()
        self._filling: dict[int, _FillingBatch] = {}

    async def publish(
        self, touchpoints: Sequence[Touchpoint], rejected: Sequence[RejectedTouchpoint]
    ) -> None:
        """Send everything, then wait for every acknowledgement (acks=all) or fail as a whole."""
        try:
            async with asyncio.timeout(self._timeout):
                pending: list[asyncio.Future[object]] = [
                    # Shielded: a batch carries other requests' events too, so this request
                    # timing out must not cancel it.
                    asyncio.shield(delivered)
                    for delivered in await self._append(touchpoints)
                ]
                pending += [
                    await self._producer.send(
                        TOUCHPOINTS_REJECTED, value=r.model_dump_json().encode()
                    )
                    for r in rejected
                ]
                await asyncio.gather(*pending)
        except (TimeoutError, KafkaError) as error:
            raise BrokerUnavailableError(str(error) or type(error).__name__) from error

    async def _append(self, touchpoints: Sequence[Touchpoint]) -> "set[asyncio.Task[None]]":
        """Write the touchpoints into their partitions' batches; the batches they went into."""
        if not touchpoints:
            return set()
        partitions = sorted(await self._producer.partitions_for(TOUCHPOINTS))
        used: set[asyncio.Task[None]] = set()
        for touchpoint in touchpoints:
            key = touchpoint.customer_key.encode()
            partition = self._partitioner(key, partitions, partitions)
            used.add(self._write(partition, key, touchpoint.to_json()))
        return used

    def _write(self, partition: int, key: bytes, value: bytes) -> "asyncio.Task[None]":
        batch = self._filling.get(partition)
        if batch is None or batch.builder.append(timestamp=None, key=key, value=value) is None:
            # None: the batch is full (and closed), or there is none; an event is far below
            # the batch size, so a new batch always takes it.
            batch = self._new_batch(partition)
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                raise KafkaError(f"a record of {len(value)} bytes does not fit in a batch")
        return batch.delivered

    def _new_batch(self, partition: int) -> _FillingBatch:
        builder = self._producer.create_batch()
        delivered = asyncio.create_task(self._deliver(partition, builder))
        batch = self._filling[partition] = _FillingBatch(builder, delivered)
        return batch

    async def _deliver(self, partition: int, builder: BatchBuilder) -> None:
        try:
            # Returns once the partition's previous batch left for the broker; until then this
            # one takes more records.
            acknowledged = await self._producer.send_batch(
                builder, TOUCHPOINTS, partition=partition
            )
        finally:
            # Queued (or failed): closed to new records before the producer's sender can take
            # it, since it numbers a batch's records (idempotence) when it takes the batch.
            builder.close()
            filling = self._filling.get(partition)
            if filling is not None and filling.builder is builder:
                del self._filling[partition]
        await acknowledged
