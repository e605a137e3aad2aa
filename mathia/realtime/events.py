"""Publishing events to connected clients through the Channels layer, after commit.

A frame is serialized once here, then every consumer that receives it writes the same text
to its socket: fan-out does no per-recipient JSON work.

In a web process, actions run in worker threads (``database_sync_to_async``) while the
channel layer lives on the event loop. Waiting for the loop from the worker thread after
every commit would make each write wait for the fan-out of the previous one, so commits
hand their events to a per-loop outbox instead, and one publisher task on the loop sends
them in commit order. Code with no event loop (Celery, management commands) publishes
directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = structlog.get_logger(__name__)

DELIVER = "deliver"  # the consumer method that writes a pre-serialized frame


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


_PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"


def pubsub_channel(group: str) -> str | None:
    """The Redis channel on which the pub/sub layer delivers ``group``, if this process may publish there.

    That is when the layer is channels_redis's pub/sub layer on one server, the one
    ``REDIS_URL`` names: a script run on that server can then publish a frame itself (the
    streamed answers do, in the round trip that buffers their text). The name is the
    layer's own scheme (``{prefix}__group__{group}``, channels_redis 4), pinned by the lock
    file and checked end to end by the streaming tests. None means: use ``group_send``.
    """
    config: dict[str, Any] = settings.CHANNEL_LAYERS.get("default", {})
    if config.get("BACKEND") != _PUBSUB_LAYER:
        return None
    options: dict[str, Any] = config.get("CONFIG", {})
    if options.get("hosts") != [settings.REDIS_URL] or options.get("symmetric_encryption_keys"):
        return None
    return f"{options.get('prefix', 'asgi')}__group__{group}"


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=str)


def deliver(frame: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message that makes each consumer write ``frame`` (serialized once)."""
    return {"type": DELIVER, "text": encode(frame)}


PRESENCE_FLUSH_SECONDS = 1.0


class _Outbox:
    """Events queued from any thread, published in order by one task on the web event loop.

    Presence changes are coalesced: each process sends at most one presence frame per
    workspace per second, listing every change, so a thousand people connecting at once
    cost a thousand frames per second rather than a million.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self.presence_changes: dict[int, dict[int, str]] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is loop:
            return
        with self._lock:
            if self.loop is loop:
                return
            self.queue = asyncio.Queue()
            self.presence_changes = {}
            self.loop = loop
            loop.create_task(self._publish_forever(self.queue))
            loop.create_task(self._flush_presence_forever(loop))

    async def _flush_presence_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.loop is loop:
            await asyncio.sleep(PRESENCE_FLUSH_SECONDS)
            changes, self.presence_changes = self.presence_changes, {}
            for workspace_id, users in changes.items():
                frame = {
                    "type": "presence",
                    "workspace_id": workspace_id,
                    "users": {str(k): v for k, v in users.items()},
                }
                self.put(workspace_group(workspace_id), deliver(frame))

    def note_presence(self, workspace_id: int, user_id: int, status: str) -> None:
        """Record a change for the next flush (call on the bound loop)."""
        self.presence_changes.setdefault(workspace_id, {})[user_id] = status

    async def _publish_forever(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        while True:
            group, message = await queue.get()
            if group == _BARRIER:
                if not message["reached"].done():
                    message["reached"].set_result(None)
                continue
            layer = get_channel_layer()
            try:
                if layer is not None:
                    await layer.group_send(group, message)
            except Exception:  # a publish that fails must not stop the ones after it
                log.exception("publish_failed", group=group)

    def put(self, group: str, message: dict[str, Any]) -> bool:
        """Queue for the bound loop if it is running; False when there is none to use."""
        loop, queue = self.loop, self.queue
        if loop is None or queue is None or loop.is_closed() or not loop.is_running():
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait((group, message))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, (group, message))
        return True


_outbox = _Outbox()
_BARRIER = ""  # not a group: an outbox entry that only marks a place in the order


def published_so_far() -> asyncio.Future[None]:
    """Resolves once every event queued on this loop's outbox until now has been published.

    For frames sent straight to the layer (an answer's status lines and text) that must not
    overtake an event committed before them (the answer's own ``message.new``). Call on the
    event loop; resolved at once when this loop has no outbox (its commits published directly).
    """
    loop = asyncio.get_running_loop()
    reached: asyncio.Future[None] = loop.create_future()
    if _outbox.loop is not loop or not _outbox.put(_BARRIER, {"reached": reached}):
        reached.set_result(None)
    return reached


def bind_event_loop() -> None:
    """Called on the web process's event loop (by the consumer) to start the outbox there."""
    _outbox.bind(asyncio.get_running_loop())


def web_event_loop() -> asyncio.AbstractEventLoop | None:
    """The web process's running event loop, or None (Celery, management commands)."""
    loop = _outbox.loop
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def send_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send a raw channel-layer message (not a client frame) to ``group`` after commit."""
    transaction.on_commit(lambda: _group_send(group, message))


def publish_presence(workspace_id: int, user_id: int, status: str) -> None:
    """Announce a presence change within about a second (coalesced per workspace)."""
    bind_event_loop()
    _outbox.note_presence(workspace_id, user_id, status)


def _group_send(group: str, message: dict[str, Any]) -> None:
    if _outbox.put(group, message):
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, message)


def publish_on_commit(group: str, frame: dict[str, Any], *, control: dict[str, Any] | None = None) -> None:
    """Send ``frame`` to ``group`` once the current transaction commits (now if none).

    ``control`` travels beside the frame for the consumers themselves (for example "stop
    following this room"); clients never see it.
    """
    message = deliver(frame)
    if control is not None:
        message["control"] = control
    bulk = getattr(_bulk, "items", None)
    if bulk is not None:
        bulk.append((group, message))
        return
    transaction.on_commit(lambda: _group_send(group, message))


_bulk = threading.local()


@contextlib.contextmanager
def publishing_in_bulk() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Within a transaction: :func:`publish_on_commit` calls in the block are sent together after commit.

    For a worker writing many events in one transaction (the reminder dispatcher): one trip to
    the event loop for all of them instead of one per event. The caller may drop entries it
    rolled back to a savepoint (the yielded list), since those never happened.
    """
    items: list[tuple[str, dict[str, Any]]] = []
    _bulk.items = items
    try:
        yield items
    finally:
        _bulk.items = None
    if items:
        transaction.on_commit(lambda: _send_many(items))


def _send_many(items: list[tuple[str, dict[str, Any]]]) -> None:
    if _outbox.put(*items[0]):  # a web event loop is running here: its outbox sends them in order
        for group, message in items[1:]:
            _outbox.put(group, message)
        return
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for group, message in items:
            try:
                await layer.group_send(group, message)
            except Exception:  # one failed publish must not stop the others
                log.exception("publish_failed", group=group)

    async_to_sync(send_all)()


async def publish_now(group: str, frame: dict[str, Any]) -> None:
    """For ephemeral events that have no transaction (typing, presence)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, deliver(frame))
