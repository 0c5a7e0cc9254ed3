"""Publishing touchpoints and rejections; success only once the broker acknowledged them all."""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint


class BrokerUnavailableError(RuntimeError):
    """The broker did not acknowledge in time; the client should retry (same messageIds)."""


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, timeout_seconds: float) -> None:
        self._producer = producer
        self._timeout = timeout_seconds

    async def publish(
        self, touchpoints: Sequence[Touchpoint], rejected: Sequence[RejectedTouchpoint]
    ) -> None:
        """Send everything, then wait for every acknowledgement (acks=all) or fail as a whole."""
        try:
            async with asyncio.timeout(self._timeout):
                pending = [
                    await self._producer.send(
                        TOUCHPOINTS, key=t.customer_key.encode(), value=t.to_json()
                    )
                    for t in touchpoints
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
