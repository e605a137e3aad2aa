"""Publishing events to connected clients through the Channels layer, after commit.

A frame is serialized once here, then every consumer that receives it writes the same text
to its socket: fan-out does no per-recipient JSON work.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

DELIVER = "deliver"  # the consumer method that writes a pre-serialized frame


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=str)


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, message)


def publish_on_commit(group: str, frame: dict[str, Any], *, control: dict[str, Any] | None = None) -> None:
    """Send ``frame`` to ``group`` once the current transaction commits (now if none).

    ``control`` travels beside the frame for the consumers themselves (for example "stop
    following this room"); clients never see it.
    """
    message: dict[str, Any] = {"type": DELIVER, "text": encode(frame)}
    if control is not None:
        message["control"] = control
    transaction.on_commit(lambda: _group_send(group, message))


async def publish_now(group: str, frame: dict[str, Any]) -> None:
    """For ephemeral events that have no transaction (typing, presence)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, {"type": DELIVER, "text": encode(frame)})
