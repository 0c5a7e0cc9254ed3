from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    http_port: int = Field(
        default=8083, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_NOTIFY_PORT")
    )
