import json
import logging

import pytest

from services.runtime.logs import configure_logging


def test_json_logs_carry_service_level_message_and_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("ingest", "INFO", "json")
    logging.getLogger("retain.test").info("published", extra={"topic": "touchpoints.v1"})
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["service"] == "ingest"
    assert entry["level"] == "info"
    assert entry["message"] == "published"
    assert entry["topic"] == "touchpoints.v1"
    assert entry["time"].endswith("+00:00")


def test_console_logs_are_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("profile", "INFO", "console")
    logging.getLogger("retain.test").warning("slow batch", extra={"seconds": 2})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "WARNING" in line
    assert "profile" in line
    assert line.endswith("slow batch  seconds=2")
