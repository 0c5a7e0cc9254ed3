"""Each service's Alembic migrations, applied to the suite's real PostgreSQL."""

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.stack import SERVICES
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings
from tests.integration.profile.conftest import isolated_database  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


async def _versions(
    settings: ServiceSettings, services: tuple[str, ...] = SERVICES
) -> dict[str, str]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as connection:
            versions = {}
            for service in services:
                table = f'"{service}".alembic_version'
                result = await connection.execute(text(f"SELECT version_num FROM {table}"))  # noqa: S608
                versions[service] = result.scalar_one()
            return versions
    finally:
        await engine.dispose()


async def test_every_service_migrates_its_own_schema_to_head(settings: ServiceSettings) -> None:
    for service in SERVICES:
        await run_migrations(settings, service)
    versions = await _versions(settings)
    assert set(versions) == set(SERVICES)
    assert all(version for version in versions.values())


async def test_replicas_migrating_at_once_apply_each_revision_once(
    settings: ServiceSettings,
    isolated_database: str,  # noqa: F811 (imported above): empty; the session's serves the rest
) -> None:
    # Three processes, like three replicas starting together on a fresh schema: the advisory
    # lock lets one migrate while the others wait, then find the schema at head.
    url = isolated_database
    script = (
        "import asyncio, sys;"
        "from services.runtime.db import run_migrations;"
        "from services.runtime.settings import ServiceSettings;"
        "settings = ServiceSettings(env='local', database_url=sys.argv[1]);"
        "asyncio.run(run_migrations(settings, 'scoring'))"
    )
    replicas = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, cwd=REPO_ROOT)
        for _ in range(3)
    ]
    assert [await replica.wait() for replica in replicas] == [0, 0, 0]
    own = settings.model_copy(update={"database_url": SecretStr(url)})
    assert (await _versions(own, ("scoring",)))["scoring"]
