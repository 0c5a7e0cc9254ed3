"""`retain demo`: the simulated storefront, sent through ingest like a client would; and
`retain replay`: past orders from a file, through ingest with their original dates.

Historical mode backfills the past `--days` for `--customers` shoppers (timestamps in the
past), sets the marketing spend they cost through scoring's API and, once the pipeline has
folded them, refits the CLV model so the dashboard shows predicted values. `--live` then keeps
a steady trickle of new and returning shoppers going until Ctrl-C.
"""

import argparse
import asyncio
import importlib.util
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.demo import orders
from services.demo.ingest_client import IngestClient, IngestError, Totals
from services.demo.storefront import Shape, live_session, shopper_events, spend_plan
from services.devstack.errors import DevStackError
from services.devstack.operate import set_spend
from services.devstack.progress import STDERR, bar, sending
from services.devstack.remote import (
    ServiceApi,
    add_ingest_args,
    add_service_args,
    error_text,
    ingest_url,
    write_key,
)
from services.devstack.stack import StackConfig

SETTLE_SECONDS = 300.0


def add_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="simulate a storefront: backfill past traffic, then optionally a live trickle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--customers", type=_positive, default=2000, help="shoppers (2000)")
    demo.add_argument("--days", type=_positive, default=180, help="days of history (180)")
    demo.add_argument("--seed", type=int, default=1, help="same seed, same events (1)")
    demo.add_argument(
        "--until",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the history ends at the start of this day, UTC (today); fix it to get the same"
        " events on any day",
    )
    demo.add_argument("--live", action="store_true", help="after the backfill, keep sending")
    demo.add_argument(
        "--no-backfill", action="store_true", help="skip the history (with --live: live only)"
    )
    demo.add_argument("--sessions-per-second", type=_pace, default=2.0, help="live mode's pace (2)")
    demo.add_argument(
        "--live-for", type=_positive, metavar="SECONDS", help="stop live mode after this long"
    )
    demo.add_argument(
        "--no-refit", action="store_true", help="do not wait for the pipeline and refit"
    )
    demo.add_argument("--concurrency", type=_positive, default=4, help="requests in flight (4)")
    add_ingest_args(demo)
    add_service_args(demo, "scoring")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


def _pace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.01 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value:g} is not between 0.01 and 1000")
    return value


def run(config: StackConfig, args: argparse.Namespace) -> None:
    url, key = ingest_url(config, args), write_key(config, args)
    _check_ready(url)
    end = args.until or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shape = Shape(args.seed, args.customers, args.days, end)
    if not args.no_backfill:
        with ServiceApi.of("scoring", config, args) as scoring:
            totals, seconds = backfill(shape, url, key, args.concurrency)
            print(
                f"backfill: {shape.shoppers:,} shoppers over {shape.days} days (seed {shape.seed}):"
                f" {totals.accepted:,} events accepted, {totals.rejected:,} rejected in "
                f"{seconds:.1f} s ({totals.accepted / max(seconds, 1e-6):,.0f} events/s, "
                f"{totals.retries} retries)",
                flush=True,
            )
            rows = spend_plan(shape)
            set_spend(scoring, rows)
            print(f"spend: {len(rows)} channel-month rows set in scoring", flush=True)
            if not args.no_refit:
                settle_and_refit(scoring)
    dashboard = (args.url or config.service_url("scoring")).rstrip("/")
    print(f"dashboard: {dashboard}/  (log in with the admin token)", flush=True)
    if not config.external_smtp and args.url is None:
        print(f"inbox:     http://127.0.0.1:{config.mailpit_ui_port}", flush=True)
    if args.live:
        live(shape, url, key, args.sessions_per_second, args.live_for)


def backfill(shape: Shape, url: str, key: str, concurrency: int) -> tuple[Totals, float]:
    """Send the whole history; returns what ingest said and how long it took."""
    started = time.monotonic()
    with sending("backfill: shoppers", shape.shoppers) as (progress, task, report):

        def events() -> Iterator[dict[str, Any]]:
            for index in range(shape.shoppers):
                yield from shopper_events(shape, index)
                progress.update(task, completed=index + 1)

        totals = _send(url, key, concurrency, events(), report.sent)
    return totals, time.monotonic() - started


def live(
    shape: Shape, url: str, key: str, sessions_per_second: float, seconds: float | None = None
) -> None:
    """New and returning shoppers at a steady pace, for `seconds` or until Ctrl-C; then the
    totals."""
    run_tag = f"{int(time.time()):x}"
    interval = 1 / sessions_per_second
    totals = Totals()
    deadline = time.monotonic() + seconds if seconds else float("inf")

    async def trickle(report: Any) -> None:
        async with IngestClient(url, key) as client:
            for number in itertools.count():
                if time.monotonic() >= deadline:
                    return
                events = live_session(shape, run_tag, number, datetime.now(UTC))
                await client.send(events, report)
                progress.update(task, advance=1)
                totals.accepted, totals.rejected = client.totals.accepted, client.totals.rejected
                await asyncio.sleep(interval)

    with sending("live: sessions (Ctrl-C stops)", 0) as (progress, task, report):
        progress.update(task, total=None)
        try:
            asyncio.run(trickle(report.sent))
        except IngestError as error:
            raise DevStackError(str(error)) from None
        except KeyboardInterrupt:
            pass
    print(f"live: {totals.accepted:,} events accepted, {totals.rejected:,} rejected", flush=True)


def _check_ready(url: str) -> None:
    """Fail at once when ingest is not there, rather than after retrying every batch."""
    try:
        answer = httpx.get(f"{url}/readyz", timeout=10, trust_env=False)
    except httpx.HTTPError as error:
        raise DevStackError(f"ingest at {url} is unreachable ({type(error).__name__})") from None
    if answer.status_code != 200:
        raise DevStackError(f"ingest at {url} is not ready: {error_text(answer)}")


def _send(url: str, key: str, concurrency: int, events: Any, on_batch: Any) -> Totals:
    async def go() -> Totals:
        async with IngestClient(url, key, concurrency=concurrency) as client:
            return await client.send(events, on_batch)

    try:
        return asyncio.run(go())
    except IngestError as error:
        raise DevStackError(str(error)) from None


def settle_and_refit(scoring: ServiceApi) -> None:
    """Wait until scoring's segment counts stop moving (profile and scoring have folded the
    events), then refit the model so predicted CLV is there to see."""
    with bar() as progress:
        task = progress.add_task("profile and scoring folding the events", total=None, note="")
        deadline = time.monotonic() + SETTLE_SECONDS
        last, steady = "", 0
        while steady < 3 and time.monotonic() < deadline:
            figures = scoring.json("GET", "/v1/segments")
            current = json.dumps(figures, sort_keys=True)
            customers = sum(row["customers"] for row in next(iter(figures.values()), []))
            progress.update(task, note=f"{customers:,} customers scored")
            steady = steady + 1 if current == last else 0
            last = current
            time.sleep(2)
        progress.update(task, description="refitting the CLV model", note="")
        model = scoring.json("POST", "/v1/refit")
    STDERR.print(f"model: {model.get('status')} ({model.get('customers', '?')} customers fitted)")


def add_replay_command(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="replay past orders through ingest (CDNOW, or a shop's orders CSV)",
        description=orders.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = replay.add_subparsers(dest="kind", required=True)
    cdnow = kinds.add_parser(
        "cdnow", help="the CDNOW_master transactions, to compare scores with published results"
    )
    cdnow.add_argument(
        "file", nargs="?", help="CDNOW_master.txt (default: the copy the lifetimes package ships)"
    )
    csv = kinds.add_parser(
        "csv", help="a CSV of orders: customer_id, order_id, date, amount[, currency, channel]"
    )
    csv.add_argument("file")
    csv.add_argument("--currency", help="currency of rows without one, e.g. EUR")
    for parser in (cdnow, csv):
        parser.add_argument(
            "--concurrency", type=_positive, default=4, help="requests in flight (4)"
        )
        add_ingest_args(parser)


def replay(config: StackConfig, args: argparse.Namespace) -> None:
    path = Path(args.file) if args.file else cdnow_file()
    try:
        text = path.read_text()
        if args.kind == "cdnow":
            past = orders.cdnow_orders(text)
        else:
            past = orders.csv_orders(text, default_currency=args.currency)
    except (OSError, UnicodeDecodeError, orders.OrderFileError) as error:
        raise DevStackError(f"{path}: {error}") from None
    url, key = ingest_url(config, args), write_key(config, args)
    _check_ready(url)
    started = time.monotonic()
    with sending(f"replay {path.name}: orders", len(past)) as (progress, task, report):

        def on_batch(totals: Totals) -> None:
            progress.update(task, completed=totals.accepted + totals.rejected)
            report.sent(totals)

        totals = _send(url, key, args.concurrency, orders.events(past), on_batch)
    seconds = time.monotonic() - started
    customers = len({order.customer_id for order in past})
    print(
        f"replayed {len(past):,} orders of {customers:,} customers from {path}: "
        f"{totals.accepted:,} accepted, {totals.rejected:,} rejected in {seconds:.1f} s",
        flush=True,
    )
    if totals.rejected:
        raise DevStackError(
            f"{totals.rejected:,} orders were rejected (see touchpoints.rejected.v1)"
        )


def cdnow_file() -> Path:
    """The CDNOW_master.txt the lifetimes package ships (a development dependency), found
    without importing it."""
    spec = importlib.util.find_spec("lifetimes")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "datasets" / "CDNOW_master.txt"
        if candidate.is_file():
            return candidate
    raise DevStackError(
        "CDNOW_master.txt not found: pass its path (`retain replay cdnow FILE`), or install the "
        "development dependencies (`make install`; the lifetimes package ships it)"
    )
