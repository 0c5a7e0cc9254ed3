"""The read API's HTTP shell: parameters checked before any query, cursors, documented errors."""

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.profile.api import profile_router
from services.profile.repository import (
    CustomerFilter,
    Erasure,
    ProfileRepository,
    TimelinePage,
    TimelinePosition,
)
from services.runtime.auth import admin_required
from services.runtime.settings import Environment, ServiceSettings

TOKEN = "unit-admin-token-" + "x" * 32
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
OVERFLOWING_DATES = ["0001-01-01T00:00:01+04:00", "9999-12-31T23:59:59-01:00"]
POSITION = TimelinePosition(datetime(2025, 3, 1, 12, tzinfo=UTC), "m-7", "src_1")


class StandInRepository(ProfileRepository):
    """Answers every read with one customer and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.next_position: TimelinePosition | None = None

    async def get(self, customer_id: str) -> dict[str, Any] | None:
        self.calls.append(("get", customer_id))
        return {"customer_id": customer_id}

    async def search(
        self, where: CustomerFilter, *, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        self.calls.append(("search", (where, after)))
        return []

    async def timeline(
        self,
        customer_id: str,
        *,
        limit: int,
        before: datetime | None,
        after: TimelinePosition | None,
    ) -> TimelinePage | None:
        self.calls.append(("timeline", (before, after)))
        return TimelinePage([{"messageId": "m-1"}], next=self.next_position)

    async def export(self, customer_id: str) -> dict[str, Any] | None:
        self.calls.append(("export", customer_id))
        return {"customer_id": customer_id}

    async def erase(self, customer_id: str) -> Erasure | None:
        self.calls.append(("erase", customer_id))
        return Erasure(customer_id, 0, 0)


@pytest.fixture
def repository() -> StandInRepository:
    return StandInRepository()


@pytest.fixture
async def client(repository: StandInRepository) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(env=Environment.LOCAL, admin_token=SecretStr(TOKEN))
    app = FastAPI()
    app.include_router(profile_router(repository, admin_required(settings)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return dict(error)


def _cursor(json_text: str) -> str:
    return base64.urlsafe_b64encode(json_text.encode()).decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers/%00"),
        ("GET", "/v1/customers/cus%00x/timeline"),
        ("GET", "/v1/customers/%00/export"),
        ("DELETE", "/v1/customers/%00"),
    ],
)
async def test_a_nul_in_the_customer_id_is_a_422_naming_it(
    client: httpx.AsyncClient, repository: StandInRepository, method: str, path: str
) -> None:
    error = _error(await client.request(method, path, headers=ADMIN))
    assert error["loc"] == ["path", "customer_id"]
    assert error["msg"] == "must not contain a NUL character"
    assert repository.calls == []


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/timeline"), ("GET", "/export"), ("DELETE", "")]
)
async def test_a_customer_id_longer_than_any_id_is_a_422_naming_it(
    client: httpx.AsyncClient, repository: StandInRepository, method: str, suffix: str
) -> None:
    answer = await client.request(method, f"/v1/customers/{'c' * 257}{suffix}", headers=ADMIN)
    error = _error(answer)
    assert (error["loc"], error["type"]) == (["path", "customer_id"], "string_too_long")
    cursor = await client.get("/v1/customers", params={"cursor": "c" * 257}, headers=ADMIN)
    assert _error(cursor)["loc"] == ["query", "cursor"]
    assert repository.calls == []


@pytest.mark.parametrize("amount", ["NaN", "inf", "1e400", "1e13", "-1"])
async def test_a_revenue_that_is_no_amount_is_a_422_naming_it(
    client: httpx.AsyncClient, repository: StandInRepository, amount: str
) -> None:
    # 1e400 and inf were taken and compared in SQL: every customer was below Infinity.
    answer = await client.get("/v1/customers", params={"min_net_revenue": amount}, headers=ADMIN)
    assert _error(answer)["loc"] == ["query", "min_net_revenue"]
    assert repository.calls == []


@pytest.mark.parametrize("parameter", ["user_id", "anonymous_id", "email", "cursor"])
async def test_a_nul_in_a_search_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, repository: StandInRepository, parameter: str
) -> None:
    response = await client.get("/v1/customers", params={parameter: "a\x00b"}, headers=ADMIN)
    error = _error(response)
    assert error["loc"] == ["query", parameter]
    assert error["msg"] == "must not contain a NUL character"
    assert repository.calls == []


async def test_search_parameters_without_nul_reach_the_repository_unchanged(
    client: httpx.AsyncClient, repository: StandInRepository
) -> None:
    params = {"user_id": "u-1", "email": "A@shop.example", "cursor": "cus_1"}
    assert (await client.get("/v1/customers", params=params, headers=ADMIN)).status_code == 200
    [(_, (where, after))] = repository.calls
    assert (where.user_id, where.email, after) == ("u-1", "A@shop.example", "cus_1")
    too_long = await client.get("/v1/customers", params={"user_id": "u" * 257}, headers=ADMIN)
    assert _error(too_long)["type"] == "string_too_long"


@pytest.mark.parametrize("value", OVERFLOWING_DATES)
@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/v1/customers", "updated_since"), ("/v1/customers/cus_1/timeline", "before")],
)
async def test_a_date_that_overflows_in_utc_is_a_422_naming_the_allowed_range(
    client: httpx.AsyncClient,
    repository: StandInRepository,
    path: str,
    parameter: str,
    value: str,
) -> None:
    error = _error(await client.get(path, params={parameter: value}, headers=ADMIN))
    assert error["loc"] == ["query", parameter]
    assert error["msg"] == "must be between 1970-01-01 and 2100-01-01"
    assert repository.calls == []


async def test_dates_reach_the_repository_in_utc(
    client: httpx.AsyncClient, repository: StandInRepository
) -> None:
    since = {"updated_since": "2026-01-01T02:00:00+02:00"}
    await client.get("/v1/customers", params=since, headers=ADMIN)
    before = {"before": "2026-01-01T00:00:00"}  # no zone: UTC, as for events
    await client.get("/v1/customers/cus_1/timeline", params=before, headers=ADMIN)
    [(_, (where, _)), (_, (before_time, _))] = repository.calls
    assert where.updated_since == datetime(2026, 1, 1, tzinfo=UTC)
    assert before_time == datetime(2026, 1, 1, tzinfo=UTC)


async def test_the_timeline_cursor_brings_back_the_position_the_last_page_ended_at(
    client: httpx.AsyncClient, repository: StandInRepository
) -> None:
    repository.next_position = POSITION
    first = (await client.get("/v1/customers/cus_1/timeline", headers=ADMIN)).json()
    assert first["touchpoints"] == [{"messageId": "m-1"}]
    repository.next_position = None
    params = {"cursor": first["next_cursor"]}
    last = (await client.get("/v1/customers/cus_1/timeline", params=params, headers=ADMIN)).json()
    assert last["next_cursor"] is None
    assert [after for _, (_, after) in repository.calls] == [None, POSITION]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "%%%",
        _cursor('{"occurred_at": "2025-03-01T12:00:00Z"}'),
        _cursor(
            '{"occurred_at": "2025-03-01T12:00:00Z", "message_id": "m\\u0000", "source_id": "s"}'
        ),
        _cursor(
            '{"occurred_at": "0001-01-01T00:00:01+04:00", "message_id": "m", "source_id": "s"}'
        ),
    ],
    ids=["empty", "not-base64", "no-base64-text", "incomplete", "nul-inside", "overflowing-date"],
)
async def test_a_cursor_the_timeline_did_not_issue_is_a_422_naming_cursor(
    client: httpx.AsyncClient, repository: StandInRepository, cursor: str
) -> None:
    response = await client.get(
        "/v1/customers/cus_1/timeline", params={"cursor": cursor}, headers=ADMIN
    )
    error = _error(response)
    assert error["loc"] == ["query", "cursor"]
    assert "next_cursor" in error["msg"]
    assert repository.calls == []


async def test_without_the_admin_token_bad_parameters_are_not_examined(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/customers/%00/timeline", params={"cursor": "bad"})
    assert response.status_code == 401


async def test_openapi_documents_the_401_and_404_the_endpoints_answer(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    error_schema = {"$ref": "#/components/schemas/ErrorMessage"}
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/{customer_id}"),
        ("GET", "/v1/customers/{customer_id}/timeline"),
        ("GET", "/v1/customers/{customer_id}/export"),
        ("DELETE", "/v1/customers/{customer_id}"),
    }
    for (_, path), operation in operations.items():
        expected = {"401", "404"} if "{customer_id}" in path else {"401"}
        documented = {status for status in operation["responses"] if status in {"401", "404"}}
        assert documented == expected, path
        for status in expected:
            response = operation["responses"][status]
            assert response["description"]
            assert response["content"]["application/json"]["schema"] == error_schema
    assert document["components"]["schemas"]["ErrorMessage"]["required"] == ["detail"]
    timeline = operations[("GET", "/v1/customers/{customer_id}/timeline")]
    assert "cursor" in {parameter["name"] for parameter in timeline["parameters"]}
