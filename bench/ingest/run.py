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
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    NO_RATE_LIMIT,
    CpuMeter,
    ServiceProcess,
    create_write_key,
    end_offsets,
    kafka_processes,
    local_kafka,
    log,
    machine,
    profile_summary,
    service_env,
    settings_for,
    stopped_on_sigterm,
    wait_until_quiet,
    write_results_file,
)
from schemas.topics import TOUCHPOINTS, TOUCHPOINTS_REJECTED
from services.devstack.kafka import LocalKafka
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.runtime.kafka import ensure_topics
from services.runtime.settings import ServiceSettings

BENCH_DIR = Path(__file__).resolve().parent
LOADGEN_DIR = BENCH_DIR / "loadgen"

# The targets on a 2-core machine with Kafka on the same machine.
SINGLE_TARGET_EVENTS_PER_SECOND = 3_500
BATCH_TARGET_EVENTS_PER_SECOND = 50_000
LATENCY_TARGET_P99_MS = 25.0
LATENCY_RATE = 1_000
BATCH_SIZE = 100
# Versions recorded with the results.
INGEST_PACKAGES = [
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "confluent-kafka",
    "orjson",
]
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
        self._env = service_env(settings) | NO_RATE_LIMIT
        self._workdir = workdir
        self._count = count
        self._profile = profile
        self.services: list[ServiceProcess] = []

    @property
    def urls(self) -> list[str]:
        return [service.url for service in self.services]

    def profile_file(self, index: int) -> Path:
        return self._workdir / f"ingest-{index}.pstats"

    def start(self, timeout: float = 90) -> None:
        for index in range(self._count):
            profile_to = self.profile_file(index) if self._profile else None
            self.services.append(
                ServiceProcess("ingest", self._env, self._workdir, profile_to, f"ingest-{index}")
            )
        for service in self.services:
            service.wait_ready(timeout)

    def stop(self, timeout: float = 30) -> None:
        # All at once: they shut down in parallel.
        for service in self.services:
            service.terminate()
        for service in self.services:
            service.wait_stopped(timeout)


# ---------------------------------------------------------------- Kafka checks


def topic_counts(bootstrap: str) -> tuple[int, int]:
    """Records ever received by touchpoints.v1 and by touchpoints.rejected.v1."""

    async def both() -> tuple[int, int]:
        return (
            sum((await end_offsets(bootstrap, TOUCHPOINTS)).values()),
            sum((await end_offsets(bootstrap, TOUCHPOINTS_REJECTED)).values()),
        )

    return asyncio.run(asyncio.wait_for(both(), timeout=60))


async def prepare(settings: ServiceSettings) -> str:
    """Schema, topics and a fresh write key; returns the key."""
    key = await create_write_key(settings, "bench")
    await ensure_topics(settings, client_id="retain-bench")
    return key


# ---------------------------------------------------------------- running


def children_cpu_seconds() -> float:
    """CPU seconds of this script's children that have exited (the load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    ingest = [service.ps for service in replicas.services]
    broker = kafka_processes(kafka)
    wait_until_quiet(quiet_wait, BUSY_MACHINE_CORES, [*ingest, *broker, psutil.Process()])
    meter = CpuMeter(
        {"ingest": lambda: ingest, "kafka": lambda: broker},
        # The generator runs as this script's child: its CPU shows once it has exited.
        counters={"loadgen": children_cpu_seconds},
        children=False,
    )
    meter.start()
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
    # Cores used on average over the whole run of the generator (warm-up included); `other` is
    # whatever else ran on the machine meanwhile (other jobs skew the figures; reported).
    cores = meter.stop()
    after, rejected_after = topic_counts(bootstrap)
    summary = json.loads(done.stdout)
    accepted = max(1, summary["accepted_events_total"])
    cores["ingest_us_per_event"] = meter.used["ingest"] / accepted * 1e6
    return Outcome(scenario, summary, after - before, rejected_after - rejected_before, cores)


# ---------------------------------------------------------------- reporting


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
        "has 6 partitions; ingest's producer is librdkafka's (confluent-kafka): acks=all, "
        "idempotent, murmur2 partitioner.",
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
    ]
    write_results_file(path, lines, info, BENCH_DIR / "NOTES.md")


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
        kafka = local_kafka(workdir)
        postgres = LocalPostgres(data_dir=workdir / "postgres", port=free_port(), durable=False)
        replicas: IngestReplicas | None = None
        try:
            log("starting Kafka and PostgreSQL")
            kafka.start()
            postgres.start()
            settings = settings_for(kafka, postgres)
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
        write_results(args.output, outcomes, machine(INGEST_PACKAGES, go=True), args)
        log(f"wrote {args.output}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
