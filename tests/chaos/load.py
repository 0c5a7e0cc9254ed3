"""The load: the demo storefront's shoppers, sent through ingest like a client would (batches,
gzip, retries with the same messageIds), and the ledger of every event ingest acknowledged.

A scenario's load is a history (past timestamps) and live sessions (timestamps of now, so the
journeys send email), sent in small parts spread over the scenario, so every fault falls while
events are in flight. An event is acknowledged when the request carrying it was answered 200;
the client retries a request until it is, so a fault costs time, never an event.
"""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.demo.ingest_client import IngestClient, IngestError
from services.demo.storefront import Shape, live_session, shopper_events

# Enough attempts (each wait at most 10 s) to ride out any fault the scenarios inject.
_ATTEMPTS = 200


@dataclass
class Ledger:
    """What the load generator knows it sent, and what came of it."""

    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why a part was given up
    requests: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Load:
    seed: int
    shoppers: int  # with a history over `days`
    days: int
    live_sessions: int  # new and returning shoppers, now
    parts: int = 20  # the load is sent in this many parts, evenly over the scenario

    def parts_to_send(self, now: datetime) -> list[list[dict[str, Any]]]:
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
        shape = Shape(self.seed, self.shoppers, self.days, end)
        past = [shopper_events(shape, index) for index in range(self.shoppers)]
        live = [
            live_session(shape, f"chaos{self.seed}", number, now)
            for number in range(self.live_sessions)
        ]
        shoppers = past + live
        size = max(1, -(-len(shoppers) // self.parts))
        return [
            [event for shopper in shoppers[start : start + size] for event in shopper]
            for start in range(0, len(shoppers), size)
        ]

    async def run(self, ingest_url: str, write_key: str, seconds: float, ledger: Ledger) -> None:
        """Send every part, one every `seconds / parts`; acknowledged events go to `ledger`."""
        parts = self.parts_to_send(datetime.now(UTC))
        started = time.monotonic()
        async with IngestClient(ingest_url, write_key, max_attempts=_ATTEMPTS) as client:
            for number, part in enumerate(parts):
                await asyncio.sleep(
                    max(0.0, started + number * seconds / len(parts) - time.monotonic())
                )
                try:
                    await client.send(part)
                except IngestError as error:
                    ledger.refused.append(str(error))
                else:
                    ledger.acknowledged.extend(part)
            ledger.requests += client.totals.requests
            ledger.retries += client.totals.retries
