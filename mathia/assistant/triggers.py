"""When @mathia answers: a mention anywhere, a slash command a connector registered (``/weather
Nairobi``), or any message in a person's room with Mathia.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mathia.assistant.identity import assistant_direct_key, assistant_user, mentions_assistant
from mathia.core.clock import Clock, system_clock
from mathia.rooms.models import Room

if TYPE_CHECKING:
    from mathia.accounts.models import User
    from mathia.chat.models import Message
    from mathia.rooms.access import RoomAccess


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


def assistant_answer_begin(*, trigger: Message, asker: User, access: RoomAccess, clock: Clock = system_clock) -> None:
    """Open the answer to ``trigger`` in the transaction storing it; it starts once that commits.

    The start builds the prompt in the committing thread, with the question, the asker and
    their access in hand, then hands the answer to the event loop (see ``runner.start_answer``).
    """
    from django.db import transaction

    # The runner imports chat, which imports this module: import where used.
    from mathia.assistant.actions import assistant_answer_open
    from mathia.assistant.runner import start_answer

    started = assistant_answer_open(trigger=trigger, asker=asker, access=access, clock=clock)
    if started is not None:
        transaction.on_commit(lambda: start_answer(started, trigger=trigger, asker=asker, access=access))
