"""Reads for messages: history pages, catch-up after a reconnect, and the message payload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Prefetch, QuerySet

from mathia.accounts.models import User
from mathia.assistant.buffer import buffer_snapshots
from mathia.chat.models import Message, MessageStatus, Reaction

HISTORY_PAGE_MAX = 100
CATCH_UP_MAX = 500
REPLY_EXCERPT = 140


def _with_relations(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.select_related("author", "reply_to__author").prefetch_related(
        Prefetch("reactions", queryset=Reaction.objects.order_by("created_at", "id")),
        Prefetch("mentions", queryset=User.objects.only("id")),
    )


def message_payload(
    message: Message,
    *,
    mentions: list[int] | None = None,
    fresh: bool = False,
    reactions: Iterable[Reaction] | None = None,
) -> dict[str, Any]:
    """The message as every client sees it (``body`` is the Markdown source, for editing).

    ``fresh``: a message just created, which has no reactions yet and whose ``mentions``
    are given, so no query is needed. ``reactions``: the message's, in order, when read apart.
    """
    by_emoji: dict[str, list[int]] = {}
    if reactions is None:
        reactions = () if fresh else message.reactions.all()
    for reaction in reactions:
        by_emoji.setdefault(reaction.emoji, []).append(reaction.user_id)
    reply = message.reply_to
    author = message.author
    deleted = message.deleted_at is not None
    payload = {
        "id": message.pk,
        "room_id": message.room_id,
        "seq": message.seq,
        "version": message.version,
        "client_id": message.client_id,
        "author": {"id": author.pk, "name": author.name, "assistant": author.is_assistant} if author else None,
        "body": "" if deleted else message.body,
        "html": "" if deleted else message.body_html,
        "reply_to": None
        if reply is None
        else {
            "id": reply.pk,
            "author": reply.author.name if reply.author else None,
            "author_id": reply.author_id,
            "excerpt": "" if reply.deleted_at else reply.body[:REPLY_EXCERPT],
            "deleted": reply.deleted_at is not None,
        },
        "mentions": list(mentions) if mentions is not None else [user.pk for user in message.mentions.all()],
        "reactions": [{"emoji": emoji, "user_ids": users, "count": len(users)} for emoji, users in by_emoji.items()],
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "deleted": deleted,
        "status": message.status or "done",
    }
    if message.visible_to_id is not None:  # present only on private messages: other payloads unchanged
        payload["visible_to"] = message.visible_to_id
    if message.card:
        payload["card"] = message.card
    return payload


def new_message_payload(message: Message, *, mentions: list[int]) -> dict[str, Any]:
    return message_payload(message, mentions=mentions, fresh=True)


def message_payload_by_id(message_id: int) -> dict[str, Any]:
    return message_payload(_with_relations(Message.objects.filter(pk=message_id)).get())


def streamed_message_payload(message_id: int) -> dict[str, Any]:
    """:func:`message_payload_by_id` for an assistant's streamed message, which mentions no one.

    Two plain queries instead of one with two prefetches: building those cost more CPU than
    anything else when an answer ends (profiled at 100 streams).
    """
    message = Message.objects.select_related("author", "reply_to__author").get(pk=message_id)
    reactions = Reaction.objects.filter(message_id=message_id).order_by("created_at", "id")
    return message_payload(message, mentions=[], reactions=reactions)


_RECENT_SQL = (
    f"SELECT m.author_id, u.display_name, u.email, m.body FROM {Message._meta.db_table} m "  # noqa: S608 (model tables)
    f"LEFT JOIN {User._meta.db_table} u ON u.id = m.author_id "
    "WHERE m.room_id = %s AND m.seq <= %s AND m.deleted_at IS NULL AND m.status = %s AND m.body <> '' "
    "AND (m.visible_to_id IS NULL OR m.visible_to_id = %s) "
    "ORDER BY m.seq DESC LIMIT %s"
)


def recent_message_rows(
    *, room_id: int, viewer_id: int, up_to_seq: int, limit: int
) -> list[tuple[int | None, str | None, str | None, str]]:
    """The room's last finished, non-empty messages ``viewer_id`` may see, up to ``up_to_seq``, newest first.

    As (author id, display name, email, body) tuples, the author's fields None once the
    account is gone. Read for every prompt, so written out in SQL: the ORM's compilation of
    this query cost more CPU than running it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_RECENT_SQL, [room_id, up_to_seq, MessageStatus.DONE.value, viewer_id, limit])
        return cursor.fetchall()


def payloads(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Payloads, with the text so far of answers still being written (see assistant.buffer)."""
    result = [message_payload(message) for message in messages]
    streaming = [p["id"] for p in result if p["status"] == MessageStatus.STREAMING]
    if streaming:
        snapshots = buffer_snapshots(streaming)
        for payload in result:
            if (snapshot := snapshots.get(payload["id"])) is not None:
                payload["stream"] = {"text": snapshot.text, "chunk": snapshot.chunk}
    return result


@dataclass(frozen=True)
class HistoryPage:
    messages: list[dict[str, Any]]  # oldest first
    has_more: bool


def room_history(
    *, room_id: int, before_seq: int | None = None, limit: int = 50, viewer_id: int | None = None
) -> HistoryPage:
    """The ``limit`` messages before ``before_seq`` (newest page when None), oldest first.

    Keyset pagination on (room, seq): each page is one index range scan, however deep.
    """
    limit = max(1, min(limit, HISTORY_PAGE_MAX))
    query = Message.objects.filter(Message.visible_q(viewer_id), room_id=room_id)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    page = list(_with_relations(query.order_by("-seq"))[: limit + 1])
    has_more = len(page) > limit
    return HistoryPage(messages=payloads(reversed(page[:limit])), has_more=has_more)


@dataclass(frozen=True)
class CatchUp:
    messages: list[dict[str, Any]]  # in version order: new, edited, deleted, reacted
    version: int
    complete: bool  # False: too much changed; reload the room's latest history instead


def room_changes_since(*, room_id: int, version: int, room_version: int, viewer_id: int | None = None) -> CatchUp:
    """Every message that changed after ``version``, each once, at its latest state."""
    changed = list(
        _with_relations(
            Message.objects.filter(Message.visible_q(viewer_id), room_id=room_id, version__gt=version).order_by(
                "version"
            )
        )[: CATCH_UP_MAX + 1]
    )
    if len(changed) > CATCH_UP_MAX:
        return CatchUp(messages=[], version=room_version, complete=False)
    return CatchUp(messages=payloads(changed), version=room_version, complete=True)
