"""Reads for reminders: what is coming up, what fired while you were away, as plain data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mathia.reminders.models import Delivery, Preferences, Reminder, Status
from mathia.reminders.parsing import format_local

if TYPE_CHECKING:
    from mathia.accounts.models import User

UPCOMING_MAX = 50
UNSEEN_MAX = 50


def reminder_payload(reminder: Reminder) -> dict[str, Any]:
    return {
        "id": reminder.pk,
        "text": reminder.text,
        "due_at": reminder.due_at.isoformat(),
        "due_local": format_local(reminder.due_at, reminder.timezone),
        "timezone": reminder.timezone,
        "recurrence": reminder.recurrence,
        "rrule": reminder.rrule,
        "status": reminder.status,
        "room_id": reminder.room_id,
        "channels": list(reminder.channels),
    }


def delivery_payload(delivery: Delivery, reminder: Reminder) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "reminder_id": reminder.pk,
        "text": reminder.text,
        "occurrence_at": delivery.occurrence_at.isoformat(),
        "occurrence_local": format_local(delivery.occurrence_at, reminder.timezone),
        "delivered_at": delivery.delivered_at.isoformat(),
        "room_id": delivery.message.room_id if delivery.message else None,
        "message_id": delivery.message_id,
        "seen": delivery.seen_at is not None,
    }


def upcoming_reminders(
    *, user: User, workspace_id: int | None = None, limit: int = UPCOMING_MAX
) -> list[dict[str, Any]]:
    """The user's scheduled reminders (in one workspace when given), soonest first."""
    rows = Reminder.objects.filter(owner_id=user.pk, status=Status.SCHEDULED)
    if workspace_id is not None:
        rows = rows.filter(workspace_id=workspace_id)
    return [reminder_payload(r) for r in rows.order_by("due_at", "id")[:limit]]


def unseen_deliveries(*, user: User, limit: int = UNSEEN_MAX) -> list[dict[str, Any]]:
    """Reminders that fired and the user has not seen yet (while offline, say), newest first."""
    rows = (
        Delivery.objects.filter(owner_id=user.pk, seen_at__isnull=True)
        .select_related("reminder", "message")
        .order_by("-delivered_at", "-id")[:limit]
    )
    return [delivery_payload(d, d.reminder) for d in rows]


def reminder_preferences(*, user: User) -> dict[str, Any]:
    prefs = Preferences.objects.filter(user_id=user.pk).first()
    return {"email": bool(prefs and prefs.email)}


def email_opted_in(*, user_id: int) -> bool:
    return Preferences.objects.filter(user_id=user_id, email=True).exists()
