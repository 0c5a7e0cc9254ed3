"""Request parameters for the admin APIs: checked before they reach a PostgreSQL query.

A value the database cannot take must answer 422 naming the parameter, as FastAPI answers
any other invalid parameter, instead of failing the query with a 500.
"""

from base64 import urlsafe_b64decode, urlsafe_b64encode
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, TypeAdapter
from pydantic_core import PydanticCustomError

from schemas._types import UtcDatetime


def _without_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise PydanticCustomError("string_nul", "must not contain a NUL character")
    return value


NulFree = AfterValidator(_without_nul)
"""Annotated metadata for text a query compares in PostgreSQL, which cannot hold NUL.

Use: `Annotated[str | None, Query(max_length=256), NulFree]`. After Query or Path, so that a
length limit there keeps its own error ("string_too_long").
"""


def invalid_parameter(
    name: str, message: str, value: object, *, location: str = "query", kind: str = "value_error"
) -> RequestValidationError:
    """The 422 FastAPI answers for a parameter it cannot parse, for a rule the handler checks
    itself (one parameter against another, say): `detail` lists the error with its `loc`, as the
    OpenAPI document declares every 422."""
    return RequestValidationError(
        [{"type": kind, "loc": (location, name), "msg": message, "input": str(value)}]
    )


DbDatetime = UtcDatetime
"""An aware UTC datetime in UtcDatetime's range (which also refuses values that would
overflow on the way to UTC)."""

PositionT = TypeVar("PositionT")


class Cursor(Generic[PositionT]):
    """Keyset paging: where a page ends, as the opaque `cursor` the next request passes back.

    Annotate the position's fields with NulFree and DbDatetime: a decoded cursor is client
    input like any other parameter.
    """

    def __init__(self, position: type[PositionT]) -> None:
        self._adapter = TypeAdapter(position)

    def encode(self, position: PositionT) -> str:
        return urlsafe_b64encode(self._adapter.dump_json(position)).rstrip(b"=").decode()

    def decode(self, token: str) -> PositionT:
        """The position `token` stands for; ValueError if it stands for none."""
        padding = "=" * (-len(token) % 4)
        return self._adapter.validate_json(urlsafe_b64decode(token + padding))

    async def parameter(
        self,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> PositionT | None:
        """A FastAPI dependency: the position of the `cursor` query parameter, if there is one."""
        if cursor is None:
            return None
        try:
            return self.decode(cursor)
        except ValueError:  # bad base64, JSON or position alike: the client only passes it back
            raise RequestValidationError(
                [
                    {
                        "type": "cursor_invalid",
                        "loc": ("query", "cursor"),
                        "msg": "not a cursor this endpoint issued: pass next_cursor back as is",
                        "input": cursor,
                    }
                ]
            ) from None
