"""The HTTP surface every service shares: /healthz, /readyz and /metrics on a FastAPI app."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from services.runtime.metrics import HttpMetricsMiddleware, metrics_payload


@dataclass(frozen=True)
class CheckResult:
    """A readiness check's answer with a detail for /readyz (e.g. why a worker stopped)."""

    ok: bool
    detail: str


# A check answers a bare bool ("ok" / "unreachable") or a CheckResult with its own detail.
ReadinessCheck = Callable[[], Awaitable[bool | CheckResult]]


def _as_result(answer: bool | CheckResult) -> CheckResult:
    if isinstance(answer, CheckResult):
        return answer
    return CheckResult(answer, "ok" if answer else "unreachable")


# Load balancers poll /readyz often; one real check per second per process is plenty.
_READINESS_CACHE_SECONDS = 1.0


class Readiness:
    """Runs the service's dependency checks, caches the answer briefly, and knows about draining."""

    def __init__(self, checks: Mapping[str, ReadinessCheck]) -> None:
        self._checks = dict(checks)
        self._draining = False
        self._cached: tuple[float, dict[str, CheckResult]] | None = None

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Another check, e.g. a worker that can stop on its own (a consumer, an outbox relay)."""
        self._checks[name] = check

    def start_draining(self) -> None:
        """Report not-ready from now on, so traffic moves elsewhere before the process stops."""
        self._draining = True

    async def report(self) -> tuple[bool, dict[str, str]]:
        if self._draining:
            return False, {"service": "stopping"}
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > _READINESS_CACHE_SECONDS:
            names = list(self._checks)
            answers = await asyncio.gather(*(self._checks[name]() for name in names))
            results = [_as_result(answer) for answer in answers]
            self._cached = (now, dict(zip(names, results, strict=True)))
        results_by_name = self._cached[1]
        status = {name: result.detail for name, result in results_by_name.items()}
        return all(result.ok for result in results_by_name.values()), status


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
        summary="Kafka and PostgreSQL are reachable and the workers are running",
        responses={
            503: {
                "description": "A dependency is unreachable, a worker stopped or stalled, "
                "or the service is stopping; `checks` says which"
            }
        },
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
