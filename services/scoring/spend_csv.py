"""Marketing spend from a CSV file, for `retain spend import FILE`.

Columns (a header row names them, in any order): channel, month (YYYY-MM), amount, currency,
and optionally campaign. Every row is checked before anything is sent, and every problem is
reported with its line number and column, so a file either goes in whole or not at all.
"""

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from schemas._types import MAX_MONEY
from services.scoring.domain.channels import SPEND_DECIMAL_PLACES, decimal_places

CHANNELS = frozenset(
    {"direct", "search", "paid_search", "social", "email", "referral", "affiliate", "other"}
)
_MONTH = re.compile(r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
REQUIRED = ("channel", "month", "amount", "currency")


@dataclass(frozen=True)
class SpendRow:
    channel: str
    month: str
    amount: Decimal
    currency: str
    campaign: str | None


class SpendFileError(ValueError):
    """The file cannot be imported; the message lists every problem, by line and column."""


def parse_spend(text: str) -> list[SpendRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise SpendFileError(f"line 1: missing column(s) {', '.join(missing)}")
    rows: list[SpendRow] = []
    problems: list[str] = []
    for line, record in enumerate(reader, start=2):
        channel = (record.get("channel") or "").strip()
        month = (record.get("month") or "").strip()
        currency = (record.get("currency") or "").strip().upper()
        campaign = (record.get("campaign") or "").strip() or None
        if channel not in CHANNELS:
            problems.append(f"line {line}: channel {channel!r} is not one of {sorted(CHANNELS)}")
        if not _MONTH.match(month):
            problems.append(f"line {line}: month {month!r} is not YYYY-MM")
        if not _CURRENCY.match(currency):
            problems.append(f"line {line}: currency {currency!r} is not a 3-letter code")
        try:
            amount = Decimal((record.get("amount") or "").strip())
            if not amount.is_finite() or not 0 <= amount <= MAX_MONEY:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(
                f"line {line}: amount {record.get('amount')!r} is not a number from 0 to "
                f"{MAX_MONEY:,}"
            )
            continue
        if decimal_places(amount) > SPEND_DECIMAL_PLACES:
            problems.append(
                f"line {line}: amount {record.get('amount')!r} has more than "
                f"{SPEND_DECIMAL_PLACES} decimal places"
            )
            continue
        rows.append(SpendRow(channel, month, amount, currency, campaign))
    if problems:
        raise SpendFileError("; ".join(problems))
    return rows
