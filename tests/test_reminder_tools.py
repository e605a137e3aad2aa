"""Reminders through the tool router: `/remind`, "remind me ..." requests, and the model's tools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mathia.accounts.models import User
from mathia.chat.models import Message
from mathia.core.clock import FrozenClock
from mathia.reminders.models import Reminder, Status
from mathia.tools.parser import parse_intent, parse_slash
from mathia.tools.registry import ToolContext, ToolStatus, registry
from mathia.tools.router import invoke_sync, list_tools
from tests.chat_helpers import make_chat_team
from tests.reminder_helpers import forget_reminder_places  # noqa: F401  (autouse)

pytestmark = [pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 3, 27, 14, 30, tzinfo=UTC)  # 14:30 in London too (GMT until Sunday)


@pytest.fixture
def team() -> dict[str, Any]:
    team = make_chat_team()
    User.objects.filter(pk=team["ada"].pk).update(timezone="Europe/London")
    team["ada"].refresh_from_db()
    return team


def _ctx(team: dict[str, Any], user: Any = None, via: str = "slash") -> ToolContext:
    return ToolContext(
        user=user or team["ada"],
        workspace_id=team["workspace"].pk,
        room_id=team["general"].pk,
        via=via,  # type: ignore[arg-type]
        clock=FrozenClock(NOW),
    )


def _slash(team: dict[str, Any], line: str, user: Any = None) -> Any:
    match = parse_slash(line)
    assert match is not None
    assert match.arguments is not None, match.problem
    return invoke_sync(match.tool, match.arguments, ctx=_ctx(team, user))


def test_remind_creates_lists_and_cancels(team: dict[str, Any]) -> None:
    created = _slash(team, "/remind in 10 mins call John")
    assert created.status == ToolStatus.OK, created
    assert created.message.startswith("I'll remind you to call John on Friday 27 March 2026 at 14:40 (Europe/London).")
    reminder = Reminder.objects.get()
    assert reminder.due_at == NOW + timedelta(minutes=10)
    assert reminder.room_id == team["general"].pk
    assert created.data["actions"] == [{"label": "Cancel", "tool": "reminder_cancel", "arguments": {"id": reminder.pk}}]

    listed = _slash(team, "/remind list")
    assert listed.status == ToolStatus.OK
    assert f"**{reminder.pk}** · call John · Friday 27 March 2026 at 14:40 (Europe/London)" in listed.message

    cancelled = _slash(team, f"/remind cancel {reminder.pk}")
    assert cancelled.status == ToolStatus.OK
    reminder.refresh_from_db()
    assert reminder.status == Status.CANCELLED
    assert _slash(team, "/remind list").message == "You have no reminders coming up."


def test_remind_asks_instead_of_guessing(team: dict[str, Any]) -> None:
    result = _slash(team, "/remind at 9 call John")
    assert result.status == ToolStatus.NEEDS_INPUT
    assert result.code == "time_ambiguous"
    assert result.message.startswith("Did you mean today at 21:00 or tomorrow at 09:00?")
    assert [o["label"] for o in result.data["options"]] == ["today at 21:00", "tomorrow at 09:00"]
    assert not Reminder.objects.exists()


def test_remind_usage_problems_are_explained() -> None:
    for line, words in [("/remind", "Say when and what"), ("/remind cancel soon", "by its number")]:
        match = parse_slash(line)
        assert match is not None
        assert match.arguments is None
        assert words in match.problem


def test_someone_elses_reminder_cannot_be_cancelled(team: dict[str, Any]) -> None:
    _slash(team, "/remind in 1 hour call John")
    reminder = Reminder.objects.get()
    result = _slash(team, f"/remind cancel {reminder.pk}", user=team["bob"])
    assert result.status == ToolStatus.ERROR
    assert result.code == "not_found"
    reminder.refresh_from_db()
    assert reminder.status == Status.SCHEDULED


def test_requests_to_mathia_reach_the_reminder_tools(team: dict[str, Any]) -> None:
    match = parse_intent("@mathia please remind me tomorrow at 9 to call John")
    assert match is not None
    assert match.sure
    assert match.tool == "reminder_create"
    result = invoke_sync(match.tool, match.arguments, ctx=_ctx(team, via="intent"))
    assert result.status == ToolStatus.OK
    assert "Saturday 28 March 2026 at 09:00 (Europe/London)" in result.message

    listing = parse_intent("@mathia what are my reminders?")
    assert listing is not None
    assert listing.tool == "reminder_list"
    cancel = parse_intent("@mathia cancel my reminder to call John")
    assert cancel is not None
    assert cancel.arguments == {"which": "call John"}
    done = invoke_sync(cancel.tool, cancel.arguments, ctx=_ctx(team, via="intent"))
    assert done.status == ToolStatus.OK
    assert Reminder.objects.get().status == Status.CANCELLED
    unsure = parse_intent("@mathia can you set a reminder?")
    assert unsure is not None
    assert not unsure.sure


def test_models_see_the_specific_tools_with_schemas(team: dict[str, Any]) -> None:
    from asgiref.sync import async_to_sync

    names = {spec.name for spec in async_to_sync(list_tools)(_ctx(team, via="model"))}
    assert {"reminder_create", "reminder_list", "reminder_cancel", "reminder_snooze", "reminder_edit"} <= names
    assert "remind" not in names  # the /remind umbrella is for people
    schema = registry.get("reminder_create").json_schema  # type: ignore[union-attr]
    assert {"what", "when", "request"} <= set(schema["properties"])
    # A model call with what and when apart.
    result = invoke_sync("reminder_create", {"what": "stretch", "when": "in half an hour"}, ctx=_ctx(team, via="model"))
    assert result.status == ToolStatus.OK
    assert Reminder.objects.get().due_at == NOW + timedelta(minutes=30)
    bad = invoke_sync("reminder_create", {"what": "stretch"}, ctx=_ctx(team, via="model"))
    assert bad.status == ToolStatus.NEEDS_INPUT


def test_snooze_and_edit_through_tools(team: dict[str, Any]) -> None:
    _slash(team, "/remind in 1 hour call John")
    reminder = Reminder.objects.get()
    snoozed = invoke_sync("reminder_snooze", {"id": reminder.pk, "for": "tomorrow"}, ctx=_ctx(team))
    assert snoozed.status == ToolStatus.OK
    reminder.refresh_from_db()
    assert reminder.due_at == datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    edited = invoke_sync("reminder_edit", {"id": reminder.pk, "when": "every weekday at 8"}, ctx=_ctx(team))
    assert edited.status == ToolStatus.OK
    reminder.refresh_from_db()
    assert reminder.recurrence == "every weekday at 08:00"
    assert reminder.due_at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 08:00 BST


# --- end to end: the assistant answers in the room -------------------------------------------------
async def test_asking_mathia_in_a_room_sets_the_reminder_and_confirms_it() -> None:
    from channels.db import database_sync_to_async

    from tests.test_assistant import answer_frames, ask, subscribed

    team = await database_sync_to_async(make_chat_team)()
    ada, general = team["ada"], team["general"]
    socket = await subscribed(ada, general)
    try:
        question = await ask(socket, general, "@mathia remind me to call John in 10 mins")
        _, _, final = await answer_frames(socket, general)
        assert final["message"]["body"].startswith("I'll remind you to call John on ")
        reminder = await database_sync_to_async(Reminder.objects.get)()
        assert reminder.room_id == general.pk
        assert reminder.source_message_id == question["id"]  # where it was set
        assert reminder.text == "call John"
        assert abs((reminder.due_at - datetime.now(UTC)) - timedelta(minutes=10)) < timedelta(seconds=10)

        # The list is Ada's own data: it goes to her private room with Mathia, not to #general.
        from mathia.tools.actions import PRIVATE_NOTE

        await ask(socket, general, "/remind list", client_id="q2")
        _, _, listing = await answer_frames(socket, general)
        assert listing["message"]["body"] == PRIVATE_NOTE
        private = await database_sync_to_async(
            lambda: list(
                Message.objects.filter(
                    room__kind="direct", room__workspace=team["workspace"], author__is_assistant=True
                )
                .exclude(room=general)
                .values_list("body", flat=True)
            )
        )()
        assert any(f"**{reminder.pk}** · call John" in body for body in private)

        await ask(socket, general, "@mathia remind me to call John at 25:00", client_id="q3")
        _, _, question = await answer_frames(socket, general)
        assert "couldn't tell when" in question["message"]["body"]
        assert await database_sync_to_async(Reminder.objects.count)() == 1
    finally:
        await socket.close()


def test_tools_reach_only_the_reminders_of_the_workspace_they_act_in(team: dict[str, Any]) -> None:
    from mathia.reminders.actions import reminder_create
    from mathia.workspaces.selectors import default_membership

    ada = team["ada"]
    home = default_membership(user=ada)
    assert home is not None
    assert home.workspace_id != team["workspace"].pk
    elsewhere = reminder_create(
        user=ada,
        workspace_id=home.workspace_id,
        text="secret plan",
        due=NOW + timedelta(hours=1),
        clock=FrozenClock(NOW),
    ).reminder
    _slash(team, "/remind in 1 hour call John")
    listed = _slash(team, "/remind list")
    assert "call John" in listed.message
    assert "secret plan" not in listed.message
    assert listed.private
    for line in (f"/remind cancel {elsewhere.pk}", f"/remind snooze {elsewhere.pk} 1h"):
        result = _slash(team, line)
        assert result.code == "not_found", (line, result)
    by_words = invoke_sync("reminder_cancel", {"which": "secret"}, ctx=_ctx(team))
    assert by_words.code == "not_found"
    edited = invoke_sync("reminder_edit", {"id": elsewhere.pk, "text": "x"}, ctx=_ctx(team))
    assert edited.code == "not_found"
    elsewhere.refresh_from_db()
    assert elsewhere.status == Status.SCHEDULED
    assert elsewhere.text == "secret plan"


def test_a_model_that_read_someone_elses_words_cannot_act_on_reminders(team: dict[str, Any]) -> None:
    ctx = _ctx(team, via="model")
    ctx.untrusted_context = True
    for name, arguments in [
        ("reminder_create", {"what": "wire money", "when": "in 1 hour"}),
        ("reminder_list", {}),
    ]:
        result = invoke_sync(name, arguments, ctx=ctx)
        assert result.status == ToolStatus.NEEDS_AUTH, (name, result)
    assert not Reminder.objects.exists()
