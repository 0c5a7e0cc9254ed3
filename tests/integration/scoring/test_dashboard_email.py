"""The Email page in a real headless Chromium, fed by the real pipeline: a journey sends an
email through Mailpit, its reader opens it and clicks a link, then orders; the page's chart and
table show exactly what the API answered it, with the open, the click and the attributed order
counted. Screenshot: .artifacts/screenshots/email.png."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.integration.helpers import MailpitInbox, RunningService
from tests.integration.notify.conftest import notify  # noqa: F401 (notify behind the pipeline)
from tests.integration.notify.shoppers import cart_change, local_link, shopper
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for
from tests.integration.scoring.dashboard import drawn, log_in, open_page, screenshot

pytestmark = pytest.mark.integration

JOURNEY, TEMPLATE = "abandoned_cart", "cart_reminder_1"


def _reminder_row(answer: dict[str, Any]) -> dict[str, Any] | None:
    rows = [r for r in answer["rows"] if (r["journey"], r["template"]) == (JOURNEY, TEMPLATE)]
    return rows[0] if rows else None


async def test_the_email_page_charts_and_lists_what_the_api_gave_it(
    notify: RunningService,  # noqa: F811 (the fixture imported above)
    scoring: RunningService,
    storefront: Storefront,
    inbox: MailpitInbox,
    page: Page,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        before = (await client.get(f"{scoring.url}/v1/analytics/email", headers=ADMIN)).json()
    counted_before = _reminder_row(before) or {"opened": 0, "clicked": 0, "orders": 0}

    now = datetime.now(UTC)
    user = f"mailed-{uuid.uuid4().hex[:8]}"
    address = f"{user}@shop.example"
    await storefront.send([shopper(user, now), cart_change(user, now - timedelta(hours=5))])
    [message] = await wait_for(lambda: inbox.messages_to(address), seconds=90)
    html = (await inbox.message(message["ID"]))["HTML"]
    pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', html)
    click = re.search(r'href="([^"]*/t/c/[^"]+)"', html)
    assert pixel is not None
    assert click is not None
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(local_link(html_unescape(pixel.group(1)), notify))).is_success
        clicked = await client.get(local_link(html_unescape(click.group(1)), notify))
        assert clicked.status_code == 302
    # Ordered a moment after the click: the reminder's last click brings the order.
    ordered_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    await storefront.send([order(user, f"{user}-o1", 70.0, timestamp=ordered_at)])

    async def counted() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(
                f"{scoring.url}/v1/analytics/email", params={"currency": "EUR"}, headers=ADMIN
            )
        row = _reminder_row(answer.json())
        done = row is not None and all(
            row[measure] > counted_before[measure] for measure in ("opened", "clicked", "orders")
        )
        return row if done else None

    row = await wait_for(counted, seconds=90)
    assert row["sent"] >= 1
    assert row["revenue"] >= 70.0

    await log_in(page, scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    await page.select_option("#currency", "EUR")
    await page.wait_for_selector("main[data-state=ready]")
    given = await open_page(page, "email", "/v1/analytics/email")
    assert given["currency"] == "EUR"
    lines = await drawn(page, "email.daily", "o => o.series.map(s => [s.name, s.data])")
    assert lines == [[m, given["series"][m]] for m in ("sent", "opened", "clicked", "orders")]

    table = page.locator("article[data-figure='email.table'] table")
    headings = await table.locator("thead th").all_text_contents()
    assert headings[:3] == ["Journey", "Template", "Sent"]
    sent_heading = table.locator("thead th").nth(2)
    assert await sent_heading.get_attribute("aria-sort") == "descending"  # most sent first
    shown = [
        await line.locator("td").all_text_contents()
        for line in await table.locator("tbody tr").all()
    ]
    assert [cells[:3] for cells in shown] == [
        [r["journey"] or "(none)", r["template"], f"{r['sent']:,.0f}"] for r in given["rows"]
    ]
    [reminder] = [cells for cells in shown if cells[:2] == [JOURNEY, TEMPLATE]]
    listed = _reminder_row(given)
    assert listed is not None
    by_heading = dict(zip(headings, reminder, strict=True))
    assert by_heading["Opened"] == f"{listed['opened']:,.0f}"
    assert by_heading["Clicked"] == f"{listed['clicked']:,.0f}"
    assert by_heading["Orders"] == f"{listed['orders']:,.0f}"
    assert by_heading["Open rate"] == f"{listed['open_rate'] * 100:.1f} %"
    assert "€" in by_heading["Revenue"]

    await table.locator("thead th button", has_text="Template").click()  # sort by another column
    resorted = await table.locator("tbody tr td:nth-child(2)").all_text_contents()
    assert resorted == sorted(resorted)
    await screenshot(page, "email")


async def test_a_range_without_email_says_what_to_do(scoring: RunningService, page: Page) -> None:
    await log_in(page, scoring.url)
    await page.wait_for_selector("main[data-state=ready]")
    await open_page(page, "email", "/v1/analytics/email")
    async with page.expect_response(lambda r: "/v1/analytics/email" in r.url) as answered:
        # Both days at once: one range, one request.
        await page.evaluate(
            """() => {
                document.getElementById("start").value = "2001-01-01";
                document.getElementById("end").value = "2001-01-02";
                document.getElementById("end").dispatchEvent(new Event("change"));
            }"""
        )
    given = await (await answered.value).json()
    await page.wait_for_selector("main[data-state=ready]")
    assert (given["start"], given["end"], given["rows"]) == ("2001-01-01", "2001-01-02", [])
    message = await page.text_content("#message")
    assert message is not None
    assert message.startswith("No email yet.")
    assert await page.locator("main article").count() == 0  # no blank chart
