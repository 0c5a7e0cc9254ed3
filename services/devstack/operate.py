"""Operator commands that call the services' admin APIs: routine work without psql or a Kafka
shell. Each reads the local stack's URLs and token by default (`services.devstack.remote`)."""

import argparse
import getpass
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from services.devstack.errors import DevStackError
from services.devstack.progress import bar
from services.devstack.remote import ServiceApi, add_service_args
from services.devstack.stack import StackConfig
from services.scoring.spend_csv import SpendFileError, SpendRow, parse_spend


def set_spend(scoring: ServiceApi, rows: Sequence[SpendRow]) -> None:
    """Each row through scoring's spend API (setting one again replaces it)."""
    for row in rows:
        body = {"amount": str(row.amount), "currency": row.currency, "campaign": row.campaign}
        scoring.call("PUT", f"/v1/spend/{row.channel}/{row.month}", json=body)


def add_spend_command(commands: Any) -> None:
    spend = commands.add_parser("spend", help="marketing spend, for channel economics")
    actions = spend.add_subparsers(dest="action", required=True)
    spend_import = actions.add_parser(
        "import",
        help="set spend from a CSV file: channel, month (YYYY-MM), amount, currency[, campaign]",
    )
    spend_import.add_argument("file")
    add_service_args(spend_import, "scoring")


def spend(config: StackConfig, args: argparse.Namespace) -> None:
    """`retain spend import FILE`: every row checked first, then set through scoring's API."""
    try:
        rows = parse_spend(Path(args.file).read_text())
    except (OSError, UnicodeDecodeError, SpendFileError) as error:
        raise DevStackError(f"{args.file}: {error}") from None
    with ServiceApi.of("scoring", config, args) as scoring:
        set_spend(scoring, rows)
        print(f"imported {len(rows)} spend row(s) into {scoring.url}")


def add_api_commands(commands: Any) -> None:
    customers = commands.add_parser("customers", help="find, export and erase customers (profile)")
    actions = customers.add_subparsers(dest="action", required=True)
    find = actions.add_parser("find", help="customers by user id, email or anonymous id")
    who = find.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id")
    who.add_argument("--email")
    who.add_argument("--anonymous-id")
    who.add_argument("--customer-id")
    export = actions.add_parser(
        "export", help="everything held on a customer, or every profile (--all) as JSON lines"
    )
    export.add_argument("customer_id", nargs="?")
    export.add_argument("--all", action="store_true", help="every profile, page by page")
    export.add_argument("--output", help="write to this file (default: stdout)")
    erase = actions.add_parser("erase", help="erase a customer everywhere (--yes)")
    erase.add_argument("customer_id")
    erase.add_argument("--yes", action="store_true", help="really erase")
    for parser in (find, export, erase):
        add_service_args(parser, "profile")

    scores = commands.add_parser("scores", help="a customer's scores; refit the CLV model")
    score_actions = scores.add_subparsers(dest="action", required=True)
    show = score_actions.add_parser("show", help="a customer's latest scores")
    show.add_argument("customer_id")
    refit = score_actions.add_parser("refit", help="refit now, then rescore every customer")
    refit.add_argument("--as-of", help="YYYY-MM-DD: fit as of a past date (a backtest)")
    for parser in (show, refit):
        add_service_args(parser, "scoring")

    journeys = commands.add_parser("journeys", help="email journeys: counts, pause, resume")
    journey_actions = journeys.add_subparsers(dest="action", required=True)
    listing = journey_actions.add_parser("list", help="every journey with its counts")
    pause = journey_actions.add_parser(
        "pause", help="no one enters the journey and its runs wait (emails already decided go)"
    )
    pause.add_argument("journey")
    pause.add_argument("--by", help="who pauses it, for the record (default: user@host)")
    resume = journey_actions.add_parser("resume", help="its runs go on within half a minute")
    resume.add_argument("journey")
    for parser in (listing, pause, resume):
        add_service_args(parser, "notify")


def customers(config: StackConfig, args: argparse.Namespace) -> None:
    with ServiceApi.of("profile", config, args) as profile:
        if args.action == "find":
            if args.customer_id:
                found = [profile.json("GET", f"/v1/customers/{_segment(args.customer_id)}")]
            else:
                query = {"user_id": args.user_id, "email": args.email}
                query |= {"anonymous_id": args.anonymous_id}
                params = {k: v for k, v in query.items() if v}
                found = profile.json("GET", "/v1/customers", params=params)["customers"]
            if not found:
                raise DevStackError("no customer found")
            for customer in found:
                commerce = customer.get("commerce", {})
                print(
                    f"{customer['customer_id']}  user {customer.get('user_id')}  "
                    f"email {customer.get('email')}  orders {commerce.get('orders_count', 0)}  "
                    f"net revenue {commerce.get('net_revenue')} {commerce.get('currency') or ''}"
                )
        elif args.action == "export":
            _export(profile, args)
        else:
            if not args.yes:
                raise DevStackError(f"erase deletes {args.customer_id} everywhere: add --yes")
            profile.call("DELETE", f"/v1/customers/{_segment(args.customer_id)}")
            print(f"erased {args.customer_id}")


def _export(profile: ServiceApi, args: argparse.Namespace) -> None:
    if bool(args.all) == bool(args.customer_id):
        raise DevStackError("export needs a CUSTOMER_ID or --all (not both)")
    out = Path(args.output).open("w") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.customer_id:
            data = profile.json("GET", f"/v1/customers/{_segment(args.customer_id)}/export")
            out.write(json.dumps(data, indent=2) + "\n")
            return
        count, cursor = 0, None
        with bar() as progress:
            task = progress.add_task("exporting profiles", total=None, note="")
            while True:
                params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
                page = profile.json("GET", "/v1/customers", params=params)
                for customer in page["customers"]:
                    out.write(json.dumps(customer) + "\n")
                count += len(page["customers"])
                progress.update(task, completed=count, note=f"{count:,} profiles")
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        print(f"exported {count:,} profiles", file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()


def scores(config: StackConfig, args: argparse.Namespace) -> None:
    with ServiceApi.of("scoring", config, args) as scoring:
        if args.action == "show":
            print(
                json.dumps(
                    scoring.json("GET", f"/v1/scores/{_segment(args.customer_id)}"), indent=2
                )
            )
            return
        params = {"as_of": args.as_of} if args.as_of else {}
        with bar() as progress:
            progress.add_task("refitting and rescoring every customer", total=None, note="")
            model = scoring.json("POST", "/v1/refit", params=params)
        reason = f" ({model['reason']})" if model.get("reason") else ""
        print(
            f"model version {model.get('version')}: {model.get('status')}{reason}, "
            f"{model.get('customers')} customers fitted, as of {model.get('as_of')}"
        )


def journeys(config: StackConfig, args: argparse.Namespace) -> None:
    with ServiceApi.of("notify", config, args) as notify:
        if args.action == "list":
            _print_journeys(notify.json("GET", "/v1/journeys")["journeys"])
            return
        path = f"/v1/journeys/{_segment(args.journey)}/{args.action}"
        if args.action == "pause":
            by = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
            journey = notify.json("POST", path, json={"by": by})
        else:
            journey = notify.json("POST", path)
    if journey["paused"]:
        print(f"{journey['id']} paused by {journey['paused_by']} at {journey['paused_at']}")
    else:
        print(f"{journey['id']} resumed: {journey['waiting']} run(s) go on")


def _print_journeys(listed: list[dict[str, Any]]) -> None:
    print(
        f"{'journey':<24} {'state':<8} {'entered':>8} {'waiting':>8} {'sent':>6} {'converted':>9}"
    )
    for journey in listed:
        state = "paused" if journey.get("paused") else "on" if journey["enabled"] else "off"
        print(
            f"{journey['id']:<24} {state:<8} {journey['entered']:>8} {journey['waiting']:>8} "
            f"{journey['sent']:>6} {journey['converted']:>9}"
        )


def _segment(value: str) -> str:
    """A customer id as one URL path segment, whatever it holds."""
    return quote(value, safe="")
