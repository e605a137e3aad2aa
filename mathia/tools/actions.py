"""Writes for the tool router's ways in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from mathia.assistant.actions import assistant_room_ensure
from mathia.assistant.identity import assistant_user
from mathia.chat.actions import internal_message_post

if TYPE_CHECKING:
    from mathia.accounts.models import User

PRIVATE_NOTE = "Sent to your private room with me: it holds your own data, and others can read this room."


def tool_result_send_privately(*, user: User, workspace_id: int, body: str) -> int:
    """Post a tool's private result as Mathia in ``user``'s private room with Mathia; returns the room id.

    For a result that holds the asker's own data, asked for where others can read the answer.
    """
    with transaction.atomic():
        room = assistant_room_ensure(user=user, workspace_id=workspace_id)
        internal_message_post(author=assistant_user(), room_id=room.pk, body=body)
    return int(room.pk)
