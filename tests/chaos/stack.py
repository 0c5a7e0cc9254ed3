"""The whole pipeline as real processes, and the faults done to them.

Kafka, PostgreSQL and Mailpit are the project's local servers (tests/conftest.py starts the
same ones), on free loopback ports with data in the run's folder. Notify sends through an
`SmtpProxy` in front of Mailpit, so the SMTP server can turn slow or failing. Every service is
`python -m services.<name>`, as in production; a service may run as several processes, each
on a port of its own, all in one consumer group.

Every fault is done to a real process or server: SIGKILL of a service process, a broker or
PostgreSQL restart (stop, then start on the same data), processes added and stopped (the
groups rebalance), the SMTP hop's mode, and records that no consumer can read produced on the
input topics.
"""

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from schemas.topics.specs import (
    LIFECYCLE,
    LIFECYCLE_DLQ,
    NOTIFICATIONS,
    NOTIFICATIONS_DLQ,
    PROFILES,
    PROFILES_DLQ,
    SCORES,
    SCORES_DLQ,
    TOUCHPOINTS,
    TOUCHPOINTS_DLQ,
)
from services.devstack.kafka import LocalKafka
from services.devstack.mailpit import LocalMailpit, ensure_mailpit
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.settings import Environment, ServiceSettings
from tests.chaos.smtp_proxy import Mode, SmtpProxy
from tests.integration.helpers import RunningService, spawn, wait_ready

SERVICES = ("ingest", "profile", "scoring", "notify")
_START_ATTEMPTS = 3
# Each input topic, its dead-letter topic and the consumer groups that read it.
INPUTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (TOUCHPOINTS, TOUCHPOINTS_DLQ, ("retain-profile",)),
    (PROFILES, PROFILES_DLQ, ("retain-scoring-profiles", "retain-notify-profiles")),
    (LIFECYCLE, LIFECYCLE_DLQ, ("retain-scoring-lifecycle", "retain-notify-lifecycle")),
    (SCORES, SCORES_DLQ, ("retain-notify-scores",)),
    (NOTIFICATIONS, NOTIFICATIONS_DLQ, ("retain-scoring-notifications",)),
)
GROUPS = tuple(group for _, _, groups in INPUTS for group in groups)
# A record no consumer can decode: not JSON at all.
POISON_VALUE = b"\xff chaos poison: not JSON \x00"
POISON_KEY_PREFIX = b"chaos-poison-"
# What the services run with here: no quiet hours (a run at night would hold marketing email
# back), a short send lease (a killed sender's email is settled within the run), no rate limit
# on the one write key, and no scheduled refit (the harness refits once, before the scenarios).
SERVICE_ENV = {
    "RETAIN_NOTIFY_QUIET_HOURS": "off",
    "RETAIN_NOTIFY_SEND_LEASE": "5s",
    "RETAIN_RATE_LIMIT_PER_SECOND": "1000000",
    "RETAIN_RATE_LIMIT_BURST": "1000000",
    "RETAIN_REFIT_INTERVAL_SECONDS": "1000000",
    "RETAIN_LOG_LEVEL": "WARNING",
}


@dataclass
class Instance:
    service: str
    port: int
    running: RunningService | None = None


@dataclass
class Faults:
    """What was done during a scenario, counted by kind."""

    counts: dict[str, int] = field(default_factory=dict)
    last_at: float | None = None  # monotonic time the last fault ended

    def add(self, kind: str) -> None:
        self.seen(kind)
        self.last_at = time.monotonic()

    def seen(self, kind: str) -> None:
        """Something that happened to the stack, not a fault the harness did."""
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def __str__(self) -> str:
        return ", ".join(f"{kind} x{n}" for kind, n in sorted(self.counts.items())) or "none"


class ChaosStack:
    def __init__(self, workdir: Path, cache_dir: Path, log_dir: Path) -> None:
        self.workdir = workdir
        self.cache_dir = cache_dir
        self.log_dir = log_dir
        self.kafka = LocalKafka(
            data_dir=workdir / "kafka",
            cache_dir=cache_dir,
            port=free_port(),
            controller_port=free_port(),
            log_file=log_dir / "kafka.log",
        )
        self.postgres = LocalPostgres(
            data_dir=workdir / "postgres", port=free_port(), log_file=log_dir / "postgres.log"
        )
        self.mailpit = LocalMailpit(
            data_dir=workdir / "mailpit",
            cache_dir=cache_dir,
            smtp_port=free_port(),
            ui_port=free_port(),
            log_file=log_dir / "mailpit.log",
        )
        self.settings = ServiceSettings(
            env=Environment.LOCAL,
            kafka_bootstrap_servers=self.kafka.bootstrap_servers,
            database_url=self.postgres.url,
        )
        self.smtp = SmtpProxy(self.mailpit.smtp_host, self.mailpit.smtp_port, free_port())
        self.instances: dict[str, list[Instance]] = {name: [] for name in SERVICES}
        # A kill and a scaling of one service take turns (in the mixed scenario they overlap).
        self._turns = {name: asyncio.Lock() for name in SERVICES}
        self.write_key = ""
        self.startup_exits: list[str] = []  # services that exited during start-up
        self.rng = random.Random(os.environ.get("RETAIN_CHAOS_SEED", "retain"))

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        ensure_mailpit(self.cache_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for server in (self.kafka, self.postgres, self.mailpit):
            await asyncio.to_thread(server.start)
        await self.smtp.start()
        await run_migrations(self.settings, "ingest")
        engine = create_async_engine(self.settings.database_url.get_secret_value())
        try:
            self.write_key = (await WriteKeyRepository(engine).create("chaos")).key
        finally:
            await engine.dispose()
        for name in SERVICES:
            await self.scale(name, 1)

    async def stop(self) -> None:
        for instances in self.instances.values():
            for instance in instances:
                if instance.running is not None:
                    await asyncio.to_thread(instance.running.stop)
        await self.smtp.stop()
        for server in (self.mailpit, self.postgres, self.kafka):
            await asyncio.to_thread(server.stop)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.instances['ingest'][0].port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.instances[service][0].port}"

    def processes(self) -> Iterator[Instance]:
        for instances in self.instances.values():
            yield from instances

    # ------------------------------------------------------------------ faults

    async def _launch(self, instance: Instance) -> None:
        extra = dict(SERVICE_ENV)
        if instance.service == "notify":
            extra |= {"RETAIN_SMTP_HOST": "127.0.0.1", "RETAIN_SMTP_PORT": str(self.smtp.port)}
        log_file = self.log_dir / f"{instance.service}-{instance.port}.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            instance.running = spawn(
                instance.service, self.settings, extra, port=instance.port, log_file=log_file
            )
            try:
                await asyncio.to_thread(wait_ready, instance.running)
                return
            except AssertionError:
                # Started while a server it needs was down, it may give up: started again,
                # as an orchestrator would, and the reason shown in the run's output.
                if attempt == _START_ATTEMPTS or instance.running.process.poll() is None:
                    raise
                self.startup_exits.append(instance.service)
                tail = log_file.read_text(errors="replace").splitlines()[-5:]
                print(f"   {instance.service} exited during start-up:", *tail, sep="\n     ")

    async def kill(self, service: str) -> None:
        """SIGKILL one of the service's processes, at once, then start it again."""
        async with self._turns[service]:
            instance = self.rng.choice(self.instances[service])
            assert instance.running is not None
            instance.running.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(instance.running.process.wait)
            await self._launch(instance)

    async def scale(self, service: str, count: int) -> None:
        """Start or stop (SIGTERM, the way an orchestrator scales down) processes until
        `count` run; the consumer groups rebalance each time."""
        async with self._turns[service]:
            instances = self.instances[service]
            while len(instances) < count:
                instance = Instance(service, free_port())
                await self._launch(instance)
                instances.append(instance)
            while len(instances) > count:
                instance = instances.pop()
                if instance.running is not None:
                    await asyncio.to_thread(instance.running.stop)

    async def restart(self, server: str, down_for: float) -> None:
        """Stop the broker (SIGTERM) or PostgreSQL (fast shutdown), wait, start it again."""
        target: LocalKafka | LocalPostgres = self.kafka if server == "broker" else self.postgres
        await asyncio.to_thread(target.stop)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(target.start)

    def smtp_mode(self, mode: Mode, delay: float = 2.0) -> None:
        self.smtp.set(mode, delay)

    async def poison(self) -> list[tuple[str, str]]:
        """One record no consumer can read on each input topic; (topic, key) of each."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all"
        )
        await producer.start()
        sent: list[tuple[str, str]] = []
        try:
            for topic, _, _ in INPUTS:
                key = POISON_KEY_PREFIX.decode() + uuid.uuid4().hex[:12]
                await producer.send_and_wait(topic, POISON_VALUE, key=key.encode())
                sent.append((topic, key))
        finally:
            await producer.stop()
        return sent
