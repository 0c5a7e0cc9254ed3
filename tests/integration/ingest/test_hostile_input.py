"""Hostile input, sent as an attacker would send it, to the real ingest process.

Every case must answer 4xx naming the field or the limit, never 5xx, and nothing ingest accepts
may be something a consumer then cannot decode or store. The socket-level cases (oversize and
slow headers, slow and abandoned bodies) use raw sockets, so nothing in between smooths them.
"""

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from schemas.topics import TOUCHPOINTS
from schemas.topics.touchpoints_v1 import Touchpoint
from services.runtime.settings import ServiceSettings
from tests.integration.hostile.probes import exchange
from tests.integration.hostile.probes import head as request_head
from tests.integration.ingest.conftest import (
    BODY_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    LoggedIngest,
    Source,
    from_source,
    read_topic,
)

pytestmark = pytest.mark.integration

NewSource = Callable[[], Awaitable[Source]]
DEPTH_MESSAGE = "must not nest objects and arrays more than 64 levels deep"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def nested(levels: int) -> dict[str, Any]:
    """An object `levels` deep: nested(1) == {}, nested(2) == {"a": {}}."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def with_deep(value: Any, levels: int) -> bytes:
    """`value` as JSON with each "DEEP" string replaced by an object `levels` deep.

    Built as text: Python's and orjson's encoders stop before the depths tested here.
    """
    deep = b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)
    return orjson.dumps(value).replace(b'"DEEP"', deep)


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"userId": "u-hostile", "event": "Poked", "messageId": message_id, **fields}


# --- nesting depth -------------------------------------------------------------------------


# 65 and 199: once accepted, then dead-lettered by profile (pydantic's recursion limit);
# 253 and 1023: once a 500 (orjson's encoder stops at 254 levels, its decoder at 1024).
@pytest.mark.parametrize("levels", [65, 199, 253, 1023])
async def test_properties_nested_deeper_than_64_levels_are_a_400_naming_the_field(
    ingest_url: str, new_source: NewSource, levels: int
) -> None:
    source = await new_source()
    event = with_deep(track(f"deep-{levels}", properties="DEEP"), levels)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track", content=event, headers=basic(source.key)
        )
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"field": "properties", "message": DEPTH_MESSAGE}]


async def test_64_levels_are_accepted_and_a_consumer_decodes_them(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    event = {
        "userId": "u-deep",
        "traits": nested(64),
        "context": {"app": nested(63)},
        "messageId": "deep-ok",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/identify", json=event, headers=basic(source.key)
        )
    assert response.status_code == 200, response.text
    [message] = await read_messages_raw(settings, source.id)
    assert Touchpoint.from_json(message).event.message_id == "deep-ok"


async def test_a_deep_item_is_rejected_alone_and_a_deep_batch_context_rejects_every_item(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        one_deep = await client.post(
            f"{ingest_url}/v1/batch",
            content=with_deep(
                {
                    "batch": [
                        {"type": "track", **track("ok-1")},
                        {"type": "track", **track("deep-1", properties={"x": "DEEP"})},
                    ]
                },
                300,
            ),
            headers=basic(source.key),
        )
        deep_context = await client.post(
            f"{ingest_url}/v1/batch",
            content=with_deep(
                {
                    "batch": [{"type": "track", **track(f"ctx-{i}")} for i in range(3)],
                    "context": {"app": "DEEP"},
                },
                500,
            ),
            headers=basic(source.key),
        )
    assert one_deep.status_code == 200, one_deep.text
    report = one_deep.json()
    assert (report["accepted"], report["rejected"]) == (1, 1)
    [rejection] = report["rejections"]
    assert rejection["index"] == 1
    assert rejection["errors"] == [{"field": "properties", "message": DEPTH_MESSAGE}]
    assert deep_context.status_code == 400, deep_context.text
    fields = {e["field"] for r in deep_context.json()["rejections"] for e in r["errors"]}
    assert fields == {"context"}


# --- NUL characters ------------------------------------------------------------------------


NUL_MESSAGE = "must not contain a NUL character (\\u0000)"
NUL_KEY_MESSAGE = "keys must not contain a NUL character (\\u0000)"


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (track("nul-1", properties={"note": "a\x00b"}), "properties.note", NUL_MESSAGE),
        (track("nul-2", properties={"tags": ["ok", "bad\x00"]}), "properties.tags[1]", NUL_MESSAGE),
        ({**track("nul-3"), "userId": "u\x00"}, "userId", NUL_MESSAGE),
        (track("nul-4", properties={"key\x00": 1}), "properties", NUL_KEY_MESSAGE),
        (track("nul-5", context={"page": {"title": "\x00"}}), "context.page.title", NUL_MESSAGE),
    ],
)
async def test_a_nul_character_anywhere_is_a_400_naming_the_field(
    ingest_url: str, new_source: NewSource, event: dict[str, Any], field: str, message: str
) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track", json=event, headers=basic(source.key)
        )
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"field": field, "message": message}]


async def test_the_text_backslash_u0000_is_not_a_nul_and_is_kept(
    ingest_url: str, new_source: NewSource, settings: ServiceSettings
) -> None:
    source = await new_source()
    event = track("not-nul", properties={"path": "C:\\u0000\\dir"})
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest_url}/v1/track", json=event, headers=basic(source.key)
        )
    assert response.status_code == 200, response.text
    [message] = await read_messages_raw(settings, source.id)
    properties = Touchpoint.from_json(message).event.properties  # type: ignore[union-attr]
    assert properties == {"path": "C:\\u0000\\dir"}


# --- what a request may produce ------------------------------------------------------------


async def test_a_batch_context_copied_into_every_item_is_bounded_by_the_expanded_size(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    # 38 KB on the wire; copied into each of 200 items it would be 6 MB on the topic.
    body = {
        "batch": [{"type": "track", **track(f"amp-{i}")} for i in range(200)],
        "context": {"app": {"blob": "x" * 30_000}},
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest_url}/v1/batch", json=body, headers=basic(source.key))
    assert response.status_code == 413, response.text
    message = response.json()["message"]
    assert "2048000 bytes (2000 KB)" in message
    assert "context" in message


# --- write keys ----------------------------------------------------------------------------


async def test_a_malformed_basic_header_says_what_is_wrong_with_it(
    ingest_url: str, new_source: NewSource
) -> None:
    source = await new_source()
    async with httpx.AsyncClient() as client:
        garbage = await client.post(
            f"{ingest_url}/v1/track",
            json={**track("bad-basic"), "writeKey": source.key},
            headers={"Authorization": "Basic !!!"},
        )
        empty_user = await client.post(
            f"{ingest_url}/v1/track",
            json={**track("empty-user"), "writeKey": source.key},
            headers=basic(""),
        )
    assert garbage.status_code == 401
    assert "Authorization header" in garbage.json()["message"]
    assert "base64" in garbage.json()["message"]
    assert empty_user.status_code == 401
    assert "Authorization header" in empty_user.json()["message"]
    assert "username" in empty_user.json()["message"]


async def test_an_unknown_basic_key_is_refused_before_the_body_is_read(
    ingest_url: str, new_source: NewSource
) -> None:
    async with httpx.AsyncClient() as client:
        not_gzip = await client.post(
            f"{ingest_url}/v1/batch",
            content=b"not gzip at all",
            headers={**basic("wk_unknown"), "Content-Encoding": "gzip"},
        )
    assert not_gzip.status_code == 401, not_gzip.text
    # Only the head is sent: the answer must not wait for a body that never comes.
    status, _ = await exchange(
        ingest_url,
        [_post("/v1/batch", basic("wk_unknown"), content_length=400_000)],
        read_timeout=5,
    )
    assert status == 401


# --- the socket: header size, slow clients, disconnects -------------------------------------


async def test_headers_over_the_limit_are_431_even_at_8_mib(logged_ingest: LoggedIngest) -> None:
    head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Pad: "
    chunks = [head] + [b"a" * 65_536] * 128  # 8 MiB, never finished
    status, _ = await exchange(logged_ingest.url, chunks, read_timeout=10)
    assert status == 431
    # A whole head arriving at once is measured too.
    at_once = head + b"a" * 40_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    status, response = await exchange(logged_ingest.url, [at_once])
    assert status == 431
    assert b"16384 bytes" in response
    # Dripped in small pieces, as a slow client would, it is cut as soon as it is over.
    dripped = [head] + [b"a" * 1024] * 40
    status, _ = await exchange(logged_ingest.url, dripped, pause=0.01)
    assert status == 431
    assert await _count(logged_ingest, "unmatched", "431") >= 3
    # Under the limit, a large head (cookies, say) is served as any other.
    within = head + b"a" * 15_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    status, response = await exchange(logged_ingest.url, [within])
    assert status == 401, response


async def test_slow_headers_are_cut_off_with_408(logged_ingest: LoggedIngest) -> None:
    head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\n"
    started = asyncio.get_running_loop().time()
    status, response = await exchange(
        logged_ingest.url, [head], read_timeout=HEADER_TIMEOUT_SECONDS + 5
    )
    waited = asyncio.get_running_loop().time() - started
    assert status == 408, response
    assert b"request headers not received within 1 s" in response
    assert waited >= HEADER_TIMEOUT_SECONDS * 0.9


async def test_an_idle_keep_alive_connection_is_no_slow_head(logged_ingest: LoggedIngest) -> None:
    # Between requests the connection idles longer than the header timeout: the next head's
    # clock starts with its first byte, so it is served.
    reader, writer = await asyncio.open_connection(logged_ingest.host, logged_ingest.port)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        for _ in range(2):
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            await asyncio.sleep(HEADER_TIMEOUT_SECONDS * 1.5)
    finally:
        writer.close()


async def test_a_slow_body_is_cut_off_with_408(
    logged_ingest: LoggedIngest, new_source: NewSource
) -> None:
    source = await new_source()
    head = _post("/v1/track", basic(source.key), content_length=100)
    status, response = await exchange(
        logged_ingest.url,
        [head, b'{"userId":'],
        read_timeout=BODY_TIMEOUT_SECONDS + 5,
    )
    assert status == 408, response
    assert await _count(logged_ingest, "/v1/track", "408") >= 1


async def test_a_client_leaving_mid_body_is_counted_apart_and_logged_without_a_traceback(
    logged_ingest: LoggedIngest, new_source: NewSource
) -> None:
    source = await new_source()
    errors_before = await _count(logged_ingest, "/v1/track", "500")
    left_before = await _count(logged_ingest, "/v1/track", "499")
    _, writer = await asyncio.open_connection(logged_ingest.host, logged_ingest.port)
    writer.write(_post("/v1/track", basic(source.key), content_length=1000) + b'{"userId":')
    await writer.drain()
    await asyncio.sleep(0.3)  # the request is in the app, waiting for the rest of its body
    writer.close()
    await writer.wait_closed()
    for _ in range(50):
        if await _count(logged_ingest, "/v1/track", "499") > left_before:
            break
        await asyncio.sleep(0.1)
    assert await _count(logged_ingest, "/v1/track", "499") == left_before + 1
    assert await _count(logged_ingest, "/v1/track", "500") == errors_before
    lines = logged_ingest.log_lines()
    assert not [line for line in lines if line["level"] == "error"]
    assert not [line for line in lines if "exception" in line]
    assert any("disconnected" in str(line["message"]) for line in lines)


# --- the OpenAPI document ------------------------------------------------------------------


async def test_openapi_states_the_security_scheme_the_errors_and_the_timestamp_range(
    ingest_url: str,
) -> None:
    async with httpx.AsyncClient() as client:
        spec = (await client.get(f"{ingest_url}/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    schemas = spec["components"]["schemas"]
    for path in ("identify", "track", "page", "screen", "group", "alias", "batch", "import"):
        operation = spec["paths"][f"/v1/{path}"]["post"]
        assert {name: []} in operation["security"]
        for status in ("400", "401", "408", "413", "429", "431", "503"):
            content = operation["responses"][status]["content"]["application/json"]
            ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
            assert {"success", "message"} <= set(schemas[ref]["properties"])
    event = schemas["IdentifyEvent"]["properties"]
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        text = orjson.dumps(event[field]).decode()
        assert "1970-01-01" in text, field
        assert "2100-01-01" in text, field
    description = orjson.dumps(spec["paths"]["/v1/batch"]["post"]).decode()
    assert "64 levels" in description
    assert "2048000" in description


# --- helpers -------------------------------------------------------------------------------


async def read_messages_raw(settings: ServiceSettings, source_id: str) -> list[bytes]:
    found = await read_topic(settings, TOUCHPOINTS, from_source(source_id), 1)
    return [orjson.dumps(value) for _, value in found]


def _post(path: str, headers: dict[str, str], *, content_length: int) -> bytes:
    """The head of a JSON POST, for sending below an HTTP client."""
    json_headers = {"Content-Type": "application/json", **headers}
    return request_head("POST", path, json_headers, content_length=content_length)


async def _count(ingest: LoggedIngest, route: str, status: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{ingest.url}/metrics")).text
    pattern = (
        r'^retain_http_requests_total\{[^}]*route="'
        + re.escape(route)
        + r'"[^}]*status="'
        + status
        + r'"[^}]*\} ([0-9.e+]+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
