"""Every frame a client may send, as pydantic models. `docs/protocol.md` documents them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

RoomId = Annotated[int, Field(gt=0, lt=2**63)]
MessageId = Annotated[int, Field(gt=0, lt=2**63)]
Ref = Annotated[str, Field(max_length=64)]
MAX_ROOMS_PER_FRAME = 500


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    ref: Ref | None = None


class Subscribe(_Frame):
    type: Literal["subscribe"]
    rooms: list[RoomId] = Field(min_length=1, max_length=MAX_ROOMS_PER_FRAME)


class Unsubscribe(_Frame):
    type: Literal["unsubscribe"]
    rooms: list[RoomId] = Field(min_length=1, max_length=MAX_ROOMS_PER_FRAME)


class Send(_Frame):
    type: Literal["send"]
    room_id: RoomId
    client_id: Annotated[str, Field(min_length=1, max_length=64)]
    body: Annotated[str, Field(max_length=20_000)]
    reply_to: MessageId | None = None


class Edit(_Frame):
    type: Literal["edit"]
    message_id: MessageId
    body: Annotated[str, Field(max_length=20_000)]


class Delete(_Frame):
    type: Literal["delete"]
    message_id: MessageId


class React(_Frame):
    type: Literal["react"]
    message_id: MessageId
    emoji: Annotated[str, Field(min_length=1, max_length=32)]
    present: bool = True


class Read(_Frame):
    type: Literal["read"]
    room_id: RoomId
    seq: Annotated[int, Field(ge=0, lt=2**63)]


class Typing(_Frame):
    type: Literal["typing"]
    room_id: RoomId


class History(_Frame):
    type: Literal["history"]
    room_id: RoomId
    before_seq: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class Sync(_Frame):
    type: Literal["sync"]
    # JSON object keys are strings: {"12": 345} means "I have room 12 up to version 345".
    rooms: Annotated[
        dict[str, Annotated[int, Field(ge=0, lt=2**63)]], Field(min_length=1, max_length=MAX_ROOMS_PER_FRAME)
    ]


class Presence(_Frame):
    type: Literal["presence"]
    status: Literal["online", "away"]


class Stop(_Frame):
    """Stop the answer @mathia is writing in ``message_id`` (the asker or a moderator)."""

    type: Literal["stop"]
    message_id: MessageId


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[
    Subscribe | Unsubscribe | Send | Edit | Delete | React | Read | Typing | History | Sync | Presence | Stop | Ping,
    Field(discriminator="type"),
]
CLIENT_FRAME = TypeAdapter(ClientFrame)
FRAME_TYPES = frozenset(
    [
        "subscribe",
        "unsubscribe",
        "send",
        "edit",
        "delete",
        "react",
        "read",
        "typing",
        "history",
        "sync",
        "presence",
        "stop",
        "ping",
    ]
)
