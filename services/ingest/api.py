"""The HTTP shell of ingest: the Segment HTTP Tracking API (v1) over the pure intake rules."""

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.parse import BatchRequest, SegmentEvent
from schemas.segment import (
    AliasEvent,
    EventType,
    GroupEvent,
    IdentifyEvent,
    PageEvent,
    ScreenEvent,
)
from services.ingest import openapi as docs
from services.ingest.domain.body import (
    BodyError,
    decode_body,
    parse_json_object,
)
from services.ingest.domain.intake import (
    BatchShapeError,
    CredentialError,
    Intake,
    IntakeRules,
    authorization_scheme,
    basic_write_key,
    body_write_key,
)
from services.ingest.domain.keys import Source
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.domain.sdk import SHORT_BATCH_PATH, SHORT_EVENT_PATHS
from services.ingest.keys import CachedKeyLookup
from services.ingest.publisher import BrokerUnavailableError, Publisher
from services.ingest.settings import IngestSettings
from services.runtime.failures import is_transient
from services.runtime.guard import CLIENT_CLOSED_REQUEST
from services.runtime.http import TIMED_OUT

log = logging.getLogger(__name__)


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def error_body(message: str) -> bytes:
    """An error as every ingest error is written, also by the HTTP protocol (431, 408)."""
    return orjson.dumps({"success": False, "message": message})


_SUCCESS = Response(b'{"success":true}', media_type="application/json")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="retain"'}
_RETRY_SECONDS = 5


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers

    def response(self) -> Response:
        body: dict[str, Any] = {"success": False, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return _json(body, self.status, self.headers)


async def source_for(keys: CachedKeyLookup, key: str) -> Source:
    """The source owning an active write key: 401 when unknown or revoked, 503 when the
    key store cannot be reached."""
    try:
        source = await keys.source_for(key)
    except Exception as error:
        if not is_transient(error):
            raise
        raise ApiError(
            503,
            "the write-key store is unavailable; retry the same request",
            headers={"Retry-After": str(_RETRY_SECONDS)},
        ) from None
    if source is None:
        raise ApiError(401, "unknown or revoked write key", headers=_CHALLENGE)
    return source


class TrackingApi:
    def __init__(
        self,
        settings: IngestSettings,
        keys: CachedKeyLookup,
        publisher: Publisher,
        limiter: RateLimiter,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._publisher = publisher
        self._limiter = limiter
        self._rules = IntakeRules(
            max_event_bytes=settings.max_event_bytes,
            max_expanded_batch_bytes=settings.max_expanded_batch_bytes,
        )

    async def _read_body(self, request: Request) -> dict[str, Any]:
        limit = self._settings.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyError(
                413, f"request body exceeds the limit of {limit} bytes ({limit // 1024} KB)"
            )
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise BodyError(
                    413, f"request body exceeds the limit of {limit} bytes ({limit // 1024} KB)"
                )
        body = decode_body(bytes(raw), request.headers.get("content-encoding"), limit)
        return parse_json_object(body)

    async def _authenticate_header(
        self, request: Request, *, key_in_query: bool = False
    ) -> Source | None:
        """The source of the request's Basic credentials, checked before its body is read.

        With `key_in_query` (RudderStack's beacon route: navigator.sendBeacon cannot set a
        header), a `writeKey` query parameter stands in for the header. None when the request
        has neither (the key is then `writeKey` in the body).
        """
        try:
            key = basic_write_key(request.headers.get("authorization"))
        except CredentialError as error:
            raise ApiError(401, str(error), headers=_CHALLENGE) from None
        if key is None and key_in_query:
            key = request.query_params.get("writeKey") or None
        return None if key is None else await self._source_for(key)

    async def _authenticate_body(self, request: Request, body: dict[str, Any]) -> Source:
        key = body_write_key(body)
        if key is None:
            message = (
                "missing write key: send it as the HTTP Basic username or as writeKey in the body"
            )
            scheme = authorization_scheme(request.headers.get("authorization"))
            if scheme is not None:
                message += f" (an Authorization header of scheme {scheme!r} carries none)"
            raise ApiError(401, message, headers=_CHALLENGE)
        return await self._source_for(key)

    async def _source_for(self, key: str) -> Source:
        return await source_for(self._keys, key)

    async def _read_authenticated(
        self, request: Request, *, key_in_query: bool = False
    ) -> tuple[Source, dict[str, Any]]:
        """The request's source and JSON body: Basic credentials are checked before the body
        is read, decompressed or parsed, so an unknown key costs no body work.

        The body is read as JSON whatever its Content-Type: analytics.js sends text/plain,
        which spares the browser a CORS preflight.
        """
        source = await self._authenticate_header(request, key_in_query=key_in_query)
        body = await self._read_body(request)
        if source is None:
            source = await self._authenticate_body(request, body)
        return source, body

    def _limit_rate(self, source: Source, events: int) -> None:
        wait = self._limiter.acquire(source.id, events, time.monotonic())
        if wait > 0:
            raise ApiError(
                429,
                f"rate limit of {self._settings.rate_limit_per_second:g} events/s for this source "
                "exceeded",
                headers={"Retry-After": str(math.ceil(wait))},
            )

    async def _publish(self, intake: Intake) -> None:
        try:
            await self._publisher.publish(intake.accepted, intake.rejected_records)
            if log.isEnabledFor(logging.DEBUG):  # the first step of an event's trail
                log.debug(
                    "events published",
                    extra={
                        "message_ids": [t.message_id for t in intake.accepted],
                        "rejected": len(intake.rejected_records),
                    },
                )
        except BrokerUnavailableError:
            raise ApiError(
                503,
                "the event broker did not acknowledge; some events may have been accepted, "
                "retry the same request (events with the same messageId are deduplicated)",
                headers={"Retry-After": str(_RETRY_SECONDS)},
            ) from None

    async def single(self, request: Request, event_type: EventType) -> Response:
        try:
            source, body = await self._read_authenticated(request)
            self._limit_rate(source, 1)
            intake = self._rules.take(
                [body], event_type=event_type, source_id=source.id, received_at=_now()
            )
            await self._publish(intake)
        except BodyError as error:
            return ApiError(error.status, error.message).response()
        except ApiError as error:
            return error.response()
        except ClientDisconnect:
            return _abandoned(request)
        if intake.rejections:
            [rejection] = intake.rejections
            status = 413 if rejection.reason == "event_too_large" else 400
            return ApiError(status, rejection.message, rejection.errors).response()
        return _SUCCESS

    async def batch(self, request: Request) -> Response:
        return await self._batch(request, key_in_query=False)

    async def beacon_batch(self, request: Request) -> Response:
        """RudderStack's beacon delivery: a batch with the write key in the query string."""
        return await self._batch(request, key_in_query=True)

    async def _batch(self, request: Request, *, key_in_query: bool) -> Response:
        try:
            source, body = await self._read_authenticated(request, key_in_query=key_in_query)
            events = body.get("batch")
            self._limit_rate(source, len(events) if isinstance(events, list) else 1)
            intake = self._rules.take_batch(body, source_id=source.id, received_at=_now())
            await self._publish(intake)
        except BodyError as error:
            return ApiError(error.status, error.message).response()
        except BatchShapeError as error:
            if error.status != 400:
                return ApiError(error.status, str(error)).response()
            return ApiError(400, str(error), [{"field": "batch", "message": str(error)}]).response()
        except ApiError as error:
            return error.response()
        except ClientDisconnect:
            return _abandoned(request)
        if not intake.rejections:
            return _SUCCESS
        report = {
            "accepted": len(intake.accepted),
            "rejected": len(intake.rejections),
            "rejections": [rejection.as_json() for rejection in intake.rejections],
        }
        if not intake.accepted:
            return _json(
                {"success": False, "message": "no event in the batch is valid", **report}, 400
            )
        return _json({"success": True, **report})


def _abandoned(request: Request) -> Response:
    """The answer to a request whose body stopped coming: never sent (the connection is gone),
    but counted by the metrics middleware, as 408 when the server cut it for being too slow,
    else as 499, and logged without a traceback: the client's doing, not the server's."""
    if request.scope.get(TIMED_OUT):
        return ApiError(408, "request body not received in time").response()
    log.info(
        "client disconnected before its request body arrived",
        extra={"path": request.url.path, "client": request.client.host if request.client else None},
    )
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def _now() -> datetime:
    return datetime.now(UTC)


_SINGLE_EVENT_MODELS: dict[EventType, Any] = {
    "identify": IdentifyEvent,
    "track": SegmentEvent,
    "page": PageEvent,
    "screen": ScreenEvent,
    "group": GroupEvent,
    "alias": AliasEvent,
}


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema with its definitions moved into the OpenAPI components."""
    schema = TypeAdapter(model).json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    components.update(schema.pop("$defs", {}))
    return schema


def _single_endpoint(
    api: TrackingApi, event_type: EventType
) -> Callable[[Request], Awaitable[Response]]:
    # The type is bound here, not as a default argument: FastAPI would expose a default
    # argument as a query parameter, letting `?event_type=` override the path's type.
    async def endpoint(request: Request) -> Response:
        return await api.single(request, event_type)

    return endpoint


# A body is read as JSON whatever its Content-Type; analytics.js sends text/plain.
_BODY_TYPES = ("application/json", "text/plain")


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {t: {"schema": schema} for t in _BODY_TYPES}}


def tracking_router(api: TrackingApi, settings: IngestSettings) -> tuple[APIRouter, dict[str, Any]]:
    """The /v1 routes and the request-body schemas they document (for OpenAPI)."""
    router = APIRouter(prefix="/v1", tags=["tracking"])
    components: dict[str, Any] = {}
    limits = docs.limits(settings)
    short_paths = {event_type: short for short, event_type in SHORT_EVENT_PATHS.items()}

    for event_type, model in _SINGLE_EVENT_MODELS.items():
        body = _body(_schema_of(model, components))
        for path in (event_type, short_paths[event_type]):
            summary = f"Record one {event_type} event (Segment {event_type} call)"
            if path != event_type:
                summary += f" (alias of /v1/{event_type}, the path analytics.js posts to)"
            router.add_api_route(
                f"/{path}",
                _single_endpoint(api, event_type),
                methods=["POST"],
                summary=summary,
                description=(
                    "The event's `type` is implied by the path. Write key as HTTP Basic username "
                    "(empty password) or `writeKey` in the body. Body may be gzip-encoded. "
                    "Answers after the broker acknowledged the event." + limits
                ),
                response_model=None,
                responses=docs.SINGLE_RESPONSES,
                openapi_extra={"requestBody": body, "security": docs.SECURITY},
            )

    batch_body = {
        "requestBody": _body(_schema_of(BatchRequest, components)),
        "security": docs.SECURITY,
    }
    for path, alias_of in (
        ("/batch", None),
        ("/import", "/v1/batch"),
        (f"/{SHORT_BATCH_PATH}", "/v1/batch, the path analytics.js posts to when batching"),
    ):
        router.add_api_route(
            path,
            api.batch,
            methods=["POST"],
            summary="Record many events" + (f" (alias of {alias_of})" if alias_of else ""),
            description=(
                "Valid events are published; invalid ones go to touchpoints.rejected.v1 and are "
                "reported in `rejections` with their index and field errors." + limits
            ),
            response_model=None,
            responses=docs.BATCH_RESPONSES,
            openapi_extra=batch_body,
        )
    return router, components


def beacon_router(
    api: TrackingApi, settings: IngestSettings, components: dict[str, Any]
) -> APIRouter:
    """RudderStack's beacon delivery (`useBeacon: true`): POST /beacon/v1/batch?writeKey=..."""
    router = APIRouter(tags=["tracking"])
    router.add_api_route(
        "/beacon/v1/batch",
        api.beacon_batch,
        methods=["POST"],
        summary="Record many events sent with navigator.sendBeacon (RudderStack's beacon mode)",
        description=(
            "As /v1/batch, with the write key as the `writeKey` query parameter: a beacon "
            "cannot carry an Authorization header." + docs.limits(settings)
        ),
        response_model=None,
        responses=docs.BATCH_RESPONSES,
        openapi_extra={
            "parameters": [
                {
                    "name": "writeKey",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The source's write key (else Basic or `writeKey` in the body)",
                }
            ],
            "requestBody": _body(_schema_of(BatchRequest, components)),
            "security": docs.SECURITY,
        },
    )
    return router


class TrackingShortcut:
    """POSTs to the tracking routes go straight to their endpoints.

    FastAPI's routing and request handling (route matching over every route, dependency
    solving, exception wrapping) cost more per single-event request than the event's own
    validation, and these endpoints need none of it: they take the request and return a
    response. The routes stay registered with FastAPI, which documents them and answers
    whatever else reaches their paths (another method, a trailing slash). Installed inside the
    CORS and metrics middleware, so these requests get the same headers and are counted alike.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, APIRoute]) -> None:
        self._app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._routes.get(scope["path"])
        if route is None:
            await self._app(scope, receive, send)
            return
        scope["route"] = route  # as the router sets it: the metrics middleware labels by it
        response = await route.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def install(app: FastAPI, api: TrackingApi, settings: IngestSettings) -> None:
    router, components = tracking_router(api, settings)
    beacon = beacon_router(api, settings, components)
    app.include_router(router)
    app.include_router(beacon)
    shortcuts = {
        route.path: route
        for route in (*router.routes, *beacon.routes)
        if isinstance(route, APIRoute)
    }
    # Appended, not added: add_middleware puts a middleware outside the others, and this one
    # belongs inside them all (see TrackingShortcut).
    app.user_middleware.append(Middleware(TrackingShortcut, routes=shortcuts))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        # GET: the settings browser SDKs load at start (services/ingest/sdk.py).
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        max_age=86_400,
    )
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            schema["components"]["securitySchemes"] = docs.security_schemes()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
