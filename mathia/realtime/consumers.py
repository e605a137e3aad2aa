"""The one WebSocket a browser tab opens, at /ws/. A thin adapter over the domain layer.

Each inbound frame is size-checked, parsed, validated against `schemas.py`, and turned into
one call of an access check, action or selector. Outbound events arrive pre-serialized
through the channel layer (``deliver``) and are written as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import uuid
from typing import Any

import redis
import structlog
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async as _database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from pydantic import ValidationError

from mathia.assistant import actions as assistant_actions
from mathia.chat import actions as chat_actions
from mathia.chat.selectors import room_changes_since, room_history
from mathia.core.errors import AppError, as_app_error
from mathia.realtime import presence, schemas
from mathia.realtime.events import (
    bind_event_loop,
    encode,
    publish_now,
    publish_presence,
    room_group,
    user_group,
    workspace_group,
)
from mathia.rooms.access import access_room_for_user, access_rooms_for_user
from mathia.rooms.selectors import room_summary
from mathia.workspaces.models import Membership

log = structlog.get_logger(__name__)


def database_sync_to_async(func: Any) -> Any:
    """Run ``func`` in the thread pool, not asgiref's single thread-sensitive thread.

    Each action is self-contained (its own transaction, no thread-local state), so frames
    from different sockets can use several database connections at once.
    """
    return _database_sync_to_async(func, thread_sensitive=False)


def in_thread(func: Any) -> Any:
    """Blocking Redis calls, off the event loop."""
    return sync_to_async(func, thread_sensitive=False)


MAX_FRAME_BYTES = 32 * 1024
FLOOD_BURST = 60  # frames
FLOOD_RATE = 20.0  # frames per second, sustained
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FLOOD = 1008  # policy violation
MAX_SUBSCRIPTIONS = 500


class _TokenBucket:
    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.rooms: set[int] = set()
        self.workspace_ids: list[int] = []
        self.connection_id = uuid.uuid4().hex
        self.bucket = _TokenBucket(FLOOD_BURST, FLOOD_RATE)
        self.typing_in: set[int] = set()
        bind_event_loop()
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # hello is the first frame (docs/protocol.md): sent before joining any group, so no
        # delivery (another tab's presence, say) can come ahead of it.
        await self._send({"type": "hello", "user": {"id": self.user.pk, "name": self.user.name}})
        await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
        self.workspace_ids = await database_sync_to_async(_workspace_ids)(self.user.pk)
        for workspace_id in self.workspace_ids:
            await self.channel_layer.group_add(workspace_group(workspace_id), self.channel_name)
        await self._set_presence("online")

    async def disconnect(self, code: int) -> None:
        if self.user is None or not self.user.is_authenticated:
            return
        for room_id in self.rooms:
            await self.channel_layer.group_discard(room_group(room_id), self.channel_name)
        await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        await self._set_presence(None)
        for workspace_id in self.workspace_ids:
            await self.channel_layer.group_discard(workspace_group(workspace_id), self.channel_name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__`` with one loop per source.

        Channels waits on both sources (socket frames and channel-layer deliveries) with
        ``asyncio.wait`` and a new task per message, and handles one message at a time. Here
        each source has its own loop: a delivery costs one ``await`` and no task, and
        deliveries keep flowing while a frame's handler waits on the database.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        deliveries = asyncio.ensure_future(self._deliveries())
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            deliveries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliveries

    async def _deliveries(self) -> None:
        while True:
            message = await self.channel_receive()
            try:
                await self.dispatch(message)
            except OSError:  # the client went away; the socket loop is about to stop us
                return
            except Exception:  # one failed delivery must not stop the ones after it
                log.exception("delivery_failed", message_type=message.get("type"))

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler without Channels' per-message ``aclose_old_connections``.

        Channels hops to a thread before every handler to close stale database connections.
        Here every database call already goes through ``database_sync_to_async``, which does
        that in its own thread, and ``deliver`` (nearly all traffic) never touches the
        database: the hop cost about 40% of the CPU of a busy room (docs/performance.md).
        """
        if message["type"] == "deliver":
            await self.deliver(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- outbound ---------------------------------------------------------------------
    async def deliver(self, event: dict[str, Any]) -> None:
        """A pre-serialized frame from the channel layer: write it as it is."""
        control = event.get("control")
        if control is not None and "unsubscribe" in control:
            await self._unsubscribe([control["unsubscribe"]])
        await self.send(text_data=event["text"])

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=encode(frame))

    async def _error(self, code: str, message: str, ref: str | None = None, **details: Any) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message, **details}
        if ref is not None:
            frame["ref"] = ref
        await self._send(frame)

    # --- inbound ----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.bucket.take():
            log.warning("websocket_flood", user_id=self.user.pk)
            await self.close(code=CLOSE_FLOOD)
            return
        if text_data is None:
            await self._error("invalid_frame", "Frames are JSON text, not binary.")
            return
        if len(text_data) > MAX_FRAME_BYTES:
            await self._error("frame_too_large", f"A frame is at most {MAX_FRAME_BYTES // 1024} KiB.")
            return
        try:
            raw = json.loads(text_data)
        except ValueError:
            await self._error("invalid_json", "That frame is not valid JSON.")
            return
        ref = raw.get("ref") if isinstance(raw, dict) and isinstance(raw.get("ref"), str) else None
        if not isinstance(raw, dict) or raw.get("type") not in schemas.FRAME_TYPES:
            await self._error("unknown_type", "Unknown frame type.", ref, known=sorted(schemas.FRAME_TYPES))
            return
        try:
            frame = schemas.CLIENT_FRAME.validate_python(raw)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            await self._error("invalid_frame", f"Invalid {raw['type']} frame.", ref, problems=problems)
            return
        try:
            await getattr(self, f"on_{frame.type}")(frame)
        except Exception as exc:
            error = as_app_error(exc)
            if error is None:
                raise
            if error is not exc:
                log.error("service_unavailable", frame_type=frame.type, exc_info=exc)
            await self._error(error.code, error.message, ref, **error.details)

    async def on_ping(self, frame: schemas.Ping) -> None:
        await self._set_presence(self._status)
        await self._send({"type": "pong", "ref": frame.ref})

    async def on_subscribe(self, frame: schemas.Subscribe) -> None:
        if len(self.rooms | set(frame.rooms)) > MAX_SUBSCRIPTIONS:
            await self._error("too_many_rooms", f"A connection follows at most {MAX_SUBSCRIPTIONS} rooms.", frame.ref)
            return
        summaries, missing = await database_sync_to_async(_accessible_rooms)(self.user, frame.rooms)
        for room_id in missing:
            await self._error("not_found", "Room not found.", frame.ref, room_id=room_id)
        for summary in summaries:
            if summary["id"] not in self.rooms:
                await self.channel_layer.group_add(room_group(summary["id"]), self.channel_name)
                self.rooms.add(summary["id"])
        typing = await in_thread(_typing_in)([s["id"] for s in summaries])
        await self._send({"type": "subscribed", "ref": frame.ref, "rooms": summaries, "typing": typing})

    async def on_unsubscribe(self, frame: schemas.Unsubscribe) -> None:
        await self._unsubscribe(frame.rooms)
        await self._send({"type": "unsubscribed", "ref": frame.ref, "rooms": frame.rooms})

    async def _unsubscribe(self, room_ids: list[int]) -> None:
        for room_id in room_ids:
            if room_id in self.rooms:
                self.rooms.discard(room_id)
                await self.channel_layer.group_discard(room_group(room_id), self.channel_name)

    async def on_send(self, frame: schemas.Send) -> None:
        payload, created = await database_sync_to_async(chat_actions.message_send)(
            user=self.user,
            room_id=frame.room_id,
            body=frame.body,
            client_id=frame.client_id,
            reply_to_id=frame.reply_to,
        )
        if frame.room_id in self.typing_in:
            self.typing_in.discard(frame.room_id)
            await in_thread(presence.typing_stop)(room_id=frame.room_id, user_id=self.user.pk)
        await self._send(
            {
                "type": "ack",
                "ref": frame.ref,
                "client_id": frame.client_id,
                "duplicate": not created,
                "message": payload,
            }
        )

    async def on_edit(self, frame: schemas.Edit) -> None:
        payload = await database_sync_to_async(chat_actions.message_edit)(
            user=self.user, message_id=frame.message_id, body=frame.body
        )
        await self._send({"type": "ack", "ref": frame.ref, "message": payload})

    async def on_delete(self, frame: schemas.Delete) -> None:
        payload = await database_sync_to_async(chat_actions.message_delete)(user=self.user, message_id=frame.message_id)
        await self._send({"type": "ack", "ref": frame.ref, "message": payload})

    async def on_react(self, frame: schemas.React) -> None:
        payload = await database_sync_to_async(chat_actions.reaction_set)(
            user=self.user, message_id=frame.message_id, emoji=frame.emoji, present=frame.present
        )
        await self._send({"type": "ack", "ref": frame.ref, "message": payload})

    async def on_read(self, frame: schemas.Read) -> None:
        seq = await database_sync_to_async(chat_actions.room_mark_read)(
            user=self.user, room_id=frame.room_id, seq=frame.seq
        )
        await self._send({"type": "ack", "ref": frame.ref, "room_id": frame.room_id, "seq": seq})

    async def on_typing(self, frame: schemas.Typing) -> None:
        await database_sync_to_async(access_room_for_user)(user=self.user, room_id=frame.room_id, need="write")
        self.typing_in.add(frame.room_id)
        if await in_thread(presence.typing_start)(room_id=frame.room_id, user_id=self.user.pk):
            await publish_now(
                room_group(frame.room_id),
                {
                    "type": "typing",
                    "room_id": frame.room_id,
                    "user": {"id": self.user.pk, "name": self.user.name},
                    "expires_in": presence.TYPING_TTL_SECONDS,
                },
            )

    async def on_history(self, frame: schemas.History) -> None:
        page = await database_sync_to_async(_history)(self.user, frame)
        await self._send({"type": "history", "ref": frame.ref, "room_id": frame.room_id, **page})

    async def on_sync(self, frame: schemas.Sync) -> None:
        for key, version in frame.rooms.items():
            if not key.isdigit():
                await self._error("invalid_frame", "sync.rooms keys are room ids.", frame.ref, room_id=key)
                continue
            try:
                result = await database_sync_to_async(_catch_up)(self.user, int(key), version)
            except AppError as error:
                await self._error(error.code, error.message, frame.ref, room_id=int(key))
                continue
            await self._send({"type": "sync", "ref": frame.ref, "room_id": int(key), **result})

    async def on_stop(self, frame: schemas.Stop) -> None:
        payload = await database_sync_to_async(assistant_actions.assistant_stop)(
            user=self.user, message_id=frame.message_id
        )
        await self._send({"type": "ack", "ref": frame.ref, "message": payload})

    async def on_presence(self, frame: schemas.Presence) -> None:
        await self._set_presence(frame.status)

    # --- presence ---------------------------------------------------------------------
    _status = "online"

    async def _set_presence(self, status: str | None) -> None:
        if status is not None:
            self._status = status
        try:
            before, after = await in_thread(presence.set_connection_status)(
                user_id=self.user.pk, connection=self.connection_id, status=status
            )
        except redis.RedisError:
            # Presence is a nicety: without Redis the socket still chats (from the database).
            log.warning("presence_unavailable", user_id=self.user.pk)
            return
        if before != after:
            for workspace_id in self.workspace_ids:
                publish_presence(workspace_id, self.user.pk, after)


def _workspace_ids(user_id: int) -> list[int]:
    return list(Membership.objects.filter(user_id=user_id).values_list("workspace_id", flat=True))


def _accessible_rooms(user: Any, room_ids: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """Summaries of the rooms ``user`` may follow, in the order asked, and the ids not found."""
    accesses = access_rooms_for_user(user=user, room_ids=room_ids)
    summaries, missing = [], []
    for room_id in dict.fromkeys(room_ids):
        access = accesses.get(room_id)
        if access is None:
            missing.append(room_id)
            continue
        summaries.append(
            {**room_summary(access.room), "member": access.is_member, "last_read_seq": access.last_read_seq}
        )
    return summaries, missing


def _typing_in(room_ids: list[int]) -> dict[str, list[int]]:
    return {str(room_id): users for room_id in room_ids if (users := presence.typing_now(room_id=room_id))}


def _history(user: Any, frame: schemas.History) -> dict[str, Any]:
    access_room_for_user(user=user, room_id=frame.room_id)
    page = room_history(room_id=frame.room_id, before_seq=frame.before_seq, limit=frame.limit, viewer_id=user.pk)
    return {"messages": page.messages, "has_more": page.has_more}


def _catch_up(user: Any, room_id: int, version: int) -> dict[str, Any]:
    access = access_room_for_user(user=user, room_id=room_id)
    result = room_changes_since(
        room_id=room_id, version=version, room_version=access.room.last_version, viewer_id=user.pk
    )
    return {"messages": result.messages, "version": result.version, "complete": result.complete}
