"""The Channels page's figures: channel economics (services/scoring/domain/channels.py) per
channel, per campaign or per affiliate, over the months of a date range and month by month.

Spend is recorded per month, so the month is the unit: a range selects every month any of its
days falls in (1 to 15 March selects March whole). The snapshot keeps the rows of GET
/v1/channels (per channel, campaign, affiliate, month and currency); the page adds them up per
channel, campaign (of a channel) or affiliate, and derives the rates from the sums, never by
averaging rates: CPA = spend / new customers over the whole range.

Money is never converted: a page in one currency counts the rows in that currency, and the rows
without one, profiles touched that have not ordered yet (so conversion is measured against
every profile touched).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from services.scoring.domain.analytics.figures import DateRange
from services.scoring.domain.channels import ChannelFigures

ChannelBy = Literal["channel", "campaign", "affiliate"]
NONE = "(none)"  # the key of rows without a campaign or an affiliate


def month_of_day(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_of(period: DateRange) -> list[str]:
    """Every month a day of the range falls in, oldest first."""
    months = []
    year, month = period.start.year, period.start.month
    while (year, month) <= (period.end.year, period.end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def key_of(row: ChannelFigures, by: ChannelBy) -> tuple[str, str | None, str | None]:
    """What a row is counted under: (channel, campaign, affiliate), the others None."""
    if by == "channel":
        return (row.channel, None, None)
    if by == "campaign":
        return (row.channel, row.campaign or NONE, None)
    return ("", None, row.affiliate or NONE)


def label_of(key: tuple[str, str | None, str | None], by: ChannelBy) -> str:
    channel, campaign, affiliate = key
    if by == "channel":
        return channel
    if by == "campaign":
        return f"{campaign} · {channel}"
    return affiliate or NONE


def add_up(rows: Iterable[ChannelFigures], like: ChannelFigures) -> ChannelFigures:
    """The rows' counts, values and spend summed into a row named like `like`."""
    total = ChannelFigures(like.channel, like.campaign, like.affiliate, like.month, like.currency)
    for row in rows:
        total.touched += row.touched
        total.converted += row.converted
        total.new_customers += row.new_customers
        total.clv_historical += row.clv_historical
        total.clv_predicted += row.clv_predicted
        if row.spend is not None:
            total.spend = (total.spend or Decimal(0)) + row.spend
    return total


@dataclass(frozen=True, slots=True)
class ChannelLine:
    """One channel's (campaign's, affiliate's) figures over the range and per month."""

    key: tuple[str, str | None, str | None]
    label: str
    total: ChannelFigures
    by_month: list[ChannelFigures]  # one per month of the range, in order


def channel_lines(
    rows: Iterable[ChannelFigures], period: DateRange, currency: str, by: ChannelBy
) -> list[ChannelLine]:
    """Per key, the figures of the range's months in `currency`: most new customers first."""
    months = months_of(period)
    grouped: dict[tuple[str, str | None, str | None], dict[str, list[ChannelFigures]]] = {}
    for row in rows:
        if row.month in months and row.currency in (currency, None):
            grouped.setdefault(key_of(row, by), {}).setdefault(row.month, []).append(row)
    lines = []
    for key, by_month in grouped.items():
        channel, campaign, affiliate = key
        each = [
            add_up(
                by_month.get(month, []),
                ChannelFigures(channel, campaign, affiliate, month, currency),
            )
            for month in months
        ]
        whole = ChannelFigures(channel, campaign, affiliate, f"{months[0]}..{months[-1]}", currency)
        lines.append(ChannelLine(key, label_of(key, by), add_up(each, whole), each))
    lines.sort(key=lambda line: (-line.total.new_customers, line.label))
    return lines
