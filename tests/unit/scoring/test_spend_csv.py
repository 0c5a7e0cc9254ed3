"""Spend files: read whole or refused whole, every problem named by line and column."""

from decimal import Decimal

import pytest

from services.scoring.spend_csv import SpendFileError, SpendRow, parse_spend


def test_a_good_file_gives_every_row() -> None:
    rows = parse_spend(
        "month,channel,amount,currency,campaign\n"
        "2026-01,paid_search,1200.50,eur,brand\n"
        "2026-01,social,300,EUR,\n"
    )
    assert rows == [
        SpendRow("paid_search", "2026-01", Decimal("1200.50"), "EUR", "brand"),
        SpendRow("social", "2026-01", Decimal(300), "EUR", None),
    ]


def test_every_problem_is_named_and_nothing_is_taken() -> None:
    with pytest.raises(SpendFileError) as refused:
        parse_spend("channel,month,amount,currency\npigeon,2026-01,10,EUR\nemail,2026-13,-5,EURO\n")
    message = str(refused.value)
    assert "line 2: channel 'pigeon'" in message
    assert "line 3: month '2026-13'" in message
    assert "line 3: currency 'EURO'" in message
    assert "line 3: amount '-5'" in message


def test_a_missing_column_is_named() -> None:
    with pytest.raises(SpendFileError, match="missing column"):
        parse_spend("channel,month,amount\nemail,2026-01,5\n")


def test_an_amount_finer_than_four_decimal_places_is_named_as_the_api_would_refuse_it() -> None:
    with pytest.raises(SpendFileError) as refused:
        parse_spend(
            "channel,month,amount,currency\n"
            "email,2026-01,0.00001,EUR\n"
            "email,2026-02,1E-999999999,EUR\n"
            "email,2026-03,12.50000,EUR\n"  # trailing zeros do not count
        )
    message = str(refused.value)
    assert "line 2: amount '0.00001' has more than 4 decimal places" in message
    assert "line 3: amount '1E-999999999' has more than 4 decimal places" in message
    assert "line 4" not in message
