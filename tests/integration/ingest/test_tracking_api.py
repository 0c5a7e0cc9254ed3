"""The tracking API end to end: HTTP in, the real broker out."""

import base64
import gzip
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from services.runtime.settings import ServiceSettings
from tests.integration.ingest.conftest import Source, from_source, read_topic

pytestmark = pytest.mark.integration

NewSource = Callable[[], Awaitable[Source]]

ORDER: dict[str, Any] = {
    "userId": "user-42",
    "event": "Order Completed",
    "messageId": "order-msg-1",
    "properties": {
        "order_id": "o-1001",
        "revenue": 99.5,
        "currency": "EUR",
        "products": [{"product_id": "p-1", "price": 49.75, "quantity": 2}],
    },
    "originalTimestamp": "2026-11-20T10:00:00Z",
    "sentAt": "2026-11-20T10:00:05Z",
}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_a_typed_event_is_published_keyed_by_user_with_server_stamps(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track", json=ORDER, headers=basic(source.key)
        )
    assert response.status_code == 200
    assert response.json() == {"success": True}

    [(key, touchpoint)] = await read_topic(settings, TOUCHPOINTS, from_source(source.id), 1)
    assert key == b"user-42"
    assert touchpoint["messageId"] == "order-msg-1"
    assert touchpoint["customerKey"] == "user-42"
    event = touchpoint["event"]
    assert isinstance(event, dict)
    assert event["type"] == "track"
    assert event["properties"]["order_id"] == "o-1001"
    # timestamp = receivedAt - (sentAt - originalTimestamp): 5 s before it was received.
    received = datetime.fromisoformat(str(touchpoint["receivedAt"]))
    corrected = datetime.fromisoformat(str(touchpoint["timestamp"]))
    assert (received - corrected).total_seconds() == pytest.approx(5, abs=0.001)


async def test_write_key_in_the_body_and_an_anonymous_identify(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    body = {"writeKey": source.key, "anonymousId": "anon-7", "traits": {"email": "a@b.example"}}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest_url}/v1/identify", json=body)
    assert response.status_code == 200, response.text
    [(key, touchpoint)] = await read_topic(settings, TOUCHPOINTS, from_source(source.id), 1)
    assert key == b"anon-7"
    assert touchpoint["messageId"]  # stamped by the server
    event = touchpoint["event"]
    assert isinstance(event, dict)
    assert "writeKey" not in event  # a credential is never published


async def test_gzip_batch_with_some_invalid_events_publishes_the_valid_and_reports_the_rest(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    bad_order = {
        **ORDER,
        "messageId": "bad-1",
        "properties": {**ORDER["properties"], "revenue": -5},
    }
    batch = {
        "batch": [
            {"type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "ok-1"},
            {**ORDER, "type": "track", "messageId": "ok-2"},
            {**bad_order, "type": "track"},
            {"type": "track", "event": "Signed Up", "messageId": "no-identity"},
        ],
        "sentAt": "2026-11-20T10:00:05Z",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/batch",
            content=gzip.compress(orjson.dumps(batch)),
            headers={**basic(source.key), "Content-Encoding": "gzip"},
        )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["success"], report["accepted"], report["rejected"]) == (True, 2, 2)
    by_index = {r["index"]: r for r in report["rejections"]}
    assert by_index[2]["messageId"] == "bad-1"
    assert by_index[2]["errors"] == [{"field": "properties.revenue", "message": "must be >= 0"}]
    assert by_index[3]["reason"] == "validation_failed"

    accepted = await read_topic(settings, TOUCHPOINTS, from_source(source.id), 2)
    assert sorted(str(value["messageId"]) for _, value in accepted) == ["ok-1", "ok-2"]
    rejected = await read_topic(settings, TOUCHPOINTS_REJECTED, from_source(source.id), 2)
    assert sorted(str(value["reason"]) for _, value in rejected) == ["validation_failed"] * 2
    bad = next(value for _, value in rejected if value.get("message_id") == "bad-1")
    assert orjson.loads(str(bad["payload"]))["properties"]["revenue"] == -5


async def test_one_invalid_event_is_a_400_naming_the_field(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    order = {**ORDER, "properties": {"revenue": 10, "currency": "EURO", "products": []}}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track", json=order, headers=basic(source.key)
        )
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"properties.order_id", "properties.currency"} <= fields


async def test_a_timestamp_that_overflows_in_utc_is_a_400_and_spares_the_rest_of_a_batch(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    overflowing = {**ORDER, "messageId": "overflow-1", "timestamp": "0001-01-01T00:00:01+04:00"}
    async with httpx.AsyncClient() as client:
        single = await client.post(
            f"{ingest_url}/v1/track", json=overflowing, headers=basic(source.key)
        )
        batch = await client.post(
            f"{ingest_url}/v1/batch",
            json={
                "batch": [
                    {**ORDER, "type": "track", "messageId": "ok-1"},
                    {**overflowing, "type": "track"},
                ]
            },
            headers=basic(source.key),
        )
    assert single.status_code == 400
    assert [error["field"] for error in single.json()["errors"]] == ["timestamp"]
    assert batch.status_code == 200
    report = batch.json()
    assert (report["accepted"], report["rejected"]) == (1, 1)


async def test_size_limits_are_413_naming_the_limit(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    big_event = {"userId": "u", "event": "Note", "properties": {"text": "x" * 33_000}}
    async with httpx.AsyncClient() as client:
        event_response = await client.post(
            f"{ingest_url}/v1/track", json=big_event, headers=basic(source.key)
        )
        request_response = await client.post(
            f"{ingest_url}/v1/batch",
            json={"batch": [{"type": "track", "userId": "u", "event": "x" * 1000}] * 600},
            headers=basic(source.key),
        )
    assert event_response.status_code == 413
    assert "32768 bytes (32 KB) per event" in event_response.json()["message"]
    assert request_response.status_code == 413
    assert "512000 bytes (500 KB)" in request_response.json()["message"]
    [(_, rejected)] = await read_topic(settings, TOUCHPOINTS_REJECTED, from_source(source.id), 1)
    assert rejected["reason"] == "event_too_large"
    assert rejected["payload_truncated"] is True


async def test_bad_json_and_bad_gzip_are_400(ingest_url: str, new_source: NewSource) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        not_json = await client.post(
            f"{ingest_url}/v1/track", content=b"{nope", headers=basic(source.key)
        )
        not_gzip = await client.post(
            f"{ingest_url}/v1/track",
            content=b"plain",
            headers={**basic(source.key), "Content-Encoding": "gzip"},
        )
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["message"]
    assert not_gzip.status_code == 400
    assert "not valid gzip" in not_gzip.json()["message"]


async def test_missing_unknown_and_revoked_keys_are_401(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from services.ingest.keys import WriteKeyRepository

    source = await new_source()
    async with httpx.AsyncClient() as client:
        missing = await client.post(f"{ingest_url}/v1/track", json=ORDER)
        unknown = await client.post(f"{ingest_url}/v1/track", json=ORDER, headers=basic("wk_nope"))
        accepted = await client.post(
            f"{ingest_url}/v1/track", json=ORDER, headers=basic(source.key)
        )
        engine = create_async_engine(settings.database_url.get_secret_value())
        await WriteKeyRepository(engine).revoke(source.key_id)
        await engine.dispose()
        await asyncio.sleep(0.6)  # the server caches key lookups for 0.5 s in this suite
        revoked = await client.post(f"{ingest_url}/v1/track", json=ORDER, headers=basic(source.key))
    assert missing.status_code == 401
    assert "missing write key" in missing.json()["message"]
    assert unknown.status_code == 401
    assert accepted.status_code == 200
    assert revoked.status_code == 401


async def test_a_source_over_its_rate_limit_gets_429_with_retry_after(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    batch = {"batch": [{"type": "track", "userId": "u", "event": "Tick"}] * 300}
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{ingest_url}/v1/batch", json=batch, headers=basic(source.key))
        second = await client.post(f"{ingest_url}/v1/batch", json=batch, headers=basic(source.key))
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
    assert "rate limit" in second.json()["message"]


async def test_browsers_may_post_from_other_origins(ingest_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.options(
            f"{ingest_url}/v1/batch",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://shop.example")


async def test_openapi_documents_every_endpoint_and_its_body(ingest_url: str) -> None:
    async with httpx.AsyncClient() as client:
        spec = (await client.get(f"{ingest_url}/openapi.json")).json()
    for path in ("identify", "track", "page", "screen", "group", "alias", "batch", "import"):
        operation = spec["paths"][f"/v1/{path}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]
        assert {"400", "401", "413", "429", "503"} <= set(operation["responses"])
    refs = orjson.dumps(spec).decode()
    for name in ("OrderCompleted", "Context"):
        assert name in spec["components"]["schemas"] or name in refs


async def test_the_path_alone_decides_the_event_type(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track",
            params={"event_type": "identify"},
            json={"userId": "u-typed", "event": "Clicked", "type": "identify"},
            headers=basic(source.key),
        )
    assert response.status_code == 200, response.text
    [(_, touchpoint)] = await read_topic(settings, TOUCHPOINTS, from_source(source.id), 1)
    event = touchpoint["event"]
    assert isinstance(event, dict)
    assert event["type"] == "track"


def _produced(metrics: str, topic: str) -> float:
    sample = f'retain_produced_records_total{{topic="{topic}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(sample)]
    return float(lines[0].removeprefix(sample)) if lines else 0.0


async def test_accepted_and_rejected_events_are_counted_once_kafka_acknowledged_them(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    good = [{**ORDER, "type": "track", "messageId": f"counted-{n}"} for n in range(5)]
    bad = {"type": "track", "userId": "u", "messageId": "counted-bad", "event": ""}
    async with httpx.AsyncClient() as client:
        before = (await client.get(f"{ingest_url}/metrics")).text
        answer = await client.post(
            f"{ingest_url}/v1/batch", json={"batch": [*good, bad]}, headers=basic(source.key)
        )
        assert answer.status_code == 200, answer.text
        after = (await client.get(f"{ingest_url}/metrics")).text
    assert _produced(after, TOUCHPOINTS) - _produced(before, TOUCHPOINTS) == 5
    assert _produced(after, TOUCHPOINTS_REJECTED) - _produced(before, TOUCHPOINTS_REJECTED) == 1
