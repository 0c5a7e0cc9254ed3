"""Demo benchmark: `retain demo`'s historical backfill against the running local stack.

    make up; .venv/bin/python -m bench.demo.run [--customers 10000] [--days 180] [--seed N]

Unlike the other benchmarks it starts nothing: it measures the stack `make up` runs (the
services with their default settings, ingest's rate limit of 2,000 events/s per source
included), as a newcomer meets it. The backfill is the one `retain demo` runs, in this
process: the simulated shoppers' events sent through ingest with the dev write key, in
gzipped batches of 100, four requests in flight, until ingest acknowledged the last one. Then,
as `retain demo` does, the spend is set and the benchmark waits until profile and scoring have
folded everything (scoring's segment figures stop moving) and refits: reported apart.

The seed defaults to the clock, so each run sends events the stack has not seen (the same
seed again would be deduplicated downstream, and cheaper). CPU seconds are metered per party
over the backfill: each service, Kafka, PostgreSQL, Mailpit, this process and the rest of the
machine. It holds the benchmarks' lock while it measures. Results go to the terminal and to
bench/demo/results.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.common import (
    CpuMeter,
    exclusive_machine,
    kafka_processes,
    log,
    machine,
    mailpit_processes,
    postgres_processes,
    write_results_file,
)
from services.demo.storefront import Shape, spend_plan
from services.devstack import demo_cli
from services.devstack.operate import set_spend
from services.devstack.remote import ServiceApi, local_value
from services.devstack.stack import SERVICES, LocalStack, StackConfig

HERE = Path(__file__).parent
TARGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description="Time `retain demo`'s backfill.")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()

    stack = LocalStack(StackConfig.from_environment())
    running = stack.service_processes()
    if set(running) != set(SERVICES):
        raise SystemExit("bench: start the local stack first (`make up`); running: " + str(running))
    config = stack.config
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shape = Shape(args.seed, args.customers, args.days, end)
    parties: dict[str, Callable[[], list[psutil.Process]]] = {
        name: _service(stack, name) for name in SERVICES
    }
    parties |= {
        "kafka": lambda: kafka_processes(stack.kafka),
        "postgres": lambda: postgres_processes(stack.postgres),
        "mailpit": lambda: mailpit_processes(stack.mailpit),
    }
    own = psutil.Process()
    meter = CpuMeter(parties, counters={"bench": lambda: sum(own.cpu_times()[:2])}, children=False)
    url = config.service_url("ingest")
    key = local_value(config, "RETAIN_DEV_WRITE_KEY")
    token = local_value(config, "RETAIN_ADMIN_TOKEN")
    with exclusive_machine():
        log(f"backfill: {shape.shoppers:,} shoppers over {shape.days} days, seed {shape.seed}")
        meter.start()
        totals, seconds = demo_cli.backfill(shape, url, key, concurrency=4)
        cores = meter.stop()
        used = dict(meter.used)
        log(f"{totals.accepted:,} events in {seconds:.1f} s; waiting for the pipeline")
        settle_started = time.monotonic()
        with ServiceApi("scoring", config.service_url("scoring"), token) as scoring:
            set_spend(scoring, spend_plan(shape))
            demo_cli.settle_and_refit(scoring)
        settled = time.monotonic() - settle_started

    verdict = "MET" if seconds < TARGET_SECONDS else "MISS"
    order = [*SERVICES, "kafka", "postgres", "mailpit", "bench", "other"]
    cpu = " / ".join(f"{cores[name]:.2f}" for name in order)
    cpu_seconds = ", ".join(f"{name} {used[name]:.1f}" for name in order)
    lines = [
        "# Demo benchmark results",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `.venv/bin/python -m bench.demo.run "
        f"--customers {args.customers} --days {args.days}` (`make bench-demo`) against the stack "
        "`make up` runs.",
        "",
        f"| scenario | target | result | CPU cores used ({' / '.join(order)}) | verdict |",
        "|---|---|---|---|---|",
        f"| `retain demo` backfill, {shape.shoppers:,} customers over {shape.days} days | "
        f"< {TARGET_SECONDS:.0f} s | {seconds:.1f} s: {totals.accepted:,} events accepted "
        f"({totals.accepted / seconds:,.0f}/s), {totals.rejected} rejected, {totals.requests:,} "
        f"requests ({totals.retries:,} answered 429 or failed and were sent again) | {cpu} | "
        f"{verdict} |",
        "",
        f"CPU seconds over the backfill: {cpu_seconds}.",
        "",
        f"Then, as `retain demo` goes on: spend set, profile and scoring caught up and the model "
        f"refitted {settled:.1f} s after the last batch was acknowledged.",
    ]
    info = machine(["aiokafka", "httpx", "rich", "sqlalchemy", "asyncpg", "pydantic"])
    write_results_file(HERE / "results.md", lines, info, HERE / "NOTES.md")
    print("\n".join(lines))


def _service(stack: LocalStack, name: str) -> Callable[[], list[psutil.Process]]:
    def processes() -> list[psutil.Process]:
        process = stack.service_processes().get(name)
        return [process] if process else []

    return processes


if __name__ == "__main__":
    main()
