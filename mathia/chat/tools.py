"""Chat as tools: the rooms a person is in, a room's recent messages, and posting as them.

Registered in the tool router like any connector, so MCP clients (and @mathia's model) reach
chat through the same permission checks, rate limits and audit as everything else. All three
are ``sensitive``: they read a person's rooms or speak for them, so a model that read other
people's messages may not call them (the router refuses); an MCP client acts for its token's
owner directly.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from mathia.chat.models import MESSAGE_BODY_MAX
from mathia.tools.registry import Permission, ToolContext, ToolResult, ToolSpec, register


class RoomsListInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomMessagesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=50, description="How many of the newest messages (1 to 50).")
    before_seq: int | None = Field(
        default=None, ge=1, description="Only messages before this position in the room (to page back)."
    )


class MessageSendInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=MESSAGE_BODY_MAX, description="The message (Markdown).")


def rooms_list(ctx: ToolContext, args: RoomsListInput) -> ToolResult:
    from mathia.rooms.selectors import sidebar_rooms

    rooms = [
        {"id": r["id"], "name": r["name"], "kind": r["kind"], "unread": r["unread"], "archived": r["archived"]}
        for r in sidebar_rooms(user=ctx.user, workspace_id=ctx.workspace_id)
    ]
    if not rooms:
        return ToolResult.ok("You are not in any room of this workspace yet.", data={"rooms": []})
    lines = [f"- {r['name']} (id {r['id']}, {r['kind']}, {r['unread']} unread)" for r in rooms]
    return ToolResult.ok("Your rooms:\n" + "\n".join(lines), data={"rooms": rooms})


def room_messages(ctx: ToolContext, args: RoomMessagesInput) -> ToolResult:
    from mathia.chat.selectors import room_history

    assert ctx.room_id is not None  # the router checked ROOM_READ for it
    page = room_history(room_id=ctx.room_id, before_seq=args.before_seq, limit=args.limit, viewer_id=ctx.user.pk)
    messages = [
        {
            "id": m["id"],
            "seq": m["seq"],
            "author": m["author"]["name"] if m["author"] else None,
            "body": m["body"],
            "created_at": m["created_at"],
            "deleted": m["deleted"],
        }
        for m in page.messages
    ]
    if not messages:
        return ToolResult.ok("No messages there yet.", data={"messages": [], "has_more": False})
    lines = [f"{m['author'] or 'someone'}: {m['body']}" for m in messages if not m["deleted"]]
    return ToolResult.ok("\n".join(lines), data={"messages": messages, "has_more": page.has_more})


def send_message(ctx: ToolContext, args: MessageSendInput) -> ToolResult:
    from mathia.chat.actions import message_send

    assert ctx.room_id is not None  # the router checked ROOM_WRITE for it
    payload, _ = message_send(
        user=ctx.user, room_id=ctx.room_id, body=args.body, client_id=f"tool-{uuid.uuid4().hex}", clock=ctx.clock
    )
    return ToolResult.ok("Sent.", data={"message_id": payload["id"], "seq": payload["seq"]})


register(
    ToolSpec(
        name="rooms_list",
        title="your rooms",
        description="List the rooms you are in in this workspace, with their ids and unread counts.",
        input_model=RoomsListInput,
        handler=rooms_list,
        permission=Permission.WORKSPACE_MEMBER,
        rate="60/m",
        sensitive=True,
        progress="Looking at your rooms…",
        source="chat",
    )
)
register(
    ToolSpec(
        name="room_messages",
        title="room messages",
        description="Read the newest messages of a room you can see (oldest first).",
        input_model=RoomMessagesInput,
        handler=room_messages,
        permission=Permission.ROOM_READ,
        rate="60/m",
        sensitive=True,
        progress="Reading the room…",
        source="chat",
    )
)
register(
    ToolSpec(
        name="message_send",
        title="send a message",
        description="Post a message, as yourself, in a room you can write in.",
        input_model=MessageSendInput,
        handler=send_message,
        permission=Permission.ROOM_WRITE,
        rate="20/m",
        sensitive=True,
        side_effects=True,
        progress="Posting your message…",
        source="chat",
    )
)
