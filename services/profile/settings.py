from decimal import Decimal

from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    http_port: int = Field(
        default=8081, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_PROFILE_PORT")
    )
    consumer_group: str = Field(default="retain-profile", min_length=1)
    batch_size: int = Field(default=500, ge=1, le=10_000, description="Touchpoints per fold")
    loyalty_points_per_unit: Decimal = Field(
        default=Decimal(1), ge=0, description="Points earned per currency unit of net order revenue"
    )
