"""Bodies of the rooms API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomCreate(_Body):
    name: Annotated[str, Field(max_length=200)]
    kind: Literal["public", "private"] = "public"
    topic: Annotated[str, Field(max_length=1000)] = ""


class DirectOpen(_Body):
    user_ids: Annotated[list[int], Field(min_length=1, max_length=20)]


class RoomUpdate(_Body):
    name: Annotated[str, Field(max_length=200)] | None = None
    topic: Annotated[str, Field(max_length=1000)] | None = None
    archived: bool | None = None


class MemberRole(_Body):
    role: str


class InviteCreate(_Body):
    expires_in_days: int = 7
    max_uses: int | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
