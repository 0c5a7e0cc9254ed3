"""Notify's admin API answers what its OpenAPI document declares: both kinds of 422 of a test
send (a body FastAPI cannot validate, and the test send's own refusal) fit the schema the
document gives for 422."""

from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import journeys
from services.notify import test_send as sends  # its classes' names would look like tests
from services.notify.api import notify_router
from services.notify.settings import NotifySettings
from services.runtime.settings import Environment

TEST_SEND = "/v1/templates/welcome/test-send"


class RefusingTestSends:
    """A test send whose template does not render."""

    async def send(
        self,
        template: str,
        to: str,
        *,
        customer_id: str | None = None,
        trigger: Mapping[str, Any] | None = None,
    ) -> Any:
        raise sends.TestSendRefused(
            422, f"template {template!r} did not render: 'items' is undefined"
        )


async def _allowed() -> None:
    return None


@pytest.fixture
async def notify() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    catalog = journeys.load(NotifySettings(env=Environment.LOCAL).notify_journeys_dir)
    app = FastAPI()
    app.include_router(
        notify_router(
            cast(AsyncEngine, None), catalog, _allowed, cast(sends.TestSends, RefusingTestSends())
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        yield client, app.openapi()


def _declared(document: dict[str, Any], status: str) -> jsonschema.protocols.Validator:
    operation = document["paths"]["/v1/templates/{template}/test-send"]["post"]
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


async def test_both_kinds_of_422_of_a_test_send_fit_the_declared_schema(
    notify: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    client, document = notify
    declared = _declared(document, "422")
    invalid = await client.post(TEST_SEND, json={"to": "not an address"})
    refused = await client.post(TEST_SEND, json={"to": "ops@shop.example"})
    assert invalid.status_code == refused.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "to"]
    assert "did not render" in refused.json()["detail"]
    for answer in (invalid, refused):
        declared.validate(answer.json())
