"""The scoring admin API: a customer's scores, the model, a refit on demand that rescores."""

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.devstack.cli import main as cli_main
from services.profile.domain.identity import customer_id_for
from tests.integration.helpers import ADMIN_TOKEN, RunningService
from tests.integration.profile.conftest import ADMIN, Storefront, order, wait_for

pytestmark = pytest.mark.integration


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, headers=ADMIN)


async def test_scores_model_and_refit_through_the_api(
    scoring: RunningService, storefront: Storefront
) -> None:
    user = f"api-{uuid.uuid4().hex[:8]}"
    # A category of this test's own: a basic tent at 25, and two other customers' tents, one
    # clearly dearer (60), one not (28 is under 1.2 times 25).
    tents = f"tents-{user}"
    buyers = {
        user: ("tent-basic", 25.0),
        f"{user}-trekker": ("tent-trek", 60.0),
        f"{user}-hiker": ("tent-lite", 28.0),
    }
    await storefront.send(
        [
            order(buyer, f"{buyer}-o1", price, product=f"{product}-{user}", category=tents)
            for buyer, (product, price) in buyers.items()
        ]
    )
    customer_id = customer_id_for(("user", user))

    async def scores_of(customer_id: str) -> dict[str, Any] | None:
        response = await _get(f"{scoring.url}/v1/scores/{customer_id}")
        return response.json() if response.status_code == 200 else None

    scored = partial(scores_of, customer_id)
    record = await wait_for(scored, seconds=60)
    assert record["customer_id"] == customer_id

    async def in_the_ledger(buyer: str) -> bool:
        # Scored as `acquisition` once their first order is in the ledger.
        found = await scores_of(customer_id_for(("user", buyer)))
        return found is not None and found["lifecycle_stage"] == "acquisition"

    for buyer in buyers:
        await wait_for(partial(in_the_ledger, buyer), seconds=60)

    async with httpx.AsyncClient(timeout=60) as client:
        refit = await client.post(f"{scoring.url}/v1/refit", headers=ADMIN)
        assert refit.status_code == 200, refit.text
        model = refit.json()
        # Whether the session's customers so far are enough to fit depends on the tests run
        # before this one; a model that is not fitted says why (the rules: unit tests).
        assert model["status"] in ("fitted", "insufficient_data", "failed")
        assert model["status"] == "fitted" or model["reason"]
        assert model["version"] >= 1
        assert model["rfm_bounds"] is not None
        trek = model["catalogue"][f"tent-trek-{user}"]
        assert (trek["category"], trek["buyers"]) == (tents, 1)
        assert Decimal(trek["prices"]["EUR"]) == 60
        unauthorised = await client.post(f"{scoring.url}/v1/refit")
        assert unauthorised.status_code == 401

    current = (await _get(f"{scoring.url}/v1/model")).json()
    assert current["version"] >= model["version"]

    async def rescored() -> dict[str, Any] | None:
        found = await scored()
        return found if found and found["model_version"] >= model["version"] else None

    record = await wait_for(rescored, seconds=30)
    assert record["rfm"] is not None  # RFM exists once a refit fixed the bounds
    assert f"tent-basic-{user}" not in record["recommendations"]  # never what they bought
    assert record["upgrades"] == [f"tent-trek-{user}"]  # the clearly dearer tent of the category
    segments = (await _get(f"{scoring.url}/v1/segments")).json()
    tiers = {(row["segment"], row["currency"]): row for row in segments["value_tier"]}
    mine = tiers[(record["value_tier"], "EUR")]
    assert mine["customers"] >= 1
    assert set(segments) == {"value_tier", "rfm_segment", "ladder_step", "lifecycle_stage"}
    assert (await _get(f"{scoring.url}/v1/scores/cus_unknown")).status_code == 404
    assert (await _get(f"{scoring.url}/v1/scores/%00")).status_code == 422


async def test_spend_is_set_idempotently_and_channels_set_it_against_new_customers(
    scoring: RunningService, storefront: Storefront
) -> None:
    user = f"chan-{uuid.uuid4().hex[:8]}"
    await storefront.send([order(user, f"{user}-o1", 60.0)])
    customer_id = customer_id_for(("user", user))

    async def scored() -> bool:
        return (await _get(f"{scoring.url}/v1/scores/{customer_id}")).status_code == 200

    await wait_for(scored, seconds=60)
    month = datetime.now(UTC).strftime("%Y-%m")
    spend_url = f"{scoring.url}/v1/spend/direct/{month}"
    async with httpx.AsyncClient(timeout=30) as client:
        for amount in ("100", "150.50"):  # set, then set again: the last one holds
            put = await client.put(
                spend_url, json={"amount": amount, "currency": "EUR"}, headers=ADMIN
            )
            assert put.status_code == 200, put.text
        bad = await client.put(spend_url, json={"amount": -1, "currency": "EUR"}, headers=ADMIN)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][-1] == "amount"
        wrong_month = await client.put(
            f"{scoring.url}/v1/spend/direct/2026-13",
            json={"amount": 1, "currency": "EUR"},
            headers=ADMIN,
        )
        assert wrong_month.status_code == 422
        unknown = await client.put(
            f"{scoring.url}/v1/spend/carrier-pigeon/{month}",
            json={"amount": 1, "currency": "EUR"},
            headers=ADMIN,
        )
        assert unknown.status_code == 422
    rows = (await _get(f"{scoring.url}/v1/channels")).json()["channels"]
    [direct] = [
        r
        for r in rows
        if (r["channel"], r["month"], r["currency"], r["campaign"], r["affiliate"])
        == ("direct", month, "EUR", None, None)
    ]
    assert direct["new_customers"] >= 1
    assert Decimal(direct["spend"]) == Decimal("150.50")
    assert Decimal(direct["cpa"]) == (Decimal("150.50") / direct["new_customers"]).quantize(
        Decimal("0.01")
    )


async def test_the_cli_imports_a_spend_file_through_the_api(
    scoring: RunningService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spend_file = tmp_path / "spend.csv"
    spend_file.write_text(
        "channel,month,amount,currency,campaign\n"
        "paid_search,2025-11,900.00,EUR,brand\n"
        "social,2025-11,120,EUR,\n"
    )
    command = ["spend", "import", str(spend_file), "--url", scoring.url, "--token", ADMIN_TOKEN]
    await asyncio.to_thread(cli_main, command)
    assert "imported 2 spend row(s)" in capsys.readouterr().out
    rows = (await _get(f"{scoring.url}/v1/channels")).json()["channels"]
    spent = {(r["channel"], r["campaign"]): r["spend"] for r in rows if r["month"] == "2025-11"}
    assert Decimal(spent[("paid_search", "brand")]) == Decimal(900)
    assert Decimal(spent[("social", None)]) == Decimal(120)

    bad = tmp_path / "bad.csv"
    bad.write_text("channel,month,amount,currency\npigeon,2025-11,1,EUR\n")
    with pytest.raises(SystemExit):
        await asyncio.to_thread(cli_main, ["spend", "import", str(bad), "--url", scoring.url])
    assert "line 2: channel 'pigeon'" in capsys.readouterr().err
