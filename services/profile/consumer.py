"""The touchpoints.v1 handler: decode, fold in one transaction, wake the outbox relay."""

import asyncio
from collections.abc import Sequence

from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.topics.dlq_v1 import DeadLetter
from schemas.topics.touchpoints_v1 import Touchpoint
from services.profile.folding import Delivered, ProfileFolder
from services.runtime.consumer import Poison, Record, dead_letter
from services.runtime.failures import is_transient


class TouchpointHandler:
    def __init__(self, folder: ProfileFolder, group_id: str, relay_wakeup: asyncio.Event) -> None:
        self._folder = folder
        self._group_id = group_id
        self._relay_wakeup = relay_wakeup

    async def __call__(self, batch: Sequence[Record]) -> Sequence[Poison]:
        delivered: list[Delivered] = []
        letters: list[DeadLetter] = []
        for record in batch:
            try:
                touchpoint = Touchpoint.model_validate_json(record.value or b"")
            except ValidationError as error:
                letters.append(dead_letter(record, error, self._group_id))
                continue
            delivered.append(Delivered(touchpoint, record.topic, record.partition, record.offset))
        try:
            await self._folder.apply(delivered, letters)
        except Exception as error:
            if is_transient(error) or len(batch) > 1:
                raise  # retried, or split by the loop until the failing record is alone
            # One record that cannot be folded: dead-letter it with its offset, atomically.
            await self._folder.apply([], [dead_letter(batch[0], error, self._group_id)])
        self._relay_wakeup.set()
        return ()

    async def positions(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Where to resume: the offsets recorded with the effects, not Kafka's commit."""
        recorded = await self._folder.stored_offsets()
        return {
            tp: recorded[(tp.topic, tp.partition)]
            for tp in assigned
            if (tp.topic, tp.partition) in recorded
        }
