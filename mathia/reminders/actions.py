"""Writes for reminders: set one (from words or an exact time), cancel, snooze, edit, mark seen.

Every change is announced to the owner's open tabs (``reminder.changed``) after commit, so a
list in one tab follows what another tab or the chat did. Delivery is the dispatcher's
(``dispatcher.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import structlog
from django.db import transaction

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError, InvalidInput, NotFound
from mathia.realtime.events import publish_on_commit, user_group
from mathia.reminders.access import access_reminder_for_user
from mathia.reminders.models import TEXT_MAX, Channel, Preferences, Reminder, Status
from mathia.reminders.parsing import Clarify, Parsed, format_local, parse_request, parse_when
from mathia.reminders.selectors import reminder_payload
from mathia.rooms.access import access_room_for_user
from mathia.workspaces.access import access_workspace_by_id_for_user

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

UPCOMING_LIMIT = 200  # scheduled reminders one person may have
Snooze = Literal["10m", "1h", "tomorrow"]
SNOOZE_TOMORROW_AT = time(9)


class NeedsClarification(AppError):
    """The time could not be read for sure: ``question`` for the person, ``options`` to pick from."""

    code = "needs_clarification"
    http_status = 422

    def __init__(self, clarify: Clarify, tz: str) -> None:
        super().__init__(
            clarify.question,
            code=clarify.code,
            options=[
                {"label": o.label, "due_at": o.due.astimezone(UTC).isoformat(), "due_local": format_local(o.due, tz)}
                for o in clarify.options
            ],
            text=clarify.text,
        )
        self.clarify = clarify


@dataclass(frozen=True)
class Created:
    reminder: Reminder
    confirmation: str  # "I'll remind you to call John on Friday 27 March 2026 at 17:00 (Europe/London)."


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("What should I remind you about? The text is empty.", code="text_missing", field="text")
    text = " ".join(text.split())
    if len(text) > TEXT_MAX:
        raise InvalidInput(f"A reminder is at most {TEXT_MAX} characters.", code="too_long", field="text")
    return text


def _check_place(*, user: User, workspace_id: int, room_id: int | None) -> None:
    access_workspace_by_id_for_user(user=user, workspace_id=workspace_id)
    if room_id is not None:
        access = access_room_for_user(user=user, room_id=room_id)
        if access.room.workspace_id != workspace_id:
            raise NotFound("Room not found.")


def _channels(user_id: int) -> list[str]:
    channels = [Channel.NOTIFY.value, Channel.MESSAGE.value]
    if Preferences.objects.filter(user_id=user_id, email=True).exists():
        channels.append(Channel.EMAIL.value)
    return channels


def _changed(reminder: Reminder) -> None:
    publish_on_commit(
        user_group(reminder.owner_id), {"type": "reminder.changed", "reminder": reminder_payload(reminder)}
    )


def confirmation_text(reminder: Reminder) -> str:
    when = format_local(reminder.due_at, reminder.timezone)
    if reminder.recurrence:
        return f"I'll remind you to {reminder.text} {reminder.recurrence} ({reminder.timezone}), first on {when}."
    return f"I'll remind you to {reminder.text} on {when}."


def reminder_create(
    *,
    user: User,
    workspace_id: int,
    text: str,
    due: datetime,
    tz: str | None = None,
    rrule: str = "",
    recurrence: str = "",
    room_id: int | None = None,
    source_message_id: int | None = None,
    clock: Clock = system_clock,
) -> Created:
    """Set a reminder at an exact time (aware). Checks the owner's place and the time."""
    text = check_text(text)
    tz = tz or user.timezone or "UTC"
    now = clock.now()
    if due.tzinfo is None:
        raise InvalidInput("A due time needs a timezone.", code="invalid", field="due_at")
    if due <= now:
        raise InvalidInput(
            f"{format_local(due, tz)} is in the past; pick a time ahead.", code="time_past", field="due_at"
        )
    _check_place(user=user, workspace_id=workspace_id, room_id=room_id)
    if Reminder.objects.filter(owner_id=user.pk, status=Status.SCHEDULED).count() >= UPCOMING_LIMIT:
        raise InvalidInput(
            f"You have {UPCOMING_LIMIT} reminders coming up already; cancel some first.", code="too_many"
        )
    with transaction.atomic():
        reminder = Reminder.objects.create(
            owner_id=user.pk,
            workspace_id=workspace_id,
            room_id=room_id,
            source_message_id=source_message_id,
            text=text,
            due_at=due.astimezone(UTC),
            timezone=tz,
            rrule=rrule,
            recurrence=recurrence,
            channels=_channels(user.pk),
            created_at=now,
            updated_at=now,
        )
        _changed(reminder)
    log.info("reminder_created", reminder_id=reminder.pk, user_id=user.pk, recurring=bool(rrule))
    return Created(reminder=reminder, confirmation=confirmation_text(reminder))


def reminder_request(
    *,
    user: User,
    workspace_id: int,
    request: str,
    room_id: int | None = None,
    source_message_id: int | None = None,
    clock: Clock = system_clock,
) -> Created:
    """Set a reminder from words ("remind me to call John in 10 mins"), in the user's timezone.

    A time that cannot be read for sure raises :class:`NeedsClarification` (nothing is saved).
    """
    tz = user.timezone or "UTC"
    result = parse_request(request, now=clock.now(), tz=tz)
    if isinstance(result, Clarify):
        raise NeedsClarification(result, tz)
    return reminder_create(
        user=user,
        workspace_id=workspace_id,
        text=result.text,
        due=result.due,
        tz=tz,
        rrule=result.rrule,
        recurrence=result.recurrence,
        room_id=room_id,
        source_message_id=source_message_id,
        clock=clock,
    )


def reminder_from_parts(
    *,
    user: User,
    workspace_id: int,
    text: str,
    when: str,
    room_id: int | None = None,
    source_message_id: int | None = None,
    clock: Clock = system_clock,
) -> Created:
    """Set a reminder from a text and a *when* phrase given apart (the form, a tool call)."""
    text = check_text(text)
    tz = user.timezone or "UTC"
    result = parse_when(when, now=clock.now(), tz=tz, text=text)
    if isinstance(result, Clarify):
        raise NeedsClarification(result, tz)
    return reminder_create(
        user=user,
        workspace_id=workspace_id,
        text=text,
        due=result.due,
        tz=tz,
        rrule=result.rrule,
        recurrence=result.recurrence,
        room_id=room_id,
        source_message_id=source_message_id,
        clock=clock,
    )


def reminder_cancel(
    *, user: User, reminder_id: int, workspace_id: int | None = None, clock: Clock = system_clock
) -> Reminder:
    """Cancel a scheduled reminder (every later occurrence of a recurring one). Idempotent."""
    with transaction.atomic():
        reminder = access_reminder_for_user(
            user=user, reminder_id=reminder_id, for_update=True, workspace_id=workspace_id
        )
        if reminder.status == Status.CANCELLED:
            return reminder
        if reminder.status != Status.SCHEDULED:
            raise InvalidInput("That reminder has already gone off.", code="reminder_done")
        reminder.status = Status.CANCELLED
        reminder.claim_token, reminder.claimed_until = "", None
        reminder.updated_at = clock.now()
        reminder.save(update_fields=["status", "claim_token", "claimed_until", "updated_at"])
        _changed(reminder)
    log.info("reminder_cancelled", reminder_id=reminder.pk, user_id=user.pk)
    return reminder


def snooze_target(choice: str, *, now: datetime, tz: str) -> datetime:
    if choice == "10m":
        return now + timedelta(minutes=10)
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "tomorrow":
        local = now.astimezone(ZoneInfo(tz))
        return datetime.combine(local.date() + timedelta(days=1), SNOOZE_TOMORROW_AT, tzinfo=ZoneInfo(tz))
    raise InvalidInput('Snooze for "10m", "1h" or "tomorrow".', code="invalid", field="for")


def reminder_snooze(
    *, user: User, reminder_id: int, choice: str, workspace_id: int | None = None, clock: Clock = system_clock
) -> Reminder:
    """Remind again in 10 minutes, in an hour, or tomorrow at 09:00 (the owner's zone).

    A one-off reminder that went off is scheduled again; a recurring one gets a one-off copy
    (its own schedule goes on); a scheduled one-off simply moves.
    """
    now = clock.now()
    with transaction.atomic():
        reminder = access_reminder_for_user(
            user=user, reminder_id=reminder_id, for_update=True, workspace_id=workspace_id
        )
        due = snooze_target(choice, now=now, tz=reminder.timezone).astimezone(UTC)
        if reminder.status == Status.CANCELLED:
            raise InvalidInput("That reminder was cancelled.", code="reminder_cancelled")
        if reminder.is_recurring:
            copy = Reminder.objects.create(
                owner_id=reminder.owner_id,
                workspace_id=reminder.workspace_id,
                room_id=reminder.room_id,
                text=reminder.text,
                due_at=due,
                timezone=reminder.timezone,
                channels=reminder.channels,
                created_at=now,
                updated_at=now,
            )
            _changed(copy)
            return copy
        reminder.due_at = due
        reminder.status = Status.SCHEDULED
        reminder.claim_token, reminder.claimed_until = "", None
        reminder.attempts = 0  # a snoozed reminder that had failed gets its full set of tries again
        reminder.updated_at = now
        reminder.save(update_fields=["due_at", "status", "claim_token", "claimed_until", "attempts", "updated_at"])
        _changed(reminder)
    return reminder


def reminder_edit(
    *,
    user: User,
    reminder_id: int,
    text: str | None = None,
    when: str | None = None,
    workspace_id: int | None = None,
    clock: Clock = system_clock,
) -> Reminder:
    """Change a scheduled reminder's text and/or time (a *when* phrase, read in its zone)."""
    if text is None and when is None:
        raise InvalidInput("Give a new text or a new time.", code="invalid")
    new_text = check_text(text) if text is not None else None
    now = clock.now()
    with transaction.atomic():
        reminder = access_reminder_for_user(
            user=user, reminder_id=reminder_id, for_update=True, workspace_id=workspace_id
        )
        if reminder.status != Status.SCHEDULED:
            raise InvalidInput("Only a reminder still to come can be edited.", code="reminder_done")
        if new_text is not None:
            reminder.text = new_text
        if when is not None:
            result = parse_when(when, now=now, tz=reminder.timezone, text=reminder.text)
            if isinstance(result, Clarify):
                raise NeedsClarification(result, reminder.timezone)
            assert isinstance(result, Parsed)
            reminder.due_at = result.due.astimezone(UTC)
            reminder.rrule, reminder.recurrence = result.rrule, result.recurrence
        reminder.claim_token, reminder.claimed_until = "", None
        reminder.updated_at = now
        reminder.save()
        _changed(reminder)
    return reminder


def deliveries_mark_seen(*, user: User, delivery_ids: list[int] | None = None, clock: Clock = system_clock) -> int:
    """The owner saw these fired reminders (all when None); the bell stops counting them."""
    from mathia.reminders.models import Delivery

    query = Delivery.objects.filter(owner_id=user.pk, seen_at__isnull=True)
    if delivery_ids is not None:
        query = query.filter(pk__in=[i for i in delivery_ids if isinstance(i, int)])
    with transaction.atomic():
        count = query.update(seen_at=clock.now())
        if count:
            publish_on_commit(user_group(user.pk), {"type": "reminder.seen", "delivery_ids": delivery_ids})
    return count


def preferences_set(*, user: User, email: bool) -> dict[str, Any]:
    """Email on or off for the owner's reminders, including those already scheduled."""
    with transaction.atomic():
        Preferences.objects.update_or_create(user_id=user.pk, defaults={"email": email})
        for reminder in Reminder.objects.filter(owner_id=user.pk, status=Status.SCHEDULED).select_for_update():
            channels = [c for c in reminder.channels if c != Channel.EMAIL.value]
            if email:
                channels.append(Channel.EMAIL.value)
            if channels != reminder.channels:
                reminder.channels = channels
                reminder.save(update_fields=["channels"])
    return {"email": email}
