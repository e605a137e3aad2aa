"""The one access check for reminders: a reminder is its owner's alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mathia.core.errors import NotFound
from mathia.reminders.models import Reminder

if TYPE_CHECKING:
    from mathia.accounts.models import User

REMINDER_NOT_FOUND = "Reminder not found."


def access_reminder_for_user(
    *, user: User, reminder_id: int, for_update: bool = False, workspace_id: int | None = None
) -> Reminder:
    """The reminder ``reminder_id`` if ``user`` owns it; someone else's answers like a missing one.

    ``workspace_id`` narrows it to reminders set in that workspace (a tool call, an MCP token:
    they act in one workspace and must not reach the others). ``for_update`` locks the row (call
    inside a transaction), so an edit and the dispatcher never both act on the same occurrence.
    """
    if not isinstance(reminder_id, int) or reminder_id <= 0 or not user.is_authenticated:
        raise NotFound(REMINDER_NOT_FOUND, code="not_found")
    query = Reminder.objects.filter(pk=reminder_id, owner_id=user.pk)
    if workspace_id is not None:
        query = query.filter(workspace_id=workspace_id)
    if for_update:
        query = query.select_for_update()
    reminder = query.first()
    if reminder is None:
        raise NotFound(REMINDER_NOT_FOUND, code="not_found")
    return reminder
