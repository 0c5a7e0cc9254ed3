"""What the tracking API's OpenAPI document says beyond its routes: the write-key security
scheme, the answers with their schemas, and the limits a request is held to.

Only documentation: the handlers in api.py write these bodies with orjson, not these models.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas._types import EARLIEST, LATEST, MAX_DEPTH
from schemas.errors import FieldError
from schemas.topics.touchpoints_rejected_v1 import RejectReason
from services.ingest.domain.intake import MAX_BATCH_EVENTS
from services.ingest.settings import IngestSettings

SECURITY_SCHEME = "writeKey"
# The header, or nothing: a browser SDK sends `writeKey` in the body, which OpenAPI cannot name.
SECURITY: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}, {}]


def security_schemes() -> dict[str, Any]:
    return {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "basic",
            "description": (
                "The source's write key as the HTTP Basic username, the password empty "
                '(`curl -u "$KEY:"`). Without this header the key is read from `writeKey` in '
                "the JSON body, as browser SDKs send it. A Basic header is checked before the "
                "body is read: an unknown, revoked or malformed one answers 401 at once."
            ),
        }
    }


class Success(BaseModel):
    success: Literal[True] = True


class Rejection(BaseModel):
    """One refused event of a batch; it was published to touchpoints.rejected.v1."""

    model_config = ConfigDict(populate_by_name=True)

    index: int = Field(description="Position of the event in `batch`, from 0.")
    message_id: str | None = Field(default=None, alias="messageId")
    reason: RejectReason
    message: str
    errors: list[FieldError] = Field(default_factory=list)


class BatchReport(BaseModel):
    """A batch of which some events were refused: the others were published."""

    success: Literal[True] = True
    accepted: int
    rejected: int
    rejections: list[Rejection]


class ErrorResponse(BaseModel):
    """Every error answer of the tracking API."""

    success: Literal[False] = False
    message: str = Field(description="What was wrong, naming the field or the limit.")
    errors: list[FieldError] | None = Field(
        default=None, description="Each invalid field and why (400 for an invalid event)."
    )
    accepted: int | None = Field(default=None, description="Batch only: 0 when every event failed")
    rejected: int | None = None
    rejections: list[Rejection] | None = None


def limits(settings: IngestSettings) -> str:
    """The limits a request is held to, as the operations' descriptions state them."""
    kb = 1024
    return (
        "\n\nLimits (each refusal names the field or the limit):\n"
        f"- an event may nest objects and arrays at most {MAX_DEPTH} levels deep under any "
        "field (properties, traits, context, ...), and no string or key may contain a NUL "
        "character (\\u0000): 400;\n"
        f"- timestamps between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC): 400;\n"
        f"- {settings.max_event_bytes} bytes ({settings.max_event_bytes // kb} KB) per event "
        f"and {settings.max_request_bytes} bytes ({settings.max_request_bytes // kb} KB) per "
        "request body, after gzip decoding: 413;\n"
        f"- a batch: at most {MAX_BATCH_EVENTS} events, and {settings.max_expanded_batch_bytes}"
        f" bytes ({settings.max_expanded_batch_bytes // kb} KB) of events in all once the "
        "batch's context, integrations and sentAt are copied into each: 413;\n"
        f"- request headers: {settings.max_header_bytes} bytes "
        f"({settings.max_header_bytes // kb} KB): 431; received within "
        f"{settings.header_timeout_seconds:g} s of their first byte, and the body within "
        f"{settings.body_timeout_seconds:g} s of the headers: 408."
    )


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorResponse}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error(
        "Invalid JSON or event (`errors` names each field and its limit); for a batch, every "
        "event was invalid (`rejections`)"
    ),
    401: _error(
        "Missing, unknown or revoked write key, or an Authorization header that is not valid "
        "Basic credentials (`message` says which)"
    ),
    408: _error("The headers or the body did not arrive in time (the connection is closed)"),
    413: _error(
        "Body or event above its size limit, or a batch whose events exceed the expanded size "
        "limit once its context is copied into each (named in `message`)"
    ),
    415: _error("A Content-Encoding other than gzip"),
    429: _error("The source's rate limit is exceeded; retry after Retry-After seconds"),
    431: _error("The request headers exceed their size limit (the connection is closed)"),
    503: _error(
        "The broker did not acknowledge, or the write-key store is unreachable; retry the same "
        "request after Retry-After seconds (same messageIds are deduplicated)"
    ),
}

SINGLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Published: the broker acknowledged the event", "model": Success},
    **ERROR_RESPONSES,
}

BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            'Every event published (`{"success": true}`), or some refused: `accepted`, '
            "`rejected` and `rejections`, the valid ones published"
        ),
        "model": Success | BatchReport,
    },
    **ERROR_RESPONSES,
}
