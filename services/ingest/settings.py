from pydantic import AliasChoices, Field

from services.runtime.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    http_port: int = Field(
        default=8080, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_INGEST_PORT")
    )
