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
