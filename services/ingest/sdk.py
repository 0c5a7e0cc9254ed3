"""What browser SDKs load from ingest besides the tracking API, so that they need no Segment or
RudderStack server: analytics.js's settings and its metrics endpoint, the analytics.js script
the classic snippet loads (when RETAIN_ANALYTICS_JS_DIR names an installed copy), and
RudderStack's source config.
"""

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Counter
from starlette.requests import ClientDisconnect

from services.ingest.api import ApiError, source_for
from services.ingest.domain.body import BodyError, body_too_large, parse_json_object
from services.ingest.domain.intake import CredentialError, basic_write_key
from services.ingest.domain.sdk import (
    METRICS_PATH,
    PublicBase,
    rudderstack_source_config,
    sdk_metric_counts,
    segment_settings,
)
from services.ingest.keys import CachedKeyLookup
from services.ingest.settings import IngestSettings
from services.runtime.guard import CLIENT_CLOSED_REQUEST

ANALYTICS_JS_METRICS = Counter(
    "retain_ingest_analytics_js_metrics_total",
    "Metrics analytics.js reported to /v1/m about itself (its calls and errors in browsers)",
    ["metric"],
)

# analytics.js sends at most 20 small metrics per request; nothing it sends comes near this.
MAX_METRICS_BYTES = 16 * 1024
# Settings name no secret, but a revoked key should stop loading soon; private, so no shared
# cache keeps one answer for requests that came with another Host.
SETTINGS_CACHE = "private, max-age=300"
SCRIPT_CACHE = "public, max-age=300"
BUNDLE_CACHE = "public, max-age=31536000, immutable"  # their names carry a content hash
JAVASCRIPT = "text/javascript; charset=utf-8"

# The classic snippet's script is the standalone build; it loads its bundles (webpack chunks)
# from `<its host>/analytics-next/bundles/<name>` when it needs them.
STANDALONE = "standalone.js"
_BUNDLE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.bundle\.[0-9a-f]+\.js")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes


@dataclass(frozen=True)
class AnalyticsJsAssets:
    """The analytics.js files ingest serves, read and compressed once at start."""

    standalone: Asset
    bundles: dict[str, Asset]

    @classmethod
    def load(cls, folder: Path) -> "AnalyticsJsAssets":
        def asset(path: Path) -> Asset:
            body = path.read_bytes()
            return Asset(body, gzip.compress(body, mtime=0))

        bundles = {
            path.name: asset(path)
            for path in sorted(folder.iterdir())
            if path.is_file() and _BUNDLE_NAME.fullmatch(path.name)
        }
        return cls(asset(folder / STANDALONE), bundles)


def _javascript(request: Request, asset: Asset, cache: str) -> Response:
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=JAVASCRIPT, headers=headers)
    return Response(asset.body, media_type=JAVASCRIPT, headers=headers)


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


class SdkApi:
    def __init__(
        self,
        settings: IngestSettings,
        keys: CachedKeyLookup,
        assets: AnalyticsJsAssets | None,
    ) -> None:
        self._keys = keys
        self._assets = assets
        self._public = PublicBase.of(str(settings.public_url)) if settings.public_url else None
        self._sample_rate = settings.analytics_js_metrics_sample_rate

    def _base(self, request: Request) -> PublicBase:
        """Where the browser reached ingest: RETAIN_INGEST_PUBLIC_URL, else the request's own
        scheme and Host (uvicorn applies X-Forwarded-Proto from FORWARDED_ALLOW_IPS)."""
        return self._public or PublicBase.of(str(request.base_url))

    async def segment_settings(self, request: Request, write_key: str) -> Response:
        try:
            await source_for(self._keys, write_key)
        except ApiError as error:
            if error.status == 401:  # a path names a resource: an unknown project is a 404
                return ApiError(404, error.message).response()
            return error.response()
        settings = segment_settings(write_key, self._base(request), self._sample_rate)
        return _json(settings, {"Cache-Control": SETTINGS_CACHE})

    async def rudderstack_source_config(self, request: Request) -> Response:
        try:
            key = basic_write_key(request.headers.get("authorization"))
        except CredentialError as error:
            return ApiError(401, str(error)).response()
        key = key or request.query_params.get("writeKey")
        if not key:
            message = "missing write key: send it as the HTTP Basic username or ?writeKey="
            return ApiError(401, message).response()
        try:
            source = await source_for(self._keys, key)
        except ApiError as error:
            return error.response()
        return _json(rudderstack_source_config(key, source), {"Cache-Control": SETTINGS_CACHE})

    async def analytics_js_metrics(self, request: Request) -> Response:
        """analytics.js's reports about itself: counted in retain_ingest_analytics_js_metrics_total,
        published nowhere. It sends no write key, so none is asked for."""
        try:
            raw = bytearray()
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_METRICS_BYTES:
                    raise body_too_large(MAX_METRICS_BYTES)
            counts = sdk_metric_counts(parse_json_object(bytes(raw)))
        except BodyError as error:
            return ApiError(error.status, error.message).response()
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        for metric, count in counts.items():
            ANALYTICS_JS_METRICS.labels(metric).inc(count)
        return _json({"success": True})

    async def analytics_js(self, request: Request, write_key: str) -> Response:
        if self._assets is None:
            return _not_served()
        return _javascript(request, self._assets.standalone, SCRIPT_CACHE)

    async def analytics_js_bundle(self, request: Request, name: str) -> Response:
        if self._assets is None:
            return _not_served()
        asset = self._assets.bundles.get(name)
        if asset is None:
            return ApiError(404, f"no analytics.js bundle named {name!r}").response()
        return _javascript(request, asset, BUNDLE_CACHE)


def _not_served() -> Response:
    return ApiError(
        404,
        "this ingest serves no analytics.js: set RETAIN_ANALYTICS_JS_DIR to the dist/umd folder "
        "of an installed @segment/analytics-next",
    ).response()


def install(app: FastAPI, api: SdkApi) -> None:
    router = APIRouter(tags=["browser SDKs"])
    router.add_api_route(
        "/v1/projects/{write_key}/settings",
        api.segment_settings,
        methods=["GET"],
        summary="analytics.js settings (what it loads from Segment's CDN), pointing it here",
        description=(
            "For `AnalyticsBrowser.load({writeKey, cdnURL: '<this ingest>'})` and the classic "
            "snippet: the Segment.io destination with this ingest as its apiHost, no other "
            "destination. 404 for an unknown or revoked write key."
        ),
        response_model=None,
    )
    for path in ("/sourceConfig", "/sourceConfig/"):
        router.add_api_route(
            path,
            api.rudderstack_source_config,
            methods=["GET"],
            summary="RudderStack's source config (what its SDK loads from its control plane)",
            description=(
                "For RudderStack's JavaScript SDK loaded with `configUrl: '<this ingest>'`: an "
                "enabled source with no device-mode destinations. Write key as HTTP Basic "
                "username, as the SDK sends it, or `?writeKey=`."
            ),
            response_model=None,
            include_in_schema=path.endswith("/"),
        )
    router.add_api_route(
        f"/v1/{METRICS_PATH}",
        api.analytics_js_metrics,
        methods=["POST"],
        summary="analytics.js's metrics about itself: counted, not stored",
        description=(
            '`{"series": [{"type": "Counter", "metric": "analytics_js.invoke", ...}]}`, as '
            "analytics.js sends it (text/plain, no write key). Each metric is counted in "
            "`retain_ingest_analytics_js_metrics_total` on /metrics."
        ),
        response_model=None,
    )
    router.add_api_route(
        "/analytics.js/v1/{write_key}/analytics.min.js",
        api.analytics_js,
        methods=["GET"],
        summary="The analytics.js script the classic snippet loads (RETAIN_ANALYTICS_JS_DIR)",
        response_model=None,
    )
    router.add_api_route(
        "/analytics-next/bundles/{name}",
        api.analytics_js_bundle,
        methods=["GET"],
        summary="A bundle analytics.js loads when it needs it (RETAIN_ANALYTICS_JS_DIR)",
        response_model=None,
    )
    app.include_router(router)
