"""The fault-injection harness: the whole pipeline under the demo storefront's load while
faults are done to its processes and servers, and an exact count of every effect at the end.

    python -m tests.chaos.run            # every scenario, then all mixed (make chaos)
    python -m tests.chaos.run --short    # the mixed scenario alone, shorter (the test suite)

Each scenario sends its own shoppers (history and live sessions) through ingest with client
retries, injects its faults while they are in flight, waits until the pipeline has caught up
(no consumer lag, nothing left in an outbox, no email due and unsent), then checks everything
`verify` lists. The table says, per scenario: events acknowledged, faults injected, effects
lost, doubled and wrong, and the time from the last fault until the pipeline had caught up.
Exits non-zero when any effect is lost, doubled or wrong.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import machine, stopped_on_sigterm, write_results_file
from tests.chaos.load import Ledger, Load
from tests.chaos.stack import GROUPS, ChaosStack, Faults
from tests.chaos.verify import (
    KafkaView,
    Tally,
    check_dead_letters,
    check_email,
    check_pipeline,
    live_orders_of,
)
from tests.integration.helpers import ADMIN_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("RETAIN_CACHE_DIR", REPO_ROOT / ".cache"))
RECOVERY_TIMEOUT = 300.0

Inject = Callable[[ChaosStack, Faults, float], Awaitable[list[tuple[str, str]]]]


@dataclass
class Result:
    scenario: str
    events: int
    faults: str
    tally: Tally
    recovery_seconds: float
    emails: int
    refused: list[str]

    def row(self) -> str:
        t = self.tally
        return (
            f"| {self.scenario} | {self.events:,} | {self.faults} | {t.lost} | {t.duplicated} | "
            f"{t.wrong} | {self.recovery_seconds:.1f} s |"
        )


# ---------------------------------------------------------------------- the scenarios


async def _at(started: float, seconds: float) -> None:
    await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))


def kills(service: str, times: int = 3) -> Inject:
    async def inject(stack: ChaosStack, faults: Faults, seconds: float) -> list[tuple[str, str]]:
        started = time.monotonic()
        moments = sorted(stack.rng.uniform(0.1, 0.8) * seconds for _ in range(times))
        for moment in moments:
            await _at(started, moment)
            await stack.kill(service)
            faults.add(f"SIGKILL {service}")
        return []

    return inject


def restart(server: str) -> Inject:
    """The broker or PostgreSQL stopped, down for 5 s, then started on the same data."""

    async def inject(stack: ChaosStack, faults: Faults, seconds: float) -> list[tuple[str, str]]:
        await asyncio.sleep(seconds * 0.35)
        await stack.restart(server, down_for=5)
        faults.add(f"{server} restart")
        return []

    return inject


async def rebalances(stack: ChaosStack, faults: Faults, seconds: float) -> list[tuple[str, str]]:
    started = time.monotonic()
    await _at(started, seconds * 0.15)
    for service in ("profile", "scoring", "notify"):
        await stack.scale(service, 3)
        faults.add(f"{service} 1->3")
    await _at(started, seconds * 0.6)
    for service in ("profile", "scoring", "notify"):
        await stack.scale(service, 1)
        faults.add(f"{service} 3->1")
    return []


async def smtp_trouble(stack: ChaosStack, faults: Faults, seconds: float) -> list[tuple[str, str]]:
    started = time.monotonic()
    await _at(started, seconds * 0.1)
    stack.smtp_mode("slow", delay=1.5)
    await _at(started, seconds * 0.4)
    faults.add("SMTP slow")
    stack.smtp_mode("failing")
    await _at(started, seconds * 0.7)
    faults.add("SMTP failing")
    stack.smtp_mode("healthy")
    return []


async def poison(stack: ChaosStack, faults: Faults, seconds: float) -> list[tuple[str, str]]:
    await asyncio.sleep(seconds * 0.3)
    sent = await stack.poison()
    for _ in sent:
        faults.add("poison record")
    return sent


def mixed(stack: ChaosStack, faults: Faults, seconds: float) -> Awaitable[list[tuple[str, str]]]:
    """Everything at once: each kind of fault at its own random moments."""
    parts: list[Inject] = [
        *(kills(service, times=2) for service in ("ingest", "profile", "scoring", "notify")),
        restart("broker"),
        restart("PostgreSQL"),
        rebalances,
        smtp_trouble,
        poison,
    ]

    async def together() -> list[tuple[str, str]]:
        found = await asyncio.gather(*(part(stack, faults, seconds) for part in parts))
        return [entry for sent in found for entry in sent]

    return together()


SCENARIOS: dict[str, Inject] = {
    "SIGKILL ingest": kills("ingest"),
    "SIGKILL profile": kills("profile"),
    "SIGKILL scoring": kills("scoring"),
    "SIGKILL notify": kills("notify"),
    "broker restart": restart("broker"),
    "PostgreSQL restart": restart("PostgreSQL"),
    "rebalance 1->3->1": rebalances,
    "SMTP slow, then failing": smtp_trouble,
    "poison messages": poison,
    "all mixed": mixed,
}


# ---------------------------------------------------------------------- running one


@dataclass
class Pipeline:
    """The stack under test and what the harness watches it with."""

    stack: ChaosStack
    engine: AsyncEngine
    kafka: KafkaView


async def caught_up(pipeline: Pipeline) -> bool:
    """No group lags, no outbox holds a message, no email is due and unsent, and none is
    waiting to be tried again after a failed attempt (the SMTP server's trouble is over by
    now, and its backoff is part of the time to recover)."""
    if any((await pipeline.kafka.lag(GROUPS)).values()):
        return False
    async with pipeline.engine.connect() as connection:
        for schema in ("profile", "scoring", "notify"):
            if await connection.scalar(text(f"SELECT count(*) FROM {schema}.outbox")):  # noqa: S608
                return False
        due = await connection.scalar(
            text(
                "SELECT count(*) FROM notify.notifications WHERE status = 'sending' "
                "OR (status = 'pending' AND (due_at <= now() OR attempts > 0))"
            )
        )
    return not due


async def wait_caught_up(pipeline: Pipeline, limit: float) -> float:
    """Seconds until the pipeline has caught up twice in a row; raises after `limit`."""
    started = time.monotonic()
    streak = 0
    while streak < 2:
        if time.monotonic() - started > limit:
            lag = await pipeline.kafka.lag(GROUPS)
            raise TimeoutError(f"not caught up after {limit:.0f} s (lag {lag})")
        try:
            streak = streak + 1 if await caught_up(pipeline) else 0
        except Exception:  # a server still restarting: look again
            streak = 0
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def run_scenario(
    pipeline: Pipeline,
    name: str,
    inject: Inject,
    load: Load,
    seconds: float,
    everything: list[dict[str, Any]],
    poisoned: list[tuple[str, str]],
) -> Result:
    stack, engine = pipeline.stack, pipeline.engine
    print(f"\n== {name}: {load.shoppers} shoppers, {load.live_sessions} live sessions", flush=True)
    began = datetime.now(UTC)
    ledger, faults = Ledger(), Faults()
    sending = load.run(stack.ingest_url, stack.write_key, seconds, ledger)
    _, sent = await asyncio.gather(sending, inject(stack, faults, seconds))
    poisoned.extend(sent)
    for service in stack.startup_exits:
        faults.seen(f"{service} exited at start-up, started again")
    stack.startup_exits.clear()
    dead = [i for i in stack.processes() if i.running and i.running.process.poll() is not None]
    tally = Tally()
    for instance in dead:
        tally.note("wrong", 1, f"{instance.service} on :{instance.port} exited by itself")
    load_done = time.monotonic()
    try:
        waited = await wait_caught_up(pipeline, RECOVERY_TIMEOUT)
    except TimeoutError as stuck:  # counted, and the checks say what is missing
        tally.note("lost", 1, str(stuck))
        waited = RECOVERY_TIMEOUT
    recovery = waited + load_done - (faults.last_at or load_done)
    everything.extend(ledger.acknowledged)
    await check_pipeline(pipeline.kafka, engine, everything, ledger.acknowledged, tally)
    emails = await check_email(
        engine,
        f"{stack.mailpit.ui_url}/api/v1",
        everything,
        live_orders_of(ledger.acknowledged, began),
        began,
        tally,
    )
    await check_dead_letters(pipeline.kafka, poisoned, tally)
    for refused in ledger.refused:
        tally.note("lost", 1, f"the client gave up: {refused}")
    result = Result(
        name, len(ledger.acknowledged), str(faults), tally, recovery, emails, ledger.refused
    )
    print(result.row(), flush=True)
    print("   checked: " + ", ".join(f"{n:,} {what}" for what, n in sorted(tally.checked.items())))
    for problem in tally.problems:
        print(f"   {problem}", flush=True)
    return result


async def prepare(pipeline: Pipeline, everything: list[dict[str, Any]]) -> None:
    """A shop with a history and a fitted model, before any fault."""
    stack = pipeline.stack
    ledger = Ledger()
    await Load(seed=1000, shoppers=300, days=150, live_sessions=0, parts=4).run(
        stack.ingest_url, stack.write_key, 0, ledger
    )
    everything.extend(ledger.acknowledged)
    await wait_caught_up(pipeline, RECOVERY_TIMEOUT)
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        answer = await client.post(
            f"{stack.url('scoring')}/v1/refit", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        answer.raise_for_status()
    await wait_caught_up(pipeline, RECOVERY_TIMEOUT)


async def run(
    names: list[str], seconds: float, shoppers: int, live: int, keep: Path | None
) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="retain-chaos-") as scratch:
        workdir = keep or Path(scratch)
        stack = ChaosStack(workdir, CACHE_DIR, workdir / "logs")
        await stack.start()
        engine = create_async_engine(
            stack.settings.database_url.get_secret_value(), pool_pre_ping=True
        )
        kafka = KafkaView(stack.settings)
        await kafka.start()
        pipeline = Pipeline(stack, engine, kafka)
        results: list[Result] = []
        try:
            everything: list[dict[str, Any]] = []
            poisoned: list[tuple[str, str]] = []
            await prepare(pipeline, everything)
            for number, name in enumerate(names, start=1):
                load = Load(seed=number, shoppers=shoppers, days=60, live_sessions=live)
                results.append(
                    await run_scenario(
                        pipeline, name, SCENARIOS[name], load, seconds, everything, poisoned
                    )
                )
        finally:
            try:
                await kafka.stop()
                await engine.dispose()
            finally:  # the processes and servers are stopped whatever the clients did
                await stack.stop()
        return results


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | events | faults injected | lost | duplicated | wrong | time to recover |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [r.row() for r in results])


def report(
    path: Path,
    results: list[Result],
    began: datetime,
    arguments: str,
    seconds: float,
    shoppers: int,
    live: int,
) -> None:
    """The results file: the table, what each scenario checked, the machine, then NOTES.md."""
    lines = [
        "# Fault-injection results",
        "",
        f"Recorded {began:%Y-%m-%d %H:%M} UTC by `python -m tests.chaos.run {arguments}`"
        f" (`make chaos`). Each scenario: {shoppers} shoppers' history and {live} live sessions,"
        f" sent over {seconds:.0f} s while its faults were injected.",
        "",
        table(results),
        "",
        "## What each scenario checked",
        "",
        *(
            f"- {r.scenario}: "
            + ", ".join(f"{n:,} {what}" for what, n in sorted(r.tally.checked.items()))
            for r in results
        ),
        *(f"- problem in {r.scenario}: {p}" for r in results for p in r.tally.problems),
    ]
    info = machine(["aiokafka", "sqlalchemy", "asyncpg", "fastapi"])
    info["load average at the end (1, 5, 15 min)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write_results_file(path, lines, info, path.parent / "NOTES.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the mixed scenario alone, shorter")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="only this")
    parser.add_argument("--seconds", type=float, help="load per scenario (90; short: 40)")
    parser.add_argument("--keep", type=Path, help="keep the servers' data and logs here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--report", type=Path, help="write the table and the machine here (.md)")
    args = parser.parse_args()
    names = args.scenario or (["all mixed"] if args.short else list(SCENARIOS))
    seconds = args.seconds or (40.0 if args.short else 90.0)
    shoppers, live = (60, 40) if args.short else (150, 100)
    began = datetime.now(UTC)
    with stopped_on_sigterm():  # the servers started are stopped however the run ends
        results = asyncio.run(run(names, seconds, shoppers, live, args.keep))
    print("\n" + table(results))
    if args.report:
        report(args.report, results, began, " ".join(sys.argv[1:]), seconds, shoppers, live)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "scenario": r.scenario,
                        "events": r.events,
                        "faults": r.faults,
                        "lost": r.tally.lost,
                        "duplicated": r.tally.duplicated,
                        "wrong": r.tally.wrong,
                        "recovery_seconds": round(r.recovery_seconds, 1),
                        "emails": r.emails,
                        "checked": dict(r.tally.checked),
                        "problems": r.tally.problems,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    sys.exit(0 if all(r.tally.clean for r in results) else 1)


if __name__ == "__main__":
    main()
