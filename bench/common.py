"""What the benchmarks share: start-up of the local stack and the services, CPU metering, Kafka
offsets, and the machine description and profile summary that go into their results.

Kept in one place so that the benchmarks measure, wait and report in the same way, and a fix to
one reaches the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.metadata
import io
import math
import os
import platform
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from services.devstack.kafka import KAFKA_VERSION, LocalKafka
from services.devstack.mailpit import LocalMailpit
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.ingest.keys import WriteKeyRepository
from services.runtime.db import create_engine, run_migrations
from services.runtime.settings import Environment, ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))

# The read APIs' Bearer token in every benchmark (local mode only).
ADMIN_TOKEN = "bench-admin-token-" + "x" * 32

# Benchmarks on one machine take turns for their measured parts: two at once would each
# measure the other's load.
BENCH_LOCK = Path(tempfile.gettempdir()) / "retain-bench.lock"

# Ingest's rate limiter stays in the path, but high enough that it never answers 429 here.
NO_RATE_LIMIT = {
    "RETAIN_RATE_LIMIT_PER_SECOND": "100000000",
    "RETAIN_RATE_LIMIT_BURST": "100000000",
}


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the results table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so everything started is stopped by the finally blocks."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def exclusive_machine() -> Iterator[None]:
    """Hold the benchmarks' lock (BENCH_LOCK), waiting for another benchmark to finish."""
    with BENCH_LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another benchmark holds {BENCH_LOCK}; waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---------------------------------------------------------------- local stack and services


def local_kafka(workdir: Path) -> LocalKafka:
    """A broker on free loopback ports with its data under the run's temporary folder."""
    return LocalKafka(
        data_dir=workdir / "kafka",
        cache_dir=CACHE_DIR,
        port=free_port(),
        controller_port=free_port(),
    )


def settings_for(kafka: LocalKafka, postgres: LocalPostgres) -> ServiceSettings:
    """Settings pointing at the benchmark's own broker and database."""
    return ServiceSettings(
        env=Environment.LOCAL,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        database_url=postgres.url,
    )


def service_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment of a service process: our settings only, none inherited from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    return env | {
        "RETAIN_ENV": "local",
        "RETAIN_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "RETAIN_DATABASE_URL": settings.database_url.get_secret_value(),
        "RETAIN_HTTP_HOST": "127.0.0.1",
        "RETAIN_LOG_LEVEL": "WARNING",
    }


def pg_dsn(postgres: LocalPostgres) -> str:
    """The server's URL for asyncpg (without SQLAlchemy's driver name)."""
    return postgres.url.replace("postgresql+asyncpg://", "postgresql://")


async def postgres_version(postgres: LocalPostgres) -> str:
    connection = await asyncpg.connect(pg_dsn(postgres))
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def create_write_key(settings: ServiceSettings, name: str) -> str:
    """Ingest's schema and a fresh write key; returns the key."""
    await run_migrations(settings, "ingest")
    engine = create_engine(settings)
    try:
        created = await WriteKeyRepository(engine).create(name)
    finally:
        await engine.dispose()
    return created.key


class ServiceProcess:
    """`python -m services.<name>` on a free loopback port, optionally under cProfile.

    A real process, as in production, so that its CPU can be metered apart from the benchmark's.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        workdir: Path,
        profile_to: Path | None = None,
        label: str | None = None,
    ) -> None:
        self.name = label or name
        self.profile_to = profile_to
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable]
        if profile_to is not None:
            command += ["-m", "cProfile", "-o", str(profile_to)]
        command += ["-m", f"services.{name}"]
        env = env | {f"RETAIN_{name.upper()}_PORT": str(self.port)}
        with (workdir / f"{self.name}.log").open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.started = time.monotonic()
        self.ps = psutil.Process(self.process.pid)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up; see its log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s")

    def terminate(self) -> None:
        # SIGTERM lets the service finish its batch and cProfile write its file.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 60) -> None:
        self.terminate()
        self.wait_stopped(timeout)


def stop_all(services: Sequence[ServiceProcess]) -> None:
    """Stop the services in parallel (each finishes its batch)."""
    for service in services:
        service.terminate()
    for service in services:
        service.wait_stopped(60)


# ---------------------------------------------------------------- CPU


def postgres_processes(server: LocalPostgres) -> list[psutil.Process]:
    """The postmaster and every process it runs now (connections come and go)."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]
    return []


def kafka_processes(kafka: LocalKafka) -> list[psutil.Process]:
    """The broker's process (none if it is not running)."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        return [psutil.Process(int(kafka.pid_file.read_text().split()[0]))]
    return []


def mailpit_processes(mailpit: LocalMailpit) -> list[psutil.Process]:
    """The Mailpit server's process (none if it is not running)."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        return [psutil.Process(int(mailpit.pid_file.read_text().split()[0]))]
    return []


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def cpu_seconds(processes: Iterable[psutil.Process], *, children: bool = False) -> float:
    """CPU seconds used by the processes (and, if asked, their children that have exited).

    A process that is gone counts as zero instead of failing the run.
    """
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            if children:
                total += times.children_user + times.children_system
    return total


def wait_until_quiet(
    limit_seconds: float, threshold: float, ours: Sequence[psutil.Process] = ()
) -> float:
    """Wait (up to the limit) until processes other than `ours` use at most `threshold` cores;
    returns the cores they used last. Unrelated load would skew the figures."""
    started = time.monotonic()
    reported = -math.inf
    while True:
        machine, mine = machine_busy_seconds(), cpu_seconds(ours)
        time.sleep(2)
        others = (machine_busy_seconds() - machine - (cpu_seconds(ours) - mine)) / 2
        waited = time.monotonic() - started
        if others <= threshold or waited > limit_seconds:
            return others
        if waited - reported >= 30:
            reported = waited
            log(f"other processes use {others:.2f} cores; waiting for a quiet machine")


@dataclass
class CpuMeter:
    """Cores used per party over a window; `other` is the rest of the machine.

    Each party's processes are listed at the start and again at the end, so processes that
    appear meanwhile (database connections) are counted from zero. `counters` are parties
    measured by a running total of CPU seconds instead (such as the benchmark's own children).
    """

    parties: dict[str, Callable[[], list[psutil.Process]]]
    counters: dict[str, Callable[[], float]] = field(default_factory=dict)
    children: bool = True
    before: dict[int, float] = field(default_factory=dict)
    counters_before: dict[str, float] = field(default_factory=dict)
    machine_before: float = 0.0
    started: float = 0.0
    # CPU seconds per party over the last window (the cores times its length).
    used: dict[str, float] = field(default_factory=dict)

    def _cpu(self, process: psutil.Process) -> float:
        return cpu_seconds([process], children=self.children)

    def start(self) -> None:
        self.before = {p.pid: self._cpu(p) for list_ in self.parties.values() for p in list_()}
        self.counters_before = {name: count() for name, count in self.counters.items()}
        self.machine_before = machine_busy_seconds()
        self.started = time.monotonic()

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        used = {
            name: sum(self._cpu(p) - self.before.get(p.pid, 0.0) for p in list_())
            for name, list_ in self.parties.items()
        }
        used |= {
            name: count() - self.counters_before[name] for name, count in self.counters.items()
        }
        used["other"] = max(0.0, machine_busy_seconds() - self.machine_before - sum(used.values()))
        self.used = used
        return {name: seconds / elapsed for name, seconds in used.items()}


# ---------------------------------------------------------------- Kafka


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> end offset, as the broker has the topic: how many records each received."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    if not partitions:
        raise RuntimeError(f"topic {topic} not found")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in offsets.items()}


async def group_assignment(bootstrap: str, group: str) -> list[int] | None:
    """How many partitions each member of a consumer group holds, once the group is stable
    (None while it rebalances, or before anyone joined)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [described] = response.to_object()["groups"]
    if described["state"] != "Stable":
        return None
    return [
        len(ConsumerProtocolMemberAssignment.decode(member["member_assignment"]).partitions())
        for member in described["members"]
    ]


async def wait_for_group(
    bootstrap: str, group: str, members: int, limit_seconds: float = 60
) -> None:
    """Until the group is stable with `members` members, each holding partitions: a consumer
    that is ready may not have been assigned any yet, and a rebalance in a measurement would
    pause it."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        held = await group_assignment(bootstrap, group)
        if held is not None and len(held) == members and all(held):
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"consumer group {group} did not settle on {members} member(s)")


# ---------------------------------------------------------------- reporting


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def tool_version(command: list[str], pattern: str | None = None) -> str:
    """The first output line of `command` (containing `pattern`, if given), or 'not found'."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "not found"
    lines = (done.stdout + done.stderr).strip().splitlines()
    line = next((x for x in lines if pattern is None or pattern in x), lines[0] if lines else "")
    return line.strip()


def machine(packages: Sequence[str], *, go: bool = False) -> dict[str, str]:
    """What the figures were measured on, so that a rerun can tell whether they compare."""
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = tool_version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "services"])
    if dirty and "fatal" not in dirty:
        commit += " (with uncommitted changes)"
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    if go:
        info["go"] = tool_version(["go", "version"])
    return info | {
        "java": tool_version(["java", "-version"], "version"),
        "kafka": KAFKA_VERSION,
        "packages": ", ".join(f"{p} {importlib.metadata.version(p)}" for p in packages),
        "commit": commit,
    }


def write_results_file(path: Path, lines: list[str], info: dict[str, str], notes: Path) -> None:
    """Write a results.md: the benchmark's own `lines`, the machine, then its NOTES.md."""
    lines = [
        *lines,
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in info.items()),
        "",
    ]
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    path.write_text("\n".join(lines))


def profile_summary(files: list[Path], limit: int = 30, sort: str = "tottime") -> str:
    """The top of the merged cProfile files by own time (or `sort`, e.g. "cumulative"),
    without pstats' list of file names."""
    existing = [str(f) for f in files if f.exists()]
    if not existing:
        return ""
    out = io.StringIO()
    stats = pstats.Stats(*existing, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    lines = out.getvalue().splitlines()
    # From the totals line on; pstats prints the file names first.
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())


@dataclass(frozen=True)
class InProcessRecord:
    """A Kafka record as a consumer's handler sees it, to run the handler without Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def with_durable_postgres(work: Callable[[LocalPostgres], Coroutine[Any, Any, None]]) -> None:
    """Run `work` against a durable PostgreSQL of its own, started and stopped here."""
    with tempfile.TemporaryDirectory(prefix="retain-bench-") as workdir:
        postgres = LocalPostgres(data_dir=Path(workdir) / "pg", port=free_port(), durable=True)
        postgres.start()
        try:
            asyncio.run(work(postgres))
        finally:
            postgres.stop()


# Own time of C functions, by what they belong to (cProfile names them `{method ...}`).
_BUILTIN_PARTS = (
    ("pydantic_core", "pydantic (validation, serialisation)"),
    ("orjson", "orjson"),
    ("asyncpg", "asyncpg"),
    ("poll' of 'select", "waiting for I/O (epoll)"),
    ("compile", "start-up (imports)"),
    ("_imp.", "start-up (imports)"),
    ("marshal", "start-up (imports)"),
)
# Own time of Python functions, by file; after the service's own parts.
_LIBRARY_PARTS = (
    ("/services/runtime/", "runtime: consumer kit, relay"),
    ("/schemas/", "schemas (validators)"),
    ("/site-packages/pydantic", "pydantic (validation, serialisation)"),
    ("/site-packages/sqlalchemy/", "sqlalchemy"),
    ("/site-packages/asyncpg/", "asyncpg"),
    ("/site-packages/aiokafka/", "aiokafka"),
    ("/site-packages/numpy/", "numpy, scipy"),
    ("/site-packages/scipy/", "numpy, scipy"),
    ("/site-packages/", "other libraries"),
    ("/asyncio/", "asyncio"),
    ("importlib", "start-up (imports)"),
    ("<frozen", "start-up (imports)"),
)


def own_time_by_part(files: list[Path], service_parts: Sequence[tuple[str, str]]) -> str:
    """cProfile's own time summed by package or part of the service (`service_parts`: a path
    fragment and its name, looked at first): a rougher view than the function lists, but
    robust to what asyncio and greenlets do to cumulative times."""
    existing = [str(f) for f in files if f.exists()]
    if not existing:
        return ""
    stats: dict[tuple[str, int, str], tuple[Any, ...]]
    stats = pstats.Stats(*existing).stats  # type: ignore[attr-defined]
    path_parts = (*service_parts, *_LIBRARY_PARTS)
    parts: dict[str, float] = {}
    for (filename, _, function), (_, _, own, *_) in stats.items():
        if filename == "~":
            part = next((p for key, p in _BUILTIN_PARTS if key in function), "other C built-ins")
        else:
            part = next((p for key, p in path_parts if key in filename), "other standard library")
        parts[part] = parts.get(part, 0.0) + own
    total = sum(parts.values())
    return "\n".join(
        f"{seconds:8.2f} s {seconds / total:6.1%}  {part}"
        for part, seconds in sorted(parts.items(), key=lambda item: -item[1])
    )
