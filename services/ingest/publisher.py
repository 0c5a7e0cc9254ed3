"""Publishing touchpoints and rejections; success only once the broker acknowledged them all.

Ingest publishes through librdkafka (confluent-kafka), which partitions, batches and sends in C
threads, where aiokafka did it in Python on the event loop: less of ingest's CPU per event
(bench/ingest/results.md). The guarantees are those of every Retain producer
(services/runtime/kafka.py): idempotent, acks=all, a key on the partition murmur2 gives it (the
Java client's and aiokafka's default partitioner: the same key, the same partition), a
partition's records in the order they were produced.

librdkafka reports each record's delivery from `poll()`, which the publisher calls on the event
loop: after every request it publishes, every millisecond while records are in flight, and now
and then when idle (librdkafka's errors and logs come the same way). Not from a thread of its
own: the client takes the GIL once per reported record, and a thread doing that beside a busy
event loop waits for the GIL each time. A request is answered only once every one of its records
is acknowledged, else BrokerUnavailableError (503 with Retry-After): a record the broker refused,
the producer's queue full, or no acknowledgement within the publish timeout. TLS: librdkafka
(OpenSSL built in) looks for the system's CA certificates in the usual places.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint
from services.runtime.metrics import PRODUCED_RECORDS
from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

# How often the loop serves delivery reports while records are in flight, and when none are.
_BUSY_POLL_SECONDS = 0.001
_IDLE_POLL_SECONDS = 0.5
# Within the probe's timeout (deploy/k8s: 3 s).
_READINESS_TIMEOUT_SECONDS = 2.0
# A record not acknowledged by then is reported as failed (aiokafka's request timeout, before).
_MESSAGE_TIMEOUT_MS = 15_000
_LINGER_MS = 2
# Per partition and produce request; far below the broker's 1 MB message.max.bytes.
_MAX_BATCH_BYTES = 256 * 1024


class BrokerUnavailableError(RuntimeError):
    """The broker did not acknowledge in time; the client should retry (same messageIds)."""


# What librdkafka calls with each record's outcome: (error or None, the record).
Delivered = Callable[[KafkaError | None, Message], None]


class KafkaProducer(Protocol):
    """What the publisher uses of confluent_kafka.Producer (its signatures)."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: Delivered | None = None,
        on_delivery: Delivered | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None: ...

    def poll(self, timeout: float = -1) -> int: ...

    def purge(
        self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True
    ) -> None: ...

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def producer_config(settings: ServiceSettings, client_id: str) -> dict[str, Any]:
    """librdkafka's settings for Retain's guarantees, with the service's connection settings."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        # murmur2 of the key, as Java's and aiokafka's default partitioner (random without one).
        "partitioner": "murmur2_random",
        # A record waits up to 2 ms for others to the same partition: with none, every record
        # woke the client's broker thread and went in a produce request of its own (more CPU
        # for ingest and the broker); p99 at 1,000 requests/s stays far below its target.
        "linger.ms": _LINGER_MS,
        "batch.size": _MAX_BATCH_BYTES,
        "message.timeout.ms": _MESSAGE_TIMEOUT_MS,
        "request.timeout.ms": _MESSAGE_TIMEOUT_MS,
        # Every disconnection is reported through error_cb (and so the log) already.
        "log.connection.close": False,
        # Topics are created by setup (or ensure_topics), with their partitions: a producer
        # creating a missing one would give it the broker's defaults.
        "allow.auto.create.topics": False,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    return config


class _Request:
    """A request's records not yet reported, counted down as librdkafka reports them (on the
    event loop, inside `poll()`)."""

    __slots__ = ("_publisher", "future", "outstanding")

    def __init__(self, future: "asyncio.Future[None]", records: int, publisher: "Publisher"):
        self.future = future
        self.outstanding = records
        self._publisher = publisher

    def touchpoint_delivered(self, error: KafkaError | None, message: Message) -> None:
        self._publisher._reported(TOUCHPOINTS, error)
        self._reported(error)

    def rejection_delivered(self, error: KafkaError | None, message: Message) -> None:
        self._publisher._reported(TOUCHPOINTS_REJECTED, error)
        self._reported(error)

    def _reported(self, error: KafkaError | None) -> None:
        self.outstanding -= 1
        if self.future.done():  # failed already, timed out or went away
            return
        if error is not None:
            self.future.set_exception(BrokerUnavailableError(str(error)))
        elif self.outstanding == 0:
            self.future.set_result(None)


class Publisher:
    def __init__(
        self,
        config: dict[str, Any],
        timeout_seconds: float,
        *,
        producer_type: Callable[[dict[str, Any]], KafkaProducer] = Producer,
    ) -> None:
        self._timeout = timeout_seconds
        self._producer = producer_type(
            config | {"error_cb": self._on_error, "logger": logging.getLogger("librdkafka")}
        )
        self._fatal: KafkaError | None = None
        self._in_flight = 0  # records produced and not yet reported
        # Acknowledged records not yet added to retain_produced_records_total (once per poll).
        self._acknowledged = {TOUCHPOINTS: 0, TOUCHPOINTS_REJECTED: 0}
        self._counters = {topic: PRODUCED_RECORDS.labels(topic) for topic in self._acknowledged}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ lifecycle

    async def connect(self, wait_seconds: float = 5.0) -> None:
        """Fail unless the cluster answers this producer (start-up, /readyz)."""
        await asyncio.to_thread(self._producer.list_topics, TOUCHPOINTS, wait_seconds)

    def start(self) -> None:
        """Serve delivery reports, errors and logs on the running event loop from now on."""
        self._loop = asyncio.get_running_loop()
        self._poll_in(_IDLE_POLL_SECONDS)

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Wait up to `grace_seconds` for the records in flight, then drop what is left: whoever
        still waits for them gets BrokerUnavailableError."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = time.monotonic() + grace_seconds
        while self._in_flight and time.monotonic() < deadline:
            self._serve()
            await asyncio.sleep(0.01)
        if self._in_flight:
            log.warning(
                "closing with records the broker has not acknowledged; dropping them",
                extra={"records": self._in_flight},
            )
            self._producer.purge()
        self._serve()
        self._loop = None

    async def reachable(self) -> bool:
        """The Kafka half of /readyz: the cluster answers this producer and it can still send."""
        if self._fatal is not None:
            return False
        try:
            await self.connect(_READINESS_TIMEOUT_SECONDS)
        except Exception:  # any failure means "not ready"; the producer logs the reason
            return False
        return True

    # ------------------------------------------------------------ publishing

    async def publish(
        self, touchpoints: Sequence[Touchpoint], rejected: Sequence[RejectedTouchpoint]
    ) -> None:
        """Send everything, then wait for every acknowledgement (acks=all) or fail as a whole."""
        records = len(touchpoints) + len(rejected)
        if records == 0:
            return
        request = _Request(asyncio.get_running_loop().create_future(), records, self)
        produce = self._producer.produce
        try:
            delivered = request.touchpoint_delivered
            for touchpoint in touchpoints:
                produce(
                    TOUCHPOINTS,
                    touchpoint.to_json(),
                    touchpoint.customer_key,
                    on_delivery=delivered,
                )
                self._in_flight += 1
            delivered = request.rejection_delivered
            for rejection in rejected:
                produce(
                    TOUCHPOINTS_REJECTED,
                    rejection.model_dump_json().encode(),
                    on_delivery=delivered,
                )
                self._in_flight += 1
        except (BufferError, KafkaException) as error:
            # BufferError: the producer's queue is full (the broker has not taken records for a
            # while). Records already queued are still sent; the client retries them all.
            request.future.cancel()
            raise BrokerUnavailableError(str(error) or type(error).__name__) from None
        finally:
            # Reports of earlier requests come back here under load; the timer covers the rest.
            self._serve()
            self._poll_in(_BUSY_POLL_SECONDS)
        try:
            async with asyncio.timeout(self._timeout):
                await request.future
        except TimeoutError:
            raise BrokerUnavailableError(f"no acknowledgement within {self._timeout:g} s") from None

    # ------------------------------------------------------------ serving reports

    def _serve(self) -> None:
        """Serve what librdkafka has to report: deliveries (which answer requests), errors, logs."""
        self._producer.poll(0)
        for topic, count in self._acknowledged.items():
            if count:
                self._counters[topic].inc(count)
                self._acknowledged[topic] = 0

    def _reported(self, topic: str, error: KafkaError | None) -> None:
        self._in_flight -= 1
        if error is None:
            self._acknowledged[topic] += 1

    def _poll_in(self, seconds: float) -> None:
        """Make sure the loop serves reports within `seconds`."""
        loop = self._loop
        if loop is None:
            return
        timer = self._timer
        if timer is not None:
            if timer.when() <= loop.time() + seconds:
                return
            timer.cancel()
        self._timer = loop.call_later(seconds, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._serve()
        self._poll_in(_BUSY_POLL_SECONDS if self._in_flight else _IDLE_POLL_SECONDS)

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's client-level errors (served by poll, so on the event loop)."""
        if error.fatal():
            # The idempotent producer cannot go on (e.g. a sequence gap): every later send
            # fails, and /readyz says so, until the process is restarted.
            self._fatal = error
            log.error("the Kafka producer failed for good", extra={"error": str(error)})
        else:
            log.warning("Kafka client error", extra={"error": str(error)})
