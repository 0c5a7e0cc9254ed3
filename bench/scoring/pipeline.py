"""Incremental rescoring end to end: profiles.v1 to scores.v1 via Kafka, scoring, the relay.

Profile changes produced to profiles.v1 until their records are seen on scores.v1, through
real scoring processes, a Kafka broker and the outbox relay.

    .venv/bin/python -m bench.scoring.pipeline [--customers 20000] [--scale-to 2] [--repeat 1]
        [--paced-rate 500] [--paced-seconds 20]

It starts a local Kafka broker and a durable PostgreSQL on free loopback ports (data in a
temporary folder), migrates scoring's schema and seeds `--customers` customers of a synthetic
shop (bench/scoring/shop.py: their orders in scoring's ledger, and their profile at
revision 1) through scoring's own store. One `python -m services.scoring` then refits
(POST /v1/refit), which rescores everyone; once the relay has published that and the
lifecycle consumer has read the transitions it announced, the process stops.

Then, per round, fresh scoring processes start in the default consumer groups (1, then
`--scale-to`; profiles.v1 has 6 partitions) and, once each holds partitions, the benchmark
produces one profiles.v1 change per customer (a valid ProfileSnapshot keyed by customer id,
revision one higher than the last; each change alters the customer's historical CLV, so each
must give one scores.v1 record) and reads scores.v1 from the offsets it had before. Measured:
from the first produce to the moment the benchmark sees the last customer's new scores.v1
record, i.e. consumed, scored, committed (with the outbox row and the offsets) and relayed.
Per customer, produce -> scores.v1 seen; as the whole round is produced at once (a backlog),
that latency is mostly queueing. A last round (`--paced-rate`, 500/s for `--paced-seconds`,
20) produces changes steadily, below what one process sustains, for the latency of a change
in normal operation: the issue asks for every change rescored within a second. Every record
seen is checked (the customer's new historical CLV, the fitted model), and every customer must
be seen exactly once. Meanwhile scoring's recorded offsets and outbox are polled: when it had
committed every change, and how many rows waited for the relay at most, tell whether consuming
or relaying set the pace.

CPU seconds are metered per party over each round: the scoring processes, Kafka,
PostgreSQL (all its processes), this benchmark (producer, scores.v1 reader, poller) and the
rest of the machine. `--profile` runs the scoring processes under cProfile and prints where their
time goes instead of writing results (cProfile inflates Python-heavy parts).

Results go to the terminal and to a section of bench/scoring/results.md (the other sections
are kept). Everything started is stopped at the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import (
    ADMIN_TOKEN,
    CpuMeter,
    ServiceProcess,
    end_offsets,
    kafka_processes,
    local_kafka,
    log,
    machine,
    own_time_by_part,
    percentile,
    pg_dsn,
    postgres_processes,
    postgres_version,
    profile_summary,
    service_env,
    settings_for,
    stop_all,
    stopped_on_sigterm,
    wait_for_group,
    wait_until_quiet,
)
from bench.scoring.report import write_section
from bench.scoring.shop import Customer, customers, snapshot
from schemas.topics import LIFECYCLE, PROFILES, PROFILES_DLQ, SCORES, TOPICS
from services.devstack.kafka import LocalKafka
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.runtime.db import create_engine, run_migrations
from services.runtime.kafka import create_producer, ensure_topics
from services.runtime.settings import ServiceSettings
from services.scoring.domain.profile_view import ScoredProfile
from services.scoring.score_batch import ProfileUpdate
from services.scoring.store import PostgresScoringStore

BENCH_DIR = Path(__file__).resolve().parent
SECTION = "## Incremental rescoring end to end (Kafka, scoring processes, relay)"
TARGET = 20_000  # profile changes/s, profiles.v1 consumed to scores.v1 committed (the issue)
LATENCY_TARGET_MS = 1000.0  # "every changed profile is rescored ... within a second"
# The scoring service's default consumer groups: `<prefix>-profiles` and `<prefix>-lifecycle`.
GROUP_PREFIX = "retain-scoring"
GROUPS = {PROFILES: f"{GROUP_PREFIX}-profiles", LIFECYCLE: f"{GROUP_PREFIX}-lifecycle"}
# Above this, unrelated load on the machine makes a round's figures unreliable.
BUSY_MACHINE_CORES = 0.3
PACKAGES = ["pydantic", "aiokafka", "sqlalchemy", "asyncpg", "orjson", "numpy", "scipy"]


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    kafka: LocalKafka
    postgres: LocalPostgres
    settings: ServiceSettings
    workdir: Path
    shop: list[Customer]
    profile_files: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return service_env(self.settings) | {
            "RETAIN_ADMIN_TOKEN": ADMIN_TOKEN,
            "RETAIN_SCORING_CONSUMER_GROUP": GROUP_PREFIX,
        }

    def start_scoring(self, count: int, label: str, profile: bool) -> list[ServiceProcess]:
        started = []
        try:
            for n in range(count):
                name = f"scoring-{label}-{n}"
                profile_to = self.workdir / f"{name}.pstats" if profile else None
                service = ServiceProcess("scoring", self.env(), self.workdir, profile_to, name)
                started.append(service)
                if profile_to is not None:
                    self.profile_files.append(profile_to)
            for service in started:
                service.wait_ready()
            for group in GROUPS.values():
                asyncio.run(wait_for_group(self.kafka.bootstrap_servers, group, count))
        except BaseException:
            stop_all(started)
            raise
        return started


async def seed(stack: Stack, now: datetime) -> None:
    """Scoring's ledger and the profiles at revision 1, through scoring's own store."""
    await ensure_topics(stack.settings, list(TOPICS), client_id="retain-bench")
    await run_migrations(stack.settings, "scoring")
    engine = create_engine(stack.settings)
    try:
        orders = [(c.customer_id, o) for c in stack.shop for o in c.orders]
        for start in range(0, len(orders), 5000):
            async with engine.begin() as connection:
                await PostgresScoringStore(connection).add_orders(orders[start : start + 5000])
        for start in range(0, len(stack.shop), 2000):
            updates = []
            for customer in stack.shop[start : start + 2000]:
                profile = snapshot(customer, 1, now)
                raw = profile.model_dump_json().encode()
                view = ScoredProfile.model_validate_json(raw)
                updates.append(ProfileUpdate(customer.customer_id, view, raw))
            async with engine.begin() as connection:
                await PostgresScoringStore(connection).save_profiles(updates)
    finally:
        await engine.dispose()


async def settled(stack: Stack, limit_seconds: float) -> None:
    """Until scoring's outbox is empty and its consumers have read their topics to the end."""
    connection = await asyncpg.connect(pg_dsn(stack.postgres))
    try:
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            waiting = await connection.fetchval("SELECT count(*) FROM scoring.outbox")
            if not waiting:
                behind = 0
                for topic, group in GROUPS.items():
                    end = sum((await end_offsets(stack.kafka.bootstrap_servers, topic)).values())
                    done = await connection.fetchval(
                        "SELECT coalesce(sum(next_offset), 0) FROM scoring.consumer_offsets "
                        "WHERE group_id = $1 AND topic = $2",
                        group,
                        topic,
                    )
                    behind += end - int(done)
                if not behind:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"scoring did not settle within {limit_seconds:.0f}s")
    finally:
        await connection.close()


async def tidy(stack: Stack) -> None:
    """Every round starts from the same database state: no dead rows, no checkpoint due."""
    connection = await asyncpg.connect(pg_dsn(stack.postgres))
    try:
        await connection.execute(
            "VACUUM (ANALYZE) scoring.profiles, scoring.orders, scoring.scores, "
            "scoring.outbox, scoring.consumer_offsets"
        )
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


@dataclass
class Refit:
    seconds: float
    settle_seconds: float
    status: str
    customers: int
    scores: int


def refit(stack: Stack, args: argparse.Namespace) -> Refit:
    """A fitted model and everyone's scores: POST /v1/refit on one scoring process."""
    [service] = stack.start_scoring(1, "refit", profile=False)
    try:
        log(f"refit: POST /v1/refit (fits, then rescores all {len(stack.shop):,} customers)")
        started = time.monotonic()
        answer = httpx.post(
            f"{service.url}/v1/refit",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=args.timeout,
        )
        answer.raise_for_status()
        answered = time.monotonic()
        model = answer.json()
        asyncio.run(settled(stack, args.timeout))
        done = time.monotonic()
    finally:
        service.stop()
    scores = sum(asyncio.run(end_offsets(stack.kafka.bootstrap_servers, SCORES)).values())
    result = Refit(answered - started, done - started, model["status"], model["customers"], scores)
    log(
        f"refit: model {result.status} on {result.customers:,} customers in "
        f"{result.seconds:.1f}s; relayed and settled after {result.settle_seconds:.1f}s"
    )
    if result.status != "fitted":
        raise RuntimeError(f"the refit did not fit a model: {result.status}, {model['reason']}")
    return result


# ---------------------------------------------------------------- one round


@dataclass
class Round:
    processes: int
    revision: int
    changes: int
    seconds: float  # first produce to the last customer's scores.v1 record seen
    produce_seconds: float  # first produce to the last acknowledgement
    commit_seconds: float  # first produce to every change committed by scoring
    outbox_peak: int  # the most rows waiting for the relay at once
    latencies_ms: list[float]
    cpu_seconds: dict[str, float]
    seen: int
    duplicates: int
    wrong: list[str]
    transitions: int
    dead_letters: int
    per_process_cpu: list[float]
    paced_rate: float | None = None  # changes/s produced steadily (a latency round), or None

    @property
    def rate(self) -> float:
        return self.changes / self.seconds

    @property
    def correct(self) -> bool:
        return self.seen == self.changes and not self.wrong and not self.duplicates

    @property
    def passed(self) -> bool:
        if self.paced_rate is not None:  # every change rescored within a second
            return self.correct and percentile(self.latencies_ms, 99) <= LATENCY_TARGET_MS
        return self.correct and self.rate >= TARGET


@dataclass
class Observed:
    produced_at: dict[bytes, float] = field(default_factory=dict)
    seen_at: dict[bytes, float] = field(default_factory=dict)
    duplicates: int = 0
    wrong: list[str] = field(default_factory=list)
    committed_at: float = 0.0  # every change committed by scoring (not yet relayed)
    outbox_peak: int = 0


async def read_scores(
    bootstrap: str,
    start: dict[int, int],
    expected: dict[bytes, Decimal],
    observed: Observed,
    ready: asyncio.Event,
    limit_seconds: float,
) -> None:
    """Read scores.v1 from `start` until every expected customer's record was seen."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(SCORES, p) for p in start]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp.partition])
        ready.set()
        deadline = time.monotonic() + limit_seconds
        while len(observed.seen_at) < len(expected) and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in fetched.values():
                for record in records:
                    key = record.key or b""
                    if key in observed.seen_at:
                        observed.duplicates += 1
                        continue
                    observed.seen_at[key] = now
                    want = expected.get(key)
                    scores = orjson.loads(record.value) if record.value else None
                    if want is None or scores is None:
                        observed.wrong.append(f"{key!r}: unexpected record")
                    elif Decimal(scores["clv_historical"]) != want or scores["model"] != "fitted":
                        observed.wrong.append(
                            f"{key.decode()}: clv_historical {scores['clv_historical']} "
                            f"(expected {want}), model {scores['model']}"
                        )
    finally:
        await consumer.stop()


async def produce(
    stack: Stack,
    messages: list[tuple[bytes, bytes]],
    observed: Observed,
    rate: float | None = None,
) -> tuple[float, float]:
    """Produce the changes (acks=all, as the profile service does), all at once or steadily at
    `rate` per second; (first send, last ack)."""
    producer = create_producer(stack.settings, "retain-bench")
    await producer.start()
    try:
        pending = []
        first = time.monotonic()
        for n, (key, value) in enumerate(messages):
            if rate is not None:
                await asyncio.sleep(max(0.0, first + n / rate - time.monotonic()))
            observed.produced_at[key] = time.monotonic()
            pending.append(await producer.send(PROFILES, key=key, value=value))
            if len(pending) >= (100 if rate is not None else 1000):
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return first, time.monotonic()
    finally:
        await producer.stop()


async def watch_progress(
    stack: Stack, goal: int, observed: Observed, stop: asyncio.Event, poll: float = 0.05
) -> None:
    """When scoring had committed every change (its recorded offsets on profiles.v1 reached
    `goal`), and the outbox's peak: which of consuming and relaying kept the other waiting."""
    connection = await asyncpg.connect(pg_dsn(stack.postgres))
    try:
        statement = await connection.prepare(
            "SELECT (SELECT count(*) FROM scoring.outbox), "
            "(SELECT coalesce(sum(next_offset), 0) FROM scoring.consumer_offsets "
            "WHERE group_id = $1 AND topic = $2)"
        )
        while True:
            last = stop.is_set()
            began = time.monotonic()
            waiting, done = await statement.fetchrow(GROUPS[PROFILES], PROFILES)
            observed.outbox_peak = max(observed.outbox_peak, int(waiting))
            if int(done) >= goal and not observed.committed_at:
                # Committed no later than the start of the query whose snapshot shows it, and
                # before its scores.v1 records were seen.
                seen = max(observed.seen_at.values(), default=began)
                observed.committed_at = min(began, seen) if last else began
            if last:
                return
            await asyncio.sleep(max(0.0, poll - (time.monotonic() - began)))
    finally:
        await connection.close()


async def measure(
    stack: Stack,
    messages: list[tuple[bytes, bytes]],
    expected: dict[bytes, Decimal],
    meter: CpuMeter,
    limit_seconds: float,
    rate: float | None = None,
) -> tuple[Observed, float, float]:
    bootstrap = stack.kafka.bootstrap_servers
    start = await end_offsets(bootstrap, SCORES)
    goal = sum((await end_offsets(bootstrap, PROFILES)).values()) + len(messages)
    observed = Observed()
    ready, stop = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(
        read_scores(bootstrap, start, expected, observed, ready, limit_seconds)
    )
    await ready.wait()
    watcher = asyncio.create_task(watch_progress(stack, goal, observed, stop))
    meter.start()
    try:
        first, acked = await produce(stack, messages, observed, rate)
        await reader
    finally:
        meter.stop()
        stop.set()
        await watcher
    return observed, first, acked


def run_round(
    stack: Stack,
    processes: int,
    revision: int,
    args: argparse.Namespace,
    rate: float | None = None,
    changes: int | None = None,
) -> Round:
    label = f"{processes} scoring process{'es' if processes > 1 else ''}"
    if rate is not None:
        label += f", paced at {rate:,.0f}/s"
    now = datetime.now(UTC)
    messages = []
    expected = {}
    for customer in stack.shop[:changes]:
        key = customer.customer_id.encode()
        messages.append((key, snapshot(customer, revision, now).model_dump_json().encode()))
        expected[key] = customer.net(revision)
    asyncio.run(tidy(stack))
    services = stack.start_scoring(processes, f"{processes}p-r{revision}", args.profile)
    try:
        ours = [*(s.ps for s in services), *kafka_processes(stack.kafka), psutil.Process()]
        ours += postgres_processes(stack.postgres)
        others = wait_until_quiet(args.quiet_wait, BUSY_MACHINE_CORES, ours)
        log(
            f"round ({label}): producing {len(messages):,} profile changes at revision "
            f"{revision} (other processes used {others:.2f} cores just before)"
        )
        lifecycle_before = sum(
            asyncio.run(end_offsets(stack.kafka.bootstrap_servers, LIFECYCLE)).values()
        )
        dlq_before = sum(
            asyncio.run(end_offsets(stack.kafka.bootstrap_servers, PROFILES_DLQ)).values()
        )
        # Each scoring process is a party of its own, so their balance shows.
        meter = CpuMeter(
            {s.name: partial(list, [s.ps]) for s in services}
            | {
                "kafka": lambda: kafka_processes(stack.kafka),
                "postgres": lambda: postgres_processes(stack.postgres),
                "bench": lambda: [psutil.Process()],
            }
        )
        observed, first, acked = asyncio.run(
            measure(stack, messages, expected, meter, args.timeout, rate)
        )
        asyncio.run(settled(stack, 60))
        lifecycle_after = sum(
            asyncio.run(end_offsets(stack.kafka.bootstrap_servers, LIFECYCLE)).values()
        )
        dlq_after = sum(
            asyncio.run(end_offsets(stack.kafka.bootstrap_servers, PROFILES_DLQ)).values()
        )
    finally:
        stop_all(services)
    last_seen = max(observed.seen_at.values(), default=time.monotonic())
    result = Round(
        processes=processes,
        revision=revision,
        changes=len(messages),
        seconds=max(1e-9, last_seen - first),
        produce_seconds=acked - first,
        commit_seconds=observed.committed_at - first if observed.committed_at else math.nan,
        outbox_peak=observed.outbox_peak,
        latencies_ms=[
            (seen - observed.produced_at[key]) * 1000
            for key, seen in observed.seen_at.items()
            if key in observed.produced_at
        ],
        cpu_seconds={"scoring": sum(meter.used[s.name] for s in services)}
        | {name: used for name, used in meter.used.items() if not name.startswith("scoring-")},
        seen=len(observed.seen_at),
        duplicates=observed.duplicates,
        wrong=observed.wrong,
        transitions=lifecycle_after - lifecycle_before,
        dead_letters=dlq_after - dlq_before,
        per_process_cpu=[meter.used[s.name] for s in services],
        paced_rate=rate,
    )
    log(
        f"round ({label}): {result.rate:,.0f} changes/s ({result.seen:,} of {result.changes:,} "
        f"seen in {result.seconds:.1f}s; correct: {result.correct}); CPU s: " + cpu_text(result)
    )
    return result


# ---------------------------------------------------------------- reporting


def cpu_text(result: Round) -> str:
    parts = []
    for name, used in result.cpu_seconds.items():
        split = ""
        if name == "scoring" and len(result.per_process_cpu) > 1:
            split = " = " + " + ".join(f"{cpu:.1f}" for cpu in result.per_process_cpu)
        parts.append(
            f"{name} {used:.1f}{split} ({used / result.seconds:.2f} cores, "
            f"{used / result.changes * 1e6:,.0f} µs/change)"
        )
    return ", ".join(parts)


def table(rounds: list[Round]) -> list[str]:
    lines = [
        "| scenario | target | result | produce -> scores.v1 seen | CPU seconds (cores; per "
        "change) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    # Scaling against the fastest one-process round: the one least slowed by other work.
    single = max((r for r in rounds if r.processes == 1), key=lambda r: r.rate, default=None)
    for r in rounds:
        lat = r.latencies_ms
        scaling = ""
        if r.processes > 1 and single is not None:
            scaling = f"; {r.rate / single.rate:.2f}x the fastest one-process round"
        verdict = "pass" if r.passed else "MISS"
        if not r.correct:
            verdict += f" (WRONG: {r.seen:,} seen, {r.duplicates} twice, {len(r.wrong)} wrong)"
        if r.paced_rate is not None:
            lines.append(
                f"| 1 scoring process, {r.changes:,} changes produced steadily at "
                f"{r.paced_rate:,.0f}/s, revision {r.revision} | every change rescored within "
                f"a second: p99 <= {LATENCY_TARGET_MS:,.0f} ms | {r.rate:,.0f} changes/s | "
                f"p50 {percentile(lat, 50):,.0f} / p99 {percentile(lat, 99):,.0f} / max "
                f"{max(lat, default=0):,.0f} ms | {cpu_text(r)} | {verdict} |"
            )
            continue
        lines.append(
            f"| {r.processes} scoring process{'es' if r.processes > 1 else ''}, "
            f"revision {r.revision} | >= {TARGET:,} changes/s | {r.rate:,.0f} changes/s "
            f"({r.changes:,} in {r.seconds:.1f} s{scaling}; produced in "
            f"{r.produce_seconds:.1f} s, committed by scoring in {r.commit_seconds:.1f} s; "
            f"outbox peak {r.outbox_peak:,} rows) | p50 {percentile(lat, 50):,.0f} / p99 "
            f"{percentile(lat, 99):,.0f} / max {max(lat, default=0):,.0f} ms "
            f"| {cpu_text(r)} | {verdict} |"
        )
    return lines


def section(
    rounds: list[Round], fit: Refit, info: dict[str, str], args: argparse.Namespace
) -> list[str]:
    command = " ".join(
        [".venv/bin/python -m bench.scoring.pipeline", *map(shlex.quote, sys.argv[1:])]
    )
    checks = "; ".join(
        f"{r.processes} process(es), revision {r.revision}: {r.seen:,} of {r.changes:,} "
        f"customers' new scores.v1 record seen, {r.duplicates} twice, {len(r.wrong)} wrong, "
        f"{r.transitions} lifecycle.v1 transitions, {r.dead_letters} dead letters"
        for r in rounds
    )
    lines = [
        SECTION,
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` from the repository "
        "root (`make bench-scoring-pipeline` runs the default).",
        "",
        *table(rounds),
        "",
        "Set-up:",
        "",
        f"- {args.customers:,} customers of a synthetic shop (bench/scoring/shop.py: orders "
        "drawn as the CLV models assume, ~2.4 per customer; profile snapshots of ~2.3 KB with "
        "identity, traits, consent, acquisition, activity, commerce and email engagement) "
        "seeded into scoring's ledger and profiles through its store. One scoring process "
        f"refitted: POST /v1/refit answered in {fit.seconds:.1f} s (model {fit.status} on "
        f"{fit.customers:,} customers, then everyone rescored), everyone's scores.v1 relayed "
        f"and the transitions read back by the lifecycle consumer after "
        f"{fit.settle_seconds:.1f} s.",
        "- Per round: fresh `python -m services.scoring` processes in the default consumer "
        "groups (profiles.v1 and lifecycle.v1 have 6 partitions); the round starts once each "
        "process holds partitions. Durable PostgreSQL (VACUUM ANALYZE and CHECKPOINT before "
        "each round) and one broker, all on this machine. One profiles.v1 change per customer "
        "(revision + 1: net revenue a cent lower, so historical CLV changes and each change "
        "must give one scores.v1 record) produced at once, acks=all, keyed by customer id.",
        "- Result: from the first produce to the benchmark seeing the last customer's new "
        "record on scores.v1 (consumed, scored, committed with the outbox rows and offsets, "
        "relayed). `committed by scoring`: when scoring's recorded offsets on profiles.v1 "
        "(committed with the effects) covered every change, polled every 50 ms; the rest is "
        "the relay's tail. `outbox peak`: most rows waiting for the relay at one poll.",
        "- Latency: per customer, produce -> record seen. With the whole round produced at "
        "once it is mostly queueing behind the backlog; the paced round (changes produced "
        "steadily below what one process sustains) measures the latency a change sees in "
        "normal operation, against the issue's 'rescored within a second'.",
        "- CPU seconds per party over the round (cores = CPU seconds / the round's wall time, "
        "2.00 is the whole machine; per change = CPU seconds / changes): `scoring` all "
        "scoring processes (= each one's), `postgres` all its processes, `kafka` the "
        "broker's JVM, `bench` this script (producer, scores.v1 reader, poller), `other` "
        "everything else on the machine.",
        f"- Checks: {checks}.",
        "",
        "Machine:",
        "",
        *(f"- {name}: {value}" for name, value in info.items()),
    ]
    notes = BENCH_DIR / "PIPELINE_NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    return lines


# Where own time in scoring's own code goes (cProfile file names), before the libraries.
SCORING_PARTS = (
    ("/services/scoring/domain/", "scoring: domain (scores, recommendations, standing)"),
    ("/services/scoring/", "scoring: use case and store"),
)


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="one change each per round")
    parser.add_argument(
        "--scale-to", type=int, default=2, help="then this many scoring processes (1: skip)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per process count, one after the other"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds per step at most")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="seconds to wait at most for a quiet machine before each round",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run scoring under cProfile and print where its time goes (no results file)",
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=500,
        help="then a latency round: changes produced steadily at this rate (0: skip)",
    )
    parser.add_argument("--paced-seconds", type=float, default=20, help="length of that round")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    counts = [1] if args.scale_to <= 1 else [1, args.scale_to]
    rounds: list[Round] = []
    info: dict[str, str] = {}
    summaries: list[tuple[str, str]] = []
    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="retain-bench-scoring-") as tmp:
        workdir = Path(tmp)
        kafka = local_kafka(workdir)
        postgres = LocalPostgres(data_dir=workdir / "postgres", port=free_port(), durable=True)
        try:
            log(f"working in {workdir}; starting Kafka and PostgreSQL")
            kafka.start()
            postgres.start()
            now = datetime.now(UTC)
            stack = Stack(kafka, postgres, settings_for(kafka, postgres), workdir, [])
            log(f"seeding {args.customers:,} customers")
            stack.shop = customers(args.customers, now)
            asyncio.run(seed(stack, now))
            fit = refit(stack, args)
            revision = 1
            for _ in range(args.repeat):
                for processes in counts:
                    revision += 1
                    before = len(stack.profile_files)
                    rounds.append(run_round(stack, processes, revision, args))
                    if args.profile:
                        files = stack.profile_files[before:]
                        title = f"{processes} process(es), revision {revision}"
                        summaries.append(
                            (f"{title}, own time by part", own_time_by_part(files, SCORING_PARTS))
                        )
                        for sort in ("cumulative", "tottime"):
                            summaries.append(
                                (f"{title}, by {sort}", profile_summary(files, limit=45, sort=sort))
                            )
            if args.paced_rate > 0:
                revision += 1
                changes = min(len(stack.shop), int(args.paced_rate * args.paced_seconds))
                rounds.append(
                    run_round(stack, 1, revision, args, rate=args.paced_rate, changes=changes)
                )
            info = machine(PACKAGES)
            with contextlib.suppress(Exception):
                info["postgresql"] = asyncio.run(postgres_version(postgres))
        finally:
            log("stopping everything")
            with contextlib.suppress(Exception):
                postgres.stop()
            kafka.stop()
    print()
    print("\n".join(table(rounds)))
    if args.profile:
        for title, summary in summaries:
            print(f"\nWhere the scoring processes spend their time ({title}):\n")
            print(summary)
    elif str(args.output) != "-":
        write_section(args.output, SECTION, section(rounds, fit, info, args))
        log(f"wrote the section '{SECTION[3:]}' of {args.output}")
    return 0 if all(r.passed for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
