"""What the dashboard's browser tests share: logging in, opening a page and reading what its
charts drew. The browser and page fixtures are in conftest.py."""

from typing import Any

from playwright.async_api import Page

from tests.conftest import REPO_ROOT
from tests.integration.profile.conftest import ADMIN

SCREENSHOTS = REPO_ROOT / ".artifacts" / "screenshots"
TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")


async def log_in(page: Page, url: str, token: str = TOKEN) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


async def open_page(page: Page, name: str, api_path: str) -> dict[str, Any]:
    """Open the dashboard's page `name` from the menu; the JSON the page was given by
    `api_path`, once the page is drawn."""
    async with page.expect_response(lambda r: api_path in r.url) as answered:
        await page.click(f"nav a[data-page={name}]")
    given: dict[str, Any] = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready]")
    return given


async def choose_range(page: Page, api_path: str, start: str, end: str) -> None:
    """Set the date range, as a user would, each change answered by `api_path`."""
    for field, day in (("#start", start), ("#end", end)):
        async with page.expect_response(lambda r: api_path in r.url):
            await page.fill(field, day)
    await page.wait_for_selector("main[data-state=ready], main[data-state=error]")


async def drawn(page: Page, chart: str, expression: str = "o => o.series") -> Any:
    """What the chart named `chart` holds: `expression` applied to its option."""
    return await page.evaluate(
        f"name => ({expression})(window.retainCharts[name].getOption())", chart
    )


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
