from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    http_port: int = Field(
        default=8081, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_PROFILE_PORT")
    )
