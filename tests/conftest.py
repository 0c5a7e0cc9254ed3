"""Suite-wide fixtures: a real Kafka broker and a real PostgreSQL, started once per test run.

They listen on free ports with data in a temporary folder, so the suite runs beside a stack
started by `make run`, and both are stopped when the run ends. Unit tests never request them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.devstack.kafka import LocalKafka
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.runtime.settings import Environment, ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
# Kafka's jars are fetched once and shared with `make run`.
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(
        data_dir=tmp_path_factory.mktemp("kafka"),
        cache_dir=CACHE_DIR,
        port=free_port(),
        controller_port=free_port(),
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
def settings(kafka: LocalKafka, postgres: LocalPostgres) -> ServiceSettings:
    """Service settings pointing at the suite's broker and database."""
    return ServiceSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        database_url=postgres.url,
    )
