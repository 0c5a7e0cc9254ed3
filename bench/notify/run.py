"""Notify benchmark: journey decisions, SMTP delivery and crashes, through real processes.

    .venv/bin/python -m bench.notify.run [--customers 100000] [--delivery-customers 20000]
        [--crash-customers 20000] [--reminder-wait 90] [--profile]

It starts a local Kafka broker, a durable PostgreSQL and Mailpit (keeping every message) on free
loopback ports, with data in a temporary folder, and runs notify as a real process
(`python -m services.notify`) with the shipped journeys copied and the abandoned cart's first
wait (4h) shortened to `--reminder-wait`; the clock is otherwise real. Marketing caps and quiet
hours are off (RETAIN_NOTIFY_MARKETING_CAPS / RETAIN_NOTIFY_QUIET_HOURS = none), so that
neither holds a reminder back. Every customer's profile (bench/scoring/shop.py: 2.3 KB, two in
three opted in to marketing email) is produced to profiles.v1 and stored by notify first.

In this order (the decisions' reminders would come due after the run, and are never sent):

1. Delivery: `--delivery-customers` customers' cart changes, made `--reminder-wait` minus a
   few seconds ago, so that their reminders all come due together a few seconds after notify
   entered the runs; measured from that moment to the last email recorded `sent`: each
   customer's wake-up decision (send, or suppress without consent, and schedule the next
   wait), then SMTP delivery to Mailpit. Mailpit's API then shows whether every email arrived
   once (count and distinct Message-IDs).
2. Crashes: `--crash-customers` more customers' cart changes, due over `--crash-spread`
   seconds, while notify is SIGKILLed `--kills` times at random moments and restarted at once.
   Once everything settled (rows a killed sender left `sending` become `uncertain` after the
   send lease), every reminder the journey intends must have arrived exactly once (Mailpit, by
   Message-ID) or be recorded `uncertain`: duplicates and lost emails must be zero.
3. Decisions: `--customers` customers' cart_activity produced to lifecycle.v1 while notify is
   stopped, then notify started; measured from the first to the last run entered (notify's
   journey_counts, polled): each one decision (enter, and schedule the wait).

CPU seconds are metered per party over each measured window: notify (every process, a killed
one up to its kill), Kafka, PostgreSQL (all its processes), Mailpit, this benchmark (the load
generator: producer, pollers, Mailpit API) and the rest of the machine. Before each scenario
it waits for the machine to be quiet, and the scenarios run holding the benchmarks' lock, so
two benchmarks never measure each other. `--profile` runs notify under cProfile for the first
and last scenarios and prints where its time goes instead of writing results.

Results go to the terminal and to bench/notify/results.md. Everything started is stopped at the
end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.common import (
    ADMIN_TOKEN,
    CACHE_DIR,
    CpuMeter,
    ServiceProcess,
    cpu_seconds,
    exclusive_machine,
    kafka_processes,
    local_kafka,
    log,
    machine,
    mailpit_processes,
    own_time_by_part,
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
from bench.notify.workload import (
    JOURNEY,
    REMINDER,
    cart_change,
    gets_reminder,
    keyed,
    produce,
    profile,
    shortened_journeys,
)
from bench.scoring.shop import Customer, customers
from schemas.journey_v1 import parse_duration
from schemas.topics import LIFECYCLE, PROFILES
from services.devstack.kafka import LocalKafka
from services.devstack.mailpit import MAILPIT_VERSION, LocalMailpit
from services.devstack.ports import free_port
from services.devstack.postgres import LocalPostgres
from services.notify.email import message_id_for
from services.notify.settings import NotifySettings
from services.runtime.kafka import ensure_topics
from services.runtime.settings import ServiceSettings

BENCH_DIR = Path(__file__).resolve().parent
DECISIONS_TARGET = 5_000  # journey decisions/s per process (the issue)
DELIVERY_TARGET = 500  # emails delivered over SMTP/s per process (the issue)
# Above this, unrelated load on the machine makes a scenario's figures unreliable.
BUSY_MACHINE_CORES = 0.3
PACKAGES = ["pydantic", "aiokafka", "sqlalchemy", "asyncpg", "aiosmtplib", "jinja2", "orjson"]
PARTIES = ("notify", "kafka", "postgres", "mailpit", "bench", "other")
PARTY_NAMES = ("notify", "Kafka", "PostgreSQL", "Mailpit", "load generator", "other")
# Where own time in notify's code goes (cProfile file names), before the libraries.
NOTIFY_PARTS = (
    ("/services/notify/domain/", "notify: engine (domain)"),
    ("/services/notify/email", "notify: composing email"),
    ("/services/notify/", "notify: use case, store, sender, SMTP"),
    ("/site-packages/aiosmtplib/", "aiosmtplib"),
    ("/site-packages/jinja2/", "jinja2"),
    ("/email/", "email (standard library)"),
)
# Mailpit keeps every message (it keeps the newest 500 by default).
MAILPIT_OPTIONS = ("--max=0",)
SEND_LEASE = "15s"  # how soon a killed sender's emails are uncertain (2 minutes by default)
# The From domain of notify's emails by default: the right-hand side of their Message-IDs.
MESSAGE_DOMAIN = NotifySettings.model_fields["mail_from"].default.rpartition("@")[2].rstrip(">")


def own_cpu_seconds() -> float:
    """CPU seconds of this process alone (not of children it has reaped)."""
    times = os.times()
    return times.user + times.system


# ---------------------------------------------------------------- the stack


@dataclass
class NotifyProcesses:
    """Every notify process of the run; CPU counted to the end of each, a killed one included."""

    env: dict[str, str]
    workdir: Path
    profile: bool
    current: ServiceProcess | None = None
    ended_cpu: float = 0.0
    started: int = 0
    profile_files: list[Path] = field(default_factory=list)

    def start(self) -> ServiceProcess:
        self.started += 1
        label = f"notify-{self.started}"
        profile_to = self.workdir / f"{label}.pstats" if self.profile else None
        if profile_to is not None:
            self.profile_files.append(profile_to)
        self.current = ServiceProcess("notify", self.env, self.workdir, profile_to, label)
        self.current.wait_ready()
        return self.current

    def cpu_seconds(self) -> float:
        live = cpu_seconds([self.current.ps]) if self.current is not None else 0.0
        return self.ended_cpu + live

    def kill(self) -> None:
        """SIGKILL: no batch finished, no connection closed, nothing recorded on the way out."""
        process = self._ending()
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(timeout=30)

    def stop(self) -> None:
        process = self._ending()
        process.stop()

    def _ending(self) -> ServiceProcess:
        if self.current is None:
            raise RuntimeError("no notify process runs")
        process, self.current = self.current, None
        self.ended_cpu += cpu_seconds([process.ps])
        return process


@dataclass
class Stack:
    kafka: LocalKafka
    postgres: LocalPostgres
    mailpit: LocalMailpit
    settings: ServiceSettings
    notify: NotifyProcesses

    def meter(self) -> CpuMeter:
        return CpuMeter(
            {
                "kafka": lambda: kafka_processes(self.kafka),
                "postgres": lambda: postgres_processes(self.postgres),
                "mailpit": lambda: mailpit_processes(self.mailpit),
            },
            counters={"notify": self.notify.cpu_seconds, "bench": own_cpu_seconds},
        )

    def ours(self) -> list[psutil.Process]:
        notify = [self.notify.current.ps] if self.notify.current is not None else []
        return [
            *notify,
            *kafka_processes(self.kafka),
            *postgres_processes(self.postgres),
            *mailpit_processes(self.mailpit),
            psutil.Process(),
        ]

    def wait_until_quiet(self, limit_seconds: float) -> float:
        others = wait_until_quiet(limit_seconds, BUSY_MACHINE_CORES, self.ours())
        if others > BUSY_MACHINE_CORES:
            log(f"warning: other processes use {others:.2f} cores; the figures will be skewed")
        return others


def notify_env(settings: ServiceSettings, mailpit: LocalMailpit, journeys: Path) -> dict[str, str]:
    return service_env(settings) | {
        "RETAIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "RETAIN_SMTP_HOST": mailpit.smtp_host,
        "RETAIN_SMTP_PORT": str(mailpit.smtp_port),
        "RETAIN_NOTIFY_JOURNEYS_DIR": str(journeys),
        "RETAIN_NOTIFY_MARKETING_CAPS": "none",
        "RETAIN_NOTIFY_QUIET_HOURS": "none",
        "RETAIN_NOTIFY_SEND_LEASE": SEND_LEASE,
    }


# ---------------------------------------------------------------- reading notify's tables


class Ledger:
    """notify's tables, read by the benchmark over its own connection."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.db = connection

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, postgres: LocalPostgres) -> AsyncIterator[Ledger]:
        connection = await asyncpg.connect(pg_dsn(postgres))
        try:
            yield cls(connection)
        finally:
            await connection.close()

    async def recipients(self) -> int:
        return int(await self.db.fetchval("SELECT count(*) FROM notify.recipients"))

    async def entered(self) -> int:
        found = await self.db.fetchval(
            "SELECT count FROM notify.journey_counts WHERE journey = $1 AND counter = 'entered'",
            JOURNEY,
        )
        return int(found or 0)

    async def unfinished(self, customer_ids: Sequence[str], due_by: datetime) -> tuple[int, int]:
        """(wake-ups due by `due_by` not yet made, emails pending or sending) of the customers."""
        wakeups = await self.db.fetchval(
            "SELECT count(*) FROM notify.customers WHERE wake_at <= $1 "
            "AND customer_id = ANY($2::text[])",
            due_by,
            customer_ids,
        )
        unsent = await self.db.fetchval(
            "SELECT count(*) FROM notify.notifications WHERE status IN ('pending', 'sending') "
            "AND customer_id = ANY($1::text[])",
            customer_ids,
        )
        return int(wakeups), int(unsent)

    async def reminders(self, customer_ids: Sequence[str]) -> list[asyncpg.Record]:
        return list(
            await self.db.fetch(
                "SELECT customer_id, notification_id, status, reason, created_at, updated_at "
                "FROM notify.notifications WHERE journey = $1 AND template = $2 "
                "AND customer_id = ANY($3::text[])",
                JOURNEY,
                REMINDER,
                customer_ids,
            )
        )

    async def tidy(self) -> None:
        """Every scenario starts from the same database state: no dead rows, no checkpoint due."""
        await self.db.execute("VACUUM (ANALYZE)")
        await self.db.execute("CHECKPOINT")


class Mailbox:
    """What Mailpit caught, through its REST API."""

    def __init__(self, mailpit: LocalMailpit) -> None:
        self.api = f"{mailpit.ui_url}/api/v1"

    async def message_ids(self) -> list[str]:
        """The Message-ID of every message caught (one entry per message, so repeats show)."""
        found: list[str] = []
        async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
            while True:
                answer = await client.get(
                    f"{self.api}/messages", params={"start": len(found), "limit": 5000}
                )
                answer.raise_for_status()
                page = answer.json()
                found += [f"<{m['MessageID'].strip('<>')}>" for m in page["messages"]]
                if not page["messages"] or len(found) >= page["total"]:
                    return found

    async def delete_all(self) -> None:
        async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
            (await client.delete(f"{self.api}/messages")).raise_for_status()


# ---------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    scenario: str
    target: str
    result: str
    cores: dict[str, float]
    per_item: str
    passed: bool
    checks: str = ""


def cores_text(cores: dict[str, float]) -> str:
    return " / ".join(f"{cores.get(name, 0.0):.2f}" for name in PARTIES)


@dataclass
class Delivered:
    """How the reminders of a set of customers ended, in the ledger and in Mailpit."""

    intended: int
    rows: Counter[str]
    once: int
    duplicates: int
    lost: int
    uncertain: int
    uncertain_arrived: int
    unexpected: int

    @property
    def correct(self) -> bool:
        return not (self.duplicates or self.lost or self.unexpected)

    def text(self) -> str:
        statuses = ", ".join(f"{n:,} {status}" for status, n in sorted(self.rows.items()))
        return (
            f"{self.intended:,} reminders intended; ledger: {statuses}; arrived exactly once: "
            f"{self.once:,}; duplicates: {self.duplicates}; lost: {self.lost}; uncertain: "
            f"{self.uncertain:,} (of which arrived: {self.uncertain_arrived:,}); arrived "
            f"without being intended: {self.unexpected}"
        )


async def reconcile(
    ledger: Ledger, mailbox: Mailbox, shop: Sequence[Customer], intended: set[str]
) -> Delivered:
    """Each intended reminder must have arrived once, or be `uncertain` (pending: still to go);
    nothing else may arrive. Emails are matched by Message-ID, derived from the notification id
    as notify derives it."""
    rows = await ledger.reminders([c.customer_id for c in shop])
    arrived = Counter(await mailbox.message_ids())
    by_customer = {r["customer_id"]: r for r in rows}
    ours = {message_id_for(r["notification_id"], MESSAGE_DOMAIN): r for r in rows}
    once = duplicates = lost = uncertain = uncertain_arrived = 0
    for customer_id in intended:
        row = by_customer.get(customer_id)
        copies = (
            arrived.get(message_id_for(row["notification_id"], MESSAGE_DOMAIN), 0) if row else 0
        )
        duplicates += max(0, copies - 1)
        status = row["status"] if row else None
        if status == "uncertain":
            uncertain += 1
            uncertain_arrived += copies > 0
        elif copies == 1:
            once += 1
        elif copies == 0 and status != "pending":
            lost += 1
    unexpected = sum(
        n
        for message_id, n in arrived.items()
        if message_id in ours and ours[message_id]["customer_id"] not in intended
    )
    return Delivered(
        intended=len(intended),
        rows=Counter(r["status"] for r in rows),
        once=once,
        duplicates=duplicates,
        lost=lost,
        uncertain=uncertain,
        uncertain_arrived=uncertain_arrived,
        unexpected=unexpected,
    )


# ---------------------------------------------------------------- the scenarios


def seconds_until(moment: datetime) -> float:
    return (moment - datetime.now(UTC)).total_seconds()


async def feed_profiles(
    stack: Stack, profiles: list[tuple[bytes, bytes]], limit_seconds: float
) -> None:
    """Every customer's profile, produced and stored by notify (not measured)."""
    started = time.monotonic()
    await produce(stack.settings, PROFILES, profiles)
    async with Ledger.open(stack.postgres) as ledger:
        deadline = time.monotonic() + limit_seconds
        while (stored := await ledger.recipients()) < len(profiles):
            if time.monotonic() > deadline:
                raise RuntimeError(f"notify stored {stored:,} of {len(profiles):,} profiles")
            await asyncio.sleep(0.5)
        log(f"{len(profiles):,} profiles stored by notify in {time.monotonic() - started:.1f}s")
        await ledger.tidy()


def decisions(
    stack: Stack, shop: Sequence[Customer], wait: timedelta, args: argparse.Namespace
) -> Outcome:
    """Scenario 1: runs entered from a backlog of cart changes. It ends before their reminders
    come due, and notify is stopped then: none of them is sent."""
    stack.notify.stop()
    stack.wait_until_quiet(args.quiet_wait)
    changed_at = datetime.now(UTC)
    log(f"decisions: producing {len(shop):,} cart changes to lifecycle.v1 (notify stopped)")
    asyncio.run(produce(stack.settings, LIFECYCLE, keyed(cart_change(c, changed_at) for c in shop)))
    due = changed_at + wait
    log("decisions: starting notify")
    stack.notify.start()
    meter = stack.meter()

    async def watch() -> tuple[int, float, float]:
        async with Ledger.open(stack.postgres) as ledger:
            deadline = time.monotonic() + args.timeout
            before = first = await ledger.entered()
            while first == before:
                if time.monotonic() > deadline:
                    raise RuntimeError("notify made no decision")
                await asyncio.sleep(0.02)
                first = await ledger.entered()
            meter.start()
            started = time.monotonic()
            while (entered := await ledger.entered()) < before + len(shop):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"notify entered {entered - before:,} of {len(shop):,}")
                await asyncio.sleep(0.05)
            return entered - first, started, time.monotonic()

    made, started, ended = asyncio.run(watch())
    cores = meter.stop()
    seconds = ended - started
    rate = made / seconds
    log(f"decisions: {rate:,.0f}/s ({made:,} in {seconds:.1f}s); cores {cores_text(cores)}")
    stack.notify.stop()
    if seconds_until(due) < 0:
        log("warning: the reminders came due before the decisions were made; raise --reminder-wait")
    return Outcome(
        scenario=f"Decisions: {len(shop):,} customers' cart_activity on lifecycle.v1 (backlog), "
        "1 notify process",
        target=f">= {DECISIONS_TARGET:,} decisions/s",
        result=f"{rate:,.0f} decisions/s ({made:,} runs entered in {seconds:.1f} s)",
        cores=cores,
        per_item=f"{meter.used['notify'] / made * 1e6:,.0f} µs/decision",
        passed=rate >= DECISIONS_TARGET,
    )


def delivery(
    stack: Stack, shop: Sequence[Customer], intended: set[str], args: argparse.Namespace
) -> Outcome:
    """Scenario 2: cart changes made long enough ago that their reminders all come due a few
    seconds after notify entered the runs; from that moment to the last reminder sent."""
    stack.wait_until_quiet(args.quiet_wait)
    lead = timedelta(seconds=10 + len(shop) / 2000)  # time to enter the runs first
    due = datetime.now(UTC) + lead
    changed_at = due - timedelta(seconds=args.reminder_wait)
    log(f"delivery: producing {len(shop):,} cart changes, their reminders due in {lead}")
    asyncio.run(produce(stack.settings, LIFECYCLE, keyed(cart_change(c, changed_at) for c in shop)))
    timeout = args.timeout
    time.sleep(max(0.0, seconds_until(due)))
    meter = stack.meter()
    meter.start()
    ids = [c.customer_id for c in shop]

    async def watch() -> Delivered:
        async with Ledger.open(stack.postgres) as ledger:
            deadline = time.monotonic() + timeout
            while any(await ledger.unfinished(ids, due)):
                if time.monotonic() > deadline:
                    raise RuntimeError("notify did not send the reminders in time")
                await asyncio.sleep(0.25)
            return await reconcile_now(ledger)

    async def reconcile_now(ledger: Ledger) -> Delivered:
        cores.update(meter.stop())
        rows = await ledger.reminders(ids)
        sent = [r["updated_at"] for r in rows if r["status"] == "sent"]
        decided = [r["created_at"] for r in rows]
        timing.update(
            sent=len(sent),
            decided=len(decided),
            send_seconds=(max(sent) - due).total_seconds() if sent else float("nan"),
            decide_seconds=(max(decided) - due).total_seconds() if decided else float("nan"),
        )
        log("delivery: reading Mailpit's messages")
        return await reconcile(ledger, Mailbox(stack.mailpit), shop, intended)

    cores: dict[str, float] = {}
    timing: dict[str, Any] = {}
    delivered = asyncio.run(watch())
    rate = timing["sent"] / timing["send_seconds"]
    decided = timing["decided"] / timing["decide_seconds"]
    log(f"delivery: {rate:,.0f} emails/s; {delivered.text()}; cores {cores_text(cores)}")
    window = meter.used
    return Outcome(
        scenario=f"Delivery: {len(shop):,} reminders due at once, wake-up decisions and SMTP "
        "to Mailpit, 1 notify process",
        target=f">= {DELIVERY_TARGET:,} emails/s",
        result=f"{rate:,.0f} emails/s ({timing['sent']:,} sent in {timing['send_seconds']:.1f} s "
        f"from due; the {timing['decided']:,} wake-up decisions made at {decided:,.0f}/s)",
        cores=cores,
        per_item=f"{window['notify'] / timing['sent'] * 1e6:,.0f} µs/email",
        passed=rate >= DELIVERY_TARGET and delivered.correct and delivered.once == len(intended),
        checks=f"Delivery: {delivered.text()}.",
    )


def crashes(
    stack: Stack, shop: Sequence[Customer], intended: set[str], args: argparse.Namespace
) -> Outcome:
    """Scenario 3: cart changes whose reminders come due over a spread, notify killed and
    restarted meanwhile; then every intended reminder is checked."""
    asyncio.run(Mailbox(stack.mailpit).delete_all())
    stack.wait_until_quiet(args.quiet_wait)
    meter = stack.meter()
    meter.start()
    started = datetime.now(UTC)
    spread = args.crash_spread
    wait = timedelta(seconds=args.reminder_wait)
    rng = random.Random(args.seed)
    # Each reminder due 5 s to 5 s + spread from now: deciding and sending overlap the kills.
    changes = [
        cart_change(c, started - wait + timedelta(seconds=5 + rng.uniform(0, spread))) for c in shop
    ]
    log(f"crashes: producing {len(shop):,} cart changes, reminders due over {spread:.0f}s")
    asyncio.run(produce(stack.settings, LIFECYCLE, keyed(changes)))
    kills = sorted(rng.uniform(2, spread + 10) for _ in range(args.kills))
    for n, at in enumerate(kills, 1):
        time.sleep(max(0.0, at - (datetime.now(UTC) - started).total_seconds()))
        log(f"crashes: SIGKILL {n} of {len(kills)}, {at:.1f}s in; restarting notify")
        stack.notify.kill()
        stack.notify.start()
    last_kill = datetime.now(UTC)
    ids = [c.customer_id for c in shop]
    lease = parse_duration(SEND_LEASE)
    due_by = started + timedelta(seconds=5 + spread + 1)

    async def settle() -> tuple[Delivered, float]:
        async with Ledger.open(stack.postgres) as ledger:
            deadline = time.monotonic() + args.timeout
            active: float | None = None
            while True:
                wakeups, unsent = await ledger.unfinished(ids, due_by)
                rows = await ledger.reminders(ids)
                stuck = sum(
                    1 for r in rows if r["status"] == "sending" and r["updated_at"] < last_kill
                )
                if active is None and not wakeups and unsent == stuck:
                    # Only rows a killed sender left remain: they wait for the lease.
                    cores.update(meter.stop())
                    active = (datetime.now(UTC) - started).total_seconds()
                    log(
                        f"crashes: all decided and sent but {stuck} left by a kill; waiting "
                        f"for the send lease ({lease.total_seconds():.0f}s) to pass"
                    )
                if active is not None and not unsent:
                    return await reconcile(ledger, Mailbox(stack.mailpit), shop, intended), active
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not settled: {wakeups} wake-ups, {unsent} unsent")
                await asyncio.sleep(0.5)

    cores: dict[str, float] = {}
    delivered, active = asyncio.run(settle())
    log(f"crashes: {delivered.text()}; cores {cores_text(cores)}")
    return Outcome(
        scenario=f"Crashes: {len(shop):,} customers' reminders due over {spread:.0f} s, notify "
        f"SIGKILLed {len(kills)} times (at {', '.join(f'{k:.0f}' for k in kills)} s) and "
        "restarted",
        target="0 duplicates, 0 lost",
        result=f"{delivered.duplicates} duplicates, {delivered.lost} lost; {delivered.once:,} of "
        f"{delivered.intended:,} arrived exactly once, {delivered.uncertain:,} uncertain "
        f"({delivered.uncertain_arrived:,} of them arrived); done in {active:.0f} s",
        cores=cores,
        per_item=f"{meter.used['notify'] / max(1, len(intended)) * 1e6:,.0f} µs/email",
        passed=delivered.correct and delivered.once + delivered.uncertain == delivered.intended,
        checks=f"Crashes: {delivered.text()}.",
    )


# ---------------------------------------------------------------- reporting


def table(outcomes: list[Outcome]) -> list[str]:
    return [
        "| scenario | target | result | CPU cores used (" + " / ".join(PARTY_NAMES) + ") "
        "| notify CPU per item | verdict |",
        "|---|---|---|---|---|---|",
        *(
            f"| {o.scenario} | {o.target} | {o.result} | {cores_text(o.cores)} | {o.per_item} "
            f"| {'MET' if o.passed else 'MISS'} |"
            for o in outcomes
        ),
    ]


def write_results(
    path: Path, outcomes: list[Outcome], info: dict[str, str], args: argparse.Namespace
) -> None:
    command = " ".join([".venv/bin/python -m bench.notify.run", *map(shlex.quote, sys.argv[1:])])
    lines = [
        "# Notify benchmark results",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` from the repository "
        "root (`make bench-notify` runs the default).",
        "",
        *table(outcomes),
        "",
        "## Set-up",
        "",
        "- One local Kafka broker (KRaft), a durable PostgreSQL and Mailpit (`--max=0`: it "
        "keeps every message, instead of the newest 500) on this machine, loopback only. "
        "Notify: one `python -m services.notify` process (RETAIN_ENV=local, log level "
        "WARNING, SMTP to Mailpit with the default 4 connections).",
        f"- Journeys: the shipped ones, copied, with abandoned_cart's first wait (4h) set to "
        f"{args.reminder_wait:.0f} s; nothing else changed, the clock is real. The second "
        "reminder waits 24 h, beyond the run, so each customer's reminder is "
        "cart_reminder_1. Marketing caps and quiet hours are off "
        "(RETAIN_NOTIFY_MARKETING_CAPS=none, RETAIN_NOTIFY_QUIET_HOURS=none) so that neither "
        "holds a reminder back (with one reminder per customer no cap would bind anyway).",
        f"- Customers: {args.delivery_customers:,} (delivery), {args.crash_customers:,} "
        f"(crashes) and {args.customers:,} (decisions) of the synthetic shop of "
        "bench/scoring/shop.py; each one's profiles.v1 snapshot (~2.3 KB, revision 1, two in "
        "three opted in to marketing email) is produced straight to profiles.v1 and stored by "
        "notify before anything is measured, and each one's cart_activity (two products) "
        "straight to lifecycle.v1, keyed by customer id (instead of through ingest and profile: "
        "those are benchmarked on their own). Only the opted-in customers get a reminder; the "
        "others' are suppressed (`no_consent`). The scenarios run in the order delivery, "
        "crashes, decisions: the decisions' reminders would come due after the run.",
        "- Decisions: the cart changes are produced while notify is stopped, then notify "
        "starts and works through the backlog. A decision is one call of the journey engine "
        "whose outcome notify stored: here a cart change entering the customer's run (enter, "
        "and schedule the wait), counted by notify's `entered` counter "
        "(notify.journey_counts), polled every 50 ms; measured from the first poll that sees "
        "runs entered to the one that sees the last.",
        "- Delivery: the cart changes are dated so that every reminder comes due at the same "
        "moment, a few seconds after they are produced (notify enters the runs meanwhile); "
        "measured from that moment to the last reminder recorded `sent` (its "
        "`updated_at` in notify.notifications), so it includes the wake-up decisions (send, or "
        "suppress, and schedule the next wait), composing each email, SMTP and recording the "
        "answer. Then Mailpit's API lists every message: each intended reminder's Message-ID "
        "must be there exactly once.",
        f"- Crashes: cart changes due over {args.crash_spread:.0f} s, produced while notify "
        f"runs; notify SIGKILLed {args.kills} times at random moments (seed {args.seed}) in "
        "that span and restarted at once each time. A reminder a killed sender left `sending` "
        f"becomes `uncertain` once the send lease ({SEND_LEASE}, RETAIN_NOTIFY_SEND_LEASE) "
        "has passed, and is not sent again (marketing). Checked once nothing is left "
        "pending: duplicates = copies of a Message-ID beyond the first; lost = intended "
        "reminders neither arrived nor `uncertain` (nor still pending). CPU is metered up to "
        "the moment only the rows waiting for the lease remained.",
        "- CPU cores used: CPU seconds of each party over the scenario's window divided by its "
        "wall time (2.00 is the whole machine): notify (every process, a killed one up to its "
        "kill), Kafka's JVM, PostgreSQL (all its processes), Mailpit, the load generator (this "
        "benchmark: producer, pollers, Mailpit API) and everything else on the machine. Before "
        "each scenario the benchmark waits for the machine to be quiet, and it holds the "
        "benchmarks' lock throughout, so another benchmark does not run meanwhile.",
    ]
    checks = [o.checks for o in outcomes if o.checks]
    if checks:
        lines += ["", "## Checks", "", *(f"- {c}" for c in checks)]
    write_results_file(path, lines, info, BENCH_DIR / "NOTES.md")


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="decisions")
    parser.add_argument("--delivery-customers", type=int, default=20_000, help="delivery")
    parser.add_argument("--crash-customers", type=int, default=20_000, help="crashes")
    parser.add_argument(
        "--reminder-wait",
        type=float,
        default=90,
        help="seconds: the abandoned cart's first wait (4h shipped); longer than scenario 1",
    )
    parser.add_argument("--crash-spread", type=float, default=30, help="seconds, crashes")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs")
    parser.add_argument("--seed", type=int, default=2026, help="when the kills come")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per step at most")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="seconds to wait at most for a quiet machine before each scenario",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run notify under cProfile (delivery, decisions) and print where its time goes",
    )
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.md")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    outcomes: list[Outcome] = []
    info: dict[str, str] = {}
    summaries: list[tuple[str, str]] = []
    now = datetime.now(UTC)
    delivery_shop = customers(args.delivery_customers, now)
    crash_count = 0 if args.profile else args.crash_customers
    crash_shop = customers(crash_count, now, first=len(delivery_shop))
    decision_shop = customers(args.customers, now, first=len(delivery_shop) + crash_count)
    profiles = [profile(c, now) for c in [*delivery_shop, *crash_shop, *decision_shop]]
    intended = {p.customer_id for p in profiles if gets_reminder(p)}
    with stopped_on_sigterm(), tempfile.TemporaryDirectory(prefix="retain-bench-notify-") as tmp:
        workdir = Path(tmp)
        journeys = shortened_journeys(workdir / "journeys", timedelta(seconds=args.reminder_wait))
        kafka = local_kafka(workdir)
        postgres = LocalPostgres(data_dir=workdir / "postgres", port=free_port(), durable=True)
        mailpit = LocalMailpit(
            workdir / "mailpit",
            CACHE_DIR,
            smtp_port=free_port(),
            ui_port=free_port(),
            options=MAILPIT_OPTIONS,
        )
        settings = settings_for(kafka, postgres)
        notify = NotifyProcesses(notify_env(settings, mailpit, journeys), workdir, args.profile)
        stack = Stack(kafka, postgres, mailpit, settings, notify)
        files = notify.profile_files
        try:
            log(f"working in {workdir}; starting Kafka, PostgreSQL and Mailpit")
            kafka.start()
            postgres.start()
            mailpit.start()
            asyncio.run(ensure_topics(settings, client_id="retain-bench"))
            with exclusive_machine():
                notify.start()
                log(f"producing {len(profiles):,} profiles to profiles.v1")
                asyncio.run(feed_profiles(stack, keyed(profiles), args.timeout))
                mine = {c.customer_id for c in delivery_shop} & intended
                outcomes.append(delivery(stack, delivery_shop, mine, args))
                if crash_shop:
                    mine = {c.customer_id for c in crash_shop} & intended
                    outcomes.append(crashes(stack, crash_shop, mine, args))
                wait = timedelta(seconds=args.reminder_wait)
                outcomes.append(decisions(stack, decision_shop, wait, args))
            info = machine(PACKAGES)
            with contextlib.suppress(Exception):
                info["postgresql"] = asyncio.run(postgres_version(postgres))
            info["mailpit"] = f"{MAILPIT_VERSION} ({' '.join(MAILPIT_OPTIONS)})"
        finally:
            log("stopping everything")
            with contextlib.suppress(Exception):
                if notify.current is not None:
                    notify.stop()
            with contextlib.suppress(Exception):
                mailpit.stop()
            with contextlib.suppress(Exception):
                postgres.stop()
            kafka.stop()
            if args.profile:  # the profiles are in the temporary folder
                summaries.append(("own time by part", own_time_by_part(files, NOTIFY_PARTS)))
                for sort in ("tottime", "cumulative"):
                    summaries.append((f"by {sort}", profile_summary(files, limit=45, sort=sort)))
    print()
    print("\n".join(table(outcomes)))
    for title, summary in summaries:
        print(f"\nWhere notify spends its time ({title}):\n")
        print(summary)
    if not args.profile and str(args.output) != "-":
        write_results(args.output, outcomes, info, args)
        log(f"wrote {args.output}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
