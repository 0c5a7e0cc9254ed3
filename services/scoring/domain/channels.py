"""Channel economics: what each acquisition channel, campaign and affiliate brings, month by
month, against what it cost.

Per (channel, campaign, affiliate, month) and currency:
- touched: profiles whose first touch was there that month;
- converted: of those, the ones who have ordered since (conversion rate = converted / touched);
- new_customers: customers acquired there whose first order fell in that month;
- spend: marketing spend recorded for the channel (and campaign, when recorded per campaign)
  and month; a channel-wide figure (no campaign) is compared with the channel's new customers
  of every campaign;
- CPA = spend / new customers; the average historical and predicted CLV of those new customers;
  CLV:CPA = their average total value (historical + predicted) / CPA.
Money is kept per currency and never converted: spend in one currency meets the customers whose
main currency it is.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.topics.profiles_v1 import ProfileSnapshot

CENT = Decimal("0.01")


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


@dataclass(frozen=True, slots=True)
class Acquired:
    """One customer's acquisition and value, from their profile and scores; or as many
    customers as `customers` who share the acquisition, months and currency (their value
    summed), as the dashboard's snapshot counts them."""

    channel: str | None
    campaign: str | None
    affiliate: str | None
    first_touch_at: datetime | None
    first_order_at: datetime | None
    currency: str | None
    clv_historical: Decimal
    clv_predicted: Decimal
    customers: int = 1


# What scoring.spend keeps of an amount (numeric(20, 4)): an amount finer than this is refused,
# not rounded without a word (and an exponent as small as 1E-999999999 would not reach the
# database at all).
SPEND_DECIMAL_PLACES = 4


def decimal_places(amount: Decimal) -> int:
    """The digits of a finite `amount` after the decimal point, trailing zeros not counted
    ("1.50" has one), as the API's validation counts them."""
    if not amount:
        return 0
    _, digits, exponent = amount.as_tuple()
    text = "".join(map(str, digits))
    return max(0, -int(exponent) - (len(text) - len(text.rstrip("0"))))


@dataclass(frozen=True, slots=True)
class Spend:
    channel: str
    campaign: str | None  # None: the whole channel
    month: str  # YYYY-MM
    amount: Decimal
    currency: str


@dataclass
class ChannelFigures:
    channel: str
    campaign: str | None
    affiliate: str | None
    month: str
    currency: str | None
    touched: int = 0
    converted: int = 0
    new_customers: int = 0
    clv_historical: Decimal = Decimal(0)  # summed over the new customers
    clv_predicted: Decimal = Decimal(0)
    spend: Decimal | None = None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.touched if self.touched else None

    @property
    def cpa(self) -> Decimal | None:
        if self.spend is None or not self.new_customers:
            return None
        return (self.spend / self.new_customers).quantize(CENT)

    @property
    def average_clv_historical(self) -> Decimal | None:
        return self._average(self.clv_historical)

    @property
    def average_clv_predicted(self) -> Decimal | None:
        return self._average(self.clv_predicted)

    @property
    def clv_to_cpa(self) -> float | None:
        cpa = self.cpa
        total = self._average(self.clv_historical + self.clv_predicted)
        if cpa is None or total is None or cpa == 0:
            return None
        return float(total / cpa)

    def _average(self, amount: Decimal) -> Decimal | None:
        return (amount / self.new_customers).quantize(CENT) if self.new_customers else None


def acquired(profile: ProfileSnapshot, scores: Mapping[str, Any]) -> Acquired:
    """A customer's acquisition from their profile, their value from their scores.v1 record
    (none yet: 0). Without a first touch, the first time they were seen counts."""
    acquisition = profile.acquisition
    return Acquired(
        acquisition.channel,
        acquisition.campaign,
        acquisition.affiliate,
        acquisition.first_touch_at or profile.activity.first_seen_at,
        profile.commerce.first_order_at,
        scores.get("currency") or profile.commerce.currency,
        Decimal(scores.get("clv_historical", 0)),
        Decimal(scores.get("clv_predicted", 0)),
    )


def channel_figures(customers: Iterable[Acquired], spend: Iterable[Spend]) -> list[ChannelFigures]:
    """Every (channel, campaign, affiliate, month, currency) with customers or spend."""
    rows: dict[tuple[str, str | None, str | None, str, str | None], ChannelFigures] = {}

    def row(
        channel: str, campaign: str | None, affiliate: str | None, month: str, currency: str | None
    ) -> ChannelFigures:
        key = (channel, campaign, affiliate, month, currency)
        if key not in rows:
            rows[key] = ChannelFigures(channel, campaign, affiliate, month, currency)
        return rows[key]

    for c in customers:
        channel = c.channel or "direct"
        if c.first_touch_at is not None:
            touched = row(channel, c.campaign, c.affiliate, month_of(c.first_touch_at), c.currency)
            touched.touched += c.customers
            touched.converted += c.customers if c.first_order_at is not None else 0
        if c.first_order_at is not None:
            new = row(channel, c.campaign, c.affiliate, month_of(c.first_order_at), c.currency)
            new.new_customers += c.customers
            new.clv_historical += c.clv_historical
            new.clv_predicted += c.clv_predicted
    # The rows each spend can cover, found by (channel, month, currency) rather than by reading
    # every row for every spend: the dashboard's snapshot counts many rows against years of it.
    covered: dict[tuple[str, str, str | None], list[ChannelFigures]] = {}
    for r in rows.values():
        covered.setdefault((r.channel, r.month, r.currency), []).append(r)
    for s in spend:
        candidates = covered.setdefault((s.channel, s.month, s.currency), [])
        matching = [r for r in candidates if s.campaign is None or r.campaign == s.campaign]
        if not matching:
            matching = [row(s.channel, s.campaign, None, s.month, s.currency)]
            candidates.append(matching[0])
        for r, amount in zip(matching, _shares(s.amount, matching), strict=True):
            r.spend = (r.spend or Decimal(0)) + amount
    return sorted(
        rows.values(),
        key=lambda r: (r.month, r.channel, r.campaign or "", r.affiliate or "", r.currency or ""),
    )


def _shares(amount: Decimal, rows: list[ChannelFigures]) -> list[Decimal]:
    """Spend is recorded per channel (or campaign), not per affiliate or campaign row: the rows
    it covers share it by their new customers (evenly when none has any), in cents that add up
    to the amount exactly (the first row takes the rounding)."""
    total = sum(r.new_customers for r in rows)
    weights = [Decimal(r.new_customers) if total else Decimal(1) for r in rows]
    whole = sum(weights)
    parts = [(amount * w / whole).quantize(CENT) for w in weights]
    parts[0] += amount - sum(parts)
    return parts
