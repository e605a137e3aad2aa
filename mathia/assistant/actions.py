"""Writes for the assistant: start an answer, finish it exactly once, stop it, reap the dead.

The answer is a message by Mathia created when the run starts (status ``streaming``, so
every member sees "Mathia is thinking…" in its place) and written a second and last time
when the run ends. Text in between travels through Redis (``buffer.py``) and the channel
layer, never the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import transaction

from mathia.assistant.buffer import buffer_clear, buffer_text
from mathia.assistant.identity import assistant_direct_key, assistant_user
from mathia.assistant.limits import Busy, Slot, slot_acquire, slot_release
from mathia.assistant.models import AssistantRun, RunState, UsageRecord
from mathia.chat.actions import internal_message_finish, internal_message_post
from mathia.chat.models import Message, MessageStatus
from mathia.core.clock import Clock, system_clock
from mathia.core.errors import NotFound, PermissionDenied
from mathia.realtime.events import publish_on_commit, room_group, send_on_commit
from mathia.rooms.access import RoomAccess, access_room_for_user
from mathia.rooms.models import Room, RoomKind, RoomMembership
from mathia.rooms.selectors import room_has_member
from mathia.wallet.billing import wallet_bill_usage

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

CONTROL_GROUP = "assistant.control"  # every process that runs answers listens here
ANSWER_MAX_CHARS = 16_000
STALE_AFTER = timedelta(seconds=45)  # no heartbeat for this long: the process died


@dataclass(frozen=True)
class StartedRun:
    run_id: int
    message_id: int
    room_id: int
    workspace_id: int
    asker_id: int
    trigger_id: int | None  # None once the question is gone (deleted with its author's data)
    slot: Slot


def assistant_room_ensure(*, user: User, workspace_id: int) -> Room:
    """The person's private room with Mathia in ``workspace_id``, created the first time."""
    mathia = assistant_user()
    key = assistant_direct_key(user.pk, mathia.pk)
    room, created = Room.objects.get_or_create(
        workspace_id=workspace_id, kind=RoomKind.DIRECT, direct_key=key, defaults={"created_by": user}
    )
    if created:
        RoomMembership.objects.bulk_create(
            [RoomMembership(room=room, user_id=user.pk), RoomMembership(room=room, user_id=mathia.pk)]
        )
    return room


def _join_room(room: Room, mathia: User) -> None:
    """Mathia becomes a visible member of a room the first time it answers there.

    Not of a direct conversation between people: a mention there gets an answer, but Mathia
    does not become a third party to it.
    """
    if room.is_direct:
        return
    room_id = room.pk
    if room_has_member(room_id=room_id, user_id=mathia.pk):  # nearly always: a plain read, no ORM get
        return
    _, created = RoomMembership.objects.get_or_create(room_id=room_id, user=mathia)
    if created:
        publish_on_commit(
            room_group(room_id),
            {"type": "room.member_joined", "room_id": room_id, "user": {"id": mathia.pk, "name": mathia.name}},
        )


def _clear_buffer(message_id: int) -> None:
    """After the final text committed: its streaming buffer is no longer needed."""
    try:
        buffer_clear(message_id)
    except Exception:  # Redis is down: the keys expire by themselves (buffer.BUFFER_TTL_SECONDS)
        log.warning("assistant_buffer_clear_failed", message_id=message_id, exc_info=True)


def assistant_answer_open(
    *, trigger: Message, asker: User, access: RoomAccess, clock: Clock = system_clock
) -> StartedRun | None:
    """Open the answer to ``trigger``, inside the transaction that stores it; None when busy.

    The question, Mathia's "thinking" message and the run commit together: one transaction,
    no second thread hop before the provider is asked, and no redelivered start answered
    twice. ``access`` is the asker's, checked for writing by the caller just before this
    transaction. When a concurrency limit is full, Mathia says so in the room instead.

    The slot is taken in Redis before the rows are written; if the transaction then fails,
    it is freed when its lease ends (``limits.LEASE_SECONDS``).
    """
    mathia = assistant_user()
    room = access.room
    try:
        slot = slot_acquire(run_key=uuid.uuid4().hex, user_id=asker.pk, workspace_id=room.workspace_id, clock=clock)
    except Busy as busy:
        _post_busy(busy, trigger=trigger, room=room, mathia=mathia, clock=clock)
        return None
    try:
        _join_room(room, mathia)
        answer = internal_message_post(
            author=mathia, room_id=room.pk, body="", status=MessageStatus.STREAMING, reply_to=trigger, clock=clock
        )
        now = clock.now()
        run = AssistantRun.objects.create(
            room_id=room.pk, asker=asker, trigger=trigger, answer=answer, started_at=now, heartbeat_at=now
        )
    except BaseException:
        slot_release(slot)
        raise
    log.info("assistant_run_started", run_id=run.pk, room_id=room.pk, user_id=asker.pk)
    return StartedRun(
        run_id=run.pk,
        message_id=answer.pk,
        room_id=room.pk,
        workspace_id=room.workspace_id,
        asker_id=asker.pk,
        trigger_id=trigger.pk,
        slot=slot,
    )


_BUSY_TEXT = {
    "user": "You already have {answers} on the way; try again when one is done.",
    "workspace": "I'm answering {limit} questions in this workspace right now; try again in a moment.",
    "total": "I'm at capacity right now; try again in a moment.",
}


def _post_busy(busy: Busy, *, trigger: Message, room: Room, mathia: User, clock: Clock) -> None:
    answers = "an answer" if busy.limit == 1 else f"{busy.limit} answers"
    text = _BUSY_TEXT[busy.scope].format(limit=busy.limit, answers=answers)
    _post_note(text, trigger=trigger, room=room, mathia=mathia, clock=clock)
    log.warning("assistant_busy", scope=busy.scope, limit=busy.limit, room_id=trigger.room_id)


def _post_note(text: str, *, trigger: Message, room: Room, mathia: User, clock: Clock) -> None:
    """Mathia's short reply instead of an answer (busy)."""
    with transaction.atomic():
        _join_room(room, mathia)
        internal_message_post(
            author=mathia,
            room_id=trigger.room_id,
            body="_" + text + "_",
            status=MessageStatus.FAILED,
            reply_to=trigger,
            clock=clock,
        )


@dataclass(frozen=True)
class RunOutcome:
    state: str  # RunState.DONE, STOPPED or FAILED
    text: str
    note: str = ""  # shown under the text: why it stopped or failed
    error_code: str = ""
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_chars: int = 0
    usage_estimated: bool = False
    first_token_ms: int | None = None
    total_ms: int | None = None


_MESSAGE_STATUS = {
    RunState.DONE: MessageStatus.DONE,
    RunState.STOPPED: MessageStatus.STOPPED,
    RunState.FAILED: MessageStatus.FAILED,
}


def _answer_body(outcome: RunOutcome) -> str:
    text = outcome.text.strip()
    if len(text) > ANSWER_MAX_CHARS:
        text = text[:ANSWER_MAX_CHARS] + "…"
    if outcome.note:
        text = f"{text}\n\n_{outcome.note}_" if text else f"_{outcome.note}_"
    return text


def price_micros(*, model: str, input_tokens: int, output_tokens: int) -> int:
    """Cost in millionths of a dollar: dollars per million tokens times tokens."""
    prices = settings.LLM_PRICES.get(model)
    if prices is None:
        return 0
    return round(input_tokens * prices[0] + output_tokens * prices[1])


def assistant_answer_finish(*, run_id: int, outcome: RunOutcome, clock: Clock = system_clock) -> bool:
    """Write the answer's final text, state and usage, once. False if it was already finished.

    The conditional update on the run's state is the guard: of the runner, a retried call and
    the reaper, exactly one gets to write.
    """
    now = clock.now()
    with transaction.atomic():
        claimed = AssistantRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
            state=outcome.state,
            provider=outcome.provider,
            model=outcome.model,
            error_code=outcome.error_code,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            first_token_ms=outcome.first_token_ms,
            total_ms=outcome.total_ms,
            finished_at=now,
        )
        if not claimed:
            return False
        answer_id, room_id, asker_id, workspace_id, deleted_at = AssistantRun.objects.values_list(
            "answer_id", "room_id", "asker_id", "room__workspace_id", "answer__deleted_at"
        ).get(pk=run_id)
        if deleted_at is None:  # not deleted mid-answer
            internal_message_finish(
                message_id=answer_id,
                room_id=room_id,
                body=_answer_body(outcome),
                status=_MESSAGE_STATUS[RunState(outcome.state)],
            )
        if outcome.provider:
            usage = UsageRecord.objects.create(
                run_id=run_id,
                user_id=asker_id,
                workspace_id=workspace_id,
                room_id=room_id,
                provider=outcome.provider,
                model=outcome.model,
                input_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens,
                prompt_chars=outcome.prompt_chars,
                estimated=outcome.usage_estimated,
                cost_micros=price_micros(
                    model=outcome.model, input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens
                ),
                first_token_ms=outcome.first_token_ms,
                total_ms=outcome.total_ms,
                outcome=outcome.state,
                created_at=now,
            )
            wallet_bill_usage(usage=usage)  # in this transaction: no usage is left unbilled
        transaction.on_commit(lambda: _clear_buffer(answer_id))
    log.info(
        "assistant_run_finished",
        run_id=run_id,
        state=outcome.state,
        provider=outcome.provider,
        model=outcome.model,
        error_code=outcome.error_code,
        first_token_ms=outcome.first_token_ms,
        total_ms=outcome.total_ms,
    )
    return True


def assistant_stop_deleted_answer(*, message_id: int, by: str) -> None:
    """The answer's message was deleted while being written: stop writing it."""
    runs = AssistantRun.objects.filter(answer_id=message_id, state=RunState.RUNNING).values_list("pk", flat=True)
    for run_id in runs:
        send_on_commit(CONTROL_GROUP, {"type": "assistant.stop", "run_id": run_id, "by": by})


def assistant_stop(*, user: User, message_id: int) -> dict[str, Any]:
    """Ask the answer being written in ``message_id`` to stop (the asker or a moderator).

    Whichever process runs it hears the request on the control group, cancels the upstream
    call and keeps the text so far. Stopping an answer that has ended changes nothing.
    """
    from mathia.chat.selectors import message_payload_by_id

    run = AssistantRun.objects.filter(answer_id=message_id).only("pk", "room_id", "asker_id", "state").first()
    if run is None:
        raise NotFound("There is no answer being written in that message.", code="not_found")
    try:
        access = access_room_for_user(user=user, room_id=run.room_id)
    except NotFound:
        raise NotFound("There is no answer being written in that message.") from None
    if run.asker_id != user.pk and not access.can_moderate:
        raise PermissionDenied("Only the person who asked, or a moderator, can stop this answer.")
    if run.state == RunState.RUNNING:
        with transaction.atomic():
            AssistantRun.objects.filter(pk=run.pk, state=RunState.RUNNING, stopped_by__isnull=True).update(
                stopped_by=user
            )
            send_on_commit(CONTROL_GROUP, {"type": "assistant.stop", "run_id": run.pk, "by": user.name})
        log.info("assistant_stop_requested", run_id=run.pk, user_id=user.pk)
    return message_payload_by_id(message_id)


@dataclass(frozen=True)
class Heartbeat:
    stop: dict[int, str]  # run id -> who asked to stop it (a backstop for the control group)
    gone: set[int]  # runs already finished by someone else (the reaper): stop working on them


def assistant_runs_heartbeat(*, run_ids: list[int], clock: Clock = system_clock) -> Heartbeat:
    """Mark ``run_ids`` alive, and say which of them should stop."""
    if not run_ids:
        return Heartbeat(stop={}, gone=set())
    AssistantRun.objects.filter(pk__in=run_ids, state=RunState.RUNNING).update(heartbeat_at=clock.now())
    rows = AssistantRun.objects.filter(pk__in=run_ids).values_list("pk", "state", "stopped_by__display_name")
    return Heartbeat(
        stop={pk: name or "someone" for pk, state, name in rows if state == RunState.RUNNING and name is not None},
        gone={pk for pk, state, _ in rows if state != RunState.RUNNING},
    )


def assistant_runs_reap(*, clock: Clock = system_clock) -> int:
    """Finish answers whose process died (no heartbeat), keeping the text they had streamed."""
    stale = list(
        AssistantRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=clock.now() - STALE_AFTER).values_list(
            "pk", "answer_id"
        )
    )
    reaped = 0
    for run_id, answer_id in stale:
        outcome = RunOutcome(
            state=RunState.FAILED,
            text=buffer_text(answer_id),
            note="The answer was interrupted (the server running it stopped). Ask again to retry.",
            error_code="interrupted",
        )
        reaped += assistant_answer_finish(run_id=run_id, outcome=outcome, clock=clock)
    if reaped:
        log.warning("assistant_runs_reaped", count=reaped)
    return reaped
