"""Broker down: ingest answers 503 with Retry-After instead of dropping events silently."""

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
from tests.integration.ingest.conftest import Source, start_ingest, wait_ready

pytestmark = pytest.mark.integration


async def test_events_are_refused_with_503_while_the_broker_is_down(
    tmp_path: Path, settings: ServiceSettings, new_source: Callable[[], Awaitable[Source]]
) -> None:
    # A broker of its own, so stopping it leaves the suite's broker alone.
    broker = LocalKafka(
        tmp_path / "kafka", CACHE_DIR, port=free_port(), controller_port=free_port()
    )
    broker.start()
    port = free_port()
    own_settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    process = start_ingest(
        own_settings, port, RETAIN_PUBLISH_TIMEOUT_SECONDS="2", RETAIN_SHUTDOWN_GRACE_SECONDS="3"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        source = await new_source()
        auth = {"Authorization": "Basic " + base64.b64encode(f"{source.key}:".encode()).decode()}
        event = {"userId": "u-1", "event": "Tick", "messageId": str(uuid.uuid4())}
        async with httpx.AsyncClient(timeout=30) as client:
            before = await client.post(f"{url}/v1/track", json=event, headers=auth)
            broker.stop()
            during = await client.post(f"{url}/v1/track", json=event, headers=auth)
        assert before.status_code == 200
        assert during.status_code == 503
        assert during.headers["Retry-After"] == "5"
        assert "retry" in during.json()["message"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        broker.stop()
