"""The dashboard's Channels page in a real headless Chromium: customers acquired through UTM-
tagged email, paid search and affiliate links (sent through ingest), spend set through the spend
API, a refit; per channel, campaign and affiliate, both charts and the table show exactly the
API's numbers, the table sorts by a column clicked, an empty range says what to do and a bad one
shows the API's error. Screenshot: .artifacts/screenshots/channels.png."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.integration.helpers import RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for
from tests.integration.scoring.dashboard import (
    choose_range,
    drawn,
    log_in,
    open_page,
    screenshot,
)

pytestmark = pytest.mark.integration


def _tagged(user: str, order_id: str, revenue: float, at: datetime, **utm: str) -> dict[str, Any]:
    """An order whose visit came from a UTM-tagged link: the customer's first touch."""
    return order(user, order_id, revenue, timestamp=at.isoformat(), context={"campaign": utm})


async def _rows(page: Page) -> list[dict[str, Any]]:
    """The table's rows in the order shown, each cell's value as the page was given it."""
    rows: list[dict[str, Any]] = await page.evaluate(
        """() => [...document.querySelectorAll("table[data-table=channels] tbody tr")]
            .map(tr => Object.fromEntries([...tr.cells].map(
                td => [td.dataset.column, JSON.parse(td.dataset.value)])))"""
    )
    return rows


async def _charts_and_table_match(page: Page, given: dict[str, Any]) -> None:
    for measure in ("new_customers", "clv_to_cpa"):
        lines = await drawn(page, f"channels.{measure}", "o => o.series.map(s => [s.name, s.data])")
        expected = [[row["label"], [m[measure] for m in row["months"]]] for row in given["rows"]]
        assert lines == expected, measure
        months = await drawn(page, f"channels.{measure}", "o => o.xAxis[0].data")
        assert months == given["months"]
    columns = ["label", "profiles_touched", "conversion_rate", "new_customers", "spend", "cpa"]
    columns += ["average_clv_historical", "average_clv_predicted", "clv_to_cpa"]
    # First shown as the API ranks them: most new customers first.
    assert await _rows(page) == [{c: row[c] for c in columns} for row in given["rows"]]


async def _switch(page: Page, by: str) -> dict[str, Any]:
    async with page.expect_response(lambda r: f"by={by}" in r.url) as answered:
        await page.select_option("#channels-by", by)
    given: dict[str, Any] = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready]")
    return given


def _descending(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return present == sorted(present, reverse=True) and values[len(present) :] == [None] * (
        len(values) - len(present)
    )


async def test_the_channels_page_charts_and_tables_the_numbers_the_api_gave_it(
    scoring: RunningService, storefront: Storefront, page: Page, console_errors: list[str]
) -> None:
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    month = f"{now.year:04d}-{now.month:02d}"
    spring, brand, blog = f"spring-{run}", f"brand-{run}", f"blog-{run}"
    email = {"source": "newsletter", "medium": "email", "name": spring}
    search = {"source": "google", "medium": "cpc", "name": brand}
    affiliate = {"source": blog, "medium": "affiliate", "name": f"partners-{run}"}
    events = [
        _tagged(f"ch-{run}-e{n}", f"ch-{run}-e{n}-o", 40.0 + 10 * n, now, **email) for n in range(3)
    ]
    events += [_tagged(f"ch-{run}-s{n}", f"ch-{run}-s{n}-o", 90.0, now, **search) for n in range(2)]
    events += [_tagged(f"ch-{run}-a0", f"ch-{run}-a0-o", 25.0, now, **affiliate)]
    # A second order a moment later: value, not a new customer.
    events += [order(f"ch-{run}-e0", f"ch-{run}-e0-o2", 15.0, timestamp=now.isoformat())]
    await storefront.send(events)

    async with httpx.AsyncClient(base_url=scoring.url, headers=ADMIN, timeout=120) as client:
        for channel, campaign, amount in (("email", spring, "300"), ("paid_search", brand, "45")):
            body = {"amount": amount, "currency": "EUR", "campaign": campaign}
            answer = await client.put(f"/v1/spend/{channel}/{month}", json=body)
            assert answer.status_code == 200, answer.text
        refit = await client.post("/v1/refit")
        assert refit.status_code == 200, refit.text

        async def counted() -> dict[str, Any] | None:
            params = {"currency": "EUR", "by": "campaign"}
            answer = (await client.get("/v1/analytics/channels", params=params)).json()
            rows = {row["label"]: row for row in answer["rows"]}
            ours = rows.get(f"{spring} · email"), rows.get(f"{brand} · paid_search")
            done = all(ours) and [r["new_customers"] for r in ours if r] == [3, 2]
            valued = done and ours[0] and ours[0]["average_clv_historical"] == 55.0
            return rows if valued else None

        campaigns = await wait_for(counted, seconds=90)
    ours = campaigns[f"{spring} · email"]
    assert (ours["spend"], ours["cpa"], ours["profiles_touched"]) == (300.0, 100.0, 3)
    assert ours["conversion_rate"] == 1.0
    assert campaigns[f"{brand} · paid_search"]["cpa"] == 22.5

    await log_in(page, scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    given = await open_page(page, "channels", "/v1/analytics/channels")
    assert given["by"] == "channel"
    await _charts_and_table_match(page, given)
    await screenshot(page, "channels")

    given = await _switch(page, "campaign")
    await _charts_and_table_match(page, given)
    assert f"{spring} · email" in [row["label"] for row in await _rows(page)]

    # Sorting: a column clicked sorts it descending (missing values last), again ascending.
    await page.click("th[data-column=cpa]")
    assert await page.get_attribute("th[data-column=cpa]", "aria-sort") == "descending"
    assert _descending([row["cpa"] for row in await _rows(page)])
    await page.click("th[data-column=cpa]")
    ascending = [row["cpa"] for row in await _rows(page) if row["cpa"] is not None]
    assert ascending == sorted(ascending)
    await page.click("th[data-column=label]")
    assert await page.get_attribute("th[data-column=label]", "aria-sort") == "ascending"
    shown = await _rows(page)
    assert [row["label"] for row in shown] == sorted(row["label"] for row in given["rows"])
    assert sorted(shown, key=lambda row: row["label"]) == sorted(
        ({c: row[c] for c in shown[0]} for row in given["rows"]), key=lambda row: row["label"]
    )

    given = await _switch(page, "affiliate")
    await _charts_and_table_match(page, given)
    assert blog in [row["label"] for row in given["rows"]]

    # A range with no figures says what to do; one that ends before it starts shows the error.
    await choose_range(page, "/v1/analytics/channels", "2001-01-01", "2001-01-31")
    assert "No channel figures in this range yet" in (await page.text_content("#message") or "")
    assert await page.evaluate("Object.keys(window.retainCharts)") == []
    await choose_range(page, "/v1/analytics/channels", "2001-01-01", "2000-12-01")
    message = await page.text_content("#message") or ""
    assert message.startswith("The data could not be loaded: 422: start (2001-01-01)"), message
    # The refused request is the browser's one console error.
    assert [e for e in console_errors if "422" not in e] == []
    console_errors.clear()
