"""The scoring APIs' parameters are checked before any query: a day outside what a date range
can hold, a range that cannot be one, a refit of a day to come and an amount finer than the
spend table keeps are each a 422 naming the parameter, in the shape the OpenAPI document
declares for every 422 (never a 500, never a bare string)."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.analytics_api import analytics_router
from services.scoring.api import scoring_router
from services.scoring.main import ANALYTICS_PAGES
from services.scoring.refit_job import RefitJob

PAGES = ["overview", "segments", "lifecycle", "clv", "channels", "email"]


class StandInRefits:
    """Records the refits asked for; none may be asked for a refused day."""

    def __init__(self) -> None:
        self.asked: list[date | None] = []

    async def run_once(self, as_of: date | None = None) -> Any:
        self.asked.append(as_of)
        raise AssertionError("a refused refit reached the job")


async def _allowed() -> None:
    return None


@pytest.fixture
def refits() -> StandInRefits:
    return StandInRefits()


@pytest.fixture
async def client(refits: StandInRefits) -> AsyncIterator[httpx.AsyncClient]:
    # No database: every request here must be refused before a query would run.
    engine = cast(AsyncEngine, None)
    app = FastAPI()
    app.include_router(analytics_router(engine, _allowed, ANALYTICS_PAGES))
    app.include_router(scoring_router(engine, cast(RefitJob, refits), _allowed))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scoring") as client:
        yield client


def _refused_by_name(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, list), detail
    assert all({"loc", "msg", "type"} <= set(error) for error in detail)
    return [error["loc"] for error in detail]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"end": "0001-01-01"}, "end"),  # was a 500: the default start overflowed
        ({"start": "0001-01-01", "end": "0001-01-02"}, "start"),
        ({"end": "9999-12-31"}, "end"),
        ({"start": "1969-12-31"}, "start"),
        ({"start": "2100-01-01", "end": "2100-01-02"}, "start"),
    ],
)
async def test_a_day_outside_1970_to_2099_is_a_422_naming_it(
    client: httpx.AsyncClient, page: str, query: dict[str, str], named: str
) -> None:
    answer = await client.get(f"/v1/analytics/{page}", params=query)
    assert ["query", named] in _refused_by_name(answer)


@pytest.mark.parametrize("page", PAGES)
async def test_a_range_that_is_not_one_is_a_422_in_the_declared_shape(
    client: httpx.AsyncClient, page: str
) -> None:
    reversed_range = await client.get(
        f"/v1/analytics/{page}", params={"start": "2026-02-01", "end": "2026-01-01"}
    )
    assert _refused_by_name(reversed_range) == [["query", "start"]]
    [error] = reversed_range.json()["detail"]
    assert error["msg"] == "start (2026-02-01) must not be after end (2026-01-01)"
    too_long = await client.get(
        f"/v1/analytics/{page}", params={"start": "1990-01-01", "end": "2026-01-01"}
    )
    assert _refused_by_name(too_long) == [["query", "start"]]
    assert "at most 3660 days" in too_long.json()["detail"][0]["msg"]


async def test_every_analytics_answer_is_documented_as_json(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/analytics"):
            continue
        for operation in operations.values():
            answer = operation["responses"]["200"]["content"]["application/json"]
            assert answer["schema"] != {"type": "string"}, path


@pytest.mark.parametrize(
    "as_of",
    [
        "1969-12-31",
        "0001-01-01",
        "9999-12-31",
        (datetime.now(UTC).date() + timedelta(days=2)).isoformat(),
    ],
)
async def test_a_refit_as_of_a_day_outside_1970_to_today_is_a_422_naming_as_of(
    client: httpx.AsyncClient, refits: StandInRefits, as_of: str
) -> None:
    answer = await client.post("/v1/refit", params={"as_of": as_of})
    assert _refused_by_name(answer) == [["query", "as_of"]]
    assert refits.asked == []


@pytest.mark.parametrize("amount", ["1E-999999999", "0.00001", "12.34567"])
async def test_an_amount_finer_than_the_spend_table_keeps_is_a_422_naming_it(
    client: httpx.AsyncClient, amount: str
) -> None:
    # 1E-999999999 reached the database, which could not take it: a 500.
    answer = await client.put("/v1/spend/email/2026-01", json={"amount": amount, "currency": "EUR"})
    assert _refused_by_name(answer) == [["body", "amount"]]
