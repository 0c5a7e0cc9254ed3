"""Scoring runs behind the real ingest and profile: the profile tests' fixtures serve here too."""

from collections.abc import Iterator

import pytest

from services.runtime.settings import ServiceSettings
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
    # The dashboard's figures every second, so its tests see their events without waiting.
    with running_service("scoring", settings, RETAIN_ANALYTICS_SNAPSHOT_SECONDS="1") as service:
        yield service
