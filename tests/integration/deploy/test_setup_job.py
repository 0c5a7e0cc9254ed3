"""The one-shot set-up job: migrations of every service and every topic, then exit 0."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.topics import TOPICS
from services.runtime.settings import ServiceSettings
from services.runtime.setup import services_with_migrations
from tests.integration.profile.conftest import isolated_database  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def test_every_service_with_a_schema_is_set_up() -> None:
    assert services_with_migrations() == ["ingest", "notify", "profile", "scoring"]


async def test_the_job_migrates_every_schema_creates_every_topic_and_exits_0(
    settings: ServiceSettings,
    isolated_database: str,  # noqa: F811 (imported above): empty; the session's serves the rest
) -> None:
    url = isolated_database
    engine = create_async_engine(url)
    try:
        environment = {
            **os.environ,
            "RETAIN_ENV": "local",
            "RETAIN_DATABASE_URL": url,
            "RETAIN_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "RETAIN_STARTUP_TIMEOUT_SECONDS": "30",
        }
        job = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.runtime.setup",
            cwd=ROOT,
            env=environment,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(job.communicate(), timeout=120)
        logs = stderr.decode()
        assert job.returncode == 0, logs
        assert '"message": "set-up done"' in logs
        async with engine.connect() as connection:
            for service in services_with_migrations():
                version = await connection.execute(
                    text(f'SELECT version_num FROM "{service}".alembic_version')  # noqa: S608
                )
                assert version.scalar_one(), service
    finally:
        await engine.dispose()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        assert {spec.name for spec in TOPICS} <= set(await admin.list_topics())
    finally:
        await admin.close()


def test_the_job_refuses_invalid_settings_with_exit_code_2() -> None:
    environment = {**os.environ, "RETAIN_ENV": "production", "RETAIN_ADMIN_TOKEN": "short"}
    finished = subprocess.run(
        [sys.executable, "-m", "services.runtime.setup"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "RETAIN_ADMIN_TOKEN" in finished.stderr
