"""When @mathia answers: a mention anywhere, a slash command a connector registered (``/weather
Nairobi``), or any message in a person's room with Mathia.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mathia.assistant.identity import assistant_direct_key, assistant_user, mentions_assistant
from mathia.rooms.models import Room

if TYPE_CHECKING:
    from mathia.accounts.models import User


def assistant_answer_wanted(*, user: User, room: Room, body: str) -> bool:
    if user.is_assistant:
        return False
    if mentions_assistant(body):
        return True
    if body.startswith("/"):
        from mathia.tools.parser import parse_slash

        if parse_slash(body) is not None:
            return True
    if room.is_direct and room.direct_key.count(",") == 1:
        return room.direct_key == assistant_direct_key(user.pk, assistant_user().pk)
    return False


def assistant_stop_deleted_answer(*, message_id: int, by: str) -> None:
    """An answer deleted while being written stops (inside the deleting transaction)."""
    from mathia.assistant.actions import assistant_stop_deleted_answer as stop

    stop(message_id=message_id, by=by)


def assistant_schedule_answer(*, trigger_message_id: int, asker_id: int) -> None:
    """Start the answer to a committed message (called after commit, from any thread)."""
    from mathia.assistant.runner import schedule_answer  # the runner imports chat, which imports this

    schedule_answer(trigger_message_id=trigger_message_id, asker_id=asker_id)
