"""Every metric the dashboard and the alert rules read is on a running service's /metrics."""

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from services.devstack.mailpit import LocalMailpit
from services.runtime.settings import ServiceSettings
from tests.integration.helpers import running_service
from tests.unit.deploy.observability import (
    alert_queries,
    dashboard_queries,
    metric_names,
    series_names,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exported(settings: ServiceSettings, mailpit: LocalMailpit) -> Iterator[dict[str, set[str]]]:
    """Service -> the series names its /metrics carries, the four services started once."""
    with contextlib.ExitStack() as running:
        urls = {
            name: running.enter_context(running_service(name, settings, **extra)).url
            for name, extra in (
                ("ingest", {}),
                ("profile", {}),
                ("scoring", {}),
                (
                    "notify",
                    {
                        "RETAIN_SMTP_HOST": mailpit.smtp_host,
                        "RETAIN_SMTP_PORT": str(mailpit.smtp_port),
                    },
                ),
            )
        }
        yield {
            name: series_names(httpx.get(f"{url}/metrics", timeout=10).text)
            for name, url in urls.items()
        }


@pytest.mark.parametrize(
    ("name", "query"), sorted({**dashboard_queries(), **alert_queries()}.items())
)
def test_every_query_names_a_metric_a_service_exports(
    exported: dict[str, set[str]], name: str, query: str
) -> None:
    everywhere = set().union(*exported.values())
    missing = metric_names(query) - everywhere
    assert not missing, f"{name}: no service exports {sorted(missing)}"


def test_emails_are_counted_by_notify(exported: dict[str, set[str]]) -> None:
    assert "retain_notify_emails_total" in exported["notify"]
    assert "retain_consumer_lag" in exported["profile"]
