"""Typed settings read from the environment (prefix RETAIN_), validated once at start-up.

Every service extends `ServiceSettings`. Defaults are chosen for local mode; outside local mode
the defaults that would be unsafe in production (well-known database password, missing admin
token) are refused at start-up instead of being discovered later.
"""

from enum import StrEnum
from typing import Literal, Self, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_DATABASE_URL = "postgresql+asyncpg://retain:retain@127.0.0.1:5432/retain"
_MIN_ADMIN_TOKEN_LENGTH = 32


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """Raised when settings are invalid; the message names the variable and what is wrong."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAIN_", frozen=True, extra="ignore")

    env: Environment = Environment.PRODUCTION
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_create_topics: bool = Field(
        default=True, description="Create missing topics at start (off where topics are managed)"
    )

    database_url: SecretStr = SecretStr(LOCAL_DATABASE_URL)
    database_pool_size: int = Field(default=10, ge=1, le=200)

    admin_token: SecretStr | None = None

    http_host: str = "127.0.0.1"
    # Each service overrides this with its own RETAIN_<SERVICE>_PORT alias.
    http_port: int = Field(default=8080, ge=1, le=65535)
    http_reuse_port: bool = Field(
        default=False, description="Let several processes of this service share the port"
    )
    # What a client may take of the HTTP server, whatever proxy stands in front (or none):
    # services.runtime.http.GuardedHttpProtocol. The request head (request line and headers):
    # 16 KB, as Node.js and h11 allow by default.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request's headers must arrive within this time"
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A request's body must arrive within this time"
    )

    startup_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    shutdown_grace_seconds: float = Field(default=20.0, gt=0, le=300)

    @property
    def is_local(self) -> bool:
        return self.env is Environment.LOCAL

    @model_validator(mode="after")
    def _refuse_unsafe_defaults_outside_local(self) -> Self:
        if self.is_local:
            return self
        problems = []
        if self.database_url.get_secret_value() == LOCAL_DATABASE_URL:
            problems.append(
                "RETAIN_DATABASE_URL is the local default (well-known password); "
                "set it to your PostgreSQL server"
            )
        token = self.admin_token.get_secret_value() if self.admin_token else ""
        if len(token) < _MIN_ADMIN_TOKEN_LENGTH:
            problems.append(
                f"RETAIN_ADMIN_TOKEN must be set to a random secret of at least "
                f"{_MIN_ADMIN_TOKEN_LENGTH} characters"
            )
        if problems:
            # A ValueError here becomes a pydantic ValidationError, reported by load_settings.
            raise ValueError(
                f"refusing to start with RETAIN_ENV={self.env.value}: " + "; ".join(problems)
            )
        return self

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options shared by every aiokafka client of a service."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context()
        return options


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(settings_type: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, turning validation errors into one readable message."""
    from pydantic import ValidationError

    try:
        return settings_type()
    except ValidationError as error:
        prefix = settings_type.model_config.get("env_prefix", "")
        lines = []
        for problem in error.errors():
            message = problem["msg"].removeprefix("Value error, ")
            if not problem["loc"]:  # a rule across several settings: the message names them
                lines.append(message)
                continue
            name = "_".join(str(part) for part in problem["loc"]).upper()
            variable = name if name.startswith(prefix) else f"{prefix}{name}"
            lines.append(f"{variable}: {message}")
        raise SettingsError("; ".join(lines)) from None
