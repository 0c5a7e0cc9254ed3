"""Notify's settings: local defaults that work, production refusing unusable links, every bad
value named by its variable, and the engine's policy built from the environment."""

import os
from datetime import time, timedelta
from pathlib import Path

import pytest

from services.notify.domain import Cap, Policy, QuietHours
from services.notify.domain.links import OpenLink
from services.notify.journeys import DIRECTORY
from services.notify.settings import LOCAL_LINK_SECRET, SHIPPED_TEMPLATES, NotifySettings
from services.runtime.settings import SettingsError, load_settings

STRONG = "x" * 40
PRODUCTION = {
    "RETAIN_DATABASE_URL": "postgresql+asyncpg://retain:s3cret@db.internal:5432/retain",
    "RETAIN_ADMIN_TOKEN": "a" * 40,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RETAIN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ENV", "local")


def _production(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name, value in {**PRODUCTION, **extra}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("local")
def test_local_defaults() -> None:
    settings = load_settings(NotifySettings)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == (
        "127.0.0.1",
        1025,
        "none",
    )
    assert settings.smtp_username is None
    assert settings.smtp_password is None
    assert settings.smtp_connections == 4
    assert settings.mail_from == "Retain Shop <shop@retain.local>"
    assert settings.message_domain == "retain.local"
    assert settings.public_url == "http://127.0.0.1:8083"
    assert settings.notify_templates_dir == SHIPPED_TEMPLATES
    assert settings.notify_journeys_dir == DIRECTORY
    assert settings.policy() == Policy()  # the documented defaults are the core's
    # A fixed development key signs links locally.
    token = settings.link_signer().open_token("n-1", "c-1")
    assert load_settings(NotifySettings).link_signer().verify(token, OpenLink)


def test_the_local_public_url_follows_the_port(
    local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAIN_NOTIFY_PORT", "18083")
    assert load_settings(NotifySettings).public_url == "http://127.0.0.1:18083"
    monkeypatch.setenv("RETAIN_PUBLIC_URL", "https://notify.shop.example/")
    assert load_settings(NotifySettings).public_url == "https://notify.shop.example"


def test_production_refuses_to_start_without_a_link_secret_or_public_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(monkeypatch)
    with pytest.raises(SettingsError) as refused:
        load_settings(NotifySettings)
    message = str(refused.value)
    assert "RETAIN_ENV=production" in message
    assert "RETAIN_LINK_SECRET must be set to a random secret of at least 32 characters" in message
    assert "RETAIN_PUBLIC_URL must be set" in message


def test_production_refuses_a_short_or_development_link_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(monkeypatch, RETAIN_PUBLIC_URL="https://notify.shop.example")
    monkeypatch.setenv("RETAIN_LINK_SECRET", "short")
    with pytest.raises(SettingsError, match="RETAIN_LINK_SECRET: must be a random secret"):
        load_settings(NotifySettings)
    monkeypatch.setenv("RETAIN_LINK_SECRET", LOCAL_LINK_SECRET)
    with pytest.raises(SettingsError, match="RETAIN_LINK_SECRET is the local development key"):
        load_settings(NotifySettings)


def test_production_starts_with_a_secret_and_a_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(
        monkeypatch, RETAIN_PUBLIC_URL="https://notify.shop.example", RETAIN_LINK_SECRET=STRONG
    )
    settings = load_settings(NotifySettings)
    assert settings.public_url == "https://notify.shop.example"
    assert STRONG not in repr(settings)
    token = settings.link_signer().open_token("n-1", "c-1")
    with pytest.raises(ValueError, match="bad signature"):
        NotifySettings(env="local", link_secret=None).link_signer().verify(token, OpenLink)


def test_a_rotated_secret_keeps_old_links_working(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(
        monkeypatch, RETAIN_PUBLIC_URL="https://notify.shop.example", RETAIN_LINK_SECRET=STRONG
    )
    old_token = load_settings(NotifySettings).link_signer().open_token("n-1", "c-1")
    monkeypatch.setenv("RETAIN_LINK_SECRET", "y" * 40)
    monkeypatch.setenv("RETAIN_LINK_SECRET_PREVIOUS", STRONG)
    signer = load_settings(NotifySettings).link_signer()
    assert signer.verify(old_token, OpenLink) == OpenLink("n-1", "c-1")


@pytest.mark.usefixtures("local")
def test_smtp_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("RETAIN_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("RETAIN_SMTP_PORT", "465")
    monkeypatch.setenv("RETAIN_SMTP_TLS", "tls")
    monkeypatch.setenv("RETAIN_SMTP_CA_FILE", str(ca))
    monkeypatch.setenv("RETAIN_SMTP_USERNAME", "notify")
    monkeypatch.setenv("RETAIN_SMTP_PASSWORD", "pa55word")
    monkeypatch.setenv("RETAIN_SMTP_CONNECTIONS", "8")
    monkeypatch.setenv("RETAIN_SMTP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("RETAIN_MAIL_FROM", "Zoë's Shop <hello@shop.example>")
    monkeypatch.setenv("RETAIN_MESSAGE_ID_DOMAIN", "Mail.Shop.Example")
    settings = load_settings(NotifySettings)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == (
        "smtp.example.com",
        465,
        "tls",
    )
    assert settings.smtp_ca_file == ca
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "pa55word"
    assert "pa55word" not in repr(settings)
    assert settings.mail_from == "Zoë's Shop <hello@shop.example>"
    assert settings.message_domain == "mail.shop.example"


@pytest.mark.usefixtures("local")
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RETAIN_SMTP_TLS", "ssl", "RETAIN_SMTP_TLS: Input should be 'none', 'starttls' or 'tls'"),
        ("RETAIN_SMTP_PORT", "0", "RETAIN_SMTP_PORT: Input should be greater than or equal to 1"),
        ("RETAIN_SMTP_CONNECTIONS", "0", "RETAIN_SMTP_CONNECTIONS: Input should be greater"),
        ("RETAIN_SMTP_CA_FILE", "/nonexistent/ca.pem", "RETAIN_SMTP_CA_FILE: /nonexistent"),
        ("RETAIN_SMTP_HOST", "smtp host", "RETAIN_SMTP_HOST: must be a host name"),
        ("RETAIN_SMTP_USERNAME", "notify", "RETAIN_SMTP_USERNAME and RETAIN_SMTP_PASSWORD go"),
        ("RETAIN_MAIL_FROM", "not an address", "RETAIN_MAIL_FROM: must be an address"),
        ("RETAIN_MESSAGE_ID_DOMAIN", "bad domain!", "RETAIN_MESSAGE_ID_DOMAIN: must be a domain"),
        ("RETAIN_PUBLIC_URL", "notify.example", "RETAIN_PUBLIC_URL: must be an absolute http"),
        ("RETAIN_PUBLIC_URL", "https://n.example/?a=1", "RETAIN_PUBLIC_URL: must have no query"),
        ("RETAIN_STORE_URL", "javascript:alert(1)", "RETAIN_STORE_URL: must be an absolute"),
        ("RETAIN_PRODUCT_URL_TEMPLATE", "{store_url}/p", "RETAIN_PRODUCT_URL_TEMPLATE: must"),
        ("RETAIN_PRODUCT_URL_TEMPLATE", "{store_url}/{sku}/{product_id}", "no placeholder"),
        ("RETAIN_UNSUBSCRIBE_MAILTO", "nobody", "RETAIN_UNSUBSCRIBE_MAILTO: must be an email"),
        ("RETAIN_LINK_SECRET", "short", "RETAIN_LINK_SECRET: must be a random secret"),
        ("RETAIN_NOTIFY_TEMPLATES_DIR", "/nonexistent", "RETAIN_NOTIFY_TEMPLATES_DIR: /nonexist"),
        ("RETAIN_NOTIFY_JOURNEYS_DIR", "/nonexistent", "RETAIN_NOTIFY_JOURNEYS_DIR: /nonexist"),
        ("RETAIN_NOTIFY_MARKETING_CAPS", "3 per week", "RETAIN_NOTIFY_MARKETING_CAPS: a cap is"),
        ("RETAIN_NOTIFY_MARKETING_CAPS", "0/1d", "RETAIN_NOTIFY_MARKETING_CAPS: a cap allows"),
        ("RETAIN_NOTIFY_QUIET_HOURS", "9pm-8am", "RETAIN_NOTIFY_QUIET_HOURS:"),
        ("RETAIN_NOTIFY_DEFAULT_TIMEZONE", "Mars/Olympus", "RETAIN_NOTIFY_DEFAULT_TIMEZONE: unkn"),
        ("RETAIN_NOTIFY_FACT_RETENTION", "7", "RETAIN_NOTIFY_FACT_RETENTION:"),
        ("RETAIN_NOTIFY_SEND_LEASE", "500ms", "RETAIN_NOTIFY_SEND_LEASE:"),
        ("RETAIN_NOTIFY_SEND_LEASE", "0.5m", "RETAIN_NOTIFY_SEND_LEASE:"),
        ("RETAIN_NOTIFY_SEND_LEASE", "0s", "RETAIN_NOTIFY_SEND_LEASE: a duration must be more"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=_literal(message)):
        load_settings(NotifySettings)


@pytest.mark.usefixtures("local")
def test_the_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_NOTIFY_MARKETING_CAPS", "2/1d, 5/30d")
    monkeypatch.setenv("RETAIN_NOTIFY_QUIET_HOURS", "22:30-07:00")
    monkeypatch.setenv("RETAIN_NOTIFY_DEFAULT_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("RETAIN_NOTIFY_FACT_RETENTION", "14d")
    policy = load_settings(NotifySettings).policy()
    assert policy.caps == (Cap(2, timedelta(days=1)), Cap(5, timedelta(days=30)))
    assert policy.quiet_hours == QuietHours(time(22, 30), time(7, 0))
    assert policy.default_timezone == "Europe/Paris"
    assert policy.fact_retention == timedelta(days=14)


@pytest.mark.usefixtures("local")
def test_the_send_lease_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(NotifySettings).send_lease == timedelta(minutes=2)
    monkeypatch.setenv("RETAIN_NOTIFY_SEND_LEASE", "30s")
    assert load_settings(NotifySettings).send_lease == timedelta(seconds=30)


@pytest.mark.usefixtures("local")
def test_caps_and_quiet_hours_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_NOTIFY_MARKETING_CAPS", "none")
    monkeypatch.setenv("RETAIN_NOTIFY_QUIET_HOURS", "none")
    policy = load_settings(NotifySettings).policy()
    assert policy.caps == ()
    assert policy.quiet_hours is None


def _literal(text: str) -> str:
    import re

    return re.escape(text)
