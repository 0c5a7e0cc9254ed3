"""What scoring reads of a profiles.v1 snapshot: a projection with the snapshot's own field
names and types, holding only what the rules use.

Rescoring decodes one snapshot per profile change; the whole snapshot (identity, activity,
cart, lists of products and categories) takes several times longer to validate than the dozen
fields scoring needs. Unknown fields are ignored, so the projection follows profiles.v1 as it
grows. The activity counts and orders_count give each stored profile its place in the
dashboard's funnel (services/scoring/domain/analytics/lifecycle.py), kept beside it.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas._types import Count, Currency, Id, Money, UtcDatetime
from schemas.topics.profiles_v1 import ProfileSnapshot


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ActivityView(_View):
    """What places the customer in the dashboard's funnel."""

    first_seen_at: UtcDatetime | None = None
    product_views: Count = 0
    cart_adds: Count = 0
    checkouts_started: Count = 0


class CommerceView(_View):
    currency: Currency | None = None
    orders_count: Count = 0
    revenue_by_currency: dict[str, Money] = Field(default_factory=dict)


class ReferralsView(_View):
    revenue_by_currency: dict[str, Money] = Field(default_factory=dict)


class SupportView(_View):
    average_rating: float | None = None


class EmailEngagementView(_View):
    clicked_count: Count = 0


class LoyaltyView(_View):
    points_redeemed: Count = 0


class ScoredProfile(_View):
    customer_id: Id
    revision: Count
    updated_at: UtcDatetime
    activity: ActivityView = ActivityView()
    commerce: CommerceView = CommerceView()
    referrals: ReferralsView = ReferralsView()
    support: SupportView = SupportView()
    email_engagement: EmailEngagementView = EmailEngagementView()
    loyalty: LoyaltyView = LoyaltyView()
    traits: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: ProfileSnapshot) -> "ScoredProfile":
        return cls.model_validate_json(snapshot.model_dump_json())
