"""A service process as an operator meets it: clear refusals, readiness, graceful stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.devstack.ports import free_port
from services.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env.update(values)
    return env


def _start(service: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_production_mode_without_secrets_is_refused_with_a_message() -> None:
    process = _start("scoring", _env())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "RETAIN_ADMIN_TOKEN must be set" in output
    assert "Traceback" not in output


def test_unreachable_database_is_named_without_a_traceback() -> None:
    port = free_port()
    env = _env(
        RETAIN_ENV="local",
        RETAIN_DATABASE_URL=f"postgresql+asyncpg://retain:retain@127.0.0.1:{port}/retain",
        RETAIN_STARTUP_TIMEOUT_SECONDS="1",
        RETAIN_NOTIFY_PORT=str(free_port()),
    )
    process = _start("notify", env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"PostgreSQL at 127.0.0.1:{port} is unreachable after 1s" in output
    assert "Traceback" not in output


def test_service_becomes_ready_and_stops_gracefully_on_sigterm(settings: ServiceSettings) -> None:
    port = free_port()
    env = _env(
        RETAIN_ENV="local",
        RETAIN_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        RETAIN_DATABASE_URL=settings.database_url.get_secret_value(),
        RETAIN_PROFILE_PORT=str(port),
    )
    process = _start("profile", env)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "service stopped" in output
