"""Writes for messages: send, edit, delete, react, mark read.

Every change takes the room's row lock to draw the next room version, so versions commit in
order (see :class:`mathia.chat.models.Message`), and publishes its event after commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from mathia.assistant.identity import assistant_user, count_assistant_mentions
from mathia.assistant.triggers import (
    assistant_answer_begin,
    assistant_answer_wanted,
    assistant_stop_deleted_answer,
)
from mathia.chat.models import CLIENT_ID_MAX, EMOJI_MAX, MESSAGE_BODY_MAX, Message, MessageStatus, Reaction
from mathia.chat.rendering import Mentionable, render_markdown
from mathia.chat.selectors import message_payload_by_id, new_message_payload, streamed_message_payload
from mathia.core.clock import Clock, system_clock
from mathia.core.errors import InvalidInput, NotFound, PermissionDenied
from mathia.core.ratelimit import Rate, check_rate
from mathia.realtime.events import publish_on_commit, room_group, user_group
from mathia.rooms.access import RoomAccess, access_room_for_user, check_can_write
from mathia.rooms.models import Room, RoomMembership

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

_CLIENT_ID = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{CLIENT_ID_MAX}}}$")
MESSAGE_NOT_FOUND = "Message not found."


def check_body(body: object) -> str:
    if not isinstance(body, str):
        raise InvalidInput("A message is text.", field="body")
    body = body.strip()
    if not body:
        raise InvalidInput("A message cannot be empty.", field="body")
    if len(body) > MESSAGE_BODY_MAX:
        raise InvalidInput(
            f"A message is at most {MESSAGE_BODY_MAX} characters (this one has {len(body)}).",
            code="too_long",
            field="body",
        )
    return body


def check_client_id(client_id: str) -> str:
    if not _CLIENT_ID.match(client_id):
        raise InvalidInput(
            f"client_id must be 1 to {CLIENT_ID_MAX} letters, digits or -_.: characters.", field="client_id"
        )
    return client_id


def check_emoji(emoji: str) -> str:
    emoji = emoji.strip()
    if not emoji or len(emoji) > EMOJI_MAX or any(ch.isspace() for ch in emoji) or emoji.isascii():
        raise InvalidInput("A reaction is one emoji.", field="emoji")
    return emoji


_NEXT_VERSION_SQL = (
    f"UPDATE {Room._meta.db_table} SET last_version = last_version + 1 "  # noqa: S608 (a model's table, not input)
    "WHERE id = %s RETURNING last_version"
)


def _next_version(room_id: int) -> int:
    """Draw the room's next version (inside a transaction).

    The UPDATE takes the room's row lock until commit, so versions commit in order.
    """
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_VERSION_SQL, [room_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("Room not found.")
    return int(row[0])


def _mentionable(room_id: int, body: str) -> list[Mentionable]:
    if "@" not in body:  # most messages mention no one: skip loading the member list
        return []
    assistant_mentions = count_assistant_mentions(body)
    members = []
    if body.count("@") > assistant_mentions:  # someone other than @mathia may be named
        members = [
            Mentionable(user_id=uid, name=name)
            for uid, name in RoomMembership.objects.filter(room_id=room_id).values_list("user_id", "user__display_name")
        ]
    if assistant_mentions:  # @mathia is mentionable in every room, member or not (yet)
        mathia = assistant_user()
        members.append(Mentionable(user_id=mathia.pk, name=mathia.name))
    return members


def message_send(
    *,
    user: User,
    room_id: int,
    body: str,
    client_id: str,
    reply_to_id: int | None = None,
    clock: Clock = system_clock,
) -> tuple[dict[str, Any], bool]:
    """Post a message; returns its payload and whether it was created.

    Sending again with the same ``client_id`` returns the message already stored (a retry
    after a lost acknowledgement) and broadcasts nothing.
    """
    client_id = check_client_id(client_id)
    # order_by(): the model's ordering (room, seq) would join the rooms table for nothing.
    found = Message.objects.filter(author=user, client_id=client_id).order_by().values_list("pk", "room_id")[:1]
    existing = next(iter(found), None)
    if existing is not None:
        if existing[1] != room_id:
            raise InvalidInput("That client_id was already used for a message in another room.", field="client_id")
        # A retry reads the room: it passes the same check (someone who left a private room
        # cannot read it back through a resend).
        access_room_for_user(user=user, room_id=room_id)
        return message_payload_by_id(existing[0]), False
    body = check_body(body)
    access = access_room_for_user(user=user, room_id=room_id, need="write")
    check_rate(
        scope="message", subject=user.pk, rate=Rate.parse(settings.MESSAGE_RATE_LIMIT), clock=clock, what="messages"
    )
    rendered = render_markdown(body, members=_mentionable(room_id, body))
    reply_to = None
    if reply_to_id is not None:
        # Not a private message (Mathia's reminder to someone): a reply quotes its excerpt to the
        # whole room, so it answers as if it did not exist, for its owner too.
        reply_to = (
            Message.objects.select_related("author")
            .filter(pk=reply_to_id, room_id=room_id, visible_to__isnull=True)
            .first()
        )
        if reply_to is None:
            raise NotFound("The message you are replying to is not in this room.", code="reply_not_found")
    try:
        with transaction.atomic():
            version = _next_version(room_id)
            message = Message.objects.create(
                room_id=room_id,
                author=user,
                client_id=client_id,
                body=body,
                body_html=rendered.html,
                reply_to=reply_to,
                seq=version,
                version=version,
                created_at=clock.now(),
            )
            if rendered.mentioned_user_ids:  # a new message: insert, without .set()'s read of the current ones
                Mention = Message.mentions.through
                Mention.objects.bulk_create(
                    [Mention(message_id=message.pk, user_id=uid) for uid in rendered.mentioned_user_ids]
                )
            RoomMembership.objects.filter(room_id=room_id, user=user, last_read_seq__lt=message.seq).update(
                last_read_seq=message.seq
            )
            payload = new_message_payload(message, mentions=rendered.mentioned_user_ids)
            _publish_message("message.new", payload)
            if assistant_answer_wanted(user=user, room=access.room, body=body):
                assistant_answer_begin(trigger=message, asker=user, access=access, clock=clock)
    except IntegrityError:
        # The same client_id raced in from another tab or process: return the winner.
        winner = Message.objects.filter(author=user, client_id=client_id).values_list("pk", flat=True).first()
        if winner is None:
            raise
        return message_payload_by_id(winner), False
    log.info("message_sent", room_id=room_id, message_id=payload["id"], user_id=user.pk)
    return payload, True


def _access_message(*, user: User, message_id: int) -> tuple[Message, RoomAccess]:
    message = Message.objects.filter(pk=message_id).first() if isinstance(message_id, int) else None
    if message is None or message.visible_to_id not in (None, user.pk):
        raise NotFound(MESSAGE_NOT_FOUND)
    try:
        access = access_room_for_user(user=user, room_id=message.room_id)
    except NotFound:
        raise NotFound(MESSAGE_NOT_FOUND) from None
    return message, access


def message_edit(*, user: User, message_id: int, body: str, clock: Clock = system_clock) -> dict[str, Any]:
    message, access = _access_message(user=user, message_id=message_id)
    if message.author_id != user.pk:
        raise PermissionDenied("Only the author can edit a message.")
    if message.deleted_at is not None:
        raise InvalidInput("A deleted message cannot be edited.", code="message_deleted")
    check_can_write(access)
    body = check_body(body)
    rendered = render_markdown(body, members=_mentionable(message.room_id, body))
    with transaction.atomic():
        version = _next_version(message.room_id)
        Message.objects.filter(pk=message.pk).update(
            body=body, body_html=rendered.html, edited_at=clock.now(), version=version
        )
        message.mentions.set(rendered.mentioned_user_ids)
        payload = message_payload_by_id(message.pk)
        _publish_message("message.updated", payload)
    return payload


def message_delete(*, user: User, message_id: int, clock: Clock = system_clock) -> dict[str, Any]:
    """Authors delete their own messages; moderators anyone's. A tombstone stays in place."""
    message, access = _access_message(user=user, message_id=message_id)
    if message.author_id != user.pk and not access.can_moderate:
        raise PermissionDenied("Only the author or a moderator can delete a message.")
    if message.deleted_at is not None:
        return message_payload_by_id(message.pk)
    with transaction.atomic():
        version = _next_version(message.room_id)
        Message.objects.filter(pk=message.pk).update(
            body="", body_html="", deleted_at=clock.now(), version=version, status=MessageStatus.DONE
        )
        if message.status == MessageStatus.STREAMING:
            assistant_stop_deleted_answer(message_id=message.pk, by=user.name)
        message.mentions.clear()
        Reaction.objects.filter(message=message).delete()
        payload = message_payload_by_id(message.pk)
        _publish_message("message.deleted", payload)
    log.info("message_deleted", message_id=message.pk, user_id=user.pk, by_moderator=message.author_id != user.pk)
    return payload


def reaction_set(*, user: User, message_id: int, emoji: str, present: bool) -> dict[str, Any]:
    """Add (``present``) or remove the user's ``emoji`` reaction on a message."""
    emoji = check_emoji(emoji)
    message, access = _access_message(user=user, message_id=message_id)
    check_can_write(access)
    if message.deleted_at is not None:
        raise InvalidInput("A deleted message cannot take reactions.", code="message_deleted")
    with transaction.atomic():
        mine = Reaction.objects.filter(message=message, user=user, emoji=emoji)
        if present == mine.exists():
            return message_payload_by_id(message.pk)
        version = _next_version(message.room_id)
        if present:
            if Reaction.objects.filter(message=message).values("emoji").distinct().count() >= 20 and not (
                Reaction.objects.filter(message=message, emoji=emoji).exists()
            ):
                raise InvalidInput("A message takes at most 20 different reactions.", field="emoji")
            Reaction.objects.create(message=message, user=user, emoji=emoji)
        else:
            mine.delete()
        Message.objects.filter(pk=message.pk).update(version=version)
        payload = message_payload_by_id(message.pk)
        _publish_message("message.updated", payload)
    return payload


def internal_message_post(
    *,
    author: User,
    room_id: int,
    body: str,
    status: str = MessageStatus.DONE,
    reply_to_id: int | None = None,
    reply_to: Message | None = None,
    clock: Clock = system_clock,
    visible_to_id: int | None = None,
    card: dict[str, Any] | None = None,
) -> Message:
    """Post as the assistant, with no access check: the caller checked the asker's access.

    Used inside the caller's transaction; the event goes out after it commits. With
    ``visible_to_id`` only that person sees it (and only their tabs hear of it). A reply
    names the message it answers by id, or passes it (with its author loaded): then the
    payload needs no query.
    """
    rendered = render_markdown(body) if body else None
    version = _next_version(room_id)
    fields: dict[str, Any] = {"reply_to": reply_to} if reply_to is not None else {"reply_to_id": reply_to_id}
    message = Message.objects.create(
        room_id=room_id,
        author=author,
        body=body,
        body_html=rendered.html if rendered else "",
        status=status,
        seq=version,
        version=version,
        created_at=clock.now(),
        visible_to_id=visible_to_id,
        card=card or {},
        **fields,
    )
    # A new message has no reactions or mentions to load: no query for its payload, unless it
    # replies to a message given only by id.
    fresh = reply_to_id is None or reply_to is not None
    payload = new_message_payload(message, mentions=[]) if fresh else message_payload_by_id(message.pk)
    _publish_message("message.new", payload)
    return message


@dataclass(frozen=True)
class InternalPost:
    """One message of :func:`internal_messages_post_many`."""

    room_id: int
    body: str
    visible_to_id: int | None = None
    card: dict[str, Any] | None = None


_DRAW_VERSIONS_SQL = (
    f"UPDATE {Room._meta.db_table} SET last_version = last_version + %s "  # noqa: S608 (a model's table, not input)
    "WHERE id = %s RETURNING last_version"
)


def internal_messages_post_many(
    *, author: User, posts: list[InternalPost], clock: Clock = system_clock
) -> list[Message]:
    """Post many messages as the assistant at once (inside the caller's transaction), in order.

    Each room's versions are drawn in one statement (its row lock, as for one message), rooms in
    id order so that two callers never deadlock, and the messages are inserted together. Used by
    the reminder dispatcher, which delivers a batch at a time. No access check: the caller's.
    """
    now = clock.now()
    versions: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        for room_id in sorted({post.room_id for post in posts}):
            count = sum(1 for post in posts if post.room_id == room_id)
            cursor.execute(_DRAW_VERSIONS_SQL, [count, room_id])
            row = cursor.fetchone()
            if row is None:
                raise NotFound("Room not found.")
            top = int(row[0])
            versions[room_id] = list(range(top - count + 1, top + 1))
    messages = []
    for post in posts:
        version = versions[post.room_id].pop(0)
        messages.append(
            Message(
                room_id=post.room_id,
                author=author,
                body=post.body,
                body_html=render_markdown(post.body).html if post.body else "",
                status=MessageStatus.DONE,
                seq=version,
                version=version,
                created_at=now,
                visible_to_id=post.visible_to_id,
                card=post.card or {},
            )
        )
    Message.objects.bulk_create(messages)
    for message in messages:
        _publish_message("message.new", new_message_payload(message, mentions=[]))
    return messages


def internal_message_finish(*, message_id: int, room_id: int, body: str, status: str) -> dict[str, Any]:
    """Write the final text of a streamed message (inside the caller's transaction)."""
    version = _next_version(room_id)
    html = render_markdown(body).html if body else ""
    Message.objects.filter(pk=message_id).update(body=body, body_html=html, status=status, version=version)
    payload = streamed_message_payload(message_id)
    _publish_message("message.updated", payload)
    return payload


def room_mark_read(*, user: User, room_id: int, seq: int) -> int:
    """Move the user's read marker forward to ``seq``; returns the marker."""
    access = access_room_for_user(user=user, room_id=room_id)
    if not access.is_member:
        raise PermissionDenied("Join this room to keep a read marker.", code="not_member")
    seq = max(0, min(int(seq), access.room.last_version))
    updated = RoomMembership.objects.filter(Q(last_read_seq__lt=seq), room_id=room_id, user=user).update(
        last_read_seq=seq
    )
    marker = seq if updated else max(seq, access.last_read_seq)
    if updated:
        with transaction.atomic():
            publish_on_commit(user_group(user.pk), {"type": "read", "room_id": room_id, "seq": marker})
    return marker


def _publish_message(event: str, payload: dict[str, Any]) -> None:
    room_id = payload["room_id"]
    group = user_group(payload["visible_to"]) if "visible_to" in payload else room_group(room_id)
    publish_on_commit(group, {"type": event, "room_id": room_id, "version": payload["version"], "message": payload})
