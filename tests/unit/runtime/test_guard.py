"""Requests to the admin APIs: URLs in UTF-8, bodies held to a size, to no Content-Encoding
and, when JSON, to JSON as RFC 8259 has it, nested at most 64 levels, without NUL. Each
refusal is a 4xx naming the limit, the parameter or the field, given before the route runs."""

import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Request
from pydantic import BaseModel

from services.runtime.guard import MAX_BODY_BYTES, json_problems
from services.runtime.http import Readiness, create_service_app

JSON = {"content-type": "application/json"}


class SendBody(BaseModel):
    to: str
    trigger: dict[str, Any] | None = None


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, list[Any]]]:
    app = create_service_app(
        "test", Readiness({}), title="t", description="d", max_body_bytes=MAX_BODY_BYTES
    )
    reached: list[Any] = []

    @app.post("/send")
    async def send(body: SendBody) -> dict[str, str]:
        reached.append(body)
        return {"to": body.to}

    @app.post("/form")
    async def form(request: Request) -> dict[str, str]:
        reached.append(await request.body())
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, reached


def _nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


async def test_a_body_over_the_limit_is_a_413_naming_it_declared_or_streamed(
    client: tuple[httpx.AsyncClient, list[Any]],
) -> None:
    http, reached = client
    declared = await http.post("/send", content=b" " * (MAX_BODY_BYTES + 1), headers=JSON)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(20):
            yield b" " * 65_536

    streamed = await http.post("/send", content=chunks(), headers=JSON)
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.json() == {
            "detail": "request body exceeds the limit of 1048576 bytes (1024 KB)"
        }
    assert reached == []


async def test_a_compressed_body_is_refused_not_inflated(
    client: tuple[httpx.AsyncClient, list[Any]],
) -> None:
    http, reached = client
    bomb = gzip.compress(b"0" * 50_000_000)  # 50 MB of zeros in about 50 KB
    answer = await http.post("/send", content=bomb, headers={**JSON, "content-encoding": "gzip"})
    assert answer.status_code == 415
    assert "Content-Encoding 'gzip'" in answer.json()["detail"]
    assert reached == []


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        (b'{"to": "\xff@shop.example"}', ["body"], "not valid UTF-8"),
        (b'{"to": "a@shop.example", "trigger": {"x": NaN}}', ["body"], "not valid JSON"),
        (b'{"to": "a@shop.example", "trigger": {"x": 1e999}}', ["body"], "infinity"),
        (b'{"to": "a@shop.example", "trigger": {"x": 1' + b"0" * 5000 + b"}}", ["body"], "JSON"),
        (b'{"to": "a@shop.example", "trigger": ' + _nested(65) + b"}", ["body", "trigger"], "64"),
        (b'{"to": "a@shop.example", "trigger": ' + _nested(5000) + b"}", ["body"], "JSON"),
        (b"[" * 500 + b"]" * 500, ["body"], "64 levels"),
        (b'{"to": "a\\u0000@shop.example"}', ["body", "to"], "NUL"),
        (b'{"to": "a@shop.example", "trigger": {"k\\u0000": 1}}', ["body", "trigger"], "NUL"),
    ],
)
async def test_a_json_body_that_is_not_json_or_too_deep_is_a_422_naming_why(
    client: tuple[httpx.AsyncClient, list[Any]], body: bytes, loc: list[str], says: str
) -> None:
    http, reached = client
    answer = await http.post("/send", content=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == loc
    assert says in error["msg"]
    assert reached == []


async def test_what_passes_reaches_the_route_unchanged(
    client: tuple[httpx.AsyncClient, list[Any]],
) -> None:
    http, reached = client
    deep_enough = b'{"to": "a@shop.example", "trigger": ' + _nested(64) + b"}"
    accepted = await http.post("/send", content=deep_enough, headers=JSON)
    form = await http.post(
        "/form",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    ready = await http.get("/healthz")
    assert (accepted.status_code, form.status_code, ready.status_code) == (200, 200, 200)
    assert reached[0].to == "a@shop.example"
    assert reached[1] == b"List-Unsubscribe=One-Click"


def test_a_json_body_needs_no_work_beyond_parsing_when_it_is_plain() -> None:
    assert json_problems(b'{"to": "a@shop.example", "trigger": {"items": [{"id": 1}]}}') == []
    assert json_problems(b"[1, 2]") == []


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/send?to=%FF", ["query", "to"]),
        ("/send?ok=1&q=a%C3", ["query", "q"]),
        ("/send?%FEname=1", ["query", "\ufffdname"]),
        ("/customers/%FF%FE", ["path"]),
    ],
)
async def test_a_url_that_is_not_utf8_once_decoded_is_a_422_naming_the_part(
    client: tuple[httpx.AsyncClient, list[Any]], url: str, loc: list[str]
) -> None:
    http, reached = client
    answer = await http.post(url, json={"to": "a@shop.example"})
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == loc
    assert "not UTF-8" in error["msg"]
    assert reached == []


async def test_a_url_in_utf8_reaches_the_route(
    client: tuple[httpx.AsyncClient, list[Any]],
) -> None:
    http, reached = client
    answer = await http.post("/send?name=%C3%A9t%C3%A9+x", json={"to": "\u00e9@shop.example"})
    assert answer.status_code == 200
    assert reached[0].to == "\u00e9@shop.example"
