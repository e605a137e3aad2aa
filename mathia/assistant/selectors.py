"""Reads for the assistant."""

from __future__ import annotations

from mathia.accounts.models import User
from mathia.assistant.actions import StartedRun
from mathia.assistant.context import AnswerTarget
from mathia.assistant.limits import slot_of
from mathia.assistant.models import AssistantRun, RunState
from mathia.chat.models import Message
from mathia.rooms.models import Room


def answer_target(*, asker_id: int, room_id: int, trigger_id: int) -> AnswerTarget:
    """Who asked what, where (the asker's access was checked when the answer started)."""
    return AnswerTarget(
        asker=User.objects.get(pk=asker_id),
        room=Room.objects.get(pk=room_id),
        trigger=Message.objects.select_related("author").get(pk=trigger_id),
    )


def started_run(*, run_id: int, run_key: str) -> StartedRun | None:
    """A run opened elsewhere (the question was sent where no event loop runs), if still running."""
    run = (
        AssistantRun.objects.filter(pk=run_id, state=RunState.RUNNING)
        .select_related("room")
        .only("pk", "answer_id", "room_id", "room__workspace_id", "asker_id", "trigger_id")
        .first()
    )
    if run is None:
        return None
    workspace_id = run.room.workspace_id
    return StartedRun(
        run_id=run.pk,
        message_id=run.answer_id,
        room_id=run.room_id,
        workspace_id=workspace_id,
        asker_id=run.asker_id,
        trigger_id=run.trigger_id,
        slot=slot_of(run_key=run_key, user_id=run.asker_id, workspace_id=workspace_id),
    )
