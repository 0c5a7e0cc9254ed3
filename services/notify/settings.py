"""Notify's settings (prefix RETAIN_), validated at start; a bad value stops the start naming
its variable.

SMTP (where email goes):

- `RETAIN_SMTP_HOST` (127.0.0.1), `RETAIN_SMTP_PORT` (1025: the local Mailpit);
- `RETAIN_SMTP_TLS`: `none` (default), `starttls` (upgrade required, certificate checked) or
  `tls` (implicit TLS, usually port 465); `RETAIN_SMTP_CA_FILE` trusts a private CA;
- `RETAIN_SMTP_USERNAME`, `RETAIN_SMTP_PASSWORD`: AUTH after connecting (both or neither);
- `RETAIN_SMTP_TIMEOUT_SECONDS` (30) per command, `RETAIN_SMTP_CONNECTIONS` (4) kept open.

What the email says and links to:

- `RETAIN_MAIL_FROM` ("Retain Shop <shop@retain.local>"), `RETAIN_MESSAGE_ID_DOMAIN` (the From
  domain when unset), `RETAIN_STORE_NAME`, `RETAIN_STORE_URL` and
  `RETAIN_PRODUCT_URL_TEMPLATE` (the shop's pages the emails link to),
  `RETAIN_UNSUBSCRIBE_MAILTO` (an optional mailto in List-Unsubscribe);
- `RETAIN_PUBLIC_URL`: notify's tracking and unsubscribe endpoints as recipients reach them
  (locally http://127.0.0.1:<RETAIN_NOTIFY_PORT>; required outside local mode);
- `RETAIN_LINK_SECRET`: the HMAC key of every link (32+ characters, required outside local
  mode, where a fixed development key is used); `RETAIN_LINK_SECRET_PREVIOUS` keeps the links
  of already-sent emails working while the secret is rotated;
- `RETAIN_NOTIFY_TEMPLATES_DIR`: the email templates (the shipped ones by default).

The engine's policy (docs/journeys.md): `RETAIN_NOTIFY_JOURNEYS_DIR`,
`RETAIN_NOTIFY_MARKETING_CAPS` ("1/16h,3/7d"), `RETAIN_NOTIFY_QUIET_HOURS` ("21:00-08:00"),
`RETAIN_NOTIFY_DEFAULT_TIMEZONE` (UTC), `RETAIN_NOTIFY_FACT_RETENTION` (7d); `policy()` builds
the core's `Policy` from them.

The sender: `RETAIN_NOTIFY_SEND_LEASE` (2m), how long a process holds an email it is sending
(see services/notify/sender.py); keep it well above the time one SMTP transaction takes.
"""

import re
from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from schemas.journey_v1 import parse_duration
from services.notify.domain.links import LinkSigner
from services.notify.domain.policy import Policy, parse_caps, parse_quiet_hours, zone
from services.notify.journeys import DIRECTORY as SHIPPED_JOURNEYS
from services.runtime.settings import ServiceSettings

SHIPPED_TEMPLATES = Path(__file__).resolve().parent / "templates"

MIN_LINK_SECRET_LENGTH = 32
# Local mode only: links signed with a key everyone can read are forgeable by anyone.
LOCAL_LINK_SECRET = "retain-local-development-link-secret-not-for-production"  # noqa: S105

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PRODUCT_FIELDS = re.compile(r"\{([^{}]*)\}")


def _http_base_url(value: str) -> str:
    """An absolute http(s) URL without query or fragment; the trailing slash dropped."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must have no query or fragment, got {value!r}")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("must not contain spaces or control characters")
    return value.rstrip("/")


class NotifySettings(ServiceSettings):
    http_port: int = Field(
        default=8083, ge=1, le=65535, validation_alias=AliasChoices("RETAIN_NOTIFY_PORT")
    )

    # ---------------------------------------------------------------- SMTP
    smtp_host: str = Field(default="127.0.0.1", min_length=1)
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none",
        description="none: plain SMTP; starttls: upgrade required; tls: implicit TLS (465)",
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="PEM file of the CA that signed the SMTP server's certificate"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    smtp_connections: int = Field(
        default=4, ge=1, le=64, description="SMTP connections each process keeps open"
    )

    # ---------------------------------------------------------------- what the email says
    mail_from: str = Field(default="Retain Shop <shop@retain.local>")
    message_id_domain: str | None = Field(
        default=None, description="Right-hand side of Message-IDs; the From domain when unset"
    )
    store_name: str = Field(default="Retain Shop", min_length=1, max_length=100)
    store_url: str = Field(
        default="http://127.0.0.1:3000", description="The shop's site, linked from every email"
    )
    product_url_template: str = Field(
        default="{store_url}/products/{product_id}",
        description="A product's page; {store_url} and {product_id} are replaced",
    )
    unsubscribe_mailto: str | None = Field(
        default=None,
        description="An address that unsubscribes by email, added to List-Unsubscribe "
        "(only if something reads that mailbox)",
    )
    public_url: str = Field(
        default="",
        description="Base URL of notify's tracking endpoints as recipients reach them; "
        "locally http://127.0.0.1:<RETAIN_NOTIFY_PORT> when unset",
    )
    link_secret: SecretStr | None = None
    link_secret_previous: SecretStr | None = Field(
        default=None, description="The secret before the last rotation: its links still verify"
    )
    notify_templates_dir: Path = SHIPPED_TEMPLATES

    # ---------------------------------------------------------------- the engine's policy
    notify_journeys_dir: Path = SHIPPED_JOURNEYS
    notify_marketing_caps: str = "1/16h,3/7d"
    notify_quiet_hours: str = "21:00-08:00"
    notify_default_timezone: str = "UTC"
    notify_fact_retention: str = "7d"

    # ---------------------------------------------------------------- the sender
    notify_send_lease: str = Field(
        default="2m",
        description="How long an email being sent is held by its process; one left longer "
        "by a process that stopped is uncertain (transactional mail is then sent again)",
    )

    # ---------------------------------------------------------------- checks
    @field_validator("smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("must be a host name or address")
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        name, address = parseaddr(value)
        if not _is_address(address):
            raise ValueError(f'must be an address such as "Shop <shop@example.com>", got {value!r}')
        return str(Address(display_name=name, addr_spec=address))

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().removeprefix("mailto:")
        if not _is_address(value):
            raise ValueError(f"must be an email address, got {value!r}")
        return value

    @field_validator("message_id_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _HOSTNAME.match(value.strip()):
            raise ValueError(f"must be a domain name such as shop.example.com, got {value!r}")
        return value.strip().lower()

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return _http_base_url(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return _http_base_url(value) if value.strip() else ""

    @field_validator("product_url_template")
    @classmethod
    def _product_url(cls, value: str) -> str:
        fields = set(_PRODUCT_FIELDS.findall(value))
        if "product_id" not in fields or not fields <= {"store_url", "product_id"}:
            raise ValueError(
                f"must contain {{product_id}} and no placeholder but {{store_url}}, got {value!r}"
            )
        _http_base_url(value.format(store_url="http://shop.test", product_id="p-1"))
        return value

    @field_validator("link_secret", "link_secret_previous")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < MIN_LINK_SECRET_LENGTH:
            raise ValueError(
                f"must be a random secret of at least {MIN_LINK_SECRET_LENGTH} characters"
            )
        return value

    @field_validator("notify_templates_dir", "notify_journeys_dir")
    @classmethod
    def _directory(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("notify_marketing_caps")
    @classmethod
    def _caps(cls, value: str) -> str:
        # A ValueError names what is wrong; load_settings names the variable.
        for cap in parse_caps(value):
            if cap.count < 1:
                raise ValueError(f"a cap allows at least one email: {cap}")
        return value

    @field_validator("notify_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("notify_default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value.strip(), None)  # ValueError: unknown time zone
        return value.strip()

    @field_validator("notify_fact_retention", "notify_send_lease")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value.strip())
        return value.strip()

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> Self:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("RETAIN_SMTP_USERNAME and RETAIN_SMTP_PASSWORD go together")
        return self

    @model_validator(mode="after")
    def _refuse_unusable_links_outside_local(self) -> Self:
        if self.is_local:
            if not self.public_url:
                # Frozen model: the derived default is set once, here.
                object.__setattr__(self, "public_url", f"http://127.0.0.1:{self.http_port}")
            return self
        problems = []
        if self.link_secret is None:
            problems.append(
                f"RETAIN_LINK_SECRET must be set to a random secret of at least "
                f"{MIN_LINK_SECRET_LENGTH} characters (it signs unsubscribe and tracking links)"
            )
        elif self.link_secret.get_secret_value() == LOCAL_LINK_SECRET:
            problems.append("RETAIN_LINK_SECRET is the local development key; use your own")
        if not self.public_url:
            problems.append(
                "RETAIN_PUBLIC_URL must be set to the address recipients reach notify at "
                "(every unsubscribe link points there)"
            )
        if problems:
            raise ValueError(
                f"refusing to start with RETAIN_ENV={self.env.value}: " + "; ".join(problems)
            )
        return self

    # ---------------------------------------------------------------- what the shell builds
    @property
    def message_domain(self) -> str:
        """The right-hand side of Message-IDs: RETAIN_MESSAGE_ID_DOMAIN, else From's domain."""
        if self.message_id_domain:
            return self.message_id_domain
        return parseaddr(self.mail_from)[1].rpartition("@")[2].lower()

    def link_signer(self) -> LinkSigner:
        """Signs and checks every link of notify's emails."""
        secret = self.link_secret.get_secret_value() if self.link_secret else LOCAL_LINK_SECRET
        previous = (
            (self.link_secret_previous.get_secret_value(),) if self.link_secret_previous else ()
        )
        return LinkSigner(secret, previous=previous)

    @property
    def send_lease(self) -> timedelta:
        return parse_duration(self.notify_send_lease)

    def policy(self) -> Policy:
        """The engine's sending policy: caps, quiet hours, default zone, fact retention."""
        return Policy(
            caps=parse_caps(self.notify_marketing_caps),
            quiet_hours=parse_quiet_hours(self.notify_quiet_hours),
            default_timezone=self.notify_default_timezone,
            fact_retention=parse_duration(self.notify_fact_retention),
        )


def _is_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(ch.isspace() for ch in address)
