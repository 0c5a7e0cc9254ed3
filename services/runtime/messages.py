"""The one message type of the outbox; free of drivers, so a pure core may build messages."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A Kafka message to publish once the transaction that wrote it commits."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone on a compacted topic
