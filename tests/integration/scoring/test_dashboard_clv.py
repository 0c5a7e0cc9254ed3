"""The dashboard's CLV page in a real headless Chromium, on a shop of demo shape (a hundred and
twenty customers, some buying again) sent through ingest and refitted: the histograms, the
calibration chart, the model's parameters and both top-customer tables show exactly the API's
numbers, with no console errors; an empty range says what to do and a bad one shows the API's
error. Screenshot: .artifacts/screenshots/clv.png."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from services.profile.domain.identity import customer_id_for
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

CUSTOMERS = 120


def _shop(run: str) -> dict[str, list[tuple[datetime, float]]]:
    """Each customer's orders over the last 300 days: everyone once, a third again and more
    (the same shop every run, enough repeat buyers for a fit)."""
    shuffle = random.Random(0)
    now = datetime.now(UTC)
    shop = {}
    for n in range(CUSTOMERS):
        first = now - timedelta(days=shuffle.uniform(60, 300), hours=n)
        orders = [(first, round(shuffle.uniform(15, 400), 2))]
        for _ in range(shuffle.choice([1, 1, 2, 4]) if n % 3 == 0 else 0):
            later = orders[-1][0] + timedelta(days=shuffle.uniform(5, 50))
            orders.append((later, round(shuffle.uniform(20, 150), 2)))
        shop[f"clv-{run}-{n}"] = [(at, amount) for at, amount in orders if at < now]
    return shop


async def test_the_clv_page_charts_the_numbers_the_api_gave_it(
    scoring: RunningService, storefront: Storefront, page: Page, console_errors: list[str]
) -> None:
    run = uuid.uuid4().hex[:6]
    shop = _shop(run)
    await storefront.send(
        [
            order(user, f"{user}-o{i}", amount, timestamp=at.isoformat())
            for user, orders in shop.items()
            for i, (at, amount) in enumerate(orders)
        ]
    )
    async with httpx.AsyncClient(base_url=scoring.url, headers=ADMIN, timeout=120) as client:

        async def scored(user: str) -> bool:
            answer = await client.get(f"/v1/scores/{customer_id_for(('user', user))}")
            if answer.status_code != 200:
                return False
            return float(answer.json()["clv_historical"]) == pytest.approx(
                sum(amount for _, amount in shop[user])
            )

        async def everyone_scored() -> bool:
            return all([await scored(user) for user in shop])

        await wait_for(everyone_scored, seconds=120, interval=1)
        refit = await client.post("/v1/refit")
        assert refit.status_code == 200, refit.text
        version = refit.json()["version"]

        async def snapshot_after_refit() -> dict[str, Any] | None:
            answer = (await client.get("/v1/analytics/clv", params={"currency": "EUR"})).json()
            model = answer["model"]
            counted = sum(answer["histograms"]["historical"]) >= CUSTOMERS
            top = answer["top"]["clv_predicted"]
            rescored = model["status"] != "fitted" or (top and top[0]["clv_predicted"] > 0)
            return answer if model["version"] >= version and counted and rescored else None

        answer = await wait_for(snapshot_after_refit, seconds=60)
    assert answer["model"]["status"] == "fitted", answer["model"]["reason"]

    await log_in(page, scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    given = await open_page(page, "clv", "/v1/analytics/clv")

    bars = await drawn(page, "clv.histogram", "o => o.series.map(s => [s.name, s.data])")
    assert bars == [[kind, given["histograms"][kind]] for kind in ("historical", "predicted")]
    labels = await drawn(page, "clv.histogram", "o => o.xAxis[0].data")
    assert labels == [bucket["label"] for bucket in given["buckets"]]

    calibration = given["model"]["calibration"]
    assert sum(calibration["actual"]) == given["model"]["customers"]
    assert sum(calibration["expected"]) == pytest.approx(given["model"]["customers"])
    fit = await drawn(page, "clv.calibration", "o => o.series.map(s => [s.name, s.data])")
    assert fit == [
        ["actual", calibration["actual"]],
        ["expected (BG/NBD)", calibration["expected"]],
    ]
    categories = await drawn(page, "clv.calibration", "o => o.xAxis[0].data")
    assert categories == calibration["repeat_purchases"] == ["0", "1", "2", "3", "4", "5", "6+"]

    parameters = await _table(page, "clv.model")
    shown = {row["name"]: row["value"] for row in parameters}
    model = given["model"]
    for family, prefix in (("bgnbd", "BG/NBD"), ("gamma_gamma", "Gamma-Gamma")):
        for name, value in model[family].items():
            assert shown[f"{prefix} {name}"] == value
    assert (shown["version"], shown["customers fitted on"]) == (
        model["version"],
        model["customers"],
    )
    assert shown["fitted at"] == model["fitted_at"]

    for ranking in ("clv_predicted", "clv_historical"):
        rows = await _table(page, f"clv.top.{ranking}")
        assert rows == given["top"][ranking], ranking
        assert [r[ranking] for r in rows] == sorted((r[ranking] for r in rows), reverse=True)
    await screenshot(page, "clv")

    # Before the first snapshot there is nothing to distribute: the page says what to do, and
    # still shows the model; a range that ends before it starts shows the API's error.
    await choose_range(page, "/v1/analytics/clv", "2001-01-01", "2001-01-31")
    assert "No data yet" in (await page.text_content("#message") or "")
    assert await page.evaluate("Object.keys(window.retainCharts)") == ["clv.calibration"]
    assert await page.locator("article[data-figure^='clv.top']").count() == 0
    await choose_range(page, "/v1/analytics/clv", "2001-01-01", "2000-12-01")
    message = await page.text_content("#message") or ""
    assert message.startswith("The data could not be loaded: 422: start (2001-01-01)"), message
    assert [e for e in console_errors if "422" not in e] == []
    console_errors.clear()


async def _table(page: Page, figure: str) -> list[dict[str, Any]]:
    """The rows of the table in the card `figure`, each cell's value as the page was given it."""
    rows: list[dict[str, Any]] = await page.evaluate(
        """figure => [...document.querySelectorAll(`article[data-figure="${figure}"] tbody tr`)]
            .map(tr => Object.fromEntries([...tr.cells].map(
                td => [td.dataset.column, JSON.parse(td.dataset.value)])))""",
        figure,
    )
    return rows
