"""Delivering reminders: exactly once across workers, a worker killed mid-batch, recurrences."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from mathia.chat.models import Message
from mathia.core.clock import FrozenClock, system_clock
from mathia.reminders.dispatcher import dispatch_due, reserve_due
from mathia.reminders.models import Delivery, Reminder, Status
from tests import processes
from tests.chat_helpers import make_room, make_team
from tests.processes import PROJECT_ROOT, _database_env, stop_process
from tests.reminder_helpers import (
    NOW,
    deliveries_per_reminder,
    delivery_rows,
    forget_reminder_places,  # noqa: F401  (autouse)
    set_many,
    set_reminder,
)


@pytest.mark.django_db
def test_a_due_reminder_is_delivered_once_and_marked_sent() -> None:
    workspace, (ada, bob) = make_team(2)
    room = make_room(ada, workspace, "general", members=[bob])
    reminder = set_reminder(ada, workspace, due=NOW + timedelta(minutes=10), room=room)

    early = dispatch_due(clock=FrozenClock(NOW + timedelta(minutes=9, seconds=59)))
    assert early.delivered == 0
    stats = dispatch_due(clock=FrozenClock(NOW + timedelta(minutes=10)))
    assert stats.delivered == 1
    again = dispatch_due(clock=FrozenClock(NOW + timedelta(minutes=11)))
    assert again.delivered == 0

    reminder.refresh_from_db()
    assert reminder.status == Status.SENT
    assert reminder.attempts == 1
    assert reminder.occurrences == 1
    delivery = Delivery.objects.get(reminder=reminder)
    assert delivery.occurrence_at == NOW + timedelta(minutes=10)
    # Mathia's message is in the room where it was set, for Ada only.
    message = Message.objects.get(pk=delivery.message_id)
    assert message.room_id == room.pk
    assert message.visible_to_id == ada.pk
    assert message.author.is_assistant
    assert "call John" in message.body


@pytest.mark.django_db
def test_a_reminder_set_in_a_room_the_owner_left_goes_to_their_private_room_with_mathia() -> None:
    from mathia.assistant.identity import assistant_direct_key, assistant_user
    from mathia.rooms import actions as room_actions

    workspace, (ada, bob) = make_team(2)
    room = make_room(bob, workspace, "bobs", members=[ada])
    reminder = set_reminder(ada, workspace, due=NOW, room=room)
    room_actions.room_leave(user=ada, room_id=room.pk)

    dispatch_due(clock=FrozenClock(NOW))
    message = Message.objects.get(pk=Delivery.objects.get(reminder=reminder).message_id)
    assert message.room.direct_key == assistant_direct_key(ada.pk, assistant_user().pk)
    assert message.visible_to_id == ada.pk


@pytest.mark.django_db
def test_a_recurring_reminder_moves_to_its_next_occurrence_on_the_local_wall_clock() -> None:
    workspace, (ada,) = make_team(1)
    # Every weekday at 09:00 in London; Friday 27 March 2026 is GMT, Monday 30 March is BST.
    first = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
    reminder = set_reminder(
        ada,
        workspace,
        due=first,
        rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
        recurrence="every weekday at 09:00",
        tz="Europe/London",
    )
    assert dispatch_due(clock=FrozenClock(first + timedelta(seconds=1))).delivered == 1
    reminder.refresh_from_db()
    assert reminder.status == Status.SCHEDULED
    assert reminder.due_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # 09:00 BST, the weekend skipped
    assert reminder.attempts == 0  # counted per occurrence: five good days do not add up to "failed"

    assert dispatch_due(clock=FrozenClock(datetime(2026, 3, 30, 7, 59, tzinfo=UTC))).delivered == 0
    assert dispatch_due(clock=FrozenClock(datetime(2026, 3, 30, 8, 0, 1, tzinfo=UTC))).delivered == 1
    reminder.refresh_from_db()
    assert reminder.due_at == datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
    assert list(
        Delivery.objects.filter(reminder=reminder).order_by("occurrence_at").values_list("occurrence_at", flat=True)
    ) == [
        first,
        datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
    ]


@pytest.mark.django_db
def test_a_recurring_reminder_does_not_replay_occurrences_missed_while_nothing_ran() -> None:
    workspace, (ada,) = make_team(1)
    first = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    reminder = set_reminder(ada, workspace, due=first, rrule="FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0", tz="UTC")
    # The dispatcher was down for five days.
    assert dispatch_due(clock=FrozenClock(first + timedelta(days=5, hours=1))).delivered == 1
    reminder.refresh_from_db()
    assert reminder.due_at == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_cancelled_or_edited_reminder_held_by_a_worker_is_not_delivered() -> None:
    from mathia.reminders import actions
    from mathia.reminders.dispatcher import deliver_reserved

    workspace, (ada,) = make_team(1)
    cancelled = set_reminder(ada, workspace, due=NOW, text="one")
    moved = set_reminder(ada, workspace, due=NOW, text="two")
    token, ids = reserve_due(now=NOW, batch=10, lease=timedelta(seconds=5))
    assert sorted(ids) == sorted([cancelled.pk, moved.pk])
    actions.reminder_cancel(user=ada, reminder_id=cancelled.pk, clock=FrozenClock(NOW))
    actions.reminder_edit(user=ada, reminder_id=moved.pk, when="in 1 hour", clock=FrozenClock(NOW))
    stats = deliver_reserved(token=token, ids=ids, clock=FrozenClock(NOW))
    assert stats.delivered == 0
    assert stats.skipped == 2
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_deliver_every_reminder_exactly_once() -> None:
    workspace, (ada,) = make_team(1)
    due = system_clock.now() - timedelta(seconds=1)
    ids = set_many(ada, workspace, 120, due=due)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait()
            total = 0
            while True:  # small batches, so the two really interleave
                stats = dispatch_due(worker=name, batch=3, max_rounds=1)
                total += stats.delivered
                if stats.rounds == 0:
                    break
            results.append(total)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(results) == 120
    assert all(n > 0 for n in results), results  # both took part
    assert set(deliveries_per_reminder(ids).values()) == {1}
    assert delivery_rows(ids) == 120
    assert set(Delivery.objects.values_list("worker", flat=True)) == {"w0", "w1"}
    assert Reminder.objects.filter(pk__in=ids, status=Status.SENT).count() == 120


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_its_reminders_to_the_next_after_the_lease_exactly_once() -> None:
    workspace, (ada,) = make_team(1)
    due = system_clock.now() - timedelta(seconds=1)
    ids = set_many(ada, workspace, 30, due=due)
    lease = 30.0
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.reminder_child", "10", str(lease), "4"],
        cwd=PROJECT_ROOT,
        env=processes.test_process_env(**_database_env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline().decode().strip() for _ in range(2)]
        assert lines == ["RESERVED 10", "MID"], lines
        child.send_signal(signal.SIGKILL)  # four delivered inside its transaction, six not yet
        child.wait(10)
    finally:
        if child.poll() is None:
            stop_process(child)

    # Nothing the dead worker wrote survived (its transaction died with it) ...
    assert delivery_rows(ids) == 0
    # ... the other 20 go out at once; its 10 are still under its lease.
    assert dispatch_due(worker="survivor").delivered == 20
    held = Reminder.objects.filter(pk__in=ids, status=Status.SCHEDULED)
    assert held.count() == 10
    assert all(r.claimed_until is not None for r in held)
    # After the lease, the survivor takes them: each once.
    later = FrozenClock(system_clock.now() + timedelta(seconds=lease + 1))
    assert dispatch_due(clock=later, worker="survivor").delivered == 10
    assert set(deliveries_per_reminder(ids).values()) == {1}
    assert delivery_rows(ids) == 30
    retried = Reminder.objects.filter(pk__in=ids, attempts=2)
    assert retried.count() == 10
    assert Reminder.objects.filter(pk__in=ids, status=Status.SENT).count() == 30


@pytest.mark.django_db
def test_one_broken_reminder_does_not_hold_up_the_rest_of_its_batch() -> None:
    workspace, (ada,) = make_team(1)
    good = [set_reminder(ada, workspace, due=NOW, text=f"good {i}") for i in range(3)]
    bad = set_reminder(ada, workspace, due=NOW, text="bad", rrule="FREQ=NEVERLY", tz="UTC")
    stats = dispatch_due(clock=FrozenClock(NOW), batch=10)
    assert stats.delivered == 3, list(Reminder.objects.values_list("last_error", flat=True))
    assert stats.failed == 1
    bad.refresh_from_db()
    assert bad.status == Status.SCHEDULED
    assert bad.last_error.startswith("ValueError")
    assert not Delivery.objects.filter(reminder=bad).exists()
    assert not Message.objects.filter(card__reminder_id=bad.pk).exists()  # its message was rolled back
    assert set(deliveries_per_reminder([r.pk for r in good]).values()) == {1}
    # It is retried after the lease, and set aside as failed after MAX_ATTEMPTS.
    from mathia.reminders.dispatcher import MAX_ATTEMPTS

    moment = NOW
    for _ in range(MAX_ATTEMPTS - 1):
        moment += timedelta(seconds=6)
        assert dispatch_due(clock=FrozenClock(moment)).failed == 1
    bad.refresh_from_db()
    assert bad.status == Status.FAILED
    assert bad.attempts == MAX_ATTEMPTS


@pytest.mark.django_db
def test_a_lingering_run_picks_up_a_reminder_that_falls_due_while_it_waits() -> None:
    import time

    workspace, (ada,) = make_team(1)
    due = system_clock.now() + timedelta(seconds=0.5)
    reminder = set_reminder(ada, workspace, due=due)
    began = time.monotonic()
    stats = dispatch_due(linger=1.5)
    assert stats.delivered == 1
    delivery = Delivery.objects.get(reminder=reminder)
    assert timedelta(0) <= delivery.delivered_at - due < timedelta(seconds=0.5)  # within a poll or two
    assert time.monotonic() - began < 2.5


@pytest.mark.django_db
def test_an_idle_run_checks_ahead_where_the_next_reminders_go() -> None:
    from mathia.reminders import dispatcher

    workspace, (ada, bob) = make_team(2)
    room = make_room(ada, workspace, "general", members=[bob])
    set_reminder(ada, workspace, due=system_clock.now() + timedelta(seconds=3), room=room)
    assert dispatch_due(linger=0.5).delivered == 0
    assert (ada.pk, room.pk) in dispatcher._known_places


@pytest.mark.django_db
def test_reminders_of_someone_removed_from_the_workspace_or_deactivated_are_cancelled_not_sent() -> None:
    from mathia.rooms.models import RoomMembership
    from mathia.workspaces.actions import membership_remove
    from mathia.workspaces.models import Membership

    workspace, (ada, bob, cy) = make_team(3)
    room = make_room(ada, workspace, "general", members=[bob])
    removed = set_reminder(bob, workspace, due=NOW, room=room, text="bob's")
    removed_private = set_reminder(bob, workspace, due=NOW, text="bob's private")
    deactivated = set_reminder(cy, workspace, due=NOW, text="cy's")
    kept = set_reminder(ada, workspace, due=NOW, room=room, text="ada's")
    owner = Membership.objects.get(workspace=workspace, user=ada)
    membership_remove(actor=owner, target=Membership.objects.get(workspace=workspace, user=bob))
    type(cy).objects.filter(pk=cy.pk).update(is_active=False)
    memberships_before = RoomMembership.objects.count()

    stats = dispatch_due(clock=FrozenClock(NOW))
    assert stats.delivered == 1
    assert list(Delivery.objects.values_list("reminder_id", flat=True)) == [kept.pk]
    for reminder in (removed, removed_private, deactivated):
        reminder.refresh_from_db()
        assert reminder.status == Status.CANCELLED
        assert "no longer in this workspace" in reminder.last_error
    assert RoomMembership.objects.count() == memberships_before  # no private room made for Bob


@pytest.mark.django_db
def test_a_snoozed_reminder_that_had_failed_gets_its_tries_back() -> None:
    from mathia.reminders.actions import reminder_snooze
    from mathia.reminders.dispatcher import MAX_ATTEMPTS

    workspace, (ada,) = make_team(1)
    reminder = set_reminder(ada, workspace, due=NOW, text="file the report")
    Reminder.objects.filter(pk=reminder.pk).update(status=Status.FAILED, attempts=MAX_ATTEMPTS)
    snoozed = reminder_snooze(user=ada, reminder_id=reminder.pk, choice="1h", clock=FrozenClock(NOW))
    assert (snoozed.status, snoozed.attempts) == (Status.SCHEDULED, 0)
    assert dispatch_due(clock=FrozenClock(NOW + timedelta(hours=1, seconds=1))).delivered == 1


@pytest.mark.django_db
def test_a_batch_of_recurring_reminders_moves_on_in_one_statement(django_assert_max_num_queries: Any) -> None:
    workspace, (ada,) = make_team(1)
    for i in range(12):
        set_reminder(ada, workspace, due=NOW, text=f"stand-up {i}", rrule="FREQ=DAILY", tz="UTC")
    dispatch_due(clock=FrozenClock(NOW), batch=2, max_rounds=1)  # warm: Mathia's user, the private room
    # 17 queries for 10 reminders (reserve, lock, messages, deliveries, updates); a save per
    # recurring reminder would add 10.
    with django_assert_max_num_queries(18):
        stats = dispatch_due(clock=FrozenClock(NOW), batch=10, max_rounds=1)
    assert stats.delivered == 10
    assert Reminder.objects.filter(due_at__gt=NOW, status=Status.SCHEDULED).count() == 12
