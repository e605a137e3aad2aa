"""Reminders as people meet them: the HTTP API, the tabs that get them, coming back after being away."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.test import Client

from mathia.accounts.models import User
from mathia.chat.models import Message
from mathia.core.clock import FrozenClock
from mathia.reminders.dispatcher import dispatch_due
from mathia.reminders.models import Delivery, Reminder, Status
from mathia.reminders.tasks import send_reminder_email
from tests.chat_helpers import make_chat_team
from tests.helpers import assert_error
from tests.reminder_helpers import (
    forget_reminder_places,  # noqa: F401  (autouse)
    set_reminder,
)
from tests.ws import connect


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def team() -> dict[str, Any]:
    team = make_chat_team()
    User.objects.filter(pk=team["ada"].pk).update(timezone="Europe/London")
    team["ada"].refresh_from_db()
    return team


# --- HTTP ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_setting_a_reminder_in_words_confirms_the_exact_local_time(team: dict[str, Any]) -> None:
    client = _client(team["ada"])
    response = _post(
        client,
        "/api/reminders",
        {"workspace": team["workspace"].slug, "room_id": team["general"].pk, "request": "call John in 10 mins"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    reminder = Reminder.objects.get(pk=body["reminder"]["id"])
    # Ten minutes from now, never 00:10.
    assert abs((reminder.due_at - datetime.now(UTC)) - timedelta(minutes=10)) < timedelta(seconds=5)
    assert reminder.timezone == "Europe/London"
    assert reminder.room_id == team["general"].pk
    assert reminder.text == "call John"
    assert body["confirmation"].startswith("I'll remind you to call John on ")
    assert body["confirmation"].endswith("(Europe/London).")
    listed = client.get("/api/reminders").json()
    assert [r["id"] for r in listed["upcoming"]] == [reminder.pk]


@pytest.mark.django_db
def test_an_unclear_time_gets_a_question_with_options_and_saves_nothing(team: dict[str, Any]) -> None:
    client = _client(team["ada"])
    response = _post(client, "/api/reminders", {"workspace": team["workspace"].slug, "request": "call John tomorrow"})
    error = assert_error(response, status=422, code="time_missing")
    assert error["message"] == 'At what time tomorrow? For example "tomorrow at 9am".'
    assert [o["label"] for o in error["options"]] == ["tomorrow at 09:00"]
    assert error["text"] == "call John"
    assert not Reminder.objects.exists()
    # Picking an option sets it at exactly that time.
    pick = error["options"][0]
    response = _post(
        client, "/api/reminders", {"workspace": team["workspace"].slug, "text": "call John", "due_at": pick["due_at"]}
    )
    assert response.status_code == 201
    assert Reminder.objects.get().due_at == datetime.fromisoformat(pick["due_at"])


@pytest.mark.django_db
def test_bad_requests_get_clear_errors(team: dict[str, Any]) -> None:
    client = _client(team["ada"])
    slug = team["workspace"].slug
    assert_error(_post(client, "/api/reminders", {"workspace": slug}), status=400, code="invalid")
    assert_error(
        _post(client, "/api/reminders", {"workspace": slug, "request": "call John"}), status=422, code="time_unreadable"
    )
    assert_error(
        _post(client, "/api/reminders", {"workspace": slug, "text": "x", "due_at": "2020-01-01T00:00:00Z"}),
        status=400,
        code="time_past",
    )
    assert_error(
        _post(client, "/api/reminders", {"workspace": "nope", "request": "x in 1 hour"}), status=404, code="not_found"
    )
    # A room Cy cannot see answers like one that does not exist.
    assert_error(
        _post(
            _client(team["cy"]),
            "/api/reminders",
            {"workspace": slug, "room_id": team["secret"].pk, "request": "x in 1 hour"},
        ),
        status=404,
        code="not_found",
    )
    assert_error(Client().get("/api/reminders"), status=401, code="unauthenticated")


@pytest.mark.django_db
def test_cancel_snooze_and_edit_are_the_owners_alone(team: dict[str, Any]) -> None:
    ada, bob = team["ada"], team["bob"]
    reminder = set_reminder(ada, team["workspace"], due=datetime.now(UTC) + timedelta(hours=2))
    other = _client(bob)
    for url, body in [
        (f"/api/reminders/{reminder.pk}/cancel", {}),
        (f"/api/reminders/{reminder.pk}/snooze", {"for": "1h"}),
    ]:
        assert_error(_post(other, url, body), status=404, code="not_found")
    assert_error(
        other.patch(f"/api/reminders/{reminder.pk}", data=json.dumps({"text": "y"}), content_type="application/json"),
        status=404,
        code="not_found",
    )
    client = _client(ada)
    edited = client.patch(
        f"/api/reminders/{reminder.pk}",
        data=json.dumps({"text": "call Jane", "when": "in 3 hours"}),
        content_type="application/json",
    )
    assert edited.status_code == 200, edited.content
    reminder.refresh_from_db()
    assert reminder.text == "call Jane"
    assert abs((reminder.due_at - datetime.now(UTC)) - timedelta(hours=3)) < timedelta(seconds=5)
    snoozed = _post(client, f"/api/reminders/{reminder.pk}/snooze", {"for": "10m"})
    assert snoozed.status_code == 200
    reminder.refresh_from_db()
    assert abs((reminder.due_at - datetime.now(UTC)) - timedelta(minutes=10)) < timedelta(seconds=5)
    assert _post(client, f"/api/reminders/{reminder.pk}/cancel", {}).json()["reminder"]["status"] == "cancelled"
    assert client.get("/api/reminders").json()["upcoming"] == []
    assert_error(_post(client, f"/api/reminders/{reminder.pk}/snooze", {"for": "2h"}), status=400, code="invalid")


@pytest.mark.django_db
def test_snoozing_a_reminder_that_went_off_brings_it_back(team: dict[str, Any]) -> None:
    ada = team["ada"]
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    reminder = set_reminder(ada, team["workspace"], due=due)
    dispatch_due(clock=FrozenClock(due))
    reminder.refresh_from_db()
    assert reminder.status == Status.SENT
    from mathia.reminders.actions import reminder_snooze

    reminder_snooze(user=ada, reminder_id=reminder.pk, choice="tomorrow", clock=FrozenClock(due))
    reminder.refresh_from_db()
    assert reminder.status == Status.SCHEDULED
    assert reminder.due_at == datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # 09:00 in London (still GMT)
    assert dispatch_due(clock=FrozenClock(reminder.due_at)).delivered == 1
    assert Delivery.objects.filter(reminder=reminder).count() == 2


@pytest.mark.django_db
def test_email_is_sent_once_when_the_owner_opted_in(team: dict[str, Any]) -> None:
    ada = team["ada"]
    client = _client(ada)
    put = client.put("/api/reminders/preferences", data=json.dumps({"email": True}), content_type="application/json")
    assert put.json() == {"preferences": {"email": True}}
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    reminder = set_reminder(ada, team["workspace"], due=due, text="water the plants")
    assert "email" in reminder.channels
    dispatch_due(clock=FrozenClock(due))
    delivery = Delivery.objects.get(reminder=reminder)
    send_reminder_email.apply(args=[delivery.pk])
    send_reminder_email.apply(args=[delivery.pk])  # a redelivered task
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [ada.email]
    assert "water the plants" in mail.outbox[0].subject
    assert "Friday 27 March 2026 at 14:30 (Europe/London)" in mail.outbox[0].body


# --- delivery to tabs ----------------------------------------------------------------------------
async def _frames(socket: Any, types: set[str]) -> dict[str, dict[str, Any]]:
    """The next frame of each type in ``types``, in whatever order they come."""
    got: dict[str, dict[str, Any]] = {}
    while set(got) != types:
        frame = await socket.recv(timeout=3)
        if frame["type"] in types:
            assert frame["type"] not in got, f"a second {frame['type']}"
            got[frame["type"]] = frame
    return got


@pytest.mark.django_db(transaction=True)
async def test_a_due_reminder_reaches_every_open_tab_of_its_owner_and_no_one_else() -> None:
    team = await database_sync_to_async(make_chat_team)()
    ada, bob, general = team["ada"], team["bob"], team["general"]
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    reminder = await database_sync_to_async(set_reminder)(ada, team["workspace"], due=due, room=general)
    tab1, tab2, bobs = await connect(ada), await connect(ada), await connect(bob)
    try:
        for socket in (tab1, tab2, bobs):
            await socket.request({"type": "subscribe", "rooms": [general.pk]}, reply="subscribed")
        stats = await database_sync_to_async(dispatch_due)(clock=FrozenClock(due))
        assert stats.delivered == 1
        for tab in (tab1, tab2):
            got = await _frames(tab, {"reminder.due", "message.new"})
            frame, message = got["reminder.due"], got["message.new"]
            assert frame["reminder"]["id"] == reminder.pk
            assert frame["delivery"]["text"] == "call John"
            assert frame["delivery"]["occurrence_local"] == "Friday 27 March 2026 at 14:30 (UTC)"
            assert message["message"]["visible_to"] == ada.pk
            assert message["message"]["card"]["reminder_id"] == reminder.pk
            assert message["room_id"] == general.pk
        await bobs.nothing_more(timeout=0.5)
        # History and catch-up show it to Ada only.
        page = await tab1.request({"type": "history", "room_id": general.pk}, reply="history")
        assert [m["id"] for m in page["messages"]] == [message["message"]["id"]]
        bob_page = await bobs.request({"type": "history", "room_id": general.pk}, reply="history")
        assert bob_page["messages"] == []
        bob_sync = await bobs.request({"type": "sync", "rooms": {str(general.pk): 0}}, reply="sync")
        assert bob_sync["messages"] == []
        # Bob cannot react to it or read it by id either.
        error = await bobs.request({"type": "react", "message_id": message["message"]["id"], "emoji": "👍"})
        assert error["code"] == "not_found"
    finally:
        for socket in (tab1, tab2, bobs):
            await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_reminders_due_while_offline_show_when_the_owner_comes_back() -> None:
    team = await database_sync_to_async(make_chat_team)()
    ada, general = team["ada"], team["general"]
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    await database_sync_to_async(set_reminder)(ada, team["workspace"], due=due, room=general, text="stand-up")
    await database_sync_to_async(set_reminder)(ada, team["workspace"], due=due, text="pay rent")
    # Nobody is connected when they fire.
    assert (await database_sync_to_async(dispatch_due)(clock=FrozenClock(due + timedelta(minutes=1)))).delivered == 2

    def comes_back() -> dict[str, Any]:
        return _client(ada).get("/api/reminders").json()

    state = await database_sync_to_async(comes_back)()
    assert sorted(d["text"] for d in state["unseen"]) == ["pay rent", "stand-up"]
    tab = await connect(ada)
    try:
        await tab.request({"type": "subscribe", "rooms": [general.pk]}, reply="subscribed")
        page = await tab.request({"type": "history", "room_id": general.pk}, reply="history")
        assert [m["body"] for m in page["messages"]] == ["⏰ **Reminder:** stand-up"]
        # The reminder set outside any room is in Ada's private room with Mathia.
        private = await database_sync_to_async(
            lambda: Message.objects.get(card__kind="reminder", body__contains="pay rent").room_id
        )()
        await tab.request({"type": "subscribe", "rooms": [private]}, reply="subscribed")
        page = await tab.request({"type": "history", "room_id": private}, reply="history")
        assert [m["body"] for m in page["messages"]] == ["⏰ **Reminder:** pay rent"]

        def seen() -> Any:
            return _post(_client(ada), "/api/reminders/seen", {}).json()

        assert (await database_sync_to_async(seen)()) == {"seen": 2}
        frame = await tab.recv_until("reminder.seen")
        assert frame["delivery_ids"] is None
        assert (await database_sync_to_async(comes_back)())["unseen"] == []
    finally:
        await tab.close()


@pytest.mark.django_db(transaction=True)
async def test_changes_made_in_one_tab_reach_the_others() -> None:
    team = await database_sync_to_async(make_chat_team)()
    ada = team["ada"]
    tab = await connect(ada)
    try:

        def create() -> Any:
            return _post(
                _client(ada), "/api/reminders", {"workspace": team["workspace"].slug, "request": "x in 1 hour"}
            )

        created = (await database_sync_to_async(create)()).json()["reminder"]
        frame = await tab.recv_until("reminder.changed")
        assert frame["reminder"]["id"] == created["id"]
        assert frame["reminder"]["status"] == "scheduled"
    finally:
        await tab.close()


@pytest.mark.django_db(transaction=True)
async def test_no_one_can_reply_to_a_private_reminder_message_and_leak_its_text() -> None:
    team = await database_sync_to_async(make_chat_team)()
    ada, bob, general = team["ada"], team["bob"], team["general"]
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    await database_sync_to_async(set_reminder)(ada, team["workspace"], due=due, room=general, text="see the doctor")
    await database_sync_to_async(dispatch_due)(clock=FrozenClock(due))
    private_id = await database_sync_to_async(lambda: Message.objects.get(card__kind="reminder").pk)()
    missing_id = private_id + 1000
    for user in (bob, ada):  # not even its owner: the reply would quote it to the room
        socket = await connect(user)
        try:
            answers = []
            for target in (private_id, missing_id):
                answers.append(
                    await socket.request(
                        {
                            "type": "send",
                            "room_id": general.pk,
                            "client_id": f"r{user.pk}{target}",
                            "body": "hm",
                            "reply_to": target,
                        }
                    )
                )
            # The same answer as for a message that does not exist: nothing to probe.
            assert [(a["type"], a["code"], a["message"]) for a in answers] == [
                ("error", "reply_not_found", "The message you are replying to is not in this room.")
            ] * 2
        finally:
            await socket.close()
    assert not await database_sync_to_async(Message.objects.filter(body="hm").exists)()


@pytest.mark.django_db
def test_an_email_the_mail_server_refused_is_not_marked_sent(team: dict[str, Any], settings: Any) -> None:
    from mathia.reminders.actions import preferences_set

    ada = team["ada"]
    preferences_set(user=ada, email=True)
    due = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)
    set_reminder(ada, team["workspace"], due=due, text="water the plants")
    dispatch_due(clock=FrozenClock(due))
    delivery = Delivery.objects.get()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens there
    result = send_reminder_email.apply(args=[delivery.pk])
    assert result.state == "FAILURE"  # run eagerly here, its five retries ran at once and ran out
    delivery.refresh_from_db()
    assert delivery.emailed_at is None  # released for the retry
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_reminder_email.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.emailed_at is not None
    assert len(mail.outbox) == 1
