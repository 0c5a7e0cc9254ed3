"""The one-shot set-up job: every service's migrations and every topic, then exit.

    python -m services.runtime.setup

Services do both at start anyway (under an advisory lock, and only for what is missing), so
this job is not needed for correctness. Deployments run it before new pods start so that a
migration runs once, visibly, with its own logs and exit code, and so that services can run
with RETAIN_KAFKA_CREATE_TOPICS=false where topics are managed elsewhere. Exit codes: 0 done,
1 PostgreSQL or Kafka unreachable within RETAIN_STARTUP_TIMEOUT_SECONDS, 2 invalid settings.
"""

import asyncio
import logging
import sys
from functools import partial

from sqlalchemy.engine import make_url

from services.runtime.db import SERVICES_ROOT, run_migrations
from services.runtime.kafka import ensure_topics
from services.runtime.logs import configure_logging
from services.runtime.service import StartupError, wait_for
from services.runtime.settings import ServiceSettings, SettingsError, load_settings

log = logging.getLogger(__name__)

NAME = "setup"


def services_with_migrations() -> list[str]:
    """Every service that owns a database schema: each has its own Alembic migrations."""
    return sorted(env.parent.parent.name for env in SERVICES_ROOT.glob("*/migrations/env.py"))


async def set_up(settings: ServiceSettings) -> None:
    """Migrate every service's schema to head, then create the missing topics."""
    timeout = settings.startup_timeout_seconds
    database = make_url(settings.database_url.get_secret_value())
    for service in services_with_migrations():
        await wait_for(
            f"PostgreSQL at {database.host}:{database.port or 5432}",
            partial(run_migrations, settings, service),
            timeout,
        )
    created: list[str] = []

    async def create_topics() -> None:
        created.extend(await ensure_topics(settings, client_id=f"retain-{NAME}"))

    await wait_for(f"Kafka at {settings.kafka_bootstrap_servers}", create_topics, timeout)
    log.info("set-up done", extra={"topics_created": sorted(created)})


def main() -> None:
    try:
        settings = load_settings(ServiceSettings)
    except SettingsError as error:
        print(f"retain {NAME}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(NAME, settings.log_level, settings.log_format)
    try:
        asyncio.run(set_up(settings))
    except StartupError as error:
        log.error("set-up failed: %s", error)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
