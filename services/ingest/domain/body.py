"""Request bodies: gzip decoding under a size cap, and the JSON object inside.

The cap applies to the decompressed size, so a small gzip bomb is refused before it is inflated.
"""

import zlib
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class BodyError(Exception):
    """Why a request body is refused: an HTTP status and a message naming the limit."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def body_too_large(limit: int) -> BodyError:
    return BodyError(413, f"request body exceeds the limit of {limit} bytes ({limit // 1024} KB)")


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body as sent by the SDK, decompressed if it was gzip-encoded; at most `limit` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(raw) > limit:
            raise body_too_large(limit)
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise BodyError(400, "body is not valid gzip") from None
    if len(body) > limit:
        raise body_too_large(limit)
    if not inflater.eof:
        raise BodyError(400, "gzip body is truncated")
    return body


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BodyError(400, f"body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BodyError(400, "body must be a JSON object")
    return value
