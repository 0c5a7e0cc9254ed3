"""`make up` starts the whole stack, every service answers /readyz, `make down` leaves nothing.

The stack includes Mailpit: its inbox URL is printed and the services are told where SMTP is.

The stack gets its own free ports and state folder, so this runs beside `make run`.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from services.devstack.ports import free_port, is_listening
from services.devstack.stack import SERVICES
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


def _stack_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env["RETAIN_STATE_DIR"] = str(state_dir)
    env["RETAIN_CACHE_DIR"] = str(CACHE_DIR)  # where the suite built Mailpit before the tests
    # Kafka's controller listens on the port after Kafka's: no other server may take it.
    kafka = free_port()
    while is_listening(kafka + 1):
        kafka = free_port()
    env["RETAIN_KAFKA_PORT"] = str(kafka)
    taken = {kafka, kafka + 1}
    for name in ("POSTGRES", "SMTP", "MAILPIT_UI", *(s.upper() for s in SERVICES)):
        port = free_port()
        while port in taken:
            port = free_port()
        taken.add(port)
        env[f"RETAIN_{name}_PORT"] = str(port)
    return env


WORKER_CHECKS = {
    "profile": {"consumer:retain-profile": "ok", "outbox_relay": "ok"},
    "scoring": {
        "consumer:retain-scoring-profiles": "ok",
        "consumer:retain-scoring-lifecycle": "ok",
        "consumer:retain-scoring-notifications": "ok",
        "outbox_relay": "ok",
    },
    "notify": {
        "consumer:retain-notify-lifecycle": "ok",
        "consumer:retain-notify-profiles": "ok",
        "consumer:retain-notify-scores": "ok",
        "outbox_relay": "ok",
    },
}


def _processes_using(state_dir: Path) -> list[psutil.Process]:
    """Every process whose command line or environment points into the stack's state folder."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if str(state_dir) in " ".join(process.info["cmdline"] or []) or (
                process.environ().get("RETAIN_STATE_DIR") == str(state_dir)
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _an_order_posted_to_ingest_reaches_the_profile(
    ports: dict[str, int], local_env: dict[str, str]
) -> None:
    """The storefront's view: the dev write key in, the admin token out."""
    order = {
        "userId": "e2e-user",
        "event": "Order Completed",
        "properties": {"order_id": "e2e-1", "revenue": 12.5, "currency": "EUR", "products": []},
    }
    posted = httpx.post(
        f"http://127.0.0.1:{ports['ingest']}/v1/track",
        json=order,
        auth=(local_env["RETAIN_DEV_WRITE_KEY"], ""),
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    admin = {"Authorization": f"Bearer {local_env['RETAIN_ADMIN_TOKEN']}"}
    deadline = time.monotonic() + 60
    customers: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not customers:
        response = httpx.get(
            f"http://127.0.0.1:{ports['profile']}/v1/customers",
            params={"user_id": "e2e-user"},
            headers=admin,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        customers = response.json()["customers"]
        time.sleep(0.2)
    assert customers, "the order never reached the profile"
    assert customers[0]["commerce"]["orders_count"] == 1


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = _stack_env(tmp_path / "state")
    try:
        yield env
    finally:
        subprocess.run(["make", "down"], cwd=REPO_ROOT, env=env, capture_output=True, check=False)


def test_make_up_serves_readyz_on_all_services_and_make_down_stops_everything(
    stack: dict[str, str],
) -> None:
    up = subprocess.run(
        ["make", "up"], cwd=REPO_ROOT, env=stack, capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stdout + up.stderr
    state_dir = Path(stack["RETAIN_STATE_DIR"])
    local_env = dict(
        line.split("=", 1)
        for line in (state_dir / "local.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    # Printed at start for the person running it.
    assert local_env["RETAIN_ADMIN_TOKEN"] in up.stdout
    assert local_env["RETAIN_DEV_WRITE_KEY"] in up.stdout
    inbox = f"http://127.0.0.1:{stack['RETAIN_MAILPIT_UI_PORT']}"
    assert inbox in up.stdout
    assert httpx.get(f"{inbox}/readyz", timeout=5).status_code == 200

    ports = {service: int(stack[f"RETAIN_{service.upper()}_PORT"]) for service in SERVICES}
    for service, port in ports.items():
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert response.status_code == 200, (service, response.text)
        # Every service checks its dependencies; a consuming service its workers too.
        workers = WORKER_CHECKS.get(service, {})
        assert response.json()["checks"] == {"kafka": "ok", "postgres": "ok", **workers}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "retain_http_requests_total" in metrics.text
    [notify] = [p for p in _processes_using(state_dir) if "services.notify" in p.cmdline()]
    assert notify.environ()["RETAIN_SMTP_HOST"] == "127.0.0.1"
    assert notify.environ()["RETAIN_SMTP_PORT"] == stack["RETAIN_SMTP_PORT"]
    _an_order_posted_to_ingest_reaches_the_profile(ports, local_env)

    down = subprocess.run(
        ["make", "down"], cwd=REPO_ROOT, env=stack, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert _processes_using(state_dir) == []
    all_ports = [
        *ports.values(),
        int(stack["RETAIN_KAFKA_PORT"]),
        int(stack["RETAIN_POSTGRES_PORT"]),
        int(stack["RETAIN_SMTP_PORT"]),
        int(stack["RETAIN_MAILPIT_UI_PORT"]),
    ]
    assert [port for port in all_ports if is_listening(port)] == []
