"""Reminders as a connector of the tool router: tools, the ``/remind`` command and parser intents.

The tools call the same actions the reminders panel does, as ``ctx.user`` in ``ctx.workspace_id``
(and ``ctx.room_id``, where the reminder will be delivered). A request whose time cannot be read
for sure answers ``needs_input`` with the clarifying question and its options; nothing is saved.

``/remind`` has sub-commands (``list``, ``cancel``, ``snooze``) while a :class:`SlashCommand`
names one tool, so it goes to one umbrella tool, ``remind``, that routes to the same handlers
(the umbrella is not offered to models: they see the specific tools).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mathia.core.errors import NotFound
from mathia.reminders import actions, selectors
from mathia.reminders.actions import NeedsClarification
from mathia.reminders.models import TEXT_MAX, Reminder, Status
from mathia.tools.registry import (
    IntentRule,
    Permission,
    SlashCommand,
    SlashUsageError,
    ToolContext,
    ToolResult,
    ToolSpec,
    register,
)

USAGE = "/remind <when> <what> · list · cancel <id> · snooze <id> 10m|1h|tomorrow"
ReminderId = int


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateInput(_Input):
    what: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX, description="What to remind about")
    when: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="When, in the asker's words: 'in 10 minutes', 'tomorrow at 9am', 'every weekday at 9'",
    )
    request: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX + 200,
        description="Or the whole request in the asker's words: 'call John in 10 mins'",
    )

    @model_validator(mode="after")
    def _one_form(self) -> CreateInput:
        if self.request is None and (self.what is None or self.when is None):
            raise ValueError("give `what` and `when`, or the whole `request`")
        return self


class ListInput(_Input):
    pass


class IdInput(_Input):
    id: int | None = Field(default=None, gt=0, lt=2**63, description="The reminder's number")
    which: str | None = Field(default=None, min_length=1, max_length=200, description="Or words from its text")

    @model_validator(mode="after")
    def _one(self) -> IdInput:
        if self.id is None and self.which is None:
            raise ValueError("say which reminder: its `id`, or words from its text")
        return self


class SnoozeInput(IdInput):
    for_: Literal["10m", "1h", "tomorrow"] = Field(default="10m", alias="for", description="10m, 1h or tomorrow")


class EditInput(IdInput):
    text: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX, description="The new text")
    when: str | None = Field(default=None, min_length=1, max_length=200, description="The new time, in words")


class RemindInput(_Input):
    command: Literal["create", "list", "cancel", "snooze"]
    request: str | None = Field(default=None, max_length=TEXT_MAX + 200)
    id: int | None = Field(default=None, gt=0, lt=2**63)
    for_: Literal["10m", "1h", "tomorrow"] = Field(default="10m", alias="for")


# --- handlers (sync: the router runs them in a worker thread) -----------------------------------
def _clarify(error: NeedsClarification) -> ToolResult:
    options = error.details.get("options", [])
    message = error.message
    if options:
        message += " " + " · ".join(f"“{o['label']}”" for o in options)
    return ToolResult.needs_input(message, code=error.code, data={"options": options, "text": error.details["text"]})


def create(ctx: ToolContext, args: CreateInput) -> ToolResult:
    try:
        if args.request is not None:
            created = actions.reminder_request(
                user=ctx.user,
                workspace_id=ctx.workspace_id,
                room_id=ctx.room_id,
                request=args.request,
                source_message_id=ctx.trigger_id,
                clock=ctx.clock,
            )
        else:
            assert args.what is not None
            assert args.when is not None
            created = actions.reminder_from_parts(
                user=ctx.user,
                workspace_id=ctx.workspace_id,
                room_id=ctx.room_id,
                text=args.what,
                when=args.when,
                source_message_id=ctx.trigger_id,
                clock=ctx.clock,
            )
    except NeedsClarification as error:
        return _clarify(error)
    reminder = created.reminder
    return ToolResult.ok(
        f"{created.confirmation} (reminder {reminder.pk}; `/remind cancel {reminder.pk}` to cancel)",
        data={
            "reminder": selectors.reminder_payload(reminder),
            "actions": [{"label": "Cancel", "tool": "reminder_cancel", "arguments": {"id": reminder.pk}}],
        },
    )


def list_upcoming(ctx: ToolContext, args: ListInput) -> ToolResult:
    upcoming = selectors.upcoming_reminders(user=ctx.user, workspace_id=ctx.workspace_id)
    if not upcoming:
        return ToolResult.ok("You have no reminders coming up.", data={"upcoming": []}, private=True)
    lines = ["Your reminders:"]
    for item in upcoming:
        again = f", {item['recurrence']}" if item["recurrence"] else ""
        lines.append(f"- **{item['id']}** · {item['text']} · {item['due_local']}{again}")
    return ToolResult.ok("\n".join(lines), data={"upcoming": upcoming}, private=True)


def _find(ctx: ToolContext, args: IdInput) -> int:
    if args.id is not None:
        return args.id
    assert args.which is not None
    words = args.which.lower()
    matches = [
        pk
        for pk, text in Reminder.objects.filter(
            owner_id=ctx.user.pk, workspace_id=ctx.workspace_id, status=Status.SCHEDULED
        ).values_list("pk", "text")
        if words in text.lower()
    ]
    if len(matches) != 1:
        raise NotFound(
            "No reminder of yours matches that." if not matches else "Several reminders match; say which by number.",
            code="not_found" if not matches else "ambiguous",
        )
    return matches[0]


def cancel(ctx: ToolContext, args: IdInput) -> ToolResult:
    reminder = actions.reminder_cancel(
        user=ctx.user, reminder_id=_find(ctx, args), workspace_id=ctx.workspace_id, clock=ctx.clock
    )
    return ToolResult.ok(
        f"Cancelled: {reminder.text} (reminder {reminder.pk}).",
        data={"reminder": selectors.reminder_payload(reminder)},
        private=True,
    )


def snooze(ctx: ToolContext, args: SnoozeInput) -> ToolResult:
    reminder = actions.reminder_snooze(
        user=ctx.user, reminder_id=_find(ctx, args), choice=args.for_, workspace_id=ctx.workspace_id, clock=ctx.clock
    )
    payload = selectors.reminder_payload(reminder)
    return ToolResult.ok(
        f"Snoozed: I'll remind you to {reminder.text} on {payload['due_local']}.",
        data={"reminder": payload},
        private=True,
    )


def edit(ctx: ToolContext, args: EditInput) -> ToolResult:
    try:
        reminder = actions.reminder_edit(
            user=ctx.user,
            reminder_id=_find(ctx, args),
            text=args.text,
            when=args.when,
            workspace_id=ctx.workspace_id,
            clock=ctx.clock,
        )
    except NeedsClarification as error:
        return _clarify(error)
    return ToolResult.ok(
        actions.confirmation_text(reminder), data={"reminder": selectors.reminder_payload(reminder)}, private=True
    )


def remind(ctx: ToolContext, args: RemindInput) -> ToolResult:
    """``/remind``: one tool for the command's sub-commands."""
    if args.command == "list":
        return list_upcoming(ctx, ListInput())
    if args.command == "cancel":
        return cancel(ctx, IdInput(id=args.id))
    if args.command == "snooze":
        return snooze(ctx, SnoozeInput.model_validate({"id": args.id, "for": args.for_}))
    return create(ctx, CreateInput(request=args.request))


def parse_remind_line(rest: str) -> dict[str, Any]:
    """The text after ``/remind``: ``list``, ``cancel 12``, ``snooze 12 1h``, or a request."""
    words = rest.split()
    if not words:
        raise SlashUsageError("Say when and what, for example `/remind in 10 minutes call John`.")
    head = words[0].lower()
    if head in ("list", "ls") and len(words) == 1:
        return {"command": "list"}
    if head in ("cancel", "delete", "rm"):
        if len(words) != 2 or not words[1].lstrip("#").isdigit():
            raise SlashUsageError(
                "Say which reminder to cancel by its number: `/remind cancel 12` (see `/remind list`)."
            )
        return {"command": "cancel", "id": int(words[1].lstrip("#"))}
    if head == "snooze":
        if len(words) not in (2, 3) or not words[1].lstrip("#").isdigit():
            raise SlashUsageError("`/remind snooze 12 10m` (or 1h, tomorrow).")
        choice = words[2].lower() if len(words) == 3 else "10m"
        if choice not in ("10m", "1h", "tomorrow"):
            raise SlashUsageError("Snooze for 10m, 1h or tomorrow.")
        return {"command": "snooze", "id": int(words[1].lstrip("#")), "for": choice}
    return {"command": "create", "request": rest}


_REQUEST_ID = re.compile(r"^#?(\d+)$")


def _build_cancel(groups: dict[str, str]) -> dict[str, Any] | None:
    which = groups.get("which", "")
    match = _REQUEST_ID.match(which)
    return {"id": int(match.group(1))} if match else ({"which": which} if which else None)


register(
    ToolSpec(
        name="reminder_create",
        title="reminders",
        description="Remind the asker of something at a time they give in words (read in their timezone); "
        "recurring too ('every weekday at 9'). If the time is unclear, the answer is a question to ask them.",
        input_model=CreateInput,
        handler=create,
        permission=Permission.WORKSPACE_MEMBER,
        rate="20/m",
        side_effects=True,
        sensitive=True,  # acts for the asker: never on words someone else put in front of a model
        progress="Setting a reminder…",
    ),
    intents=[
        IntentRule(
            "reminders",
            [r"(?P<request>remind me\b.+)", r"set an? reminder (?:to |for )?(?P<request>.+)"],
            hints=[r"\bremind(?:er)?s?\b"],
            suggestion="remind me to call John in 10 minutes",
        )
    ],
)
register(
    ToolSpec(
        name="reminder_list",
        title="reminders",
        description="List the asker's upcoming reminders with their numbers and exact local times.",
        input_model=ListInput,
        handler=list_upcoming,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        sensitive=True,
        progress="Looking at your reminders…",
    ),
    intents=[
        IntentRule(
            "reminders",
            [
                r"(?:list|show)(?: me)? (?:all )?my reminders",
                r"(?:what|which) (?:are )?my reminders(?: are there)?",
                r"what reminders do i have",
                r"my reminders",
            ],
            priority=5,
        )
    ],
)
register(
    ToolSpec(
        name="reminder_cancel",
        title="reminders",
        description="Cancel one of the asker's upcoming reminders, by number or by words from its text.",
        input_model=IdInput,
        handler=cancel,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        sensitive=True,
        side_effects=True,
        progress="Cancelling the reminder…",
    ),
    intents=[
        IntentRule(
            "reminders",
            [r"cancel (?:my |the )?reminder (?:to |about |number )?(?P<which>.+)"],
            build=_build_cancel,
            priority=5,
        )
    ],
)
register(
    ToolSpec(
        name="reminder_snooze",
        title="reminders",
        description="Snooze one of the asker's reminders for 10 minutes, an hour, or until tomorrow 09:00.",
        input_model=SnoozeInput,
        handler=snooze,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        sensitive=True,
        side_effects=True,
        progress="Snoozing the reminder…",
    )
)
register(
    ToolSpec(
        name="reminder_edit",
        title="reminders",
        description="Change the text or the time (in words) of one of the asker's upcoming reminders.",
        input_model=EditInput,
        handler=edit,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        sensitive=True,
        side_effects=True,
        progress="Changing the reminder…",
    )
)
register(
    ToolSpec(
        name="remind",
        title="reminders",
        description="The /remind command: create, list, cancel or snooze reminders.",
        input_model=RemindInput,
        handler=remind,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        side_effects=True,
        sensitive=True,
        model_visible=False,
        progress="Working on your reminders…",
    ),
    slash=SlashCommand(
        "remind",
        usage=USAGE,
        description="set, list, cancel or snooze a reminder",
        parse=parse_remind_line,
        examples=("/remind in 10 minutes call John", "/remind every weekday at 9 stand-up", "/remind list"),
    ),
)
