"""What a request to the services that leave reading it to FastAPI (profile, scoring and
notify; ingest reads its own, under limits of its own) may carry, checked before the route
runs (and so before its admin token is looked at):

- the path and each query parameter must be UTF-8 once percent-decoded: 422 naming the
  parameter (or the path). Starlette would decode what is not with U+FFFD in place of the
  bytes sent, and a route would look up, or store, something no one sent;
- at most MAX_BODY_BYTES (1 MiB): 413 naming the limit, from Content-Length before a byte is
  read, else as soon as the bytes received pass it. FastAPI would read any body whole, before
  the route's admin token is even looked at;
- no Content-Encoding: nothing here inflates a body, so a compressed one (a gzip bomb, say) is
  refused (415), never parsed as text;
- a JSON body (a Content-Type FastAPI parses as JSON: application/json, application/*+json)
  must be JSON as RFC 8259 has it: UTF-8, no NaN or Infinity, no number beyond what a double
  holds; with objects and arrays at most MAX_DEPTH levels deep under any field (and the body
  itself no deeper), and no NUL character in a string or key, which PostgreSQL cannot store.
  Otherwise 422 in FastAPI's shape (`detail`, a list of errors with their `loc`), naming the
  field or what is wrong. FastAPI's own reader takes NaN and Infinity, and answers a body that
  is not UTF-8, too deep or with a number too long only "There was an error parsing the body".

The body is read whole before the route runs (these bodies are small) and handed on unchanged.
A client that leaves before its body arrived is counted as ingest counts it (499, or 408 when
the server cut it for being too slow) and logged without a traceback.
"""

import email.message
import logging
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas._types import MAX_DEPTH
from schemas.parse import DEPTH_MESSAGE, value_errors
from services.runtime.http import TIMED_OUT

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Not a status a client sees: a request whose client left before its body arrived (nginx's
# convention), counted apart from the server's own failures.
CLIENT_CLOSED_REQUEST = 499


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _error(kind: str, loc: list[str], message: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": message, "input": {}}


def json_problems(raw: bytes) -> list[dict[str, Any]]:
    """Why `raw` is not a JSON body the services take, as FastAPI's validation errors; []
    when it is one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return [_error("json_invalid", ["body"], f"body is not valid JSON: {error}")]
    if isinstance(value, dict):
        return [
            _error(
                "value_error",
                ["body", problem["field"]] if problem["field"] else ["body"],
                problem["message"],
            )
            for problem in value_errors(value, raw)
        ]
    if _deeper_than(value, MAX_DEPTH):
        return [_error("value_error", ["body"], DEPTH_MESSAGE)]
    return []


def _utf8(encoded: bytes) -> bool:
    try:
        unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def url_problems(raw_path: bytes, query_string: bytes) -> list[dict[str, Any]]:
    """The parts of a request's URL that are not UTF-8 once percent-decoded, as FastAPI's
    validation errors; [] when every part is."""
    problems = []
    if not _utf8(raw_path):
        problems.append(_error("url_invalid", ["path"], "the path is not UTF-8 once decoded"))
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_utf8(name.replace(b"+", b" ")) and _utf8(value.replace(b"+", b" "))):
            shown = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
            message = "is not UTF-8 once decoded"
            problems.append(_error("url_invalid", ["query", shown], message))
    return problems


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether `value` nests objects and arrays more than `levels` deep (`[]` is one level);
    without recursion, so the depth of the input costs no stack."""
    stack = [(value, 0)]
    while stack:
        item, above = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if above >= levels:
            return True
        stack.extend((child, above + 1) for child in children)
    return False


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """ASGI middleware holding requests to the rules of the module docstring."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._max = max_bytes

    def _too_large(self) -> dict[str, Any]:
        limit = self._max
        return {"detail": f"request body exceeds the limit of {limit} bytes ({limit // 1024} KB)"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        in_url = url_problems(scope.get("raw_path") or b"", scope.get("query_string") or b"")
        if in_url:
            await _answer(send, 422, {"detail": in_url})
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self._max:
            await _answer(send, 413, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await self._abandoned(scope, send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await _answer(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw:
            encoding = headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                detail = f"Content-Encoding {encoding!r} is not accepted: send the body as is"
                await _answer(send, 415, {"detail": detail})
                return
            if is_json(headers.get("content-type")):
                problems = json_problems(raw)
                if problems:
                    await _answer(send, 422, {"detail": problems})
                    return
        await self._app(scope, _replay(raw, receive), send)

    async def _abandoned(self, scope: Scope, send: Send) -> None:
        """No answer reaches a client that left, but the metrics count what this one is."""
        if scope.get(TIMED_OUT):
            await _answer(send, 408, {"detail": "request body not received in time"})
            return
        log.info(
            "client disconnected before its request body arrived", extra={"path": scope["path"]}
        )
        await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST})
        await send({"type": "http.response.body", "body": b""})


def _replay(raw: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then whatever the connection says next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replayed
