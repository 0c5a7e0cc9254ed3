import pytest

from services.ingest.settings import IngestSettings
from services.runtime.settings import (
    LOCAL_DATABASE_URL,
    Environment,
    ServiceSettings,
    SettingsError,
    load_settings,
)

STRONG_TOKEN = "x" * 40
PRODUCTION_URL = "postgresql+asyncpg://retain:s3cret@db.internal:5432/retain"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("RETAIN_"):
            monkeypatch.delenv(name)


def test_local_mode_accepts_the_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ENV", "local")
    settings = load_settings(ServiceSettings)
    assert settings.env is Environment.LOCAL
    assert settings.database_url.get_secret_value() == LOCAL_DATABASE_URL


def test_production_is_the_default_and_refuses_unsafe_defaults() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(ServiceSettings)
    message = str(refused.value)
    assert "RETAIN_ENV=production" in message
    assert "RETAIN_DATABASE_URL is the local default" in message
    assert "RETAIN_ADMIN_TOKEN must be set to a random secret of at least 32 characters" in message


def test_production_refuses_a_short_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_DATABASE_URL", PRODUCTION_URL)
    monkeypatch.setenv("RETAIN_ADMIN_TOKEN", "short")
    with pytest.raises(SettingsError, match="RETAIN_ADMIN_TOKEN"):
        load_settings(ServiceSettings)


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_DATABASE_URL", PRODUCTION_URL)
    monkeypatch.setenv("RETAIN_ADMIN_TOKEN", STRONG_TOKEN)
    settings = load_settings(ServiceSettings)
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == STRONG_TOKEN


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ENV", "local")
    monkeypatch.setenv("RETAIN_INGEST_PORT", "eighty")
    with pytest.raises(SettingsError, match="RETAIN_INGEST_PORT: Input should be a valid integer"):
        load_settings(IngestSettings)


def test_each_service_reads_its_own_port_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ENV", "local")
    assert load_settings(IngestSettings).http_port == 8080
    monkeypatch.setenv("RETAIN_INGEST_PORT", "18080")
    assert load_settings(IngestSettings).http_port == 18080


def test_secrets_do_not_leak_into_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_ENV", "local")
    monkeypatch.setenv("RETAIN_ADMIN_TOKEN", STRONG_TOKEN)
    assert STRONG_TOKEN not in repr(load_settings(ServiceSettings))
