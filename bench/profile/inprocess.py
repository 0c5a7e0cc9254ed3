"""Where a profile batch spends its time: the fold use case and its store, in process.

    .venv/bin/python -m bench.profile.inprocess [--events 50000] [--customers 5000] [--profile]

Starts its own PostgreSQL (durable, on a free loopback port), migrates the profile schema,
and runs the profile's real transactional consumer (decode, fold use case, PostgreSQL store,
outbox, offsets) over the benchmark's traffic in batches, with no Kafka and no relay. Prints
events/s and the CPU time of this process and of PostgreSQL; `--profile` adds a cProfile
breakdown (which inflates Python-heavy parts).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import UTC, datetime

import psutil

from bench.common import InProcessRecord, postgres_processes, with_durable_postgres
from bench.profile.events import generate, touchpoint
from services.devstack.postgres import LocalPostgres
from services.profile.main import build_fold, decode_touchpoint
from services.profile.settings import ProfileSettings
from services.runtime.db import create_engine, run_migrations
from services.runtime.outbox import Outbox
from services.runtime.settings import Environment
from services.runtime.transactional import TransactionalConsumer


async def _run(args: argparse.Namespace, postgres: LocalPostgres) -> None:
    settings = ProfileSettings(env=Environment.LOCAL, database_url=postgres.url)
    await run_migrations(settings, "profile")
    engine = create_engine(settings)
    received_at = datetime.now(UTC)
    traffic = generate(args.events, args.customers)
    records = [
        InProcessRecord(
            "touchpoints.v1", 0, offset, 0, None, touchpoint(raw, received_at).to_json()
        )
        for offset, raw in enumerate(traffic.events)
    ]
    handler = TransactionalConsumer(
        engine,
        Outbox("profile"),
        group_id="bench",
        dead_letter_topic="touchpoints.dlq.v1",
        decode=decode_touchpoint,
        apply=build_fold(settings),
    )
    database = postgres_processes(postgres)
    me = psutil.Process()
    ours, theirs = me.cpu_times(), sum(p.cpu_times().user + p.cpu_times().system for p in database)
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for start in range(0, len(records), args.batch_size):
        await handler(records[start : start + args.batch_size])
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    after = me.cpu_times()
    database = postgres_processes(postgres)
    db_cpu = sum(p.cpu_times().user + p.cpu_times().system for p in database) - theirs
    own_cpu = (after.user + after.system) - (ours.user + ours.system)
    print(
        f"{len(records)} events in {elapsed:.1f}s: {len(records) / elapsed:,.0f} events/s; "
        f"CPU per event: this process {own_cpu / len(records) * 1e6:.0f} µs, "
        f"PostgreSQL ~{db_cpu / len(records) * 1e6:.0f} µs (its connections come and go)"
    )
    await engine.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="cProfile order, e.g. tottime")
    args = parser.parse_args()
    with_durable_postgres(lambda postgres: _run(args, postgres))


if __name__ == "__main__":
    main()
