"""*.dlq.v1 (keyed by the original key): a message a consumer could not process, and why."""

import base64
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas._types import Count, Id, UtcDatetime
from schemas.topics._common import TopicModel
from schemas.topics.touchpoints_rejected_v1 import bounded_text

# Leaves room under Kafka's default 1 MB message limit even after base64 (4/3).
MAX_VALUE_BYTES = 256 * 1024
MAX_ERROR_CHARS = 4096

Encoding = Literal["utf-8", "base64"]


class DeadLetter(TopicModel):
    original_topic: Id
    partition: Count
    offset: Count
    key: str | None = Field(description="The original key; None if it had none.")
    key_encoding: Encoding = "utf-8"
    value: str | None = Field(description="The original value; None for a tombstone.")
    value_encoding: Encoding = "utf-8"
    value_size: Count = Field(description="Size of the whole original value in bytes.")
    value_truncated: bool = False
    error_type: Id = Field(description="Exception class name, e.g. ValidationError.")
    error: str = Field(max_length=MAX_ERROR_CHARS)
    failed_at: UtcDatetime
    consumer_group: Id

    @classmethod
    def of(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: BaseException,
        failed_at: datetime,
        consumer_group: str,
    ) -> "DeadLetter":
        """The dead letter for a consumed record and the exception it raised."""
        key_text, key_encoding, _ = _encode(key, MAX_VALUE_BYTES)
        value_text, value_encoding, truncated = _encode(value, MAX_VALUE_BYTES)
        return cls(
            original_topic=topic,
            partition=partition,
            offset=offset,
            key=key_text,
            key_encoding=key_encoding,
            value=value_text,
            value_encoding=value_encoding,
            value_size=0 if value is None else len(value),
            value_truncated=truncated,
            error_type=type(error).__name__,
            error=str(error)[:MAX_ERROR_CHARS],
            failed_at=failed_at,
            consumer_group=consumer_group,
        )

    def original_value(self) -> bytes | None:
        """The (possibly truncated) original value bytes, decoded from their encoding."""
        if self.value is None:
            return None
        if self.value_encoding == "base64":
            return base64.b64decode(self.value)
        return self.value.encode()


def _encode(data: bytes | None, limit: int) -> tuple[str | None, Encoding, bool]:
    """Text as is when it is UTF-8, else base64; cut to `limit` bytes first."""
    if data is None:
        return None, "utf-8", False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        cut = data[:limit]
        return base64.b64encode(cut).decode("ascii"), "base64", len(data) > limit
    text, truncated = bounded_text(data, limit)
    return text, "utf-8", truncated
