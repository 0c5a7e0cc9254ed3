"""The fault-injection harness in its short mode: every kind of fault at once while the demo
storefront's load runs, then an exact count. `make chaos` runs every scenario in full.

The harness starts servers of its own (it restarts the broker and PostgreSQL, which the rest
of the suite shares), so it runs as its own process, as `make chaos` runs it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_nothing_is_lost_doubled_or_wrong_under_every_fault_at_once(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.chaos.run", "--short", "--json", str(results)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert results.exists(), run.stdout[-4000:] + run.stderr[-4000:]
    [mixed] = json.loads(results.read_text())
    assert mixed["scenario"] == "all mixed"
    assert mixed["events"] > 500
    # Every kind of fault was done, and more than once where the scenario says so.
    for fault in ("SIGKILL ingest", "broker restart", "PostgreSQL restart", "SMTP failing"):
        assert fault in mixed["faults"], mixed["faults"]
    assert "poison record x5" in mixed["faults"]
    # What was compared: every customer's profile and scores, the emails, the dead letters
    # (each poison record once per group reading its topic: seven).
    checked = mixed["checked"]
    assert checked["profiles"] == checked["scores recomputed"] > 50
    assert checked["dead letters"] == 7
    assert checked["emails sent"] > 0
    assert (mixed["lost"], mixed["duplicated"], mixed["wrong"]) == (0, 0, 0), mixed["problems"]
    assert run.returncode == 0, run.stdout[-4000:]
