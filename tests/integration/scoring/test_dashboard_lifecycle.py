"""The Lifecycle page in a real headless Chromium: a storefront's visitors and buyers go
through ingest, profile and scoring; the page draws the stages, the funnel and the cohort
triangle with exactly the numbers the API gave it; a range with no data says what to do and
a range the API refuses shows its answer. Screenshot: .artifacts/screenshots/lifecycle.png."""

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for
from tests.integration.scoring.dashboard import drawn, log_in, open_page, screenshot

pytestmark = pytest.mark.integration

STEPS = ("visit", "product_view", "cart", "checkout", "order")


def _month(today: date, back: int) -> date:
    """The first day of the month `back` months before today's."""
    months = today.year * 12 + today.month - 1 - back
    return date(months // 12, months % 12 + 1, 1)


def _at(day: date, minute: int = 0) -> str:
    return datetime.combine(day.replace(day=10), time(9, minute), UTC).isoformat()


def _track(user_id: str, event: str, day: date, minute: int, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "timestamp": _at(day, minute),
    }


def _shopper(user_id: str, day: date, furthest: int) -> list[dict[str, Any]]:
    """A visit on `day` that goes as far as STEPS[furthest], short of the order."""
    events = [{"type": "page", "userId": user_id, "name": "Home", "timestamp": _at(day)}]
    steps = [
        ("Product Viewed", {"product_id": "p-1"}),
        ("Product Added", {"product_id": "p-1", "cart_id": f"{user_id}-cart"}),
        ("Checkout Started", {"order_id": f"{user_id}-checkout"}),
    ]
    for minute, (event, properties) in enumerate(steps[:furthest], start=1):
        events.append(_track(user_id, event, day, minute, **properties))
    return events


async def _lifecycle(url: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{url}/v1/analytics/lifecycle", params=params, headers=ADMIN)


def _counted(answer: dict[str, Any], cohort: str) -> tuple[list[float], list[float]]:
    """The funnel's counts and the cohort's customers returning per month since."""
    months = {c["month"]: c["returning"] for c in answer["cohorts"]}
    return [s["customers"] for s in answer["funnel"]], months.get(cohort, [])


async def test_the_lifecycle_page_charts_the_numbers_the_api_gave_it(
    scoring: RunningService, storefront: Storefront, page: Page, console_errors: list[str]
) -> None:
    run = uuid.uuid4().hex[:6]
    today = datetime.now(UTC).date()
    first, second, third = _month(today, 3), _month(today, 2), _month(today, 1)
    # The range: the cohorts of the last three months before this one, and this one.
    params = {"start": first.isoformat(), "end": today.isoformat()}
    before = (await _lifecycle(scoring.url, **params)).json()
    funnel_before, first_before = _counted(before, first.isoformat()[:7])
    _, second_before = _counted(before, second.isoformat()[:7])

    def user(name: str) -> str:
        return f"life-{run}-{name}"

    events = [
        *_shopper(user("visitor"), first, 0),
        *_shopper(user("browser"), first, 1),
        *_shopper(user("carter"), first, 2),
        *_shopper(user("checkout"), first, 3),
        *_shopper(user("loyal"), first, 3),
        order(user("loyal"), f"{user('loyal')}-o1", 30.0, timestamp=_at(first, 5)),
        order(user("loyal"), f"{user('loyal')}-o2", 35.0, timestamp=_at(second)),
        order(user("loyal"), f"{user('loyal')}-o3", 40.0, timestamp=_at(third)),
        # A buyer whose storefront sent no step before the order (a phone order, say).
        *_shopper(user("phone"), first, 0),
        order(user("phone"), f"{user('phone')}-o1", 20.0, timestamp=_at(first, 5)),
        # First seen with the others; first order a month later.
        *_shopper(user("later"), first, 1),
        order(user("later"), f"{user('later')}-o1", 25.0, timestamp=_at(second)),
    ]
    await storefront.send(events)

    # 7 first seen on the 10th of `first`, each counted up to the furthest step they reached;
    # 3 ordered (two in `first`'s month, one a month later).
    expected_funnel = [7, 6, 5, 4, 3]
    expected_first = [2, 1, 1, 0]  # loyal and phone; loyal again in the next two months
    expected_second = [1, 0, 0]  # later

    def added(now: list[float], then: list[float]) -> list[float]:
        return [n - (then[k] if k < len(then) else 0) for k, n in enumerate(now)]

    async def all_counted() -> dict[str, Any] | None:
        answer: dict[str, Any] = (await _lifecycle(scoring.url, **params)).json()
        funnel, first_cohort = _counted(answer, first.isoformat()[:7])
        _, second_cohort = _counted(answer, second.isoformat()[:7])
        counted = (
            added(funnel, funnel_before) == expected_funnel
            and added(first_cohort, first_before)[:4] == expected_first
            and added(second_cohort, second_before)[:3] == expected_second
            and any(stage["value"] for stage in answer["stages"])
        )
        return answer if counted else None

    await wait_for(all_counted, seconds=90)

    await log_in(page, scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    await open_page(page, "lifecycle", "/v1/analytics/lifecycle")
    async with page.expect_response(lambda r: f"start={params['start']}" in r.url) as answered:
        await page.fill("#start", params["start"])
    given = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready]")
    assert (given["start"], given["end"]) == (params["start"], params["end"])
    assert await page.locator("nav a.active").text_content() == "Lifecycle"

    stages = await drawn(
        page, "lifecycle.stages", "o => o.series.map(s => [s.name, s.stack, s.data])"
    )
    assert [s["stage"] for s in given["stages"]] == [
        "selection",
        "acquisition",
        "retention",
        "expansion",
        "lapsed",
    ]
    assert stages == [[s["title"], "stages", s["series"]] for s in given["stages"]]

    funnel = await drawn(page, "lifecycle.funnel", "o => o.series[0].data")
    assert [s["step"] for s in given["funnel"]] == list(STEPS)
    assert funnel == [
        {
            "name": s["title"],
            "value": s["customers"],
            "to_previous": s["to_previous"],
            "overall": s["overall"],
        }
        for s in given["funnel"]
    ]

    cells = await drawn(page, "lifecycle.cohorts", "o => o.series[0].data")
    assert cells == [
        [since, row, share]
        for row, cohort in enumerate(given["cohorts"])
        for since, share in enumerate(cohort["shares"])
    ]
    rows = await drawn(page, "lifecycle.cohorts", "o => o.yAxis[0].data")
    assert rows == [f"{c['month']} ({c['customers']:,.0f})" for c in given["cohorts"]]
    assert given["cohorts"][0]["month"] == first.isoformat()[:7]
    await screenshot(page, "lifecycle")
    assert console_errors == []

    # A range the API refuses (it ends before it starts): its answer on the page, no chart,
    # no script error.
    await page.fill("#end", "1990-01-31")
    await page.wait_for_selector("main[data-state=error]")
    message = await page.text_content("#message") or ""
    assert message.startswith("The data could not be loaded: 422: start (")
    assert "must not be after end (1990-01-31)" in message
    assert await page.evaluate("Object.keys(window.retainCharts)") == []
    assert [e for e in console_errors if "422" not in e] == []
    console_errors.clear()

    # A range before any data: guidance on the page and in every card, no chart drawn.
    await page.fill("#start", "1990-01-01")
    await page.wait_for_selector("main[data-state=ready]")
    notes = page.locator("main article p.empty")
    assert await notes.count() == 3
    assert "No customer was first seen in this range" in (await notes.nth(1).text_content() or "")
    assert "No data yet" in (await page.text_content("#message") or "")
    assert await page.evaluate("Object.keys(window.retainCharts)") == []


async def test_the_lifecycle_api_is_described_and_names_the_parameter_it_cannot_use(
    scoring: RunningService,
) -> None:
    malformed = await _lifecycle(scoring.url, start="2026-13-01")
    assert malformed.status_code == 422
    assert [e["loc"] for e in malformed.json()["detail"]] == [["query", "start"]]
    reversed_range = await _lifecycle(scoring.url, start="2026-02-01", end="2026-01-01")
    assert reversed_range.status_code == 422
    assert "start (2026-02-01) must not be after end (2026-01-01)" in reversed_range.text
    too_long = await _lifecycle(scoring.url, start="1990-01-01", end="2026-01-01")
    assert too_long.status_code == 422
    assert "at most" in too_long.text
    async with httpx.AsyncClient() as client:
        refused = await client.get(f"{scoring.url}/v1/analytics/lifecycle")
        described = (await client.get(f"{scoring.url}/openapi.json")).json()
    assert refused.status_code == 401
    route = described["paths"]["/v1/analytics/lifecycle"]["get"]
    assert "funnel" in route["summary"]
    assert [p["name"] for p in route["parameters"]] == ["start", "end"]
    empty = await _lifecycle(scoring.url, start="1990-01-01", end="1990-01-31")
    assert empty.status_code == 200
    answer = empty.json()
    assert [s["customers"] for s in answer["funnel"]] == [0, 0, 0, 0, 0]
    assert [s["to_previous"] for s in answer["funnel"]] == [None] * 5
    assert answer["cohorts"] == []
    assert all(s["value"] is None for s in answer["stages"])
