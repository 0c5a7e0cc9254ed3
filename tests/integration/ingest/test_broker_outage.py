"""Broker down: ingest answers 503 with Retry-After instead of dropping events silently, and
/readyz says Kafka is unreachable, so a load balancer sends traffic elsewhere."""

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from services.devstack.kafka import LocalKafka
from services.devstack.ports import free_port
from services.runtime.settings import ServiceSettings
from tests.conftest import CACHE_DIR
from tests.integration.helpers import start_service
from tests.integration.ingest.conftest import INGEST_LIMITS, Source

pytestmark = pytest.mark.integration


async def test_events_are_refused_with_503_while_the_broker_is_down(
    tmp_path: Path, settings: ServiceSettings, new_source: Callable[[], Awaitable[Source]]
) -> None:
    # A broker of its own, so stopping it leaves the suite's broker alone.
    broker = LocalKafka(
        tmp_path / "kafka", CACHE_DIR, port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        await _refuses_while_down(broker, settings, new_source)
    finally:
        broker.stop()


async def _refuses_while_down(
    broker: LocalKafka, settings: ServiceSettings, new_source: Callable[[], Awaitable[Source]]
) -> None:
    own_settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    ingest = start_service(
        "ingest",
        own_settings,
        RETAIN_PUBLISH_TIMEOUT_SECONDS="2",
        RETAIN_SHUTDOWN_GRACE_SECONDS="3",
        **INGEST_LIMITS,
    )
    url = ingest.url
    try:
        source = await new_source()
        auth = {"Authorization": "Basic " + base64.b64encode(f"{source.key}:".encode()).decode()}
        event = {"userId": "u-1", "event": "Tick", "messageId": str(uuid.uuid4())}
        async with httpx.AsyncClient(timeout=30) as client:
            before = await client.post(f"{url}/v1/track", json=event, headers=auth)
            broker.stop()
            during = await client.post(f"{url}/v1/track", json=event, headers=auth)
            readiness = await _readiness_once_kafka_is_unreachable(client, url)
        assert before.status_code == 200
        assert during.status_code == 503
        assert during.headers["Retry-After"] == "5"
        assert "retry" in during.json()["message"]
        assert readiness.status_code == 503
        assert readiness.json()["checks"]["kafka"] == "unreachable"
    finally:
        ingest.stop()


async def _readiness_once_kafka_is_unreachable(
    client: httpx.AsyncClient, url: str
) -> httpx.Response:
    """/readyz once its cached answer (from before the outage) has expired."""
    for _ in range(60):
        answer = await client.get(f"{url}/readyz")
        if answer.json()["checks"].get("kafka") != "ok":
            return answer
        await asyncio.sleep(0.5)
    return answer
