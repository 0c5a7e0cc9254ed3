"""Constrained field types shared by every contract, with the limits they enforce.

Limits live here so an error message and the JSON Schema state the same number.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_ID = 256
MAX_NAME = 200
MAX_TEXT = 1024
MAX_URL = 2048
MAX_LONG_TEXT = 10_000
MAX_LIST = 1000
# Levels of objects and arrays under any field of an event (properties, traits, context, ...):
# far more than real events use, far below the recursion limits of the consumers' decoders.
MAX_DEPTH = 64
# Money above a trillion is a bug upstream, not a purchase; below it, a float's shortest repr
# is the decimal the client sent, so `exact()` recovers it.
MAX_MONEY = 1_000_000_000_000

ZERO = Decimal(0)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError("datetime_range", "must be between 1970-01-01 and 2100-01-01")


def _to_utc(value: datetime) -> datetime:
    # Checked before converting too: converting year 1 or year 9999 to UTC can overflow.
    if not EARLIEST.year - 1 <= value.year <= LATEST.year:
        raise _out_of_range()
    zone = value.tzinfo
    if zone is None:  # SDKs send zone-less ISO strings; Segment reads those as UTC
        value = value.replace(tzinfo=UTC)
    elif zone is not UTC:
        value = value.astimezone(UTC)
    # Bounded so clock arithmetic (the corrected timestamp) can never overflow.
    if not EARLIEST.year <= value.year < LATEST.year:
        raise _out_of_range()
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
"""ISO-8601 with or without a zone; always an aware UTC datetime once validated."""

# Ids: some SDKs send numbers (userId: 42); they are kept as the string "42".
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, coerce_numbers_to_str=True)]
OptionalId = Annotated[str | None, Field(max_length=MAX_ID, coerce_numbers_to_str=True)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT, coerce_numbers_to_str=True)]
LongText = Annotated[str, Field(max_length=MAX_LONG_TEXT)]
Url = Annotated[str, Field(max_length=MAX_URL)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Currency = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{3}$")]
Count = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


def _decimal_text(value: Decimal) -> str:
    # format "f" never uses exponent notation ("1E+3"), which some JSON consumers misread.
    return format(value, "f")


Amount = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
"""A non-negative money amount in an event, a JSON number as Segment sends it.

Sum amounts with `exact()`: float addition depends on order, which a profile fold must not.
"""


def exact(amount: float) -> Decimal:
    """The decimal an event's amount was written as (19.99 -> Decimal("19.99"))."""
    return Decimal(repr(amount))


Money = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
            "description": "Decimal amount as a string, exact (no binary floating point).",
        },
        mode="serialization",
    ),
]
"""Money on Retain's own topics: a Decimal serialised as a plain decimal string."""
