"""What crosses the reminders API and tool boundaries, as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mathia.reminders.models import TEXT_MAX

Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]
When = Annotated[str, Field(min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReminderCreate(_Body):
    """One of: ``request`` (the words, "call John in 10 mins"); ``text`` with ``when``; or
    ``text`` with ``due_at`` (an exact time, e.g. an option of a clarifying question)."""

    workspace: Annotated[str, Field(min_length=1, max_length=100)]
    room_id: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    request: Annotated[str, Field(min_length=1, max_length=TEXT_MAX + 200)] | None = None
    text: Text | None = None
    when: When | None = None
    due_at: datetime | None = None


class ReminderEdit(_Body):
    text: Text | None = None
    when: When | None = None


class ReminderSnooze(_Body):
    for_: Literal["10m", "1h", "tomorrow"] = Field(alias="for")


class DeliveriesSeen(_Body):
    ids: list[Annotated[int, Field(gt=0, lt=2**63)]] | None = Field(default=None, max_length=500)


class PreferencesBody(_Body):
    email: bool
