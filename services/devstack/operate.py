"""Operator commands that call the services' admin APIs: routine work without psql or a Kafka
shell. Each reads the local stack's URLs and token by default (`services.devstack.remote`)."""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.devstack.errors import DevStackError
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
