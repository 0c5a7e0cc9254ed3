"""Composition root of the ingest service: the one place its parts are wired together."""

import gc
from contextlib import AsyncExitStack
from functools import partial

from services.ingest import sdk
from services.ingest.api import TrackingApi, error_body, install
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.keys import CachedKeyLookup, WriteKeyRepository
from services.ingest.publisher import Publisher, producer_config
from services.ingest.settings import IngestSettings
from services.runtime.bootstrap import create_missing_topics, kafka_description, open_database
from services.runtime.db import database_reachable
from services.runtime.http import Readiness, create_service_app, guarded_http_protocol
from services.runtime.service import Service, run_service, wait_for

SERVICE = "ingest"
# Allocations (less deallocations) between two collections of the youngest generation; Python's
# default is 700. A request's objects (its parsed body, events and touchpoints) die with it.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Keep the collector off what start-up built, and off what requests free by themselves.

    What exists once the service is built (modules, models, validators, routes: about 140,000
    objects) lives as long as the process, yet every full collection walked all of it again; and
    with Python's default threshold the collector ran every few events, mostly finding objects
    a request was still using. Frozen, and with a larger young generation: ingest's CPU per event
    of a 100-event batch fell by a fifth (bench/ingest/inprocess.py). Cyclic garbage is still
    collected, only less often.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


async def open_publisher(settings: IngestSettings, resources: AsyncExitStack) -> Publisher:
    """The touchpoints' producer (librdkafka; services/ingest/publisher.py), once the cluster
    answers it; closed, after a bounded wait for what is in flight, when `resources` close."""
    publisher = Publisher(
        producer_config(settings, client_id=f"retain-{SERVICE}"),
        settings.publish_timeout_seconds,
    )
    await wait_for(kafka_description(settings), publisher.connect, settings.startup_timeout_seconds)
    publisher.start()
    resources.push_async_callback(publisher.close, settings.shutdown_grace_seconds)
    return publisher


async def build(settings: IngestSettings, resources: AsyncExitStack) -> Service:
    engine = await open_database(SERVICE, settings, resources)
    await create_missing_topics(SERVICE, settings)
    publisher = await open_publisher(settings, resources)
    readiness = Readiness(
        {"kafka": publisher.reachable, "postgres": partial(database_reachable, engine)}
    )
    app = create_service_app(
        SERVICE,
        readiness,
        title="Retain ingest",
        description=(
            "Segment-compatible HTTP Tracking API: validates, stamps and publishes touchpoints "
            "to Kafka. Existing Segment and RudderStack SDKs work unchanged."
        ),
    )
    keys = CachedKeyLookup(WriteKeyRepository(engine), settings.write_key_cache_seconds)
    api = TrackingApi(
        settings,
        keys=keys,
        publisher=publisher,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
    )
    install(app, api, settings)
    # What browser SDKs load besides the tracking API: settings, metrics, analytics.js.
    assets = (
        sdk.AnalyticsJsAssets.load(settings.analytics_js_dir) if settings.analytics_js_dir else None
    )
    sdk.install(app, sdk.SdkApi(settings, keys, assets))
    # SDKs and browsers connect straight to ingest: its limits must not depend on a proxy.
    protocol = guarded_http_protocol(
        SERVICE,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        error_body=error_body,
    )
    tune_garbage_collection()
    return Service(app=app, readiness=readiness, http_protocol=protocol)


def main() -> None:
    run_service(SERVICE, IngestSettings, build)
