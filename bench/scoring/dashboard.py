"""Dashboard benchmark: every analytics endpoint with a million customers.

    .venv/bin/python -m bench.scoring.dashboard [--customers 1000000] [--distinct 20000]

Starts its own durable PostgreSQL and migrates the scoring schema; scores `--distinct` customers
of the synthetic shop (bench/scoring/shop.py: orders over two years, channels, campaigns)
through scoring's real handler after a real refit, then copies them in SQL, each copy under new
ids, until there are `--customers`. Then:
1. one snapshot of every page's figures, as the snapshot job writes it (timed), and a year of
   daily history (today's rows copied to the 364 days before, where a day has none), after
   seeding a year of email counters and clicks (the synthetic shop sends no email);
2. every GET under /v1/analytics (the service's own routes and store, served in this process
   over ASGI, so without the network), for the last 30 days and for the last 365 days, and for
   each value of a parameter with a fixed set of values; five requests each, the slowest kept.
Target (issue): every page answers in under 1 s with 1,000,000 customers.
Results go to the terminal and bench/scoring/results.md (its other sections are kept).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import psutil
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import (
    InProcessRecord,
    exclusive_machine,
    log,
    machine,
    postgres_processes,
    postgres_version,
    with_durable_postgres,
)
from bench.scoring.report import write_section
from bench.scoring.rescore import profiles_handler
from bench.scoring.shop import customers, snapshot
from schemas.journey_v1 import SendStep
from schemas.topics.notifications_v1 import SuppressionReason
from services.devstack.postgres import LocalPostgres
from services.notify.journeys import load as load_journeys
from services.runtime.db import create_engine, run_migrations
from services.runtime.settings import Environment
from services.scoring.analytics_api import analytics_router
from services.scoring.analytics_store import snapshot as take_snapshot
from services.scoring.domain.refit import refit
from services.scoring.domain.standing import StandingRules
from services.scoring.main import ANALYTICS_PAGES, snapshot_parts
from services.scoring.score_batch import ScoreBatch
from services.scoring.settings import ScoringSettings
from services.scoring.store import PostgresScoringStore

RESULTS = Path(__file__).resolve().parent / "results.md"
HEADING = "## Dashboard: every analytics endpoint with a million customers"
TARGET_SECONDS = 1.0
REPEATS = 5
HISTORY_DAYS = 365
ATTRIBUTION = timedelta(days=7)  # RETAIN_EMAIL_ATTRIBUTION_DAYS by default
BATCH = 500
# Tables whose rows are the scoring state of a customer; the others (models, spend, the
# dashboard's figures, the consumer kit's offsets and outbox) are not copied.
NOT_COPIED = {"models", "spend", "daily_figures", "erasures", "consumer_offsets", "outbox"}

_COLUMNS = text(
    "SELECT table_name, column_name, data_type, column_default, is_identity "
    "FROM information_schema.columns WHERE table_schema = 'scoring' "
    "ORDER BY table_name, ordinal_position"
)


async def _score_distinct(engine: AsyncEngine, count: int, now: datetime) -> None:
    """`count` shop customers: their orders, a refit on them, then each scored by the handler
    the profiles.v1 consumer runs."""
    shop = customers(count, now)
    ledger = {c.customer_id: list(c.orders) for c in shop}
    rules = StandingRules()
    model = refit(ledger, as_of=now.date(), version=1, rules=rules)
    async with engine.begin() as connection:
        store = PostgresScoringStore(connection)
        await store.add_orders([(c, o) for c, orders in ledger.items() for o in orders])
        await store.save_model(model, now, now.date())
    handler = profiles_handler(engine, ScoreBatch(rules, model))
    records = [
        InProcessRecord(
            "profiles.v1",
            0,
            n,
            0,
            c.customer_id.encode(),
            snapshot(c, 1, now).model_dump_json().encode(),
        )
        for n, c in enumerate(shop)
    ]
    for start in range(0, len(records), BATCH):
        await handler(records[start : start + BATCH])
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM scoring.outbox"))


def _copy_statement(table: str, columns: list[tuple[str, str, Any, str]]) -> str:
    """INSERT ... SELECT of the table's rows once more per n of generate_series, with
    `~n` after every id (the customer's and the rows' own) and in JSON documents' customer_id."""
    names, values = [], []
    for name, data_type, default, identity in columns:
        if identity == "YES" or (isinstance(default, str) and default.startswith("nextval")):
            continue  # numbered by the table
        names.append(name)
        if name.endswith("_id") and data_type in ("character varying", "text"):
            values.append(f"{name} || '~' || n")
        elif data_type in ("json", "jsonb") and name in ("snapshot", "record"):
            values.append(
                f"jsonb_set({name}::jsonb, '{{customer_id}}', "
                f"to_jsonb(customer_id || '~' || n))::{data_type}"
            )
        else:
            values.append(name)
    return (
        f"INSERT INTO scoring.{table} ({', '.join(names)}) "  # noqa: S608 (catalogue names)
        f"SELECT {', '.join(values)} FROM scoring.{table}, generate_series(1, :copies) AS n"
    )


async def _copy_customers(engine: AsyncEngine, copies: int) -> None:
    async with engine.connect() as connection:
        found = (await connection.execute(_COLUMNS)).all()
    tables: dict[str, list[tuple[str, str, Any, str]]] = {}
    for table, column, data_type, default, identity in found:
        tables.setdefault(table, []).append((column, data_type, default, identity))
    for table, columns in tables.items():
        if table in NOT_COPIED or "customer_id" not in [c[0] for c in columns]:
            continue
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(text(_copy_statement(table, columns)), {"copies": copies})
        log(f"copied scoring.{table} {copies}x in {time.perf_counter() - started:.1f}s")
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("VACUUM ANALYZE"))


# The Email page's data: a year of daily counters for every template each shipped journey
# sends, and a click two hours before one order in twenty (so the snapshot attributes orders).
PAIRS = [
    (journey.id, step.send.template)
    for journey in load_journeys().journeys.values()
    for step in journey.steps
    if isinstance(step, SendStep)
]
SUPPRESSION_REASONS = get_args(SuppressionReason)
_EMAIL_DAILY = text(
    "INSERT INTO scoring.email_daily (day, journey, template, type, reason, count) "
    "SELECT CAST(:today AS date) - back, j, t, kind, reason, "
    "1 + abs(hashtext(t || kind || back::text)) % 500 "
    "FROM generate_series(0, :days) AS back, "
    "unnest(CAST(:journeys AS text[]), CAST(:templates AS text[])) AS p(j, t), "
    "(VALUES ('sent', ''), ('bounced', ''), ('uncertain', ''), ('opened', ''), ('clicked', ''), "
    "('unsubscribed', '')) AS k(kind, reason) "
    "UNION ALL SELECT CAST(:today AS date) - back, j, t, 'suppressed', reason, "
    "1 + abs(hashtext(t || reason || back::text)) % 50 "
    "FROM generate_series(0, :days) AS back, "
    "unnest(CAST(:journeys AS text[]), CAST(:templates AS text[])) AS p(j, t), "
    "unnest(CAST(:reasons AS text[])) AS reason"
)
_EMAIL_CLICKS = text(
    "INSERT INTO scoring.email_clicks "
    "(event_id, customer_id, notification_id, journey, template, clicked_at) "
    "SELECT 'click-' || order_id || '-' || customer_id, customer_id, 'email-' || order_id, "
    "(CAST(:journeys AS text[]))[pair], (CAST(:templates AS text[]))[pair], "
    "ordered_at - interval '2 hours' FROM ("
    "SELECT *, 1 + abs(hashtext(order_id)) % :pairs AS pair FROM scoring.orders "
    "WHERE abs(hashtext(customer_id || order_id)) % 20 = 0) AS sampled"
)


async def _seed_email(engine: AsyncEngine, today: date) -> None:
    pairs = {"journeys": [j for j, _ in PAIRS], "templates": [t for _, t in PAIRS]}
    async with engine.begin() as connection:
        await connection.execute(
            _EMAIL_DAILY,
            {**pairs, "today": today, "days": HISTORY_DAYS - 1, "reasons": SUPPRESSION_REASONS},
        )
        await connection.execute(_EMAIL_CLICKS, {**pairs, "pairs": len(PAIRS)})


_HISTORY = text(
    "INSERT INTO scoring.daily_figures (day, currency, figure, value, computed_at) "
    "SELECT day - back, currency, figure, value, computed_at FROM scoring.daily_figures, "
    "generate_series(1, :days) AS back WHERE day = :today ON CONFLICT DO NOTHING"
)


def _requests(app: FastAPI, today: date) -> list[tuple[str, dict[str, str]]]:
    """Every GET under /v1/analytics without a path parameter or a required query parameter:
    the last 30 days (the default), the last 365, and each value of an enumerated parameter."""
    year = {"start": (today - timedelta(days=HISTORY_DAYS - 1)).isoformat()}
    found: list[tuple[str, dict[str, str]]] = []
    for path, operations in app.openapi()["paths"].items():
        get = operations.get("get")
        if not get or "{" in path or not path.startswith("/v1/analytics"):
            continue
        parameters = get.get("parameters", [])
        if any(p.get("required") for p in parameters):
            continue
        names = {p["name"] for p in parameters}
        found.append((path, {}))
        if "start" in names:
            found.append((path, year))
        for parameter in parameters:
            for value in _enum(parameter.get("schema", {})):
                found.append(
                    (path, {**(year if "start" in names else {}), parameter["name"]: value})
                )
    return found


def _enum(schema: dict[str, Any]) -> list[str]:
    options = [schema, *schema.get("anyOf", [])]
    return [str(v) for option in options for v in option.get("enum", [])]


async def _time_requests(
    app: FastAPI, requests: list[tuple[str, dict[str, str]]]
) -> list[tuple[str, float, float]]:
    """(request, median seconds, slowest seconds) of each request, REPEATS times."""
    timed = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for path, params in requests:
            seconds = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                answer = await client.get(path, params=params)
                seconds.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} {params}: {answer.status_code} {answer.text}")
            shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
            timed.append((shown, sorted(seconds)[len(seconds) // 2], max(seconds)))
    return timed


async def _run(args: argparse.Namespace, postgres: LocalPostgres, report: list[str]) -> None:
    settings = ScoringSettings(env=Environment.LOCAL, database_url=postgres.url)
    await run_migrations(settings, "scoring")
    engine = create_engine(settings)
    now = datetime.now(UTC)
    today = now.date()
    log(f"scoring {args.distinct:,} distinct customers")
    await _score_distinct(engine, args.distinct, now)
    copies = max(0, args.customers // args.distinct - 1)
    log(f"copying them {copies}x")
    await _copy_customers(engine, copies)
    async with engine.connect() as connection:
        total = await connection.scalar(text("SELECT count(*) FROM scoring.scores"))
        orders = await connection.scalar(text("SELECT count(*) FROM scoring.orders"))

    log("seeding a year of email counters and clicks")
    await _seed_email(engine, today)

    database = postgres_processes(postgres)
    me = psutil.Process()
    ours, theirs = sum(me.cpu_times()[:2]), sum(sum(p.cpu_times()[:2]) for p in database)
    started = time.perf_counter()
    async with engine.begin() as connection:
        rows = await take_snapshot(connection, snapshot_parts(ATTRIBUTION), today, now)
    snapshot_seconds = time.perf_counter() - started
    snapshot_cpu = (
        sum(me.cpu_times()[:2]) - ours,
        sum(sum(p.cpu_times()[:2]) for p in postgres_processes(postgres)) - theirs,
    )
    log(f"snapshot: {rows:,} rows in {snapshot_seconds:.1f}s")
    async with engine.begin() as connection:
        await connection.execute(_HISTORY, {"days": HISTORY_DAYS - 1, "today": today})
        figures = await connection.scalar(text("SELECT count(*) FROM scoring.daily_figures"))
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("VACUUM ANALYZE scoring.daily_figures"))

    app = FastAPI()
    app.include_router(analytics_router(engine, lambda: None, ANALYTICS_PAGES))
    requests = _requests(app, today)
    ours, theirs = sum(me.cpu_times()[:2]), sum(sum(p.cpu_times()[:2]) for p in database)
    timed = await _time_requests(app, requests)
    request_cpu = (
        sum(me.cpu_times()[:2]) - ours,
        sum(sum(p.cpu_times()[:2]) for p in postgres_processes(postgres)) - theirs,
    )
    await engine.dispose()

    slowest = max(t[2] for t in timed)
    verdict = "pass" if slowest < TARGET_SECONDS else "MISS"
    report += [
        HEADING,
        "",
        f"Recorded {now:%Y-%m-%d %H:%M} UTC by `.venv/bin/python -m bench.scoring.dashboard "
        f"--customers {args.customers} --distinct {args.distinct}` ({total:,} customers with "
        f"{orders:,} orders; {figures:,} rows of daily figures over {HISTORY_DAYS} days; "
        f"PostgreSQL {await postgres_version(postgres)}).",
        "",
        f"Every page under {TARGET_SECONDS:.0f} s: slowest request {slowest * 1000:.0f} ms: "
        f"**{verdict}**.",
        "",
        "| request | median | slowest of 5 |",
        "|---|---|---|",
        *(f"| `{r}` | {m * 1000:.1f} ms | {s * 1000:.1f} ms |" for r, m, s in timed),
        "",
        f"The requests used {request_cpu[0]:.1f} CPU s in the benchmark process (the API, in "
        f"process over ASGI) and {request_cpu[1]:.1f} CPU s in PostgreSQL, "
        f"{len(timed) * REPEATS} requests in all.",
        "",
        f"The snapshot job's run over {total:,} customers (every page's figures, one "
        f"transaction): {snapshot_seconds:.1f} s, {rows:,} rows; CPU {snapshot_cpu[0]:.1f} s "
        f"in the benchmark process, {snapshot_cpu[1]:.1f} s in PostgreSQL. It runs every "
        "`RETAIN_ANALYTICS_SNAPSHOT_SECONDS` (300 s by default), under an advisory lock.",
        "",
        "The Email page's data is seeded: a year of daily counters for each of the "
        f"{len(PAIRS)} templates the {len({j for j, _ in PAIRS})} shipped journeys send, "
        "and a click two hours before one order in twenty, so the snapshot attributes orders.",
        "",
        f"The customers are {args.distinct:,} distinct synthetic shop customers, scored by "
        "scoring's own handler, each copied under new ids: the data's shape is real, the "
        "distinct values are fewer than a real shop's. Machine: "
        + ", ".join(f"{k} {v}" for k, v in machine(()).items() if k in ("nproc", "cpu")),
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=20_000)
    args = parser.parse_args()
    report: list[str] = []
    with exclusive_machine():
        with_durable_postgres(lambda postgres: _run(args, postgres, report))
    print("\n".join(report))
    write_section(RESULTS, HEADING, report)
    slowest_line = next(line for line in report if line.startswith("Every page"))
    return 0 if "pass" in slowest_line else 1


if __name__ == "__main__":
    sys.exit(main())
