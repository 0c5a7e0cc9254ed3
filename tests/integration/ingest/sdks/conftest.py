"""The real SDKs a storefront uses, pointed at a real ingest and folded by a real profile.

The SDKs are npm packages pinned in tests/sdk/package-lock.json and installed by `make test`
(`npm ci --ignore-scripts` into tests/sdk/node_modules); the browser is the system Chromium,
which `make test` installs when it is missing. Neither is ever skipped: a missing one fails
the tests, saying how to install it.

A local HTTP server stands in for the storefront: it serves the test pages (tests/sdk/pages)
and the SDKs' files on its own origin, so the browser talks to ingest cross-origin, as a shop's
pages do.
"""

import asyncio
import mimetypes
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Route
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.browser import headless_chromium
from tests.integration.helpers import ADMIN_TOKEN, REPO_ROOT, RunningService, running_service

SDK_DIR = REPO_ROOT / "tests" / "sdk"
NODE_MODULES = SDK_DIR / "node_modules"
PAGES = SDK_DIR / "pages"
ANALYTICS_JS_DIR = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_PACKAGES = (
    "@segment/analytics-next",
    "@segment/analytics-node",
    "@segment/snippet",
    "@rudderstack/analytics-js",
)


@pytest.fixture(scope="session")
def sdk_packages() -> Path:
    """tests/sdk/node_modules, as `make test` installs it from the lock file."""
    missing = [name for name in _PACKAGES if not (NODE_MODULES / name / "package.json").is_file()]
    if missing:
        pytest.fail(
            f"SDK packages not installed ({', '.join(missing)}): `make test` installs them "
            "(cd tests/sdk && npm ci --ignore-scripts)",
            pytrace=False,
        )
    return NODE_MODULES


# Package scope: these processes stop once the SDK tests are done, so the profile tests that
# follow have the consumer group to their own processes.
@pytest.fixture(scope="package")
def sdk_ingest(settings: ServiceSettings, sdk_packages: Path) -> Iterator[RunningService]:
    """Ingest serving analytics.js to the classic snippet from the pinned npm package."""
    with running_service(
        "ingest", settings, RETAIN_ANALYTICS_JS_DIR=str(ANALYTICS_JS_DIR)
    ) as service:
        yield service


@pytest.fixture(scope="package")
def sdk_profile(settings: ServiceSettings, sdk_ingest: RunningService) -> Iterator[RunningService]:
    with running_service("profile", settings) as service:
        yield service


@dataclass(frozen=True)
class WriteKey:
    key: str
    source_id: str


@pytest.fixture
async def write_key(settings: ServiceSettings) -> WriteKey:
    """A new source's write key, so each test's events are its own."""
    await run_migrations(settings, "ingest")
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        created = await WriteKeyRepository(engine).create(f"storefront-{uuid.uuid4().hex[:8]}")
    finally:
        await engine.dispose()
    return WriteKey(created.key, created.source.id)


@pytest.fixture
def user_id() -> str:
    return f"shopper-{uuid.uuid4().hex[:10]}"


# --- the storefront: a local web server for the pages and the SDKs' files ----------------


class Storefront:
    """Serves /pages/* from tests/sdk/pages, /sdk/* from tests/sdk/node_modules, and pages a
    test renders itself (`add_page`), on 127.0.0.1."""

    def __init__(self) -> None:
        self._rendered: dict[str, bytes] = {}
        storefront = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                found = storefront._find(urlsplit(self.path).path)
                if found is None:
                    self.send_error(404)
                    return
                body, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _find(self, path: str) -> tuple[bytes, str] | None:
        if path in self._rendered:
            return self._rendered[path], "text/html; charset=utf-8"
        for prefix, root in (("/pages/", PAGES), ("/sdk/", NODE_MODULES)):
            if path.startswith(prefix):
                file = (root / path.removeprefix(prefix)).resolve()
                if file.is_file() and file.is_relative_to(root.resolve()):
                    content_type = mimetypes.guess_type(file.name)[0] or "text/plain"
                    if content_type.startswith("text/"):
                        content_type += "; charset=utf-8"
                    return file.read_bytes(), content_type
        return None

    def add_page(self, name: str, html: str) -> str:
        """Serve `html` at /rendered/<name>; returns its URL."""
        path = f"/rendered/{name}"
        self._rendered[path] = html.encode()
        return self.url + path

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="package")
def storefront(sdk_packages: Path) -> Iterator[Storefront]:
    server = Storefront()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as launched:
        yield launched


@dataclass
class Traffic:
    """What a page asked of the network: answered requests to ingest, and any request that
    would have left the machine (blocked, and a failure of the test)."""

    ingest_url: str
    answered: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def to_ingest(self, method: str | None = None) -> list[tuple[str, str, int]]:
        return [a for a in self.answered if method is None or a[0] == method]

    def paths(self, method: str) -> set[str]:
        return {path for m, path, _ in self.answered if m == method}


@dataclass
class Visit:
    page: Page
    context: BrowserContext
    traffic: Traffic

    async def storefront_state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.page.evaluate("window.storefront")
        return state


@pytest.fixture
async def visit(
    browser: Browser, sdk_ingest: RunningService
) -> AsyncIterator[Callable[..., Awaitable[Visit]]]:
    """Opens a page in a fresh browser context (no stored ids), recording its traffic."""
    contexts: list[BrowserContext] = []

    async def open_page(url: str, *, fake_clock: bool = False) -> Visit:
        context = await browser.new_context()
        contexts.append(context)
        traffic = Traffic(sdk_ingest.url)
        local = ("http://127.0.0.1:", "http://localhost:")

        async def only_local(route: Route) -> None:
            if route.request.url.startswith(local):
                await route.continue_()
            else:  # a Segment or RudderStack server, a CDN: the setup must need none
                traffic.blocked.append(route.request.url)
                await route.abort()

        async def answered(request: Request) -> None:
            if not request.url.startswith(sdk_ingest.url):
                return
            response = await request.response()
            status = response.status if response else 0
            traffic.answered.append((request.method, urlsplit(request.url).path, status))

        async def failed(request: Request) -> None:
            if not request.url.startswith(tuple(traffic.blocked)):
                traffic.failed.append(f"{request.method} {request.url}: {request.failure}")

        await context.route("**/*", only_local)
        page = await context.new_page()
        page.on("requestfinished", answered)
        page.on("requestfailed", failed)
        page.on(
            "console",
            lambda message: (
                traffic.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        if fake_clock:
            await page.clock.install()
        await page.goto(url)
        return Visit(page, context, traffic)

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()


def assert_clean(visit: Visit) -> None:
    """Nothing left the machine, nothing failed, and ingest answered every request below 400."""
    traffic = visit.traffic
    assert traffic.blocked == [], "requests that would have left the machine"
    assert traffic.failed == []
    assert [a for a in traffic.answered if a[2] >= 400] == []


async def answered(visit: Visit, method: str, paths: set[str], seconds: float = 30) -> None:
    """Wait until ingest answered `method` requests to each of `paths`."""

    async def seen() -> bool:
        return paths <= visit.traffic.paths(method)

    try:
        await eventually(seen, seconds=seconds, what=f"{method} {sorted(paths)} answered")
    except AssertionError as error:
        state = await visit.page.evaluate("window.storefront")
        raise AssertionError(f"{error}\ntraffic: {visit.traffic}\npage: {state}") from None


def page_url(storefront: Storefront, page: str, ingest_url: str, key: str, user: str) -> str:
    query = httpx.QueryParams({"ingest": ingest_url, "key": key, "user": user})
    return f"{storefront.url}/pages/{page}?{query}"


async def eventually(
    check: Callable[[], Awaitable[Any]], *, seconds: float = 30, what: str = "condition"
) -> Any:
    """Poll `check` until it returns something truthy; fail with its last answer otherwise."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not met within {seconds}s; last: {last!r}")


# --- what the profile must show -------------------------------------------------------------


async def folded_profile(profile_url: str, user: str, *, page_views: int = 1) -> dict[str, Any]:
    """The shopper's profile once the identify, the Product Viewed and the page views are
    folded into it, and its timeline (newest first)."""

    async def profile() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=10) as client:
            found = await client.get(
                f"{profile_url}/v1/customers", params={"user_id": user}, headers=ADMIN
            )
            assert found.status_code == 200, found.text
            customers = found.json()["customers"]
            if not customers:
                return None
            customer: dict[str, Any] = customers[0]
            activity = customer["activity"]
            if (
                customer["email"] is None
                or activity["product_views"] < 1
                or activity["page_views"] < page_views
            ):
                return None
            timeline = await client.get(
                f"{profile_url}/v1/customers/{customer['customer_id']}/timeline",
                headers=ADMIN,
            )
            assert timeline.status_code == 200, timeline.text
            customer["timeline"] = timeline.json()["touchpoints"]
            return customer

    customer: dict[str, Any] = await eventually(profile, what=f"profile of {user} folded")
    assert customer["email"] == f"{user}@shop.example"
    assert customer["traits"]["name"] == "Ada Lovelace"
    assert customer["activity"]["product_views"] == 1
    assert customer["activity"]["page_views"] == page_views
    return customer


def render_snippet(ingest_url: str, write_key: str) -> str:
    """The classic snippet as @segment/snippet renders it with ingest as its host (the
    `host` a shop replaces cdn.segment.com with), made plain http for the local ingest."""
    parts = urlsplit(ingest_url)
    script = (
        "process.stdout.write(require('@segment/snippet').min("
        f"{{host: {parts.netloc!r}, apiKey: {write_key!r}, useHostForBundles: true}}))"
    )
    rendered = subprocess.run(
        ["node", "-e", script], cwd=SDK_DIR, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    if parts.scheme == "http":
        # The snippet writes https:// before its host; a local ingest speaks plain http.
        rendered = rendered.replace(f"https://{parts.netloc}", f"http://{parts.netloc}")
    return rendered
