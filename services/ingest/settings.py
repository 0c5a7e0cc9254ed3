from pathlib import Path
from typing import Self

from pydantic import AliasChoices, AnyHttpUrl, Field, model_validator

from services.runtime.settings import ServiceSettings

KIB = 1024


class IngestSettings(ServiceSettings):
    http_port: int = Field(
        default=8080, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_INGEST_PORT")
    )
    # Segment's documented limits: 32 KB per event, 500 KB per batch request.
    max_event_bytes: int = Field(default=32 * KIB, ge=1 * KIB)
    max_request_bytes: int = Field(default=500 * KIB, ge=1 * KIB)
    # What a batch may produce: its events once the batch-level context, integrations and
    # sentAt are copied into each. Four times the request limit leaves room for a batch-level
    # sentAt on thousands of small events, and stops a small body expanding into megabytes.
    max_expanded_batch_bytes: int = Field(default=2000 * KIB, ge=1 * KIB)
    # The request head (request line and headers): 16 KB, as Node.js and h11 allow by default.
    max_header_bytes: int = Field(default=16 * KIB, ge=1 * KIB)
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request's headers must arrive within this time"
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A request's body must arrive within this time"
    )
    rate_limit_per_second: float = Field(
        default=2_000.0, gt=0, description="Sustained events per second per source"
    )
    rate_limit_burst: int = Field(default=20_000, ge=1, description="Events a source may burst")
    write_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a write-key lookup is reused; bounds revocation lag",
    )
    cors_allow_origins: list[str] = Field(
        default=["*"], description="Origins browser SDKs may post from"
    )
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Answer 503 if the broker has not acknowledged by then"
    )
    # Browser SDKs (services/ingest/sdk.py): where they reach ingest, and what it serves them.
    public_url: AnyHttpUrl | None = Field(
        default=None,
        validation_alias=AliasChoices("RETAIN_INGEST_PUBLIC_URL"),
        description=(
            "The URL browsers reach ingest at (e.g. https://ingest.shop.example), named in the "
            "settings served to analytics.js; unset: the scheme and Host of each settings request"
        ),
    )
    analytics_js_dir: Path | None = Field(
        default=None,
        description=(
            "The dist/umd folder of an installed @segment/analytics-next, served to the classic "
            "snippet as /analytics.js/v1/<writeKey>/analytics.min.js and its bundles; unset: not "
            "served"
        ),
    )
    analytics_js_metrics_sample_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of browsers whose analytics.js reports its own metrics to /v1/m",
    )

    @model_validator(mode="after")
    def _expansion_not_below_the_request_limit(self) -> Self:
        if self.max_expanded_batch_bytes < self.max_request_bytes:
            raise ValueError(
                "RETAIN_MAX_EXPANDED_BATCH_BYTES must be at least RETAIN_MAX_REQUEST_BYTES"
            )
        return self

    @model_validator(mode="after")
    def _analytics_js_is_there(self) -> Self:
        folder = self.analytics_js_dir
        if folder is not None and not (folder / "standalone.js").is_file():
            raise ValueError(
                f"RETAIN_ANALYTICS_JS_DIR: {folder} has no standalone.js; set it to the dist/umd "
                "folder of an installed @segment/analytics-next"
            )
        return self
