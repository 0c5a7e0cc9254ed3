"""The dashboard in a real headless Chromium: the admin login (a wrong token refused, the
session cookie HttpOnly), the overview's and the segments' charts drawn with exactly the
numbers the API gave the page, no console errors, and the logout. Screenshots go to
.artifacts/screenshots/."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import REPO_ROOT
from tests.integration.browser import headless_chromium
from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO_ROOT / ".artifacts" / "screenshots"
TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as launched:
        yield launched


@pytest.fixture
def console_errors() -> list[str]:
    """What the page logged as errors; the test fails unless it is empty at the end."""
    return []


@pytest.fixture
async def page(browser: Browser, console_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    errors = console_errors
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    # Nothing the dashboard needs may come from another machine.
    await context.route(
        lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort()
    )
    yield opened
    await context.close()
    assert errors == []


async def _log_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


async def test_a_wrong_token_is_refused_and_no_data_is_served_without_a_login(
    scoring: RunningService, page: Page, console_errors: list[str]
) -> None:
    await page.goto(scoring.url + "/")
    assert page.url == f"{scoring.url}/login"  # no session: to the login page
    await _log_in(page, scoring.url, "not-the-token")
    assert await page.text_content(".error") == "That is not the admin token."
    # The refusal is a 401, which the browser reports; it is the only error.
    assert [e for e in console_errors if "401" not in e] == []
    console_errors.clear()
    assert await page.context.cookies() == []
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{scoring.url}/v1/analytics/overview")
        assert answer.status_code == 401
    async with httpx.AsyncClient(cookies={"retain_dashboard": "9999999999.0000"}) as forger:
        forged = await forger.get(f"{scoring.url}/v1/analytics/overview")
        assert forged.status_code == 401


async def test_the_overview_charts_the_numbers_the_api_gave_it(
    scoring: RunningService, storefront: Storefront, page: Page
) -> None:
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    await storefront.send(
        [
            order(f"dash-{run}-1", f"dash-{run}-o1", 40.0, timestamp=now.isoformat()),
            order(f"dash-{run}-2", f"dash-{run}-o2", 60.0, timestamp=now.isoformat()),
            order(
                f"dash-{run}-2",
                f"dash-{run}-o3",
                25.0,
                timestamp=(now - timedelta(days=3)).isoformat(),
            ),
        ]
    )

    async def revenue_counted() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                f"{scoring.url}/v1/analytics/overview", params={"currency": "EUR"}, headers=ADMIN
            )
        figures = {f["name"]: f for f in answer.json()["figures"]}
        by_day = dict(figures["revenue"]["series"])
        today, three_days_ago = now.date(), (now - timedelta(days=3)).date()
        counted = (by_day.get(today.isoformat()) or 0) >= 100 and (
            by_day.get(three_days_ago.isoformat()) or 0
        ) >= 25
        return figures if counted and figures["buyers"]["value"] >= 2 else None

    await wait_for(revenue_counted, seconds=60)

    # RFM scores need the bounds a refit draws from the ledger (with or without a fitted model).
    async with httpx.AsyncClient(timeout=120) as client:
        refit = await client.post(f"{scoring.url}/v1/refit", headers=ADMIN)
        assert refit.status_code == 200, refit.text

        async def rfm_counted() -> bool:
            answer = await client.get(f"{scoring.url}/v1/analytics/segments", headers=ADMIN)
            return sum(map(sum, answer.json()["rfm_grid"]["customers"])) >= 2

        await wait_for(rfm_counted, seconds=60)

    async with page.expect_response(lambda r: "/v1/analytics/overview" in r.url) as answered:
        await _log_in(page, scoring.url, TOKEN)
    given = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready]")
    [cookie] = await page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
        "retain_dashboard",
        True,
        True,
        "Strict",
    )
    assert TOKEN not in cookie["value"]

    for figure in given["figures"]:
        drawn = await page.evaluate(
            "name => window.retainCharts[name].getOption().series[0].data", figure["name"]
        )
        assert drawn == figure["series"], figure["name"]
        card = page.locator(f"article[data-figure={figure['name']}]")
        assert await card.locator("h2").text_content() == figure["title"]
    revenue = page.locator("article[data-figure=revenue] .value")
    assert "€" in (await revenue.text_content() or "")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "overview.png", full_page=True)

    async with page.expect_response(lambda r: "/v1/analytics/segments" in r.url) as answered:
        await page.click("nav a[data-page=segments]")
    given = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready] article[data-figure='segments.rfm_grid']")
    tiers = given["dimensions"]["value_tier"]
    assert tiers, "the orders above put customers in value tiers"
    for dimension, segments in given["dimensions"].items():
        drawn = await page.evaluate(
            "name => window.retainCharts[name].getOption().series.map(s => [s.name, s.data])",
            f"segments.{dimension}",
        )
        assert drawn == [[s["segment"], s["customers_series"]] for s in segments], dimension
    cells = await page.evaluate(
        "() => window.retainCharts['segments.rfm_grid'].getOption().series[0].data"
    )
    grid = given["rfm_grid"]["customers"]
    assert cells == [[f, r, grid[r][f]] for r in range(5) for f in range(5)]
    await page.screenshot(path=SCREENSHOTS / "segments.png", full_page=True)

    await page.click("#logout")
    await page.wait_for_url(f"{scoring.url}/login")
    assert await page.context.cookies() == []
    await page.goto(scoring.url + "/")
    assert page.url == f"{scoring.url}/login"
