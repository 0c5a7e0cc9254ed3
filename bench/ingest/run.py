"""Ingest benchmark: one command that starts everything it needs, measures, and cleans up.

    .venv/bin/python -m bench.ingest.run

It starts a local Kafka broker and PostgreSQL on free loopback ports with data in a temporary
folder, creates a write key, starts ingest as real processes (`python -m services.ingest`),
builds the Go load generator (standard library only) and runs three scenarios:

1. single: one Segment event per POST, as fast as the service answers (closed loop);
2. batch: 100-event /v1/batch requests, as fast as the service answers (closed loop);
3. latency: single events at a constant 1,000 requests/s (open loop; latency is measured from
   each request's scheduled time, so a stall cannot hide behind a lowered offered load).

After each scenario it checks that every accepted event is on touchpoints.v1 (the sum of the
partitions' end offsets grows by exactly the accepted count, and nothing was rejected), then
prints a table and writes bench/ingest/results.md. Everything it started is stopped at the end,
also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import io
import json
import math
import os
import platform
import pstats
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import create_async_engine

from services.devstack.kafka import KAFKA_VERSION, LocalKafka
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.ingest.keys import WriteKeyRepository
from services.runtime.db import run_migrations
from services.runtime.kafka import ensure_topics
from services.runtime.settings import Environment, ServiceSettings
from services.runtime.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
LOADGEN_DIR = BENCH_DIR / "loadgen"
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))

# The targets on a 2-core machine with Kafka on the same machine.
SINGLE_TARGET_EVENTS_PER_SECOND = 3_000
BATCH_TARGET_EVENTS_PER_SECOND = 50_000
LATENCY_TARGET_P99_MS = 25.0
LATENCY_RATE = 1_000
BATCH_SIZE = 100
# Above this, unrelated load on the machine makes a scenario's figures unreliable.
BUSY_MACHINE_CORES = 0.2


@dataclass
class Scenario:
    name: str
    title: str
    loadgen_args: list[str]
    target: str
    passed: Callable[[dict[str, Any]], bool]


@dataclass
class Outcome:
    scenario: Scenario
    summary: dict[str, Any]
    landed: int
    rejected_on_topic: int
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def landed_ok(self) -> bool:
        return self.landed == self.summary["accepted_events_total"] and self.rejected_on_topic == 0

    @property
    def passed(self) -> bool:
        return bool(self.scenario.passed(self.summary)) and self.landed_ok


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    timing = ["-warmup", f"{args.warmup}s", "-duration", f"{args.duration}s"]
    return [
        Scenario(
            "single",
            "Single-event POSTs (closed loop)",
            ["-scenario", "single", "-mode", "closed", "-conns", str(args.single_conns), *timing],
            f">= {SINGLE_TARGET_EVENTS_PER_SECOND:,} events/s",
            lambda s: s["events_per_second"] >= SINGLE_TARGET_EVENTS_PER_SECOND,
        ),
        Scenario(
            "batch",
            f"{BATCH_SIZE}-event batches (closed loop)",
            [
                "-scenario",
                "batch",
                "-batch-size",
                str(BATCH_SIZE),
                "-mode",
                "closed",
                "-conns",
                str(args.batch_conns),
                *timing,
            ],
            f">= {BATCH_TARGET_EVENTS_PER_SECOND:,} events/s",
            lambda s: s["events_per_second"] >= BATCH_TARGET_EVENTS_PER_SECOND,
        ),
        Scenario(
            "latency",
            f"Single events at {LATENCY_RATE:,} req/s (open loop)",
            [
                "-scenario",
                "single",
                "-mode",
                "open",
                "-rate",
                str(LATENCY_RATE),
                "-conns",
                str(args.latency_conns),
                *timing,
            ],
            f"p99 <= {LATENCY_TARGET_P99_MS:g} ms",
            lambda s: (
                s["latency_ms"].get("p99", float("inf")) <= LATENCY_TARGET_P99_MS
                and s["ok_requests"] == s["requests"]
            ),
        ),
    ]


# ---------------------------------------------------------------- processes


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_loadgen(workdir: Path) -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    binary = workdir / "loadgen"
    # Offline by construction: the generator uses the standard library only.
    env = os.environ | {"GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=LOADGEN_DIR,
        env=env,
        check=True,
        timeout=300,
    )
    return binary


class IngestReplicas:
    """N ingest processes on their own loopback ports, as replicas behind a balancer would be."""

    def __init__(self, settings: ServiceSettings, workdir: Path, count: int, profile: bool) -> None:
        self._settings = settings
        self._workdir = workdir
        self._count = count
        self._profile = profile
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def profile_file(self, index: int) -> Path:
        return self._workdir / f"ingest-{index}.pstats"

    def start(self, timeout: float = 90) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
        env |= {
            "RETAIN_ENV": "local",
            "RETAIN_KAFKA_BOOTSTRAP_SERVERS": self._settings.kafka_bootstrap_servers,
            "RETAIN_DATABASE_URL": self._settings.database_url.get_secret_value(),
            "RETAIN_HTTP_HOST": "127.0.0.1",
            "RETAIN_LOG_LEVEL": "WARNING",
            # The limiter stays in the path, but high enough that it never answers 429 here.
            "RETAIN_RATE_LIMIT_PER_SECOND": "100000000",
            "RETAIN_RATE_LIMIT_BURST": "100000000",
        }
        for index, port in enumerate(self.ports):
            command = [sys.executable]
            if self._profile:
                command += ["-m", "cProfile", "-o", str(self.profile_file(index))]
            command += ["-m", "services.ingest"]
            with (self._workdir / f"ingest-{index}.log").open("ab") as output:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=env | {"RETAIN_INGEST_PORT": str(port)},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + timeout
        for index, url in enumerate(self.urls):
            while True:
                if self.processes[index].poll() is not None:
                    raise RuntimeError(f"ingest {index} exited during start-up; see its log")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingest at {url} not ready after {timeout:.0f}s")
                time.sleep(0.2)

    def stop(self, timeout: float = 30) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def kafka_process(kafka: LocalKafka) -> psutil.Process | None:
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        return psutil.Process(int(kafka.pid_file.read_text().split()[0]))
    return None


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def wait_until_quiet(ours: list[psutil.Process], limit_seconds: float) -> float:
    """Wait (up to the limit) until other processes use little CPU; returns what they used."""
    started = time.monotonic()
    reported = -math.inf
    while True:
        machine, mine = machine_busy_seconds(), cpu_seconds(ours)
        time.sleep(2)
        others = (machine_busy_seconds() - machine - (cpu_seconds(ours) - mine)) / 2
        waited = time.monotonic() - started
        if others <= BUSY_MACHINE_CORES or waited > limit_seconds:
            return others
        if waited - reported >= 30:
            reported = waited
            log(f"other processes use {others:.2f} cores; waiting for a quiet machine")


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


# ---------------------------------------------------------------- Kafka checks


async def end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of the topic's partition end offsets: how many records it has ever received."""
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
    return sum(offsets.values())


def topic_counts(bootstrap: str) -> tuple[int, int]:
    async def both() -> tuple[int, int]:
        return (
            await end_offsets(bootstrap, TOUCHPOINTS),
            await end_offsets(bootstrap, TOUCHPOINTS_REJECTED),
        )

    return asyncio.run(asyncio.wait_for(both(), timeout=60))


async def prepare(settings: ServiceSettings) -> str:
    """Schema, topics and a fresh write key; returns the key."""
    await run_migrations(settings, "ingest")
    await ensure_topics(settings, client_id="retain-bench")
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        created = await WriteKeyRepository(engine).create("bench")
    finally:
        await engine.dispose()
    return created.key


# ---------------------------------------------------------------- running


def run_scenario(
    scenario: Scenario,
    loadgen: Path,
    replicas: IngestReplicas,
    kafka: LocalKafka,
    write_key: str,
    timeout: float,
    quiet_wait: float,
) -> Outcome:
    bootstrap = kafka.bootstrap_servers
    before, rejected_before = topic_counts(bootstrap)
    ingest = [psutil.Process(p.pid) for p in replicas.processes]
    broker = [p for p in [kafka_process(kafka)] if p is not None]
    wait_until_quiet([*ingest, *broker, psutil.Process()], quiet_wait)
    cpu_before = {"ingest": cpu_seconds(ingest), "kafka": cpu_seconds(broker)}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = machine_busy_seconds()
    started = time.monotonic()
    command = [
        str(loadgen),
        "-targets",
        ",".join(replicas.urls),
        "-write-key",
        write_key,
        *scenario.loadgen_args,
    ]
    log(f"{scenario.name}: {scenario.title}")
    done = subprocess.run(command, capture_output=True, check=True, timeout=timeout)
    elapsed = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "ingest": cpu_seconds(ingest) - cpu_before["ingest"],
        "kafka": cpu_seconds(broker) - cpu_before["kafka"],
        "loadgen": (children_after.ru_utime + children_after.ru_stime)
        - (children_before.ru_utime + children_before.ru_stime),
    }
    # Whatever else ran on the machine meanwhile (other jobs skew the figures; reported).
    cpu["other"] = max(0.0, machine_busy_seconds() - machine_before - sum(cpu.values()))
    after, rejected_after = topic_counts(bootstrap)
    summary = json.loads(done.stdout)
    # Cores used on average over the whole run of the generator (warm-up included).
    cores = {name: seconds / elapsed for name, seconds in cpu.items()}
    accepted = max(1, summary["accepted_events_total"])
    cores["ingest_us_per_event"] = cpu["ingest"] / accepted * 1e6
    return Outcome(scenario, summary, after - before, rejected_after - rejected_before, cores)


# ---------------------------------------------------------------- reporting


def _version(command: list[str], pattern: str | None = None) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "not found"
    text = (done.stdout + done.stderr).strip().splitlines()
    line = next((x for x in text if pattern is None or pattern in x), text[0] if text else "")
    return line.strip()


def machine() -> dict[str, str]:
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    packages = ["fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "aiokafka", "orjson"]
    commit = _version(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "services"])
    if dirty and "fatal" not in dirty:
        commit += " (with uncommitted changes)"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "go": _version(["go", "version"]),
        "java": _version(["java", "-version"], "version"),
        "kafka": KAFKA_VERSION,
        "packages": ", ".join(f"{p} {importlib.metadata.version(p)}" for p in packages),
        "commit": commit,
    }


def result_cell(outcome: Outcome) -> str:
    s = outcome.summary
    if outcome.scenario.name == "latency":
        lat = s["latency_ms"]
        return (
            f"p99 {lat['p99']:.1f} ms (p50 {lat['p50']:.1f}, p99.9 {lat['p99.9']:.1f}, "
            f"max {lat['max']:.1f}) at {s['requests_per_second']:,.0f} req/s"
        )
    lat = s["latency_ms"]
    return (
        f"{s['events_per_second']:,.0f} events/s ({s['requests_per_second']:,.0f} req/s, "
        f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms)"
    )


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| scenario | target | result | landed on touchpoints.v1 | CPU cores used "
        "(ingest / Kafka / load generator / other) | ingest CPU per event | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        landed = f"{o.landed:,} of {o.summary['accepted_events_total']:,} accepted"
        if o.rejected_on_topic:
            landed += f", {o.rejected_on_topic:,} rejected"
        landed += " (ok)" if o.landed_ok else " (MISMATCH)"
        cpu = " / ".join(f"{o.cpu[name]:.2f}" for name in ("ingest", "kafka", "loadgen", "other"))
        errors = {k: v for k, v in o.summary["statuses"].items() if k != "200"}
        errors |= o.summary.get("errors") or {}
        verdict = "pass" if o.passed else "MISS"
        if errors:
            verdict += f" (non-200: {errors})"
        rows.append(
            f"| {o.scenario.title} | {o.scenario.target} | {result_cell(o)} | {landed} | {cpu} "
            f"| {o.cpu['ingest_us_per_event']:.0f} µs | {verdict} |"
        )
    return "\n".join(rows)


def profile_summary(files: list[Path], limit: int = 30) -> str:
    existing = [str(f) for f in files if f.exists()]
    if not existing:
        return ""
    out = io.StringIO()
    stats = pstats.Stats(*existing, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    lines = out.getvalue().splitlines()
    # From the totals line on; pstats prints the file names first.
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())


def write_results(
    path: Path, outcomes: list[Outcome], info: dict[str, str], args: argparse.Namespace
) -> None:
    command = " ".join(["python -m bench.ingest.run", *map(shlex.quote, sys.argv[1:])])
    lines = [
        "# Ingest benchmark results",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` "
        f"(`.venv/bin/python -m bench.ingest.run` from the repository root).",
        "",
        table(outcomes),
        "",
        "## Set-up",
        "",
        f"- Ingest: {args.replicas} process(es) of `python -m services.ingest` "
        "(RETAIN_ENV=local, log level WARNING, rate limit raised so it never answers 429).",
        "- Kafka: one local broker (KRaft, 512 MB heap) on the same machine; touchpoints.v1 "
        "has 6 partitions; acks=all, idempotent producer.",
        f"- Load: the Go generator in bench/ingest/loadgen; {args.warmup}s warm-up, then "
        f"{args.duration}s measured per scenario. Throughput scenarios are closed loop "
        f"({args.single_conns} connections for single events, {args.batch_conns} for batches); "
        f"the latency scenario is open loop at {LATENCY_RATE:,} req/s over "
        f"{args.latency_conns} connections, latency measured from the scheduled send time.",
        "- Payloads: analytics.js-shaped events with full context (page, campaign, user agent, "
        "ip): half page views, the rest Product Viewed, Product Added and Order Completed "
        "(three products); every event has a distinct messageId.",
        "- Landed: growth of the sum of end offsets of touchpoints.v1 during the scenario, "
        "compared with the events the server accepted (warm-up included).",
        "- CPU cores used: CPU seconds of each party divided by the scenario's wall time "
        "(2.00 is the whole machine); `other` is everything else on the machine (PostgreSQL, "
        "the benchmark script, unrelated jobs) and should be near zero for a clean run.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in info.items()),
        "",
    ]
    notes = BENCH_DIR / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds per scenario")
    parser.add_argument("--replicas", type=int, default=2, help="ingest processes")
    parser.add_argument("--single-conns", type=int, default=64)
    parser.add_argument("--batch-conns", type=int, default=8)
    parser.add_argument("--latency-conns", type=int, default=64)
    parser.add_argument(
        "--only", choices=["single", "batch", "latency"], action="append", help="run only these"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300,
        help="seconds to wait, before each scenario, for unrelated CPU load to stop",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run ingest under cProfile and print where its time goes (slows it down)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "results.md",
        help="where to write the results ('-' to skip)",
    )
    return parser.parse_args()


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


def main() -> int:
    args = parse_args()
    chosen = [s for s in scenarios(args) if not args.only or s.name in args.only]
    scenario_timeout = args.warmup + args.duration + 120
    outcomes: list[Outcome] = []
    profile = ""
    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="retain-bench-") as tmp:
        workdir = Path(tmp)
        log(f"working in {workdir}; building the load generator")
        loadgen = build_loadgen(workdir)
        kafka = LocalKafka(
            data_dir=workdir / "kafka",
            cache_dir=CACHE_DIR,
            port=free_port(),
            controller_port=free_port(),
        )
        postgres = LocalPostgres(data_dir=workdir / "postgres", port=free_port(), durable=False)
        replicas: IngestReplicas | None = None
        try:
            log("starting Kafka and PostgreSQL")
            kafka.start()
            postgres.start()
            settings = ServiceSettings(
                env=Environment.LOCAL,
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                database_url=postgres.url,
            )
            write_key = asyncio.run(prepare(settings))
            log(f"starting {args.replicas} ingest process(es)")
            replicas = IngestReplicas(settings, workdir, args.replicas, args.profile)
            replicas.start()
            for scenario in chosen:
                outcomes.append(
                    run_scenario(
                        scenario,
                        loadgen,
                        replicas,
                        kafka,
                        write_key,
                        scenario_timeout,
                        args.quiet_wait,
                    )
                )
                log(f"{scenario.name}: {result_cell(outcomes[-1])}")
                if outcomes[-1].cpu["other"] > BUSY_MACHINE_CORES:
                    log(
                        f"warning: other processes used {outcomes[-1].cpu['other']:.2f} cores "
                        "during this scenario; the figures are skewed"
                    )
        finally:
            log("stopping everything")
            if replicas is not None:
                replicas.stop()
                if args.profile:
                    profile = profile_summary(
                        [replicas.profile_file(i) for i in range(args.replicas)]
                    )
            with contextlib.suppress(Exception):
                postgres.stop()
            kafka.stop()
    print()
    print(table(outcomes))
    if profile:
        print("\nWhere ingest spends its time (cProfile, by own time):\n")
        print(profile)
    if str(args.output) != "-" and not args.profile:
        write_results(args.output, outcomes, machine(), args)
        log(f"wrote {args.output}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
