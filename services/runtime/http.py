"""The HTTP surface every service shares: /healthz, /readyz and /metrics on a FastAPI app."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from services.runtime.metrics import HttpMetricsMiddleware, metrics_payload

ReadinessCheck = Callable[[], Awaitable[bool]]

# Load balancers poll /readyz often; one real check per second per process is plenty.
_READINESS_CACHE_SECONDS = 1.0


class Readiness:
    """Runs the service's dependency checks, caches the answer briefly, and knows about draining."""

    def __init__(self, checks: Mapping[str, ReadinessCheck]) -> None:
        self._checks = dict(checks)
        self._draining = False
        self._cached: tuple[float, dict[str, bool]] | None = None

    def start_draining(self) -> None:
        """Report not-ready from now on, so traffic moves elsewhere before the process stops."""
        self._draining = True

    async def report(self) -> tuple[bool, dict[str, str]]:
        if self._draining:
            return False, {"service": "stopping"}
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > _READINESS_CACHE_SECONDS:
            names = list(self._checks)
            results = await asyncio.gather(*(self._checks[name]() for name in names))
            self._cached = (now, dict(zip(names, results, strict=True)))
        results_by_name = self._cached[1]
        status = {name: "ok" if ok else "unreachable" for name, ok in results_by_name.items()}
        return all(results_by_name.values()), status


def create_service_app(
    service: str, readiness: Readiness, *, title: str, description: str, version: str = "1"
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version)
    app.add_middleware(HttpMetricsMiddleware, service=service)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Kafka and PostgreSQL are reachable",
        responses={503: {"description": "A dependency is unreachable or the service is stopping"}},
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
