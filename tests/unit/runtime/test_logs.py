import json
import logging

import pytest

from services.runtime.logs import configure_logging, log_fields


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


def test_bound_fields_go_on_every_line_inside_the_block_and_no_further(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("profile", "INFO", "json")
    logger = logging.getLogger("retain.test")
    with log_fields(request_id="r-1"):
        logger.info("outer")
        with log_fields(event_id="e-1"):
            logger.info("inner", extra={"event_id": "explicit wins"})
    logger.info("after")
    outer, inner, after = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-3:])
    assert outer["request_id"] == "r-1"
    assert "event_id" not in outer
    assert (inner["request_id"], inner["event_id"]) == ("r-1", "explicit wins")
    assert "request_id" not in after
