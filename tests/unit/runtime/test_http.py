import asyncio
import json
import logging
import re
from typing import Annotated

import httpx
import pytest
from pydantic import BaseModel, Field

from services.runtime.http import Readiness, create_service_app
from services.runtime.logs import configure_logging


def _client(readiness: Readiness) -> httpx.AsyncClient:
    app = create_service_app("test", readiness, title="t", description="d")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _up() -> bool:
    return True


async def _down() -> bool:
    return False


async def test_readyz_is_200_when_every_dependency_answers() -> None:
    async with _client(Readiness({"kafka": _up, "postgres": _up})) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"kafka": "ok", "postgres": "ok"}}


async def test_readyz_is_503_and_names_the_unreachable_dependency() -> None:
    async with _client(Readiness({"kafka": _up, "postgres": _down})) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"kafka": "ok", "postgres": "unreachable"}


async def test_a_draining_service_is_not_ready_but_still_alive() -> None:
    readiness = Readiness({"kafka": _up})
    readiness.start_draining()
    async with _client(readiness) as client:
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_readiness_checks_are_cached_briefly() -> None:
    calls = 0

    async def counted() -> bool:
        nonlocal calls
        calls += 1
        return True

    readiness = Readiness({"kafka": counted})
    await asyncio.gather(*(readiness.report() for _ in range(3)))
    await readiness.report()
    assert 1 <= calls <= 3  # concurrent first calls may each check; later ones hit the cache


async def test_metrics_count_requests_by_route() -> None:
    async with _client(Readiness({"kafka": _up})) as client:
        await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    assert 'retain_http_requests_total{route="/healthz",service="test",status="200"}' in metrics


async def test_every_request_has_an_id_answered_and_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", "INFO", "json")
    readiness = Readiness({})
    app = create_service_app("test", readiness, title="t", description="d")

    @app.get("/logs")
    async def logs() -> dict[str, str]:
        logging.getLogger("retain.test").warning("inside")
        return {}

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    async with client:
        made = await client.get("/logs")
        kept = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.9"})
        spaced = await client.get("/healthz", headers={"X-Request-ID": "an id; with spaces"})
        too_long = await client.get("/healthz", headers={"X-Request-ID": "a" * 129})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert kept.headers["x-request-id"] == "lb-7f3a.9"
    for refused in (spaced, too_long):
        assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [inside] = [line for line in lines if line["message"] == "inside"]
    assert inside["request_id"] == made.headers["x-request-id"]


async def test_a_refused_input_is_echoed_whatever_it_is_never_a_500() -> None:
    # FastAPI's own 422 failed to write a body that is not UTF-8 (sent as text/plain, it is
    # the input refused) and the numbers Python's JSON reader takes that JSON has no word for.
    app = create_service_app("test", Readiness({}), title="t", description="d")

    class Switch(BaseModel):
        enabled: bool
        ratio: Annotated[float, Field(le=1)] = 0

    @app.put("/switch")
    async def switch(body: Switch) -> dict[str, bool]:
        return {"enabled": body.enabled}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        not_utf8 = await client.put(
            "/switch", content=b"\xff\xfe", headers={"content-type": "text/plain"}
        )
        nan = await client.put(
            "/switch", content=b'{"enabled": NaN}', headers={"content-type": "application/json"}
        )
        infinite = await client.put(
            "/switch",
            content=b'{"enabled": true, "ratio": 1e999}',
            headers={"content-type": "application/json"},
        )
    assert not_utf8.status_code == 422, not_utf8.text
    assert not_utf8.json()["detail"][0]["loc"] == ["body"]
    assert nan.status_code == 422, nan.text
    assert nan.json()["detail"][0]["loc"] == ["body", "enabled"]
    assert nan.json()["detail"][0]["input"] == "nan"
    assert infinite.status_code == 422, infinite.text
    assert infinite.json()["detail"][0]["loc"] == ["body", "ratio"]
