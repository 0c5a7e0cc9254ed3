"""scores.v1 (compacted, keyed by customer id): the latest scores per customer.

A tombstone (null value) means the customer was erased. Fields after `churn_risk` were added
compatibly: older records lack them.
"""

from typing import Literal

from pydantic import Field

from schemas._types import Currency, Id, Money, Probability, UtcDatetime
from schemas.topics._common import TopicModel

ValueTier = Literal["most_valuable", "potential", "low_value"]
ModelStatus = Literal["fitted", "insufficient_data", "failed"]
LadderStep = Literal["prospect", "customer", "client", "supporter", "advocate", "partner"]
LifecycleStage = Literal["selection", "acquisition", "retention", "expansion", "lapsed"]


class Rfm(TopicModel):
    recency: int = Field(ge=1, le=5, description="5 = bought most recently.")
    frequency: int = Field(ge=1, le=5, description="5 = buys most often.")
    monetary: int = Field(ge=1, le=5, description="5 = spends most.")
    segment: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description='Named RFM segment, snake_case, e.g. "champions", "at_risk", "hibernating".',
    )


class CustomerScores(TopicModel):
    customer_id: Id
    computed_at: UtcDatetime
    currency: Currency | None = Field(default=None, description="Currency of the CLV fields.")
    clv_historical: Money = Field(
        description="Net revenue to date plus revenue of the customers they referred."
    )
    clv_predicted: Money = Field(description="Expected future revenue from this customer.")
    rfm: Rfm | None = Field(default=None, description="None until the customer has an order.")
    value_tier: ValueTier
    ladder_step: LadderStep
    lifecycle_stage: LifecycleStage
    churn_risk: Probability = Field(description="Probability the customer has lapsed, 0..1.")
    model: ModelStatus | None = Field(
        default=None,
        description=(
            "Whether the predictions come from a fitted model; insufficient_data or failed: "
            "clv_predicted is 0 and the expected purchases and P(alive) are absent."
        ),
    )
    model_version: int | None = Field(default=None, ge=0, description="The refit that scored.")
    clv_historical_by_currency: dict[str, Money] = Field(
        default_factory=dict,
        description="Historical CLV per currency (own and referred net revenue); never summed.",
    )
    expected_purchases_30_days: float | None = Field(default=None, ge=0)
    expected_purchases_90_days: float | None = Field(default=None, ge=0)
    probability_alive: Probability | None = None
    expected_next_order_at: UtcDatetime | None = Field(
        default=None,
        description=(
            "When the next order is expected, for a customer likely alive whose next order is "
            "expected within ten years (else null)."
        ),
    )
    recommendations: list[Id] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Product ids to suggest, best first: bought by customers who bought what this "
            "customer bought, never one they have; the most popular when history is thin."
        ),
    )
    upgrades: list[Id] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Higher-priced product ids to suggest, best first: in a category the customer bought "
            "from, typically priced clearly above the most they paid for a unit there (1.2 times "
            "by default, same currency), never one they have; bought with what they bought "
            "first, then the best sellers. Empty until a refit has priced the catalogue."
        ),
    )
