"""The real browser of the browser tests: Debian's Chromium (or RETAIN_CHROMIUM), driven by
Playwright, never a downloaded build. `make test` installs it."""

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright


def chromium_executable() -> str:
    """The system Chromium (RETAIN_CHROMIUM, else `chromium` on the PATH); never a download."""
    found = os.environ.get("RETAIN_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "Chromium is not installed: `make test` installs it (apt-get install chromium, as "
            "root); or set RETAIN_CHROMIUM to a Chromium or Chrome binary",
            pytrace=False,
        )
    return found


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
