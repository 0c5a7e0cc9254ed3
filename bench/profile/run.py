"""Profile benchmark: one command that starts everything it needs, measures, and cleans up.

    .venv/bin/python -m bench.profile.run

It starts a local Kafka broker and PostgreSQL on free loopback ports with data in a temporary
folder and runs two scenarios:

1. throughput: N realistic touchpoints (bench/profile/events.py: page views, product views and
   adds, orders with products, identifies linking anonymous ids, over many customers) are
   validated and stamped as ingest would and produced to touchpoints.v1 before the profile
   starts. Then ONE profile process (`python -m services.profile`, fresh consumer group) folds
   the backlog; then, on a fresh PostgreSQL, TWO processes in one group (--scale-to) fold it
   again, to show how throughput scales with consumers. Measured: from the first batch
   committed to the moment the offsets recorded (profile.consumer_offsets, committed with the
   effects) reach the topic's end offsets; so process start-up and the first fetch are
   excluded. The profiles are then checked against the totals the generator counted
   (customers, orders, revenue, page views).
   It runs on a durable PostgreSQL (fsync and synchronous_commit on, as in production) and,
   with --durability both, on a non-durable one as well (fsync, synchronous_commit
   and full_page_writes off, as the test suite runs it) to show what the commit flushes cost.
2. latency: ingest and the profile run together (durable PostgreSQL, the profile already
   holding the throughput scenario's customers). Events are posted to ingest at a constant
   rate in /v1/batch requests of --latency-batch events on a fixed schedule (open loop: a slow
   answer does not delay the next request), over a few keep-alive connections. For each event:
   the time ingest acknowledged it (its HTTP 200 reached the client) and the time the profile
   committed it. The profile records its consumer offsets in the same transaction as the
   event's effects (touchpoint row, customer row, outbox), so the event is committed when its
   partition's recorded offset (profile.consumer_offsets) first passes the event's offset. The
   offsets are polled every --poll-ms; afterwards touchpoints.v1 is read back to find each
   event's partition and offset. A figure is an upper bound, late by at most one poll interval
   plus one query. It does not include the outbox relay's publish to profiles.v1.

Results go to the terminal and bench/profile/results.md. Everything it started is stopped at
the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import math
import shlex
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import (
    ADMIN_TOKEN,
    NO_RATE_LIMIT,
    CpuMeter,
    ServiceProcess,
    create_write_key,
    end_offsets,
    kafka_processes,
    local_kafka,
    log,
    machine,
    percentile,
    pg_dsn,
    postgres_processes,
    postgres_version,
    profile_summary,
    service_env,
    settings_for,
    stopped_on_sigterm,
    wait_until_quiet,
    write_results_file,
)
from bench.profile.events import Expected, generate, touchpoint
from schemas.topics import TOPICS, TOUCHPOINTS
from services.devstack.kafka import LocalKafka
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.runtime.db import run_migrations
from services.runtime.kafka import create_producer, ensure_topics
from services.runtime.settings import ServiceSettings

BENCH_DIR = Path(__file__).resolve().parent

# The targets on a 2-core machine with Kafka and PostgreSQL on the same machine.
THROUGHPUT_TARGET = 10_000  # one consumer process, durable PostgreSQL
SCALING_TARGET = 1.7  # two consumer processes against one
LATENCY_TARGET_P99_MS = 250.0
LATENCY_RATE = 2_000
# Above this, unrelated load on the machine makes a scenario's figures unreliable.
BUSY_MACHINE_CORES = 0.3
# Versions recorded with the results.
PROFILE_PACKAGES = ["pydantic", "aiokafka", "sqlalchemy", "asyncpg", "orjson", "fastapi", "uvicorn"]


# ---------------------------------------------------------------- processes and CPU


def base_env(settings: ServiceSettings) -> dict[str, str]:
    return service_env(settings) | {"RETAIN_ADMIN_TOKEN": ADMIN_TOKEN}


# ---------------------------------------------------------------- Kafka


async def produce_backlog(settings: ServiceSettings, events: int, customers: int) -> Expected:
    """Generate, validate and stamp the traffic, and put it on touchpoints.v1 as ingest would."""
    await ensure_topics(settings, list(TOPICS), client_id="retain-bench")
    traffic = generate(events, customers)
    producer = create_producer(settings, "retain-bench")
    await producer.start()
    try:
        received_at = datetime.now(UTC)
        pending = []
        for raw in traffic.events:
            value = touchpoint(raw, received_at)
            pending.append(
                await producer.send(
                    TOUCHPOINTS, key=value.customer_key.encode(), value=value.to_json()
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return traffic.expected


# ---------------------------------------------------------------- throughput


@dataclass
class Throughput:
    durability: str
    consumers: int
    events: int
    first_commit_events: int
    seconds: float
    from_start_seconds: float
    cpu: dict[str, float]
    checks: dict[str, tuple[Any, Any]]

    @property
    def rate(self) -> float:
        return (self.events - self.first_commit_events) / self.seconds

    @property
    def correct(self) -> bool:
        return all(want == got for want, got in self.checks.values())

    def target(self, single: Throughput | None) -> float:
        """One consumer: the absolute target; more: SCALING_TARGET times one consumer's rate."""
        if self.consumers == 1 or single is None:
            return THROUGHPUT_TARGET
        return SCALING_TARGET * single.rate

    def passed(self, single: Throughput | None) -> bool:
        return self.correct and self.rate >= self.target(single)


async def recorded(connection: asyncpg.Connection, group: str) -> int:
    total = await connection.fetchval(
        "SELECT coalesce(sum(next_offset), 0) FROM profile.consumer_offsets "
        "WHERE group_id = $1 AND topic = $2",
        group,
        TOUCHPOINTS,
    )
    return int(total)


async def follow_offsets(
    postgres: LocalPostgres, group: str, end: int, limit_seconds: float
) -> tuple[float, int, float]:
    """(time of the first recorded offsets, records they covered, time they reached `end`)."""
    connection = await asyncpg.connect(pg_dsn(postgres))
    try:
        first_at, first_count = 0.0, 0
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(asyncpg.UndefinedTableError):
                done = await recorded(connection, group)
                now = time.monotonic()
                if done and not first_at:
                    first_at, first_count = now, done
                if done >= end:
                    return first_at, first_count, now
            await asyncio.sleep(0.02)
        raise RuntimeError(f"profile did not catch up within {limit_seconds:.0f}s")
    finally:
        await connection.close()


async def check_profiles(postgres: LocalPostgres, expected: Expected) -> dict[str, tuple[Any, Any]]:
    """Expected vs folded totals; every pair must be equal."""
    connection = await asyncpg.connect(pg_dsn(postgres))
    try:
        row = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM profile.touchpoints) AS touchpoints,
                   count(*) AS customers,
                   coalesce(sum(orders_count), 0) AS orders,
                   coalesce(sum(net_revenue), 0) AS net_revenue,
                   coalesce(sum((snapshot->'activity'->>'page_views')::bigint), 0) AS page_views,
                   count(*) FILTER (WHERE revision = 0) AS without_snapshot
            FROM profile.customers
            """
        )
    finally:
        await connection.close()
    return {
        "touchpoints stored": (expected.events, row["touchpoints"]),
        "customers": (expected.customers, row["customers"]),
        "sum of orders_count": (expected.orders, row["orders"]),
        "sum of net_revenue": (expected.net_revenue, Decimal(row["net_revenue"]).normalize()),
        "sum of page_views": (expected.page_views, row["page_views"]),
        "customers without a snapshot": (0, row["without_snapshot"]),
    }


def run_throughput(
    durability: str,
    consumers: int,
    kafka: LocalKafka,
    postgres: LocalPostgres,
    expected: Expected,
    workdir: Path,
    args: argparse.Namespace,
) -> tuple[Throughput, list[ServiceProcess], str]:
    """Fold the backlog with fresh profile processes in one group; returns them still running."""
    settings = settings_for(kafka, postgres)
    asyncio.run(run_migrations(settings, "profile"))
    end = sum(asyncio.run(end_offsets(kafka.bootstrap_servers, TOUCHPOINTS)).values())
    group = f"bench-profile-{uuid.uuid4().hex[:8]}"
    env = base_env(settings) | {
        "RETAIN_CONSUMER_GROUP": group,
        "RETAIN_BATCH_SIZE": str(args.batch_size),
    }
    wait_until_quiet(args.quiet_wait, BUSY_MACHINE_CORES)
    label = f"{durability}, {consumers} consumer{'s' if consumers > 1 else ''}"
    log(f"throughput ({label}): {consumers} profile process(es) fold {end:,} touchpoints")
    services = [
        ServiceProcess(
            "profile",
            env,
            workdir,
            workdir / f"profile-{durability}-{consumers}-{n}.pstats" if args.profile else None,
            label=f"profile-{durability}-{consumers}-{n}",
        )
        for n in range(consumers)
    ]
    meter = CpuMeter(
        {
            "profile": lambda: [service.ps for service in services],
            "postgres": lambda: postgres_processes(postgres),
            "kafka": lambda: kafka_processes(kafka),
            "bench": lambda: [psutil.Process()],
        }
    )
    meter.start()
    first_at, first_count, done_at = asyncio.run(
        follow_offsets(postgres, group, end, args.throughput_timeout)
    )
    cpu = meter.stop()
    checks = asyncio.run(check_profiles(postgres, expected))
    result = Throughput(
        durability,
        consumers,
        end,
        first_count,
        max(1e-9, done_at - first_at),
        done_at - min(service.started for service in services),
        cpu,
        checks,
    )
    log(
        f"throughput ({label}): {result.rate:,.0f} events/s over {result.seconds:.1f}s "
        f"(correct: {result.correct})"
    )
    return result, services, group


# ---------------------------------------------------------------- latency


@dataclass
class Latency:
    rate: int
    batch: int
    seconds: float
    sent: int
    acked: int
    committed: int
    latencies_ms: list[float]
    ack_ms: list[float]
    cpu: dict[str, float]
    poll_ms: float
    failures: list[str]

    @property
    def passed(self) -> bool:
        complete = self.committed == self.acked == self.sent
        return complete and percentile(self.latencies_ms, 99) <= LATENCY_TARGET_P99_MS


class KeepAliveClient:
    """A few persistent HTTP/1.1 connections: far less CPU per request than a general client,
    so the load generator keeps its schedule on a machine the services already keep busy."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self._host, self._port, self._connections = host, port, connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def start(self) -> None:
        for _ in range(self._connections):
            self._idle.put_nowait(await asyncio.open_connection(self._host, self._port))

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        reader, writer = await self._idle.get()
        try:
            writer.write(raw)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            reader, writer = await asyncio.open_connection(self._host, self._port)
            raise
        finally:
            self._idle.put_nowait((reader, writer))
        return status, body


def batch_request(port: int, write_key: str, events: list[dict[str, Any]]) -> bytes:
    body = orjson.dumps({"batch": events})
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def post_schedule(
    client: KeepAliveClient, requests: list[bytes], interval: float
) -> tuple[list[float | None], list[float], list[str]]:
    """Send each request at its scheduled time (open loop: a slow answer delays nothing else).

    Returns when each request was acknowledged (None: it failed), answer times, failures.
    """
    acked: list[float | None] = [None] * len(requests)
    answer_ms: list[float] = []
    failures: list[str] = []

    async def send(index: int) -> None:
        began = time.monotonic()
        try:
            status, body = await client.request(requests[index])
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as error:
            failures.append(repr(error))
            return
        now = time.monotonic()
        if status != 200 or orjson.loads(body) != {"success": True}:
            failures.append(f"{status} {body[:200]!r}")
            return
        acked[index] = now
        answer_ms.append((now - began) * 1000)

    tasks = []
    start = time.monotonic()
    for index in range(len(requests)):
        delay = start + index * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index)))
    await asyncio.gather(*tasks)
    return acked, answer_ms, failures


async def watch_offsets(
    dsn: str,
    group: str,
    poll: float,
    changes: dict[int, list[tuple[float, int]]],
    goal: dict[int, int],
    load_done: asyncio.Event,
    grace: float = 60,
) -> None:
    """Record when each partition's recorded offset moved (it commits with the fold's effects).

    Once the load is done (and `goal` filled with the end offsets), it goes on until the
    offsets reach the goal, for at most `grace` seconds.
    """
    connection = await asyncpg.connect(dsn)
    try:
        statement = await connection.prepare(
            "SELECT partition, next_offset FROM profile.consumer_offsets "
            "WHERE group_id = $1 AND topic = $2"
        )
        deadline = math.inf
        while time.monotonic() < deadline:
            began = time.monotonic()
            # Committed no later than the start of the query whose snapshot shows it.
            for row in await statement.fetch(group, TOUCHPOINTS):
                seen = changes.setdefault(row["partition"], [])
                if not seen or seen[-1][1] != row["next_offset"]:
                    seen.append((began, row["next_offset"]))
            if load_done.is_set():
                deadline = min(deadline, began + grace)
                if all(changes.get(p, [(0, 0)])[-1][1] >= o for p, o in goal.items()):
                    return
            await asyncio.sleep(max(0.0, poll - (time.monotonic() - began)))
    finally:
        await connection.close()


async def positions_of(
    bootstrap: str, start: dict[int, int], end: dict[int, int]
) -> dict[str, tuple[int, int]]:
    """messageId -> (partition, offset) of the touchpoints written between start and end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, tuple[int, int]] = {}
    try:
        wanted = {TopicPartition(TOUCHPOINTS, p): o for p, o in start.items() if end[p] > o}
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + 120
        while wanted and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.offset < end[tp.partition] and record.value is not None:
                        message_id = orjson.loads(record.value)["messageId"]
                        found[message_id] = (tp.partition, record.offset)
                if records and records[-1].offset + 1 >= end[tp.partition]:
                    wanted.pop(tp, None)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return found


def committed_at(changes: list[tuple[float, int]], offset: int) -> float | None:
    """The first poll that saw the partition's recorded offset pass `offset`."""
    index = bisect.bisect_right([next_offset for _, next_offset in changes], offset)
    return changes[index][0] if index < len(changes) else None


async def measure_latency(
    kafka: LocalKafka,
    ingest: ServiceProcess,
    write_key: str,
    dsn: str,
    group: str,
    args: argparse.Namespace,
) -> tuple[list[float], list[float], int, int, int, list[str]]:
    total = args.latency_rate * (args.latency_seconds + args.warmup)
    # More activity of the throughput scenario's shoppers, with new message ids.
    traffic = generate(total, max(1, total // 10), seed=11, message_prefix="lat")
    per_batch = args.latency_batch
    batches = [traffic.events[i : i + per_batch] for i in range(0, total, per_batch)]
    requests = [batch_request(ingest.port, write_key, batch) for batch in batches]
    interval = per_batch / args.latency_rate
    warm = int(args.warmup / interval)
    start = await end_offsets(kafka.bootstrap_servers, TOUCHPOINTS)
    changes: dict[int, list[tuple[float, int]]] = {}
    goal: dict[int, int] = {}
    load_done = asyncio.Event()
    watcher = asyncio.create_task(
        watch_offsets(dsn, group, args.poll_ms / 1000, changes, goal, load_done)
    )
    client = KeepAliveClient("127.0.0.1", ingest.port, args.latency_connections)
    await client.start()
    try:
        acked, answer_ms, failures = await post_schedule(client, requests, interval)
    finally:
        await client.close()
    end = await end_offsets(kafka.bootstrap_servers, TOUCHPOINTS)
    goal.update({p: o for p, o in end.items() if o > start[p]})
    load_done.set()
    await watcher
    where = await positions_of(kafka.bootstrap_servers, start, end)
    latencies: list[float] = []
    acked_count = committed = 0
    for index, batch in enumerate(batches[warm:], start=warm):
        ack = acked[index]
        if ack is None:
            continue
        for event in batch:
            acked_count += 1
            position = where.get(event["messageId"])
            done = committed_at(changes.get(position[0], []), position[1]) if position else None
            if done is not None:
                committed += 1
                latencies.append((done - ack) * 1000)
    sent = (len(batches) - warm) * per_batch
    return latencies, answer_ms, sent, acked_count, committed, failures


def run_latency(
    kafka: LocalKafka,
    postgres: LocalPostgres,
    profile: ServiceProcess,
    group: str,
    workdir: Path,
    args: argparse.Namespace,
) -> Latency:
    settings = settings_for(kafka, postgres)
    write_key = asyncio.run(create_write_key(settings, "bench-storefront"))
    ingest = ServiceProcess(
        "ingest",
        base_env(settings) | NO_RATE_LIMIT,
        workdir,
    )
    try:
        ingest.wait_ready()
        wait_until_quiet(args.quiet_wait, BUSY_MACHINE_CORES)
        log(
            f"latency: {args.latency_rate:,} events/s in batches of {args.latency_batch} for "
            f"{args.warmup}s warm-up + {args.latency_seconds}s"
        )
        meter = CpuMeter(
            {
                "profile": lambda: [profile.ps],
                "ingest": lambda: [ingest.ps],
                "postgres": lambda: postgres_processes(postgres),
                "kafka": lambda: kafka_processes(kafka),
                "bench": lambda: [psutil.Process()],
            }
        )
        meter.start()
        latencies, answer_ms, sent, acked, committed, failures = asyncio.run(
            measure_latency(kafka, ingest, write_key, pg_dsn(postgres), group, args)
        )
        cpu = meter.stop()
    finally:
        ingest.stop()
    if failures:
        log(f"latency: {len(failures)} failed requests, e.g. {failures[0]}")
    result = Latency(
        args.latency_rate,
        args.latency_batch,
        args.latency_seconds,
        sent,
        acked,
        committed,
        latencies,
        answer_ms,
        cpu,
        args.poll_ms,
        failures,
    )
    log(
        f"latency: p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"{committed:,} of {sent:,} committed"
    )
    return result


# ---------------------------------------------------------------- reporting


def machine_info(postgres: LocalPostgres | None) -> dict[str, str]:
    info = machine(PROFILE_PACKAGES)
    if postgres is not None:
        with contextlib.suppress(Exception):
            info["postgresql"] = asyncio.run(postgres_version(postgres))
    return info


def cores(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())


def report(throughputs: list[Throughput], latency: Latency | None, args: argparse.Namespace) -> str:
    lines = [
        "| scenario | target | result | CPU cores used | verdict |",
        "|---|---|---|---|---|",
    ]
    single = next((t for t in throughputs if t.consumers == 1 and t.durability == "durable"), None)
    for t in throughputs:
        bad = {k: v for k, v in t.checks.items() if v[0] != v[1]}
        passed = t.passed(single)
        verdict = ("pass" if passed else "MISS") + ("" if t.correct else f" (WRONG: {bad})")
        target = (
            f">= {THROUGHPUT_TARGET:,} events/s"
            if t.consumers == 1
            else f">= {SCALING_TARGET:g} x one consumer ({t.target(single):,.0f} events/s)"
        )
        lines.append(
            f"| throughput, {t.consumers} consumer process{'es' if t.consumers > 1 else ''}, "
            f"PostgreSQL {t.durability} | {target} "
            f"| {t.rate:,.0f} events/s ({t.events - t.first_commit_events:,} events in "
            f"{t.seconds:.1f}s after the first commit; {t.events / t.from_start_seconds:,.0f}/s "
            f"counting start-up) | {cores(t.cpu)} | {verdict} |"
        )
    if latency is not None:
        lat = latency.latencies_ms
        missing = latency.sent - latency.committed
        verdict = "pass" if latency.passed else "MISS"
        if missing:
            verdict += f" ({missing:,} not acknowledged or not committed)"
        lines.append(
            f"| ingest ack -> profile committed at {latency.rate:,} events/s "
            f"(batches of {latency.batch}) | p99 <= {LATENCY_TARGET_P99_MS:g} ms "
            f"| p50 {percentile(lat, 50):.1f} / p95 {percentile(lat, 95):.1f} / "
            f"p99 {percentile(lat, 99):.1f} / max {max(lat, default=0):.1f} ms over "
            f"{len(lat):,} events (ingest's answer: p50 {percentile(latency.ack_ms, 50):.1f}, "
            f"p99 {percentile(latency.ack_ms, 99):.1f} ms) "
            f"| {cores(latency.cpu)} | {verdict} |"
        )
    lines.append("")
    for t in throughputs:
        lines.append(
            f"Checks, {t.durability}, {t.consumers} consumer(s): "
            + "; ".join(f"{name} {got} (expected {want})" for name, (want, got) in t.checks.items())
        )
    del args
    return "\n".join(lines)


def write_results(path: Path, table: str, info: dict[str, str], args: argparse.Namespace) -> None:
    command = " ".join([".venv/bin/python -m bench.profile.run", *map(shlex.quote, sys.argv[1:])])
    lines = [
        "# Profile benchmark results",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` from the repository root.",
        "",
        table,
        "",
        "## Set-up",
        "",
        f"- Throughput: {args.events:,} touchpoints over {args.customers:,} customers, produced "
        "to touchpoints.v1 (6 partitions, keyed by customer key) before one (then, on a fresh "
        "PostgreSQL, two) `python -m services.profile` start with a fresh consumer group "
        f"(RETAIN_BATCH_SIZE={args.batch_size}); events/s counts from the first committed "
        "batch to the batch that brought the recorded offsets to the end offsets.",
        f"- Latency: one `python -m services.ingest` and the same profile process; "
        f"{args.latency_rate:,} events/s as /v1/batch requests of {args.latency_batch} events "
        f"every {args.latency_batch / args.latency_rate * 1000:g} ms (open loop, "
        f"{args.latency_connections} keep-alive connections), {args.warmup}s warm-up then "
        f"{args.latency_seconds}s measured. Latency = the first poll (every {args.poll_ms:g} ms) "
        "that saw the profile's recorded offset (profile.consumer_offsets, committed in the "
        "same transaction as the event's touchpoint, customer and outbox rows) pass the "
        "event's offset, minus when ingest's 200 reached the client. The relay's publish to "
        "profiles.v1 is not included.",
        "- CPU cores used: CPU seconds per party over the scenario's wall time (2.00 is the "
        "whole machine); `bench` is this script (load generator and poller), `other` is "
        "everything else on the machine.",
    ]
    write_results_file(path, lines, info, BENCH_DIR / "NOTES.md")


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500, help="RETAIN_BATCH_SIZE")
    parser.add_argument(
        "--durability",
        choices=["both", "durable"],
        default="durable",
        help="throughput on a durable PostgreSQL only, or also on a non-durable one",
    )
    parser.add_argument(
        "--scale-to", type=int, default=2, help="also fold with this many consumer processes"
    )
    parser.add_argument("--only", choices=["throughput", "latency"], help="skip the other")
    parser.add_argument("--latency-rate", type=int, default=LATENCY_RATE)
    parser.add_argument("--latency-batch", type=int, default=20, help="events per request")
    parser.add_argument("--latency-seconds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="latency warm-up seconds")
    parser.add_argument("--latency-connections", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--throughput-timeout", type=float, default=600)
    parser.add_argument("--quiet-wait", type=float, default=120)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the profile service under cProfile and print where its time goes",
    )
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # The scaled run goes before the single one, whose profile then serves the latency scenario
    # (which adds events to touchpoints.v1: a later run would fold more than the backlog).
    runs = [("durable", 1)] if args.durability == "durable" else [("fast", 1), ("durable", 1)]
    if args.only == "latency":
        runs = [("durable", 1)]
    elif args.scale_to > 1:
        runs.insert(-1, ("durable", args.scale_to))
    throughputs: list[Throughput] = []
    latency: Latency | None = None
    profiles: list[Path] = []
    info: dict[str, str] = {}
    summary = ""
    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="retain-bench-profile-") as tmp:
        workdir = Path(tmp)
        kafka = local_kafka(workdir)
        servers: list[LocalPostgres] = []
        services: list[ServiceProcess] = []
        try:
            log(f"working in {workdir}; starting Kafka")
            kafka.start()
            expected = Expected()
            for n, (mode, consumers) in enumerate(runs):
                # Each run starts from an empty PostgreSQL, so every one folds the same backlog.
                postgres = LocalPostgres(
                    data_dir=workdir / f"postgres-{n}",
                    port=free_port(),
                    durable=mode == "durable",
                )
                servers.append(postgres)
                postgres.start()
                if not expected.events:
                    log(f"producing {args.events:,} touchpoints over {args.customers:,} customers")
                    expected = asyncio.run(
                        produce_backlog(settings_for(kafka, postgres), args.events, args.customers)
                    )
                result, started, group = run_throughput(
                    mode, consumers, kafka, postgres, expected, workdir, args
                )
                services += started
                if args.only != "latency":
                    throughputs.append(result)
                if (mode, consumers) == ("durable", 1) and args.only != "throughput":
                    latency = run_latency(kafka, postgres, started[0], group, workdir, args)
                info = machine_info(postgres)
                for service in started:
                    service.stop()
                if args.profile:
                    profiles += [s.profile_to for s in started if s.profile_to]
                postgres.stop()
        finally:
            log("stopping everything")
            for service in services:
                service.stop()
            if args.profile:
                summary = profile_summary(profiles, limit=45)
            for server in servers:
                with contextlib.suppress(Exception):
                    server.stop()
            kafka.stop()
    table = report(throughputs, latency, args)
    print()
    print(table)
    if args.profile:
        print("\nWhere the profile service spends its time (cProfile, by own time):\n")
        print(summary)
    elif str(args.output) != "-":
        write_results(args.output, table, info, args)
        log(f"wrote {args.output}")
    single = next((t for t in throughputs if t.consumers == 1 and t.durability == "durable"), None)
    ok = all(t.passed(single) for t in throughputs) and (latency is None or latency.passed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
