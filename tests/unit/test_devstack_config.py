from pathlib import Path

import pytest

from services.devstack.errors import DevStackError
from services.devstack.stack import LocalStack, StackConfig, load_or_create_secrets


def test_ports_and_folders_come_from_the_environment(tmp_path: Path) -> None:
    config = StackConfig.from_environment(
        {"RETAIN_STATE_DIR": str(tmp_path), "RETAIN_KAFKA_PORT": "19092", "RETAIN_NOTIFY_PORT": "9"}
    )
    assert config.state_dir == tmp_path
    assert config.kafka_port == 19092
    assert config.postgres_port == 5432
    assert config.service_ports == {"ingest": 8080, "profile": 8081, "scoring": 8082, "notify": 9}
    assert config.external_kafka is None


def test_a_bad_port_is_named(tmp_path: Path) -> None:
    with pytest.raises(DevStackError, match="RETAIN_KAFKA_PORT must be a port number"):
        StackConfig.from_environment({"RETAIN_KAFKA_PORT": "70000"})


def test_existing_servers_replace_the_local_ones() -> None:
    config = StackConfig.from_environment(
        {"RETAIN_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "RETAIN_DATABASE_URL": "postgresql://x"}
    )
    assert config.external_kafka == "kafka:9092"
    assert config.external_database == "postgresql://x"


def test_the_services_send_email_to_the_local_mailpit(tmp_path: Path) -> None:
    config = StackConfig.from_environment({"RETAIN_STATE_DIR": str(tmp_path)})
    assert (config.smtp_port, config.mailpit_ui_port) == (1025, 8025)
    assert config.external_smtp is None
    stack = LocalStack(config)
    assert stack.mailpit.ui_url == "http://127.0.0.1:8025"
    env = stack.service_env()
    assert (env["RETAIN_SMTP_HOST"], env["RETAIN_SMTP_PORT"]) == ("127.0.0.1", "1025")


def test_an_smtp_server_of_your_own_replaces_mailpit(tmp_path: Path) -> None:
    config = StackConfig.from_environment(
        {
            "RETAIN_STATE_DIR": str(tmp_path),
            "RETAIN_SMTP_HOST": "smtp.example.com",
            "RETAIN_SMTP_PORT": "587",
            "RETAIN_MAILPIT_UI_PORT": "18025",
        }
    )
    assert config.external_smtp == "smtp.example.com"
    assert config.mailpit_ui_port == 18025
    env = LocalStack(config).service_env()
    assert (env["RETAIN_SMTP_HOST"], env["RETAIN_SMTP_PORT"]) == ("smtp.example.com", "587")


def test_a_bad_smtp_port_is_named() -> None:
    with pytest.raises(DevStackError, match="RETAIN_MAILPIT_UI_PORT must be a port number"):
        StackConfig.from_environment({"RETAIN_MAILPIT_UI_PORT": "smtp"})


def test_local_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    first = load_or_create_secrets(env_file)
    assert len(first["RETAIN_ADMIN_TOKEN"]) >= 32
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert f"RETAIN_ADMIN_TOKEN={first['RETAIN_ADMIN_TOKEN']}" in env_file.read_text()
    assert load_or_create_secrets(env_file) == first
