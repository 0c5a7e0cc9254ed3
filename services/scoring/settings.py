from datetime import time
from decimal import Decimal
from typing import Self

from pydantic import AliasChoices, Field, model_validator

from services.runtime.settings import ServiceSettings
from services.scoring.domain.refit import RefitSettings
from services.scoring.domain.standing import StandingRules
from services.scoring.domain.upgrades import UpgradeRules

_RULES = StandingRules()  # the documented defaults


class ScoringSettings(ServiceSettings):
    http_port: int = Field(
        default=8082, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_SCORING_PORT")
    )
    consumer_group: str = Field(
        default="retain-scoring",
        min_length=1,
        validation_alias=AliasChoices("RETAIN_SCORING_CONSUMER_GROUP"),
        description="Prefix of the consumer groups",
    )
    refit_interval_seconds: float = Field(
        default=86_400, gt=0, description="How often the model is refitted (default daily)"
    )
    refit_at: time | None = Field(
        default=None,
        description="Refit once a day at this UTC time of day (HH:MM) instead of every interval",
    )
    analytics_snapshot_seconds: float = Field(
        default=300, ge=1, le=86400, description="How often today's dashboard figures are written"
    )
    email_attribution_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="An order is attributed to the last email click at most this many days "
        "before it",
    )
    dashboard_session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="How long a dashboard login lasts"
    )
    # The dashboard's Customer page reads and erases through these services' admin APIs.
    profile_url: str = Field(
        default="http://127.0.0.1:8081",
        pattern=r"^https?://",
        description="The profile service's base URL, for the dashboard's customer page",
    )
    notify_url: str = Field(
        default="http://127.0.0.1:8083",
        pattern=r"^https?://",
        description="The notify service's base URL, for a customer's emails on the dashboard",
    )
    clv_horizon_months: int = Field(default=12, ge=1, le=120, description="Predicted CLV horizon")
    clv_monthly_discount_rate: float = Field(
        default=0.01, ge=0, le=1, description="Monthly discount rate of predicted CLV"
    )

    upgrade_price_ratio: Decimal = Field(
        default=Decimal("1.2"),
        gt=1,
        description="An upgrade costs at least this many times the most a customer paid in "
        "its category",
    )
    upgrades_per_customer: int = Field(default=5, ge=0, le=50)
    refit_sample_customers: int = Field(
        default=2_000_000,
        ge=1000,
        description="Past this many customers with orders, refits fit a uniform sample of them",
    )

    # The standing rules (services/scoring/domain/standing.py says what each one means).
    tier_top_share: float = Field(default=_RULES.top_share, gt=0, le=1)
    tier_potential_ratio: Decimal = Field(default=_RULES.potential_ratio, gt=0)
    ladder_alive_threshold: float = Field(default=_RULES.alive_threshold, ge=0, le=1)
    ladder_good_rating: float = Field(default=_RULES.good_rating, ge=1, le=5)
    ladder_affiliate_trait: str = Field(default=_RULES.affiliate_trait, min_length=1)
    stage_lapsed_threshold: float = Field(default=_RULES.lapsed_threshold, ge=0, le=1)
    stage_silent_intervals: float = Field(default=_RULES.silent_intervals, gt=0)
    stage_one_time_silence_days: int = Field(default=_RULES.one_time_silence_days, ge=1)
    stage_acquisition_days: int = Field(default=_RULES.acquisition_days, ge=1)
    churn_medium_threshold: float = Field(default=_RULES.churn_medium, ge=0, le=1)
    churn_high_threshold: float = Field(default=_RULES.churn_high, ge=0, le=1)

    @model_validator(mode="after")
    def _bands_in_order(self) -> Self:
        if self.churn_medium_threshold > self.churn_high_threshold:
            raise ValueError(
                "RETAIN_CHURN_MEDIUM_THRESHOLD must not be above RETAIN_CHURN_HIGH_THRESHOLD"
            )
        return self

    def refit_settings(self) -> RefitSettings:
        return RefitSettings(
            horizon_months=self.clv_horizon_months,
            monthly_discount_rate=self.clv_monthly_discount_rate,
            upgrades=UpgradeRules(
                price_ratio=self.upgrade_price_ratio, count=self.upgrades_per_customer
            ),
            sample_customers=self.refit_sample_customers,
        )

    def standing_rules(self) -> StandingRules:
        return StandingRules(
            top_share=self.tier_top_share,
            potential_ratio=self.tier_potential_ratio,
            alive_threshold=self.ladder_alive_threshold,
            good_rating=self.ladder_good_rating,
            affiliate_trait=self.ladder_affiliate_trait,
            lapsed_threshold=self.stage_lapsed_threshold,
            silent_intervals=self.stage_silent_intervals,
            one_time_silence_days=self.stage_one_time_silence_days,
            acquisition_days=self.stage_acquisition_days,
            churn_medium=self.churn_medium_threshold,
            churn_high=self.churn_high_threshold,
        )
