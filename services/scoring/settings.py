from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    http_port: int = Field(
        default=8082, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_SCORING_PORT")
    )
