"""Helpers for reminder tests: set reminders at a fixed "now", and count what was delivered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mathia.chat.models import Message
from mathia.core.clock import FrozenClock
from mathia.reminders import actions
from mathia.reminders.models import Delivery, Reminder


def set_reminder(
    owner: Any,
    workspace: Any,
    *,
    text: str = "call John",
    due: datetime,
    room: Any = None,
    rrule: str = "",
    recurrence: str = "",
    tz: str | None = None,
) -> Reminder:
    """A reminder due at ``due``, set a minute before (so it may be in the past for the caller)."""
    clock = FrozenClock(due - timedelta(minutes=1))
    created = actions.reminder_create(
        user=owner,
        workspace_id=workspace.pk,
        text=text,
        due=due,
        tz=tz,
        rrule=rrule,
        recurrence=recurrence,
        room_id=room.pk if room is not None else None,
        clock=clock,
    )
    return created.reminder


def set_many(owner: Any, workspace: Any, n: int, *, due: datetime) -> list[int]:
    """``n`` reminders due at ``due``, in one bulk insert (the test is about delivering them)."""
    now = due - timedelta(minutes=1)
    rows = Reminder.objects.bulk_create(
        [
            Reminder(
                owner=owner,
                workspace=workspace,
                text=f"task {i}",
                due_at=due,
                timezone="UTC",
                channels=["notify", "message"],
                created_at=now,
                updated_at=now,
            )
            for i in range(n)
        ]
    )
    return (
        [r.pk for r in rows] if rows[0].pk else list(Reminder.objects.filter(owner=owner).values_list("pk", flat=True))
    )


def deliveries_per_reminder(reminder_ids: list[int]) -> dict[int, int]:
    """How many Mathia messages each reminder produced (no constraint holds these: true duplicates)."""
    counts = dict.fromkeys(reminder_ids, 0)
    for card in Message.objects.filter(card__kind="reminder").values_list("card", flat=True):
        if card["reminder_id"] in counts:
            counts[card["reminder_id"]] += 1
    return counts


def delivery_rows(reminder_ids: list[int]) -> int:
    return Delivery.objects.filter(reminder_id__in=reminder_ids).count()


NOW = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def forget_reminder_places() -> Iterator[None]:
    """The dispatcher remembers room access for a few seconds; ids repeat between tests on SQLite."""
    from mathia.reminders.dispatcher import forget_places

    forget_places()
    yield
    forget_places()
