"""Composition root of the ingest service: the one place its parts are wired together."""

from contextlib import AsyncExitStack

from services.ingest import sdk
from services.ingest.api import TrackingApi, error_body, install
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.keys import CachedKeyLookup, WriteKeyRepository
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from services.runtime.bootstrap import open_infrastructure
from services.runtime.http import create_service_app, guarded_http_protocol
from services.runtime.service import Service, run_service

SERVICE = "ingest"


async def build(settings: IngestSettings, resources: AsyncExitStack) -> Service:
    infrastructure = await open_infrastructure(SERVICE, settings, resources)
    app = create_service_app(
        SERVICE,
        infrastructure.readiness,
        title="Retain ingest",
        description=(
            "Segment-compatible HTTP Tracking API: validates, stamps and publishes touchpoints "
            "to Kafka. Existing Segment and RudderStack SDKs work unchanged."
        ),
    )
    keys = CachedKeyLookup(
        WriteKeyRepository(infrastructure.engine), settings.write_key_cache_seconds
    )
    api = TrackingApi(
        settings,
        keys=keys,
        publisher=Publisher(infrastructure.producer, settings.publish_timeout_seconds),
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
    return Service(app=app, readiness=infrastructure.readiness, http_protocol=protocol)


def main() -> None:
    run_service(SERVICE, IngestSettings, build)
