"""PostgreSQL access: one async engine per service (asyncpg), and per-service Alembic migrations.

Each service owns one Postgres schema (docs/architecture.md, rule 1) named after it; its tables,
and its Alembic version table, live there. Migrations run at service start under an advisory
lock, so replicas starting together apply them once.
"""

import asyncio
import logging
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

SERVICES_ROOT = Path(__file__).resolve().parents[1]
# Alembic keeps its migration context in module globals: one migration per process at a time.
# (Across processes, replicas are serialised by an advisory lock; see migrations.py.)
_ALEMBIC_LOCK = threading.Lock()


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # Drop connections the server closed (restart, idle timeout) instead of failing a request.
        pool_pre_ping=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_reachable(engine: AsyncEngine) -> bool:
    """The Postgres half of /readyz."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"
        return False
    return True


def alembic_config(service: str, database_url: str) -> Config:
    """Alembic configuration for one service's migrations, built in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(SERVICES_ROOT / service / "migrations"))
    # configparser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = service
    return config


async def run_migrations(settings: ServiceSettings, service: str) -> None:
    """Upgrade the service's schema to the newest revision."""
    config = alembic_config(service, settings.database_url.get_secret_value())

    def upgrade() -> None:
        with _ALEMBIC_LOCK:
            command.upgrade(config, "head")

    # Alembic is synchronous and runs its own event loop for the async engine: give it a thread.
    await asyncio.to_thread(upgrade)
    log.info("database schema up to date", extra={"schema": service})
