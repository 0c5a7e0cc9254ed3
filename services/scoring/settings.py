from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


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
    clv_horizon_months: int = Field(default=12, ge=1, le=120, description="Predicted CLV horizon")
    clv_monthly_discount_rate: float = Field(
        default=0.01, ge=0, le=1, description="Monthly discount rate of predicted CLV"
    )
