"""Scoring runs behind the real ingest and profile: the profile tests' fixtures serve here too.
The dashboard's tests share one headless Chromium."""

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.devstack.ports import free_port
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.browser import headless_chromium
from tests.integration.helpers import RunningService, running_service
from tests.integration.profile.conftest import (  # noqa: F401 (fixtures)
    ingest,
    isolated_database,
    processes,
    profile,
    storefront,
    write_key,
)


@pytest.fixture(scope="session")
def scoring(
    settings: ServiceSettings,
    profile: RunningService,  # noqa: F811 (the fixture imported above)
) -> Iterator[RunningService]:
    # The dashboard's figures every five seconds, so its tests see their events soon (each
    # snapshot reads every customer: more often would slow the whole suite).
    # Notify is not started here: its URL names a port nothing listens on.
    with running_service(
        "scoring",
        settings,
        RETAIN_ANALYTICS_SNAPSHOT_SECONDS="5",
        RETAIN_PROFILE_URL=profile.url,
        RETAIN_NOTIFY_URL=f"http://127.0.0.1:{free_port()}",
    ) as service:
        yield service


@pytest.fixture
async def scoring_db(
    settings: ServiceSettings,
    isolated_database: str,  # noqa: F811 (the fixture imported above)
) -> AsyncIterator[AsyncEngine]:
    """A database of its own with scoring's tables, for tests of its SQL."""
    own = settings.model_copy(update={"database_url": SecretStr(isolated_database)})
    await run_migrations(own, "scoring")
    engine = create_async_engine(isolated_database)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
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
