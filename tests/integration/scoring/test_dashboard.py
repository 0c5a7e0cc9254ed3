"""The dashboard in a real headless Chromium: the admin login (a wrong token refused, the
session cookie HttpOnly), the overview's and the segments' charts drawn with exactly the
numbers the API gave the page, no console errors, and the logout. Screenshots go to
.artifacts/screenshots/."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for
from tests.integration.scoring.dashboard import TOKEN, drawn, log_in, open_page, screenshot

pytestmark = pytest.mark.integration


async def test_a_wrong_token_is_refused_and_no_data_is_served_without_a_login(
    scoring: RunningService, page: Page, console_errors: list[str]
) -> None:
    await page.goto(scoring.url + "/")
    assert page.url == f"{scoring.url}/login"  # no session: to the login page
    await log_in(page, scoring.url, "not-the-token")
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

        # A second order moves the first customer up the loyalty ladder: a move the sankey shows.
        await storefront.send(
            [order(f"dash-{run}-1", f"dash-{run}-o4", 30.0, timestamp=now.isoformat())]
        )

        async def moved() -> bool:
            answer = await client.get(f"{scoring.url}/v1/analytics/segments", headers=ADMIN)
            return bool(answer.json()["moves"]["ladder_step"])

        await wait_for(moved, seconds=60)

    async with page.expect_response(lambda r: "/v1/analytics/overview" in r.url) as answered:
        await log_in(page, scoring.url, TOKEN)
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
        series = await drawn(page, figure["name"], "o => o.series[0].data")
        assert series == figure["series"], figure["name"]
        card = page.locator(f"article[data-figure={figure['name']}]")
        assert await card.locator("h2").text_content() == figure["title"]
    revenue = page.locator("article[data-figure=revenue] .value")
    assert "€" in (await revenue.text_content() or "")
    await screenshot(page, "overview")

    given = await open_page(page, "segments", "/v1/analytics/segments")
    tiers = given["dimensions"]["value_tier"]
    assert tiers, "the orders above put customers in value tiers"
    for measure, series in (("customers", "customers_series"), ("value", "value_series")):
        if measure == "value":  # drawn again, from a fresh answer
            async with page.expect_response(lambda r: "/v1/analytics/segments" in r.url) as again:
                await page.select_option("#segments-measure", "value")
            given = await (await again.value).json()
            await page.wait_for_selector("main[data-state=ready] #segments-measure")
        for dimension, segments in given["dimensions"].items():
            lines = await drawn(
                page, f"segments.{dimension}", "o => o.series.map(s => [s.name, s.data])"
            )
            assert lines == [[s["segment"], s[series]] for s in segments], (measure, dimension)
        cells = given["rfm_grid"][measure]
        heat = await drawn(page, "segments.rfm_grid", "o => o.series[0].data")
        assert heat == [[f, r, cells[r][f]] for r in range(5) for f in range(5)], measure
    assert given["moves"]["ladder_step"], "the second order moved a customer up the ladder"
    for dimension, moves in given["moves"].items():
        name = f"segments.moves.{dimension}"
        if not moves:  # said in words, not an empty chart
            text = await page.locator(f"article[data-figure='{name}']").text_content()
            assert "No customer moved in this range" in (text or "")
            continue
        links = await drawn(page, name, "o => o.series[0].links")
        assert links == [
            {"source": f"from {m['from']}", "target": f"to {m['to']}", "value": m["customers"]}
            for m in moves
        ]
    await screenshot(page, "segments")

    await page.click("#logout")
    await page.wait_for_url(f"{scoring.url}/login")
    assert await page.context.cookies() == []
    await page.goto(scoring.url + "/")
    assert page.url == f"{scoring.url}/login"
