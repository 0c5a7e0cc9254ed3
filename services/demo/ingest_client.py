"""Sending events through ingest's tracking API the way a server-side SDK does.

Events go in `/v1/batch` requests of up to 100 events (and well under the request limit),
gzip-compressed, several requests in flight. A request the server could not take (429 with its
Retry-After, 503, any 5xx, a connection lost) is sent again with the same bytes, so the same
messageIds: ingest and its consumers keep an event once however often it arrives. A refused
write key stops the sending at once; an event ingest rejects is counted, not retried.
"""

import asyncio
import gzip
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

BATCH_EVENTS = 100
# Ingest refuses requests over 500 KB once decompressed; stay well below.
BATCH_BYTES = 400_000
_RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class IngestError(Exception):
    """Sending cannot go on (a refused write key, ingest unreachable for too long); one line."""


@dataclass
class Totals:
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Batch:
    events: int
    body: bytes  # the JSON events of the batch, without sentAt (stamped at each attempt)


def batches(
    events: Iterable[dict[str, Any]],
    *,
    max_events: int = BATCH_EVENTS,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[Batch]:
    """Events grouped into request bodies of at most `max_events` events and `max_bytes`."""
    pending: list[bytes] = []
    size = 0
    for event in events:
        encoded = orjson.dumps(event)
        if pending and (len(pending) == max_events or size + len(encoded) + 1 > max_bytes):
            yield Batch(len(pending), b"[" + b",".join(pending) + b"]")
            pending, size = [], 0
        pending.append(encoded)
        size += len(encoded) + 1
    if pending:
        yield Batch(len(pending), b"[" + b",".join(pending) + b"]")


class IngestClient:
    """Posts batches to ingest with a write key; `send` reports progress after each batch."""

    def __init__(
        self,
        url: str,
        write_key: str,
        *,
        concurrency: int = 4,
        max_attempts: int = 10,
        timeout: float = 30.0,
    ) -> None:
        self._url = f"{url.rstrip('/')}/v1/batch"
        self._http = httpx.AsyncClient(
            auth=(write_key, ""),
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency),
            trust_env=False,
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self.totals = Totals()
        self._failure: IngestError | None = None

    async def __aenter__(self) -> "IngestClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def send(
        self,
        events: Iterable[dict[str, Any]],
        on_batch: Callable[[Totals], None] = lambda totals: None,
    ) -> Totals:
        """Send every event; returns once each batch is answered. Raises IngestError."""
        in_flight: set[asyncio.Task[None]] = set()
        self._failure = None
        try:
            for batch in batches(events):
                await self._slots.acquire()
                if self._failure:
                    break
                task = asyncio.create_task(self._post(batch, on_batch))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.gather(*in_flight)
        finally:
            for task in in_flight:
                task.cancel()
        if self._failure:
            raise self._failure
        return self.totals

    async def _post(self, batch: Batch, on_batch: Callable[[Totals], None]) -> None:
        try:
            accepted, rejected = await self._deliver(batch)
        except IngestError as error:
            self._failure = self._failure or error
            return
        finally:
            self._slots.release()
        self.totals.accepted += accepted
        self.totals.rejected += rejected
        on_batch(self.totals)

    async def _deliver(self, batch: Batch) -> tuple[int, int]:
        delay = 0.5
        for attempt in range(1, self._max_attempts + 1):
            sent_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            body = b'{"sentAt":"' + sent_at.encode() + b'","batch":' + batch.body + b"}"
            self.totals.requests += 1
            try:
                answer = await self._http.post(
                    self._url,
                    content=gzip.compress(body, compresslevel=5),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )
            except httpx.HTTPError as error:
                problem = f"ingest at {self._url} is unreachable ({type(error).__name__})"
                wait = delay
            else:
                if answer.status_code in (200, 400) and answer.headers.get(
                    "content-type", ""
                ).startswith("application/json"):
                    report = answer.json()
                    if answer.status_code == 200 or "rejected" in report:
                        accepted = report.get("accepted", batch.events)
                        return accepted, report.get("rejected", batch.events - accepted)
                if answer.status_code == 401:
                    raise IngestError(f"ingest refused the write key: {_message(answer)}")
                if answer.status_code not in _RETRIED_STATUSES:
                    raise IngestError(f"ingest answered {answer.status_code}: {_message(answer)}")
                problem = f"ingest answered {answer.status_code}: {_message(answer)}"
                wait = _retry_after(answer, delay)
            if attempt == self._max_attempts:
                raise IngestError(f"{problem}; gave up after {attempt} attempts")
            self.totals.retries += 1
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


def _retry_after(answer: httpx.Response, default: float) -> float:
    try:
        return max(float(answer.headers.get("Retry-After", default)), 0.05)
    except ValueError:
        return default


def _message(answer: httpx.Response) -> str:
    try:
        message = answer.json().get("message")
    except ValueError:
        message = None
    return str(message or answer.text[:200] or answer.reason_phrase)
