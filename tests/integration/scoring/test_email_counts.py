"""Scoring's notifications.v1 consumer: each fact of an email counts once, however often it is
delivered or published, and the Email page's API refuses what it cannot answer."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.topics import NOTIFICATIONS
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, wait_for

pytestmark = pytest.mark.integration


def notification(journey: str, nid: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "notification_id": nid,
        "customer_id": f"cus-{journey}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "kind": "marketing",
        "journey": journey,
        "template": f"{journey}_1",
        **extra,
    }


async def _row(scoring: RunningService, journey: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{scoring.url}/v1/analytics/email", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    rows = [r for r in answer.json()["rows"] if r["journey"] == journey]
    return rows[0] if rows else None


async def test_a_redelivered_or_republished_fact_counts_once(
    scoring: RunningService, settings: ServiceSettings
) -> None:
    journey = f"dup-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()

    async def publish(*records: dict[str, Any]) -> None:
        for record in records:  # one key: one partition, in this order
            await producer.send_and_wait(
                NOTIFICATIONS, orjson.dumps(record), key=f"cus-{journey}".encode()
            )

    try:
        sent = notification(journey, f"{journey}-n1", "sent")
        opened = notification(journey, f"{journey}-n1", "opened", event_id=f"{journey}-e1")
        await publish(
            sent,
            sent,  # published twice
            opened,
            notification(journey, f"{journey}-n1", "opened", event_id=f"{journey}-e2"),
            notification(journey, f"{journey}-n2", "suppressed", reason="no_consent"),
        )

        async def counted() -> dict[str, Any] | None:
            row = await _row(scoring, journey)
            return row if row and row["suppressed"] == 1 else None

        row = await wait_for(counted, seconds=60)
        assert (row["sent"], row["opened"], row["open_rate"]) == (1, 1, 1.0)
        assert row["suppressed_by_reason"] == {"no_consent": 1}

        # Delivered again later, then a new email after it on the same partition: once the
        # new one counts, the copies were read, and counted nothing.
        await publish(sent, opened, notification(journey, f"{journey}-n3", "sent"))

        async def new_one_counted() -> dict[str, Any] | None:
            row = await _row(scoring, journey)
            return row if row and row["sent"] >= 2 else None

        row = await wait_for(new_one_counted, seconds=60)
        assert (row["sent"], row["opened"], row["open_rate"]) == (2, 1, 0.5)
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"currency": "eur"}, "currency"),
        ({"start": "2026-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2026-05-02", "end": "2026-05-01"}, "start"),
    ],
)
async def test_a_bad_query_is_a_422_naming_the_parameter(
    scoring: RunningService, query: dict[str, str], named: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(f"{scoring.url}/v1/analytics/email", params=query, headers=ADMIN)
    assert answer.status_code == 422
    assert named in answer.text


async def test_the_email_page_is_in_the_openapi_document(scoring: RunningService) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        document = (await client.get(f"{scoring.url}/openapi.json")).json()
    operation = document["paths"]["/v1/analytics/email"]["get"]
    assert "journey and template" in operation["summary"]
    assert {p["name"] for p in operation["parameters"]} == {"start", "end", "currency"}
