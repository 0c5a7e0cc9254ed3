"""The read API on the real PostgreSQL: what it cannot store is a 422, and paging is exact."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, customer_by_user, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
OVERFLOWING_DATES = ["0001-01-01T00:00:01+04:00", "9999-12-31T23:59:59-01:00"]


async def _request(method: str, url: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, params=params, headers=ADMIN)


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return dict(error)


def _view(user: str, when: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Viewed",
        "messageId": uuid.uuid4().hex,  # random, so messageId order is not sending order
        "timestamp": when.isoformat(),
    }


@pytest.fixture(scope="module")
async def events_by_time(
    profile: RunningService, ingest: RunningService, write_key: str
) -> tuple[str, list[dict[str, Any]]]:
    """A customer with 25 events, most sharing a time with others; the events newest first."""
    user = f"user-{uuid.uuid4().hex[:10]}"
    times = [T0] * 5 + [T0 + timedelta(minutes=30)] + [T0 + timedelta(hours=1)] * 9
    times += [T0 + timedelta(hours=2)] * 10
    events = [_view(user, when) for when in times]
    await Storefront(ingest.url, write_key).send(events)

    async def all_folded() -> str | None:
        found = await customer_by_user(profile.url, user)
        return found["customer_id"] if found and found["activity"]["product_views"] == 25 else None

    customer_id: str = await wait_for(all_folded)
    # Newest first; events sharing a time in messageId order.
    newest_first = sorted(
        events, key=lambda e: (-datetime.fromisoformat(e["timestamp"]).timestamp(), e["messageId"])
    )
    return customer_id, newest_first


async def _all_pages(url: str, **params: Any) -> list[list[str]]:
    """Every page's messageIds, following next_cursor until it is null."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        response = await _request("GET", url, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([t["messageId"] for t in body["touchpoints"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) <= 25, "paging does not end"


async def test_timeline_pages_hold_every_event_once_newest_first_when_times_are_shared(
    profile: RunningService, events_by_time: tuple[str, list[dict[str, Any]]]
) -> None:
    customer_id, newest_first = events_by_time
    url = f"{profile.url}/v1/customers/{customer_id}/timeline"
    expected = [e["messageId"] for e in newest_first]

    pages = await _all_pages(url, limit=4)
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [m for page in pages for m in page] == expected
    # A last page that is exactly full has no next_cursor either.
    assert [len(page) for page in await _all_pages(url, limit=5)] == [5, 5, 5, 5, 5]


async def test_before_still_bounds_the_timeline_and_pages_with_the_cursor(
    profile: RunningService, events_by_time: tuple[str, list[dict[str, Any]]]
) -> None:
    customer_id, newest_first = events_by_time
    url = f"{profile.url}/v1/customers/{customer_id}/timeline"
    before = T0 + timedelta(hours=1)
    expected = [
        e["messageId"] for e in newest_first if datetime.fromisoformat(e["timestamp"]) < before
    ]

    pages = await _all_pages(url, limit=4, before=before.isoformat())
    assert [m for page in pages for m in page] == expected
    assert len(expected) == 6


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers/%00"),
        ("GET", "/v1/customers/%00/timeline"),
        ("GET", "/v1/customers/%00/export"),
        ("DELETE", "/v1/customers/%00"),
    ],
)
async def test_a_nul_in_the_customer_id_is_a_422_not_a_database_error(
    profile: RunningService, method: str, path: str
) -> None:
    error = _error(await _request(method, f"{profile.url}{path}"))
    assert error["loc"] == ["path", "customer_id"]
    assert error["msg"] == "must not contain a NUL character"


@pytest.mark.parametrize("parameter", ["user_id", "anonymous_id", "email", "cursor"])
async def test_a_nul_in_a_search_parameter_is_a_422_not_a_database_error(
    profile: RunningService, parameter: str
) -> None:
    error = _error(await _request("GET", f"{profile.url}/v1/customers", **{parameter: "x\x00"}))
    assert error["loc"] == ["query", parameter]
    assert error["msg"] == "must not contain a NUL character"


@pytest.mark.parametrize("value", OVERFLOWING_DATES)
async def test_dates_that_overflow_in_utc_are_a_422_naming_the_allowed_range(
    profile: RunningService, events_by_time: tuple[str, list[dict[str, Any]]], value: str
) -> None:
    customer_id, _ = events_by_time
    listed = await _request("GET", f"{profile.url}/v1/customers", updated_since=value)
    timeline_url = f"{profile.url}/v1/customers/{customer_id}/timeline"
    timeline = await _request("GET", timeline_url, before=value)
    for response, parameter in ((listed, "updated_since"), (timeline, "before")):
        error = _error(response)
        assert error["loc"] == ["query", parameter]
        assert error["msg"] == "must be between 1970-01-01 and 2100-01-01"


async def test_the_customer_list_pages_by_customer_id_without_loss_or_repeat(
    profile: RunningService, storefront: Storefront
) -> None:
    email = f"shared-{uuid.uuid4().hex[:10]}@shop.example"
    users = [f"user-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    await storefront.send(
        [
            {
                "type": "identify",
                "userId": user,
                "messageId": uuid.uuid4().hex,
                "traits": {"email": email},
            }
            for user in users
        ]
    )
    url = f"{profile.url}/v1/customers"

    async def all_three() -> list[str] | None:
        found = (await _request("GET", url, email=email)).json()["customers"]
        return sorted(c["customer_id"] for c in found) if len(found) == 3 else None

    customer_ids = await wait_for(all_three)
    paged: list[str] = []
    cursor: str | None = None
    for _ in range(4):  # a full page always has a next_cursor: three pages, then an empty one
        body = (
            await _request(
                "GET", url, email=email, limit=1, **({"cursor": cursor} if cursor else {})
            )
        ).json()
        paged += [c["customer_id"] for c in body["customers"]]
        cursor = body["next_cursor"]
    assert paged == customer_ids
    assert cursor is None
