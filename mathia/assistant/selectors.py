"""Reads for the assistant."""

from __future__ import annotations

from mathia.accounts.models import User
from mathia.assistant.context import AnswerTarget
from mathia.chat.models import Message
from mathia.rooms.models import Room


def answer_target(*, asker_id: int, room_id: int, trigger_id: int) -> AnswerTarget:
    """Who asked what, where (the asker's access was checked when the answer started)."""
    return AnswerTarget(
        asker=User.objects.get(pk=asker_id),
        room=Room.objects.get(pk=room_id),
        trigger=Message.objects.select_related("author").get(pk=trigger_id),
    )
