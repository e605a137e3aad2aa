"""Delivering due reminders exactly once, from any number of workers.

Celery Beat runs :func:`dispatch_due` every ``REMINDER_DISPATCH_SECONDS``. Each round:

1. **Reserve** (a short transaction): up to ``REMINDER_BATCH`` due rows that no one holds
   (never reserved, or their lease ran out) are locked with ``SELECT … FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, so two workers never pick the same row and neither waits for the
   other, and are stamped with this round's ``claim_token`` and a lease (``claimed_until``).
   SQLite has no row locks; its transactions start with ``BEGIN IMMEDIATE`` (one writer at a
   time), so the same select-and-stamp is just as exclusive there.
2. **Deliver** (one transaction for the batch): the reserved rows are locked again, and only
   those still carrying our token, still scheduled and still due are delivered: a message from
   Mathia (visible to the owner only), a :class:`~mathia.reminders.models.Delivery` row (unique
   per reminder and occurrence), and the row moved on, to ``sent`` or to its next occurrence,
   all in that transaction. Notifications to open tabs (and the email task) go out after commit.

A worker killed between the two steps, or in the middle of the second (its transaction is
rolled back with its connection), leaves rows reserved under a token nobody will use; when the
lease expires the next round reserves them again. Whatever happens, an occurrence is written
once: the delivery is committed together with the state change, and only by the holder of the
current token. Nothing waits in Celery ETAs: a broker redelivering a task, or a worker's clock,
cannot fire a reminder twice or late.
"""

from __future__ import annotations

import time as _time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from mathia.assistant.identity import assistant_user
from mathia.chat.actions import InternalPost, internal_messages_post_many
from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError
from mathia.realtime.events import publish_on_commit, publishing_in_bulk, user_group
from mathia.reminders.models import Channel, Delivery, Reminder, Status
from mathia.reminders.parsing import next_occurrence
from mathia.reminders.selectors import delivery_payload, reminder_payload
from mathia.rooms.access import access_room_for_user
from mathia.workspaces.models import Membership

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5  # a reminder whose delivery raised this many times is set aside as failed
POLL_SECONDS = 0.2  # while lingering, how often a run looks for newly due reminders


@dataclass
class DispatchStats:
    delivered: int = 0
    rounds: int = 0
    skipped: int = 0  # reserved, but someone else (or an edit) got there first
    failed: int = 0
    reminder_ids: list[int] = field(default_factory=list)


def dispatch_due(
    *,
    clock: Clock = system_clock,
    worker: str = "",
    batch: int | None = None,
    lease: float | None = None,
    max_seconds: float = 5.0,
    max_rounds: int | None = None,
    linger: float = 0.0,
) -> DispatchStats:
    """Deliver every reminder due now, a batch at a time, for up to ``max_seconds``.

    ``linger``: keep looking, every ``POLL_SECONDS``, until that many seconds have passed even
    when nothing is due. The Beat task lingers for about one tick, so consecutive runs overlap
    and a reminder waits at most a poll interval, not a whole tick, for the next look.
    """
    batch = batch or settings.REMINDER_BATCH
    lease_for = timedelta(seconds=lease if lease is not None else settings.REMINDER_LEASE_SECONDS)
    stats = DispatchStats()
    places: Places = {}
    began = _time.monotonic()
    while max_rounds is None or stats.rounds < max_rounds:
        token, ids = reserve_due(now=clock.now(), batch=batch, lease=lease_for)
        if not ids:
            if _time.monotonic() - began + POLL_SECONDS < linger:
                # Idle: check, ahead of time, where the reminders due next will be delivered.
                checked = _prefetch_places(now=clock.now())
                if not checked:
                    _time.sleep(POLL_SECONDS)
                continue
            break
        stats.rounds += 1
        deliver_reserved(token=token, ids=ids, clock=clock, worker=worker, stats=stats, places=places)
        if _time.monotonic() - began > max_seconds:
            break
    return stats


def reserve_due(*, now: datetime, batch: int, lease: timedelta) -> tuple[str, list[int]]:
    """Step 1: lock and stamp up to ``batch`` due rows nobody holds. Returns (token, ids)."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        ids = list(
            Reminder.objects.select_for_update(skip_locked=True)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), status=Status.SCHEDULED, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("pk", flat=True)[:batch]
        )
        if ids:
            Reminder.objects.filter(pk__in=ids).update(
                claim_token=token, claimed_until=now + lease, attempts=F("attempts") + 1
            )
    return token, ids


def deliver_reserved(
    *,
    token: str,
    ids: list[int],
    clock: Clock = system_clock,
    worker: str = "",
    stats: DispatchStats | None = None,
    places: Places | None = None,
) -> DispatchStats:
    """Step 2: deliver the rows still reserved under ``token``, in one transaction."""
    stats = stats if stats is not None else DispatchStats()
    places = places if places is not None else {}
    mathia = assistant_user()
    now = clock.now()
    with transaction.atomic():
        reminders = _locked(ids, token, now)
        stats.skipped += len(ids) - len(reminders)
        reminders = _drop_orphans(reminders, now=now, stats=stats)
        try:
            # The fast path: the whole batch at once, under one savepoint.
            with transaction.atomic(), publishing_in_bulk():
                _deliver_all(reminders, mathia=mathia, now=now, worker=worker, places=places)
            delivered = reminders
        except Exception:
            # Something in the batch failed: deliver one at a time, setting the failures aside.
            log.warning("reminder_batch_failed", size=len(reminders), exc_info=True)
            places.clear()  # it may name a room created in the rolled-back savepoint
            delivered = []
            for reminder in _locked(ids, token, now):
                try:
                    with transaction.atomic(), publishing_in_bulk():
                        _deliver_all([reminder], mathia=mathia, now=now, worker=worker, places=places)
                except Exception as exc:
                    places.clear()
                    stats.failed += 1
                    _record_failure(reminder, exc)
                    continue
                delivered.append(reminder)
        stats.delivered += len(delivered)
        stats.reminder_ids.extend(r.pk for r in delivered)
    return stats


def _locked(ids: list[int], token: str, now: datetime) -> list[Reminder]:
    """The rows of ``ids`` still reserved under ``token``, still scheduled and due, locked.

    The rooms their messages go to are locked in room id order (by
    ``internal_messages_post_many``), so two workers' batches may wait on each other but never
    deadlock.
    """
    reminders = list(
        Reminder.objects.select_for_update()
        .select_related("owner")
        .filter(pk__in=ids, claim_token=token, status=Status.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "id")
    )
    return reminders


def _drop_orphans(reminders: list[Reminder], *, now: datetime, stats: DispatchStats) -> list[Reminder]:
    """Cancel the reminders of people who left the workspace or whose account was deactivated.

    Nothing is delivered for them (no message in a workspace they are no longer in, no email).
    """
    members = set(
        Membership.objects.filter(
            workspace_id__in={r.workspace_id for r in reminders}, user_id__in={r.owner_id for r in reminders}
        ).values_list("workspace_id", "user_id")
    )
    keep, orphans = [], []
    for reminder in reminders:
        if reminder.owner.is_active and (reminder.workspace_id, reminder.owner_id) in members:
            keep.append(reminder)
        else:
            orphans.append(reminder.pk)
    if orphans:
        Reminder.objects.filter(pk__in=orphans).update(
            status=Status.CANCELLED,
            claim_token="",
            claimed_until=None,
            last_error="Cancelled: the owner is no longer in this workspace.",
            updated_at=now,
        )
        stats.skipped += len(orphans)
        log.info("reminders_of_departed_owners_cancelled", count=len(orphans))
    return keep


_MOVED_ON = ["occurrences", "claim_token", "claimed_until", "last_error", "updated_at", "due_at", "status", "attempts"]


def _deliver_all(reminders: list[Reminder], *, mathia: Any, now: datetime, worker: str, places: Places) -> None:
    """Deliver ``reminders`` (locked, inside the caller's transaction) and move each on."""
    posting = [r for r in reminders if Channel.MESSAGE.value in r.channels]
    posts = [
        InternalPost(
            room_id=_delivery_room_id(reminder, places),
            body=f"⏰ **Reminder:** {reminder.text}",
            visible_to_id=reminder.owner_id,
            card={"kind": "reminder", "reminder_id": reminder.pk, "occurrence_at": reminder.due_at.isoformat()},
        )
        for reminder in posting
    ]
    messages = dict(
        zip(
            [r.pk for r in posting],
            internal_messages_post_many(author=mathia, posts=posts, clock=_At(now)) if posts else [],
            strict=True,
        )
    )
    deliveries = []
    for reminder in reminders:
        occurrence = reminder.due_at
        message = messages.get(reminder.pk)
        deliveries.append(
            Delivery(
                reminder=reminder,
                owner_id=reminder.owner_id,
                occurrence_at=occurrence,
                delivered_at=now,
                message=message,
                channels=list(reminder.channels),
                worker=worker[:64],
            )
        )
        following = None
        if reminder.is_recurring:
            # The next occurrence after now: occurrences missed while nothing ran are not replayed.
            following = next_occurrence(rrule=reminder.rrule, after=max(occurrence, now), tz=reminder.timezone)
        reminder.occurrences += 1
        reminder.claim_token, reminder.claimed_until = "", None
        reminder.last_error = ""
        reminder.updated_at = now
        if following is not None:
            reminder.due_at = following
            reminder.attempts = 0  # the next occurrence starts afresh: MAX_ATTEMPTS is per occurrence
        else:
            reminder.status = Status.SENT
    # Unique per reminder and occurrence: a second delivery of one fails the whole statement.
    Delivery.objects.bulk_create(deliveries)
    # One-off reminders all move on the same way: one UPDATE. Recurring ones each get their next time.
    one_off = [r.pk for r in reminders if r.status == Status.SENT]
    if one_off:
        Reminder.objects.filter(pk__in=one_off).update(
            status=Status.SENT,
            occurrences=F("occurrences") + 1,
            claim_token="",
            claimed_until=None,
            last_error="",
            updated_at=now,
        )
    recurring = [reminder for reminder in reminders if reminder.status != Status.SENT]
    if recurring:  # one statement for the batch, not one per recurring reminder
        Reminder.objects.bulk_update(recurring, _MOVED_ON)
    for reminder, delivery in zip(reminders, deliveries, strict=True):
        if Channel.NOTIFY.value in delivery.channels:
            frame = {
                "type": "reminder.due",
                "reminder": reminder_payload(reminder),
                "delivery": delivery_payload(delivery, reminder),
            }
            publish_on_commit(user_group(reminder.owner_id), frame)
        if Channel.EMAIL.value in delivery.channels:
            delivery_id = delivery.pk
            transaction.on_commit(lambda delivery_id=delivery_id: _queue_email(delivery_id))  # type: ignore[misc]


Places = dict[tuple[int, int | None], int]  # (owner, room it was set in) -> room to deliver in
PLACE_SECONDS = 10.0
_known_places: dict[tuple[int, int | None], tuple[int, float]] = {}


def _delivery_room_id(reminder: Reminder, places: Places) -> int:
    """Where it was set, while the owner may still post there; else their private room with Mathia.

    The answer is remembered for ``PLACE_SECONDS`` per owner and room (and for the whole batch,
    in ``places``, which a rolled-back batch clears): a burst of reminders set in the same rooms
    costs one access check per owner and room, not one per delivery. Someone who left the room
    within those seconds still gets the message there; it is visible to them alone, so nothing
    leaks, and the toast and the bell have it too.
    """
    key = (reminder.owner_id, reminder.room_id)
    if key in places:
        return places[key]
    known = _known_places.get(key)
    if known is not None and known[1] > _time.monotonic():
        places[key] = known[0]
        return known[0]
    room_id = _check_delivery_room(reminder)
    places[key] = room_id
    if reminder.room_id is not None and room_id == reminder.room_id:  # only answers no rollback can undo
        if len(_known_places) > 100_000:
            _known_places.clear()
        _known_places[key] = (room_id, _time.monotonic() + PLACE_SECONDS)
    return room_id


PREFETCH_AHEAD = timedelta(seconds=PLACE_SECONDS / 2)
PREFETCH_MAX = 100


def _prefetch_places(*, now: datetime) -> int:
    """Check the rooms of reminders due in the next few seconds; how many checks were made."""
    upcoming = (
        Reminder.objects.filter(
            status=Status.SCHEDULED, due_at__gt=now, due_at__lte=now + PREFETCH_AHEAD, room__isnull=False
        )
        .select_related("owner")
        .order_by("due_at")[: PREFETCH_MAX * 5]
    )
    checked = 0
    fresh_until = _time.monotonic() + PREFETCH_AHEAD.total_seconds()
    for reminder in upcoming:
        key = (reminder.owner_id, reminder.room_id)
        known = _known_places.get(key)
        if known is not None and known[1] > fresh_until:
            continue
        if checked >= PREFETCH_MAX:
            break
        try:  # only a yes is remembered; a no is decided again at delivery
            access_room_for_user(user=reminder.owner, room_id=reminder.room_id or 0, need="write")
        except AppError:
            continue
        # Count only what is now remembered: a refused check, counted, would keep an idle run
        # from ever sleeping (it would check the same room again at once, over and over).
        checked += 1
        _known_places[key] = (reminder.room_id or 0, _time.monotonic() + PLACE_SECONDS)
    return checked


def forget_places() -> None:
    """Forget remembered room access (tests, whose ids may be reused after a rollback)."""
    _known_places.clear()


def _check_delivery_room(reminder: Reminder) -> int:
    if reminder.room_id is not None:
        try:
            access = access_room_for_user(user=reminder.owner, room_id=reminder.room_id, need="write")
            return access.room.pk
        except AppError:
            pass
    from mathia.assistant.actions import assistant_room_ensure

    return assistant_room_ensure(user=reminder.owner, workspace_id=reminder.workspace_id).pk


def _record_failure(reminder: Reminder, exc: Exception) -> None:
    log.exception("reminder_delivery_failed", reminder_id=reminder.pk, attempts=reminder.attempts)
    updates: dict[str, Any] = {"last_error": f"{type(exc).__name__}: {exc}"[:200], "claim_token": ""}
    if reminder.attempts >= MAX_ATTEMPTS:
        updates["status"] = Status.FAILED
    Reminder.objects.filter(pk=reminder.pk).update(**updates)


def _queue_email(delivery_id: int) -> None:
    from mathia.reminders.tasks import send_reminder_email

    send_reminder_email.delay(delivery_id)


@dataclass(frozen=True)
class _At:
    """The batch's "now" as a clock, so a message and its delivery carry the same time."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment
