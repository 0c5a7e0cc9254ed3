"""The dashboard and the alert rules read only metrics the services declare, and the rules load
as Prometheus loads them (rulecheck: Prometheus's rule-file parser, deploy/tools/rulecheck)."""

import importlib
import subprocess

import pytest
from prometheus_client import REGISTRY, generate_latest

from tests.unit.deploy.observability import (
    ALERTS,
    alert_queries,
    dashboard_queries,
    metric_names,
    series_names,
)
from tests.unit.deploy.tools import tool

SERVICES = ("ingest", "profile", "scoring", "notify")


@pytest.fixture(scope="module")
def declared() -> set[str]:
    """Series names of every metric the four services declare (importing them declares all)."""
    for service in SERVICES:
        importlib.import_module(f"services.{service}.main")
    return series_names(generate_latest(REGISTRY).decode())


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    used = set().union(*map(metric_names, dashboard_queries().values()))
    assert used >= {
        "retain_produced_records_total",  # ingest rate and rejects
        "retain_http_requests_total",  # 4xx and 5xx
        "retain_http_request_seconds_bucket",  # latency percentiles
        "retain_consumer_lag",
        "retain_consumed_records_total",  # fold and scoring rates
        "retain_outbox_depth",
        "retain_outbox_oldest_age_seconds",
        "retain_dead_letters_total",
        "retain_notify_emails_total",  # sent, suppressed by reason
    }


@pytest.mark.parametrize(
    ("name", "query"), sorted({**dashboard_queries(), **alert_queries()}.items())
)
def test_every_query_reads_a_declared_metric(declared: set[str], name: str, query: str) -> None:
    names = metric_names(query)
    assert names, f"{name}: no metric in {query!r}"
    assert names <= declared, f"{name}: {sorted(names - declared)} is exported by no service"


def test_the_alert_rules_cover_the_failures_operators_page_on() -> None:
    assert set(alert_queries()) >= {
        "RetainConsumerLagGrowing",
        "RetainDeadLetters",
        "RetainOutboxStalled",
        "RetainOutboxParked",
        "RetainHttp5xxRatio",
        "RetainSmtpFailures",
    }


def test_prometheus_loads_the_alert_rules() -> None:
    checked = subprocess.run(
        [str(tool("rulecheck")), str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
