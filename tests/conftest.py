"""Suite-wide fixtures: a real Kafka broker, a real PostgreSQL and a real SMTP server (Mailpit),
started once per test run.

They listen on free ports with data in a temporary folder, so the suite runs beside a stack
started by `make run`, and all are stopped when the run ends. Unit tests never request them.
"""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.devstack.errors import DevStackError
from services.devstack.kafka import LocalKafka
from services.devstack.mailpit import LocalMailpit, ensure_mailpit
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.runtime.settings import Environment, ServiceSettings
from tests.integration.helpers import MailpitInbox

REPO_ROOT = Path(__file__).resolve().parents[1]
# Kafka's jars and the Mailpit binary are fetched or built once and shared with `make run`.
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))
# Why the build before the tests failed, so the tests report it instead of building again.
_mailpit_build_error: list[DevStackError] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build Mailpit before the first test that needs it, outside every test's timeout.

    The first build on a machine takes minutes (go and npm), longer than a test may take; from
    then on the cached binary is used. A failure is reported by the tests that need Mailpit.
    """
    if session.config.option.collectonly:
        return
    needs_mailpit = any(
        "mailpit" in getattr(item, "fixturenames", ()) or item.get_closest_marker("e2e")
        for item in session.items
    )
    if needs_mailpit:
        try:
            ensure_mailpit(CACHE_DIR, progress=_progress)
        except DevStackError as error:
            _mailpit_build_error.append(error)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Some tests depend on what the session's shared services and topics hold, so they run in
    an order of their own:
    - `first`: before any test refits the one scoring service the session shares (they start
      from no fitted model), or floods the topics (their consumers, with a database and group
      of their own, read the topics from the start);
    - `runs_last`: they change what every other test shares (spend on every paid channel this
      month, which would fall on other tests' campaigns; tens of thousands of customers, which
      every later snapshot of the dashboard's figures would read)."""

    def place(item: pytest.Item) -> int:
        if item.get_closest_marker("first"):
            return 0
        return 2 if item.get_closest_marker("runs_last") else 1

    items.sort(key=place)


def _progress(message: str) -> None:
    print(f"\n{message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    yield from running_kafka(tmp_path_factory.mktemp("kafka"))


def running_kafka(data_dir: Path) -> Iterator[LocalKafka]:
    """A broker of its own on free ports, for a fixture to yield from: stopped after."""
    broker = LocalKafka(
        data_dir=data_dir, cache_dir=CACHE_DIR, port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    server = LocalPostgres(
        data_dir=tmp_path_factory.mktemp("postgres"), port=free_port(), durable=False
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mailpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMailpit]:
    """The SMTP server email is sent to; read what arrived with the `inbox` fixture."""
    if _mailpit_build_error:
        raise _mailpit_build_error[0]
    server = LocalMailpit(
        data_dir=tmp_path_factory.mktemp("mailpit"),
        cache_dir=CACHE_DIR,
        smtp_port=free_port(),
        ui_port=free_port(),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def inbox(mailpit: LocalMailpit) -> MailpitInbox:
    """Mailpit's mailbox through its REST API, emptied before the test."""
    mailbox = MailpitInbox(mailpit.ui_url)
    await mailbox.delete_all()
    return mailbox


@pytest.fixture(scope="session")
def settings(kafka: LocalKafka, postgres: LocalPostgres) -> ServiceSettings:
    """Service settings pointing at the suite's broker and database."""
    return ServiceSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        database_url=postgres.url,
    )
