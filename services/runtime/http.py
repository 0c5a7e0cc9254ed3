"""The HTTP surface every service shares: /healthz, /readyz and /metrics on a FastAPI app,
and a guarded HTTP protocol for services that face untrusted clients (request-head size limit,
read timeouts)."""

import asyncio
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from services.runtime.logs import log_fields
from services.runtime.metrics import HTTP_REQUESTS, HttpMetricsMiddleware, metrics_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """A readiness check's answer with a detail for /readyz (e.g. why a worker stopped)."""

    ok: bool
    detail: str


# A check answers a bare bool ("ok" / "unreachable") or a CheckResult with its own detail.
ReadinessCheck = Callable[[], Awaitable[bool | CheckResult]]


def _as_result(answer: bool | CheckResult) -> CheckResult:
    if isinstance(answer, CheckResult):
        return answer
    return CheckResult(answer, "ok" if answer else "unreachable")


# A request id a client or proxy sent is kept when it is a short token; anything else is
# replaced, so a log line never carries what an attacker wrote.
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@+=/-]{1,128}$")


class RequestIdMiddleware:
    """Gives every request an id, `X-Request-ID` (the caller's, if it sent a usable one),
    answered in the response and logged as `request_id` with everything logged meanwhile."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        offered = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex.encode()

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"x-request-id", request_id)]
                message = {**message, "headers": headers}
            await send(message)

        with log_fields(request_id=request_id.decode()):
            await self._app(scope, receive, send_with_id)


# Load balancers poll /readyz often; one real check per second per process is plenty.
_READINESS_CACHE_SECONDS = 1.0


class Readiness:
    """Runs the service's dependency checks, caches the answer briefly, and knows about draining."""

    def __init__(self, checks: Mapping[str, ReadinessCheck]) -> None:
        self._checks = dict(checks)
        self._draining = False
        self._cached: tuple[float, dict[str, CheckResult]] | None = None

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Another check, e.g. a worker that can stop on its own (a consumer, an outbox relay)."""
        self._checks[name] = check

    def start_draining(self) -> None:
        """Report not-ready from now on, so traffic moves elsewhere before the process stops."""
        self._draining = True

    async def report(self) -> tuple[bool, dict[str, str]]:
        if self._draining:
            return False, {"service": "stopping"}
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > _READINESS_CACHE_SECONDS:
            names = list(self._checks)
            answers = await asyncio.gather(*(self._checks[name]() for name in names))
            results = [_as_result(answer) for answer in answers]
            self._cached = (now, dict(zip(names, results, strict=True)))
        results_by_name = self._cached[1]
        status = {name: result.detail for name, result in results_by_name.items()}
        return all(result.ok for result in results_by_name.values()), status


def _echoable(value: Any) -> Any:
    """`value` as JSON can hold it: a number JSON cannot write (NaN, Infinity) as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _echoable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_echoable(item) for item in value]
    return value


async def validation_failed(request: Request, error: Exception) -> Response:
    """FastAPI's answer to a request it cannot validate (422, `detail` the list of errors, each
    with the input it refused), written so that any input can be echoed. FastAPI's own writer
    fails, answering 500 instead, on a body that is not UTF-8 (sent with another content type,
    it is the input) or on a number JSON cannot write (Python's JSON reader takes NaN and
    1e999, which is Infinity)."""
    assert isinstance(error, RequestValidationError)  # the exception it is registered for
    errors = jsonable_encoder(
        error.errors(), custom_encoder={bytes: lambda raw: raw.decode("utf-8", "replace")}
    )
    body = json.dumps({"detail": _echoable(errors)}, allow_nan=False, ensure_ascii=False)
    return Response(body.encode(), status_code=422, media_type="application/json")


def create_service_app(
    service: str,
    readiness: Readiness,
    *,
    title: str,
    description: str,
    version: str = "1",
    max_body_bytes: int | None = None,
) -> FastAPI:
    """The service's app with /healthz, /readyz and /metrics. `max_body_bytes`: hold request
    bodies to that size, and URLs and JSON bodies to the rules of services.runtime.guard; None
    when the service reads its requests itself, as ingest does."""
    app = FastAPI(title=title, description=description, version=version)
    app.add_exception_handler(RequestValidationError, validation_failed)
    if max_body_bytes is not None:
        from services.runtime.guard import RequestGuard  # it builds on this module

        # Inside the metrics and request-id middleware: its refusals are counted and logged.
        app.add_middleware(RequestGuard, max_bytes=max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)  # outermost: every line a request logs has its id

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Kafka and PostgreSQL are reachable and the workers are running",
        responses={
            503: {
                "description": "A dependency is unreachable, a worker stopped or stalled, "
                "or the service is stopping; `checks` says which"
            }
        },
    )
    async def readyz() -> JSONResponse:
        ready, checks = await readiness.report()
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        payload, content_type = metrics_payload()
        return Response(payload, media_type=content_type)

    return app


TIMED_OUT = "retain.timed_out"
"""Scope key set (to True) on a request whose body did not arrive in time: the app then sees a
disconnect, and the key tells it the server cut the request (408) rather than the client."""


# How long a refused connection keeps dropping what the client still sends (see
# GuardedHttpProtocol._close_lingering).
LINGER_SECONDS = 2.0


def _detail_body(message: str) -> bytes:
    return orjson.dumps({"detail": message})


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing a request head that broke a limit."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits it lacks, for clients that may be hostile.

    Per connection, whatever proxy stands in front (or none):

    - a request head (request line and headers) larger than `max_header_bytes` is answered
      431 and the connection closed, before the head is buffered whole: counted as it arrives,
      measured exactly once parsed;
    - a head not complete `header_timeout` seconds after its first byte (or after the
      connection opened) is answered 408 and closed; an opened connection that never sent a
      byte is just closed;
    - a body not complete `body_timeout` seconds after its head is answered 408 if no response
      has started (the app then sees a disconnect with `scope[TIMED_OUT]` set, and whatever it
      answers is not sent), and the connection is closed.

    Head refusals never reach the app: they are counted in retain_http_requests_total with
    route "unmatched". Use `guarded_http_protocol` to get a class with the limits set.
    """

    service: ClassVar[str] = "service"
    max_header_bytes: ClassVar[int] = 16 * 1024
    header_timeout: ClassVar[float] = 10.0
    body_timeout: ClassVar[float] = 30.0
    error_body: ClassVar[Callable[[str], bytes]] = staticmethod(_detail_body)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        # Bytes received since this head began, whole chunks: an upper bound, checked while
        # the head is incomplete, so an endless header is refused after about one limit.
        self._head_bytes = 0
        # The head as parsed: request target and header lines, exact.
        self._head_size = 0
        # When the current head's first chunk, or the current body's head, arrived.
        self._head_started: float | None = None
        self._body_started = 0.0
        self._refusal: tuple[int, str] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._lingering = False

    # The connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never completes a head: its first head's clock starts now.
        self._head_started = self.loop.time()
        self._arm(self._head_started + self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # answered and closing: what the client still sends is dropped
        if self._reading_head:
            if self._head_started is None:  # the first chunk of a new head
                self._head_started = self.loop.time()
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_head(*self._refusal)
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        # Deadlines are set only for what this chunk left incomplete: a request that arrives
        # whole, the usual case, arms no timer at all.
        if self.transport.is_closing():
            return
        if self._reading_head:
            if self._head_bytes > self.max_header_bytes:
                self._refuse_head(431, self._too_large())
            elif self._deadline is None and self._head_started is not None:
                self._arm(self._head_started + self.header_timeout, self._head_timed_out)
        elif self._deadline is None:  # on_headers_complete cleared the head's
            self._arm(self._body_started + self.body_timeout, self._body_timed_out)

    # Parser callbacks

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.max_header_bytes:
            self._stop_head()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > self.max_header_bytes:
            self._stop_head()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_head = False
        self._body_started = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._reading_head = True  # the next head's clock starts with its first chunk
        self._head_started = None
        self._head_bytes = self._head_size = 0

    # Limits

    def _stop_head(self) -> None:
        self._refusal = (431, self._too_large())
        raise _HeadRefused

    def _too_large(self) -> str:
        limit = self.max_header_bytes
        return f"request headers exceed the limit of {limit} bytes ({limit // 1024} KB)"

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self._head_bytes == 0 and self._head_size == 0:
            self.transport.close()  # opened, never used: nothing to answer
            return
        self._refuse_head(408, f"request headers not received within {self.header_timeout:g} s")

    def _body_timed_out(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self._reading_head or cycle is None or self.transport.is_closing():
            return
        message = f"request body not received within {self.body_timeout:g} s"
        log.info("request refused: %s", message, extra={"status": 408, "client": self.client})
        if not cycle.response_started:
            cast(dict[str, Any], cycle.scope)[TIMED_OUT] = True
            cycle.disconnected = True  # the app's answer, if any, is not sent: this one is
            cycle.message_event.set()
            self._write_error(408, message)
            self._close_lingering()
        else:
            self.transport.close()

    def _refuse_head(self, status: int, message: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        log.info("request refused: %s", message, extra={"status": status, "client": self.client})
        HTTP_REQUESTS.labels(self.service, "unmatched", str(status)).inc()
        previous = self.cycle
        if previous is None or previous.response_complete:  # else a response is being written
            self._write_error(status, message)
            self._close_lingering()
        else:
            self.transport.close()

    def _write_error(self, status: int, message: str) -> None:
        body = type(self).error_body(message)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)

    def _close_lingering(self) -> None:
        """Close after an error answer without losing it: a client still sending (a large
        head) would otherwise get a reset in place of the answer. The write side is shut
        (FIN after the answer) and what still comes in is dropped until the client closes,
        for LINGER_SECONDS at most."""
        self._lingering = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm(self, when: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_at(when, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_http_protocol(
    service: str,
    *,
    max_header_bytes: int,
    header_timeout: float,
    body_timeout: float,
    error_body: Callable[[str], bytes] = _detail_body,
) -> type[asyncio.Protocol]:
    """A GuardedHttpProtocol class with these limits, for uvicorn's `http` option."""
    attributes = {
        "service": service,
        "max_header_bytes": max_header_bytes,
        "header_timeout": header_timeout,
        "body_timeout": body_timeout,
        "error_body": staticmethod(error_body),
    }
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), attributes)
