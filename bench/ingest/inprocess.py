"""Ingest's own CPU per request and per event, measured in one process without HTTP sockets.

    .venv/bin/python -m bench.ingest.inprocess --bootstrap 127.0.0.1:9092
    .venv/bin/python -m bench.ingest.inprocess --stub-kafka --profile

The tracking app is built as `services.ingest.main` builds it (the same middleware, the
shortcut, the same publisher and producer), with the write-key store stubbed, and called as an
ASGI app by `--concurrency` tasks in a closed loop. The bodies are the load generator's
(bench/ingest/loadgen): analytics.js-shaped page views, product views, cart adds and orders.

It reports the process's CPU time (every thread, the Kafka client's included) per request and
per event: the part of `make bench-ingest`'s figures that ingest's code decides, without the
socket, the load generator and the other processes sharing the machine. Against a real broker
(`--bootstrap`) every request is acknowledged by it; `--stub-kafka` answers at once instead.
`--profile` prints where the time goes (cProfile, by own time; slows it down).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import pstats
import statistics
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.topics.touchpoints_rejected_v1 import RejectedTouchpoint
from schemas.topics.touchpoints_v1 import Touchpoint
from services.ingest.api import TrackingApi, install
from services.ingest.domain.keys import Source
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.keys import CachedKeyLookup
from services.ingest.main import open_publisher, tune_garbage_collection
from services.ingest.settings import IngestSettings
from services.runtime.http import Readiness, create_service_app
from services.runtime.settings import Environment

WRITE_KEY = "wk_bench"
SOURCE = Source(id="src_bench", name="bench")

# ---------------------------------------------------------------- the load generator's events

_CATEGORIES = ["Shoes", "Outerwear", "Accessories", "Knitwear", "Bags"]
_BRANDS = ["Northwind", "Fjell", "Alder & Co", "Kestrel"]
_PAGES = [
    ("/", "Home | Example Store", "Home"),
    ("/collections/shoes", "Shoes | Example Store", "Collection"),
    ("/products/trail-runner-2", "Trail Runner 2 | Example Store", "Product"),
    ("/cart", "Your cart | Example Store", "Cart"),
    ("/blog/care-for-wool", "How to care for wool | Example Store", "Article"),
]
_CAMPAIGNS = [
    {"name": "spring_sale", "source": "newsletter", "medium": "email"},
    {"name": "brand", "source": "google", "medium": "cpc", "term": "trail shoes"},
    {"name": "ambassadors", "source": "instagram", "medium": "social"},
]
_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
    "Safari/537.36"
)


def _product(n: int) -> dict[str, Any]:
    return {
        "product_id": f"prod-{n % 5000:05d}",
        "sku": f"SKU-{n % 5000:05d}-{n % 4}",
        "category": _CATEGORIES[n % len(_CATEGORIES)],
        "name": f"{_BRANDS[n % len(_BRANDS)]} item {n % 5000}",
        "brand": _BRANDS[n % len(_BRANDS)],
        "variant": ["S", "M", "L", "XL"][n % 4],
        "price": (1990 + (n * 731) % 18000) / 100,
        "quantity": 1 + n % 3,
        "url": f"https://shop.example.com/products/prod-{n % 5000:05d}",
        "image_url": f"https://cdn.example.com/img/prod-{n % 5000:05d}.jpg",
    }


def _page_properties(n: int) -> dict[str, Any]:
    path, title, _ = _PAGES[n % len(_PAGES)]
    return {
        "path": path,
        "referrer": "https://www.google.com/",
        "search": "",
        "title": title,
        "url": "https://shop.example.com" + path,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(n: int) -> tuple[str, dict[str, Any]]:
    """The load generator's event number `n`: its path and body."""
    sent_at = datetime(2026, 5, 4, 12, tzinfo=UTC) + timedelta(milliseconds=n)
    body: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "anonymousId": f"anon-{n * 2654435761 % 4294967296:08x}-{n % 65536:04x}",
        "originalTimestamp": _iso(sent_at - timedelta(milliseconds=120)),
        "sentAt": _iso(sent_at),
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": _page_properties(n),
            "userAgent": _AGENT,
            "ip": f"203.0.113.{n % 250 + 1}",
            "locale": "en-GB",
            "timezone": "Europe/London",
            "campaign": _CAMPAIGNS[n % len(_CAMPAIGNS)],
        },
        "integrations": {},
    }
    if n % 3:
        body["userId"] = f"user-{n:06d}"
    kind = n % 8
    if kind % 2 == 0:
        body.update(type="page", name=_PAGES[n % len(_PAGES)][2], properties=_page_properties(n))
        return "/v1/page", body
    if kind in (1, 5):
        props = _product(n) | {"currency": "GBP"}
        props["value"] = props["price"]
        body.update(type="track", event="Product Viewed", properties=props)
    elif kind == 3:
        props = _product(n) | {"cart_id": f"cart-{n:06d}"}
        body.update(type="track", event="Product Added", properties=props)
    else:
        products = [_product(n + i) for i in range(3)]
        subtotal = round(sum(p["price"] * p["quantity"] for p in products), 2)
        body.update(
            type="track",
            event="Order Completed",
            properties={
                "order_id": f"order-{n:08d}",
                "checkout_id": f"chk-{n:08d}",
                "affiliation": "Example Store",
                "subtotal": subtotal,
                "shipping": 4.95,
                "tax": round(subtotal * 0.2, 2),
                "discount": 0.0,
                "total": round(subtotal + 4.95, 2),
                "revenue": subtotal,
                "currency": "GBP",
                "products": products,
            },
        )
    return "/v1/track", body


def requests(batch_size: int, count: int) -> list[tuple[str, bytes]]:
    """`count` request bodies: single events (batch_size 0) or batches of `batch_size`."""
    if batch_size == 0:
        return [(path, orjson.dumps(body)) for path, body in map(event, range(count))]
    now = _iso(datetime.now(UTC))
    return [
        (
            "/v1/batch",
            orjson.dumps(
                {
                    "batch": [event(r * batch_size + i)[1] for i in range(batch_size)],
                    "sentAt": now,
                }
            ),
        )
        for r in range(count)
    ]


# ---------------------------------------------------------------- the app


class _Keys:
    async def source_for(self, key: str) -> Source | None:
        return SOURCE if key == WRITE_KEY else None


class _InstantPublisher:
    """Acknowledges at once: what ingest costs without its Kafka client."""

    async def publish(
        self, touchpoints: list[Touchpoint], rejected: list[RejectedTouchpoint]
    ) -> None:
        for touchpoint in touchpoints:
            touchpoint.to_json()


async def _call(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(args: argparse.Namespace) -> None:
    settings = IngestSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers=args.bootstrap,
        rate_limit_per_second=1e9,
        rate_limit_burst=10**9,
    )
    resources = AsyncExitStack()
    if args.stub_kafka:
        publisher: Any = _InstantPublisher()
    else:
        publisher = await open_publisher(settings, resources)
    app = create_service_app("ingest", Readiness({}), title="ingest", description="")
    keys = CachedKeyLookup(_Keys(), 3600)
    api = TrackingApi(settings, keys=keys, publisher=publisher, limiter=RateLimiter(1e9, 10**9))
    install(app, api, settings)
    if not args.default_gc:
        tune_garbage_collection()
    auth = "Basic " + __import__("base64").b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"content-type", b"application/json"),
        (b"authorization", auth.encode()),
        (b"user-agent", b"bench"),
    ]
    bodies = requests(args.batch_size, 400 if args.batch_size else 4000)
    events_per_request = max(1, args.batch_size)
    statuses: dict[int, int] = {}

    async def worker(offset: int, count: int) -> None:
        for n in range(count):
            path, body = bodies[(offset + n * args.concurrency) % len(bodies)]
            status = await _call(app, path, body, headers)
            statuses[status] = statuses.get(status, 0) + 1

    per_worker = math.ceil(args.requests / args.concurrency)
    try:
        await asyncio.gather(*(worker(i, per_worker // 5) for i in range(args.concurrency)))
        rounds = []
        for _ in range(args.rounds):
            profiler = cProfile.Profile() if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            await asyncio.gather(*(worker(i, per_worker) for i in range(args.concurrency)))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            done = per_worker * args.concurrency
            rounds.append((cpu / done * 1e6, done / wall))
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(35)
                print(out.getvalue())
    finally:
        await resources.aclose()
    per_request = [r[0] for r in rounds]
    print(f"statuses: {statuses}")
    print(
        f"CPU per request: median {statistics.median(per_request):.0f} µs, best "
        f"{min(per_request):.0f} µs; per event: median "
        f"{statistics.median(per_request) / events_per_request:.1f} µs, best "
        f"{min(per_request) / events_per_request:.1f} µs; "
        f"{statistics.median(r[1] for r in rounds) * events_per_request:,.0f} events/s "
        f"(one process, no sockets)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="a running broker")
    parser.add_argument("--stub-kafka", action="store_true", help="acknowledge without Kafka")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="events per /v1/batch request (0: single)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument(
        "--default-gc", action="store_true", help="leave the garbage collector as Python sets it"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(measure(args))
    except ImportError:
        asyncio.run(measure(args))


if __name__ == "__main__":
    main()
