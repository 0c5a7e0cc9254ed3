"""Past orders from files: the CDNOW transactions and a shop's CSV, checked row by row."""

import importlib.util
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas import parse_event
from services.demo.orders import (
    CHANNEL_UTM,
    OrderFileError,
    cdnow_orders,
    csv_orders,
    order_event,
)
from services.devstack import demo_cli
from services.devstack.demo_cli import cdnow_file
from services.devstack.errors import DevStackError
from services.profile.domain.channels import classify


def test_the_cdnow_file_is_every_transaction_of_every_customer_once() -> None:
    orders = cdnow_orders(cdnow_file().read_text())
    assert len(orders) == 69_659
    assert len({order.customer_id for order in orders}) == 23_570
    assert len({order.order_id for order in orders}) == len(orders)
    first = orders[0]
    assert first.customer_id == "cdnow-00001"
    assert first.at == datetime(1997, 1, 1, 12, tzinfo=UTC)
    assert first.amount == Decimal("11.77")
    for order in orders[:2000]:
        parse_event(order_event(order))


def test_a_file_that_is_not_cdnow_is_refused_with_the_line() -> None:
    with pytest.raises(OrderFileError, match="line 1: not a CDNOW_master file"):
        cdnow_orders("customer,order\n1,2\n")
    with pytest.raises(OrderFileError, match="line 3: expected customer id, YYYYMMDD"):
        cdnow_orders("customer_id date cds dollars\n00001 19970101 1 11.77\n00002 1997 x\n")


def test_an_orders_csv_in_any_column_order_with_optional_currency_and_channel() -> None:
    orders = csv_orders(
        "amount,date,order_id,customer_id,currency,channel\n"
        "42.50,2025-03-01,o-1,c-1,eur,paid_search\n"
        "10,2025-03-02T08:30:00+02:00,o-2,c-1,,\n",
        default_currency="GBP",
    )
    assert [(o.order_id, o.currency, o.channel) for o in orders] == [
        ("o-1", "EUR", "paid_search"),
        ("o-2", "GBP", None),
    ]
    assert orders[0].at == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert orders[1].at == datetime(2025, 3, 2, 6, 30, tzinfo=UTC)
    event = order_event(orders[0])
    parse_event(event)
    assert event["messageId"] == "replay-o-1"
    assert event["properties"]["revenue"] == 42.5


def test_every_problem_of_an_orders_csv_is_reported_by_line_and_nothing_is_kept() -> None:
    with pytest.raises(OrderFileError) as raised:
        csv_orders(
            "customer_id,order_id,date,amount,currency,channel\n"
            "c-1,o-1,2025-13-01,10,EUR,\n"
            "c-1,o-1,2025-01-01,-3,EUR,\n"
            "c-2,o-3,2025-01-01,5,euro,pigeon\n"
            ",o-4,2025-01-01,5,EUR,\n"
        )
    message = str(raised.value)
    assert "line 2: date '2025-13-01'" in message
    assert "line 3: amount '-3'" in message
    assert "line 3: order_id 'o-1' is already on line 2" in message
    assert "line 4: currency 'EURO'" in message
    assert "line 4: channel 'pigeon'" in message
    assert "line 5: customer_id is empty" in message
    with pytest.raises(OrderFileError, match="line 1: missing column"):
        csv_orders("customer,when\n")


@pytest.mark.parametrize("channel", sorted(set(CHANNEL_UTM) - {"direct"}))
def test_a_replayed_orders_channel_is_the_channel_the_profile_classifies(channel: str) -> None:
    assert classify(CHANNEL_UTM[channel], None, None).channel == channel


def test_without_lifetimes_installed_the_cdnow_replay_says_how_to_get_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DevStackError, match=r"pass its path .* or install"):
        demo_cli.cdnow_file()
