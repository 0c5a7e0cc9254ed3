"""Segment's Node.js SDK (@segment/analytics-node), unchanged, run by `node` as a backend runs
it, with only its host and write key set."""

import asyncio
import os

import pytest

from tests.integration.helpers import RunningService
from tests.integration.ingest.sdks.conftest import SDK_DIR, WriteKey, folded_profile

pytestmark = pytest.mark.integration


async def test_every_call_is_folded_into_the_profile(
    sdk_ingest: RunningService,
    sdk_profile: RunningService,
    write_key: WriteKey,
    user_id: str,
) -> None:
    env = {**os.environ, "INGEST": sdk_ingest.url, "WRITE_KEY": write_key.key, "USER_ID": user_id}
    node = await asyncio.create_subprocess_exec(
        "node",
        "analytics-node.mjs",
        cwd=SDK_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(node.communicate(), timeout=60)
    assert node.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == "delivered"

    customer = await folded_profile(sdk_profile.url, user_id)
    timeline = customer["timeline"]
    assert sorted(t["event"]["type"] for t in timeline) == ["identify", "page", "track"]
    assert {t["event"]["context"]["library"]["name"] for t in timeline} == {
        "@segment/analytics-node"
    }
