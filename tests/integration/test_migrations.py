"""Each service's Alembic migrations, applied to the suite's real PostgreSQL."""

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.stack import SERVICES
from services.runtime.db import run_migrations
from services.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


async def _versions(settings: ServiceSettings) -> dict[str, str]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as connection:
            versions = {}
            for service in SERVICES:
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
) -> None:
    # Three processes, like three replicas starting together on a fresh schema: the advisory
    # lock lets one migrate while the others wait, then find the schema at head.
    url = settings.database_url.get_secret_value()
    async with create_async_engine(url).connect() as connection:
        await connection.execute(text('DROP SCHEMA IF EXISTS "scoring" CASCADE'))
        await connection.commit()
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
    assert (await _versions(settings))["scoring"]
