"""The Segment spec event envelope: identify, track, page, screen, group and alias.

Field names on the wire are Segment's (camelCase); Python attributes are snake_case. Keys the
models do not name are kept, as Segment keeps them, so nothing an SDK sends is lost.
"""

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from schemas._types import MAX_NAME, Id, OptionalId, Text, Url, UtcDatetime

EventType = Literal["identify", "track", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[EventType, ...] = ("identify", "track", "page", "screen", "group", "alias")


class SegmentModel(BaseModel):
    """Base of every Segment-shaped model: camelCase on the wire, unknown keys kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        serialize_by_alias=True,
        extra="allow",
    )


# Context is a bag of mostly optional metadata, so it is a typed dict rather than a model:
# half the validation cost, and its keys stay exactly as Segment names them.
_KEEP_EXTRA = ConfigDict(extra="allow")


class Campaign(TypedDict, total=False):
    """UTM parameters, as Segment names them (utm_campaign is `name`)."""

    __pydantic_config__ = _KEEP_EXTRA  # type: ignore[misc]
    name: Text | None
    source: Text | None
    medium: Text | None
    term: Text | None
    content: Text | None


class PageContext(TypedDict, total=False):
    __pydantic_config__ = _KEEP_EXTRA  # type: ignore[misc]
    path: Url | None
    referrer: Url | None
    search: Url | None
    title: Text | None
    url: Url | None


class Referrer(TypedDict, total=False):
    __pydantic_config__ = _KEEP_EXTRA  # type: ignore[misc]
    type: Text | None
    name: Text | None
    url: Url | None
    link: Url | None
    id: Text | None


class Library(TypedDict, total=False):
    __pydantic_config__ = _KEEP_EXTRA  # type: ignore[misc]
    name: Text | None
    version: Text | None


class Context(TypedDict, total=False):
    """Typed where Retain reads the value; every other key (app, device, os, ...) is kept."""

    __pydantic_config__ = _KEEP_EXTRA  # type: ignore[misc]
    campaign: Campaign | None
    page: PageContext | None
    referrer: Referrer | None
    ip: Annotated[str, Field(max_length=64)] | None
    userAgent: Url | None
    locale: Annotated[str, Field(max_length=64)] | None
    timezone: Annotated[str, Field(max_length=64)] | None
    library: Library | None


_TIME = (
    "ISO-8601 date-time between 1970-01-01 and 2100-01-01 (UTC); without a zone it is read "
    "as UTC. Outside that range the event is refused."
)


def _present(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string", "minLength": 1}}}


class BaseEvent(SegmentModel):
    """Fields common to every event type."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [_present("userId"), _present("anonymousId")]}
    )

    union_tag: ClassVar[str]

    message_id: OptionalId = None
    user_id: OptionalId = None
    anonymous_id: OptionalId = None
    context: Context | None = None
    integrations: dict[str, Any] | None = None
    timestamp: UtcDatetime | None = Field(default=None, description="When it happened. " + _TIME)
    original_timestamp: UtcDatetime | None = Field(
        default=None, description="When it happened, by the client's clock. " + _TIME
    )
    sent_at: UtcDatetime | None = Field(
        default=None, description="When the client sent it, by its clock. " + _TIME
    )
    received_at: UtcDatetime | None = Field(
        default=None,
        description="Kept as sent; ingest stamps its own time of receipt beside the event "
        "(touchpoints.v1 receivedAt). " + _TIME,
    )
    # Accepted so a body-authenticated event validates, never serialised: a write key must not
    # travel on to Kafka.
    write_key: str | None = Field(default=None, max_length=MAX_NAME, exclude=True)

    @model_validator(mode="after")
    def _identified(self) -> Self:
        # Some SDKs send "" for an unknown id; treat it as absent rather than as a customer key.
        if self.user_id == "":
            self.user_id = None
        if self.anonymous_id == "":
            self.anonymous_id = None
        if self.message_id == "":
            self.message_id = None
        self._check_identity()
        return self

    def _check_identity(self) -> None:
        if self.user_id is None and self.anonymous_id is None:
            raise PydanticCustomError(
                "identity", "userId or anonymousId is required", {"field": "userId"}
            )

    @property
    def customer_key(self) -> str:
        """The partition key: userId when known, else anonymousId."""
        key = self.user_id or self.anonymous_id
        assert key is not None  # guaranteed by validation
        return key


class IdentifyEvent(BaseEvent):
    union_tag: ClassVar[str] = "type:identify"
    type: Literal["identify"]
    traits: dict[str, Any] | None = None


class TrackBase(BaseEvent):
    """Any track event, generic or typed."""

    type: Literal["track"]
    event: str = Field(min_length=1, max_length=MAX_NAME)


class PageEvent(BaseEvent):
    union_tag: ClassVar[str] = "type:page"
    type: Literal["page"]
    name: Text | None = None
    category: Text | None = None
    properties: dict[str, Any] | None = None


class ScreenEvent(BaseEvent):
    union_tag: ClassVar[str] = "type:screen"
    type: Literal["screen"]
    name: Text | None = None
    category: Text | None = None
    properties: dict[str, Any] | None = None


class GroupEvent(BaseEvent):
    union_tag: ClassVar[str] = "type:group"
    type: Literal["group"]
    group_id: Id
    traits: dict[str, Any] | None = None


class AliasEvent(BaseEvent):
    model_config = ConfigDict(json_schema_extra={"anyOf": [_present("userId")]})

    union_tag: ClassVar[str] = "type:alias"
    type: Literal["alias"]
    previous_id: Id

    def _check_identity(self) -> None:
        # alias links previousId to userId; an anonymousId alone cannot be the target.
        if self.user_id is None:
            raise PydanticCustomError("identity", "is required for alias", {"field": "userId"})
