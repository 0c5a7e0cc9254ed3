"""Prometheus metrics shared by every service, and the ASGI middleware that times HTTP requests.

Metric names are prefixed `retain_`; each service process exposes them on GET /metrics.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HTTP_REQUESTS = Counter(
    "retain_http_requests_total", "HTTP requests answered", ["service", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "retain_http_request_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMED_RECORDS = Counter(
    "retain_consumed_records_total", "Kafka records processed and committed", ["group", "topic"]
)
CONSUMER_BATCH_SECONDS = Histogram(
    "retain_consumer_batch_seconds", "Time to process and commit one batch", ["group"]
)
DEAD_LETTERS = Counter(
    "retain_dead_letters_total", "Records sent to a dead-letter topic", ["group", "topic"]
)
HANDLER_RETRIES = Counter(
    "retain_consumer_retries_total", "Batches retried after a transient error", ["group"]
)
CONSUMER_STOPPED = Gauge(
    "retain_consumer_stopped",
    "1 when the consumer stopped on a fatal error (code or schema wrong); see /readyz",
    ["group"],
)
CONSUMER_LAG = Gauge(
    "retain_consumer_lag",
    "Records not yet processed in this process's partitions, as of its last fetch",
    ["group", "topic"],
)
PRODUCED_RECORDS = Counter(
    "retain_produced_records_total", "Records the broker acknowledged, by topic", ["topic"]
)
OFFSET_RESETS = Counter(
    "retain_consumer_offset_resets_total",
    "Partitions whose log ended below the recorded offset (topic deleted and recreated)",
    ["group", "topic"],
)
OUTBOX_DEPTH = Gauge("retain_outbox_depth", "Messages waiting in the outbox", ["schema"])
OUTBOX_OLDEST_SECONDS = Gauge(
    "retain_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox message", ["schema"]
)
OUTBOX_PARKED = Gauge(
    "retain_outbox_parked",
    "Outbox messages that can never be published, parked in outbox_parked with the reason",
    ["schema"],
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "retain_outbox_publish_errors_total", "Outbox relay rounds that failed to publish", ["schema"]
)
OUTBOX_STALLED = Gauge(
    "retain_outbox_stalled", "1 while the outbox relay has been failing for too long", ["schema"]
)


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


class HttpMetricsMiddleware:
    """Counts and times requests by route template (not raw path, to keep label cardinality low)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self._app = app
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(self._service, template, str(status)).inc()
            HTTP_LATENCY.labels(self._service, template).observe(time.perf_counter() - started)
