"""Runs answers: an asyncio task per answer on the web process's event loop.

Why not a Celery task: an answer spends nearly all its life waiting on the provider's
stream, which an event loop does for hundreds of answers at once, while a prefork Celery
worker holds a whole process per answer and adds its queue hop before the first token
(measured in docs/performance.md). Code with no event loop (a management command, a Celery
task) falls back to the Celery task in ``tasks.py``, which runs the same coroutine.

While it runs, an answer's text is coalesced and flushed to the room every
``ASSISTANT_FLUSH_MS`` (the first delta at once): each flush appends to the Redis buffer,
then goes out as one ``message.stream`` frame. The database is written at the start and
once at the end. Stop requests reach the process running the answer on the control group;
a heartbeat keeps the run's lease and lets the reaper finish runs whose process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from mathia.accounts.models import User
from mathia.assistant.actions import (
    CONTROL_GROUP,
    RunOutcome,
    StartedRun,
    assistant_answer_finish,
    assistant_answer_start,
    assistant_runs_heartbeat,
)
from mathia.assistant.buffer import buffer_append
from mathia.assistant.context import AnswerTarget, BuiltPrompt, ContextManager
from mathia.assistant.limits import slot_release, slot_renew
from mathia.assistant.llm.base import Finish, LLMError, ProviderInfo, StreamEvent, TextDelta, Usage
from mathia.assistant.models import RunState
from mathia.assistant.providers import AssistantProvider, build_assistant_provider
from mathia.chat.models import Message
from mathia.realtime.events import DELIVER, encode, room_group, web_event_loop
from mathia.rooms.models import Room

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 10.0
FLUSH_SIZE_CHARS = 2000  # flush at once past this much pending text


def _db(func: Any) -> Any:
    return database_sync_to_async(func, thread_sensitive=False)


class AnswerWriter:
    """Coalesces one answer's deltas into frames, in order, from one flusher task."""

    def __init__(self, started: StartedRun, *, flush_seconds: float) -> None:
        self.started = started
        self.flush_seconds = flush_seconds
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.pending_chars = 0
        self.chunks = 0
        self.last_flush = 0.0
        self.done = False
        self.wake = asyncio.Event()
        self.provider = ""
        self.model = ""
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.first_token_at: float | None = None
        self.stop_by: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.flusher = asyncio.ensure_future(self._flush_forever())

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def consume(self, events: AsyncIterator[StreamEvent]) -> None:
        async with contextlib.aclosing(events) as stream:  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, TextDelta):
                    if event.text:
                        if self.first_token_at is None:
                            self.first_token_at = time.monotonic()
                        self.parts.append(event.text)
                        self.pending.append(event.text)
                        self.pending_chars += len(event.text)
                        self.wake.set()
                elif isinstance(event, ProviderInfo):
                    self.provider, self.model = event.provider, event.model
                elif isinstance(event, Usage):
                    self.usage = event
                elif isinstance(event, Finish):
                    self.finish = event.reason
                else:  # tool calls: the tool router's loop handles them when it lands
                    log.info("assistant_tool_call_ignored", run_id=self.started.run_id)

    def stop(self, by: str) -> None:
        if self.task is not None and not self.task.done():
            self.stop_by = by
            self.task.cancel()

    async def close(self) -> None:
        """Send what is pending and end the flusher."""
        self.done = True
        self.wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.flusher

    async def _flush_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.pending and self.chunks and not self.done and self.pending_chars < FLUSH_SIZE_CHARS:
                delay = self.last_flush + self.flush_seconds - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self.pending:
                await self._flush()
            if self.done and not self.pending:
                return

    async def _flush(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        self.pending_chars = 0
        self.last_flush = time.monotonic()
        started = self.started
        try:
            chunk = await buffer_append(started.message_id, text)
            frame = {
                "type": "message.stream",
                "room_id": started.room_id,
                "message_id": started.message_id,
                "chunk": chunk,
                "delta": text,
            }
            layer = get_channel_layer()
            if layer is not None:
                await layer.group_send(room_group(started.room_id), {"type": DELIVER, "text": encode(frame)})
            self.chunks = chunk
        except Exception:  # live delivery is best effort: the final text still reaches the database
            log.exception("assistant_flush_failed", run_id=started.run_id)


@dataclass
class _Registry:
    """The answers running on one event loop, its control listener and its heartbeat."""

    writers: dict[int, AnswerWriter] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    listener: asyncio.Task[None] | None = None
    heartbeat: asyncio.Task[None] | None = None

    def add(self, writer: AnswerWriter) -> None:
        self.writers[writer.started.run_id] = writer
        if self.listener is None or self.listener.done():
            self.listener = asyncio.ensure_future(self._listen())
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = asyncio.ensure_future(self._beat())

    def stop(self, run_id: int, by: str) -> None:
        writer = self.writers.get(run_id)
        if writer is not None:
            writer.stop(by)

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        await layer.group_add(CONTROL_GROUP, channel)
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("type") == "assistant.stop":
                    self.stop(int(message["run_id"]), str(message.get("by") or "someone"))
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(CONTROL_GROUP, channel)

    async def _beat(self) -> None:
        while self.writers:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            writers = list(self.writers.values())
            try:
                stopped = await _db(assistant_runs_heartbeat)(run_ids=[w.started.run_id for w in writers])
                await _db(slot_renew)([w.started.slot for w in writers])
            except Exception:
                log.exception("assistant_heartbeat_failed")
                continue
            for run_id in stopped:  # the control message was lost: stop anyway
                self.stop(run_id, "someone")


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Registry] = weakref.WeakKeyDictionary()


def _registry() -> _Registry:
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = _Registry()
    return registry


def schedule_answer(*, trigger_message_id: int, asker_id: int) -> None:
    """Start answering, from any thread: on the web event loop, else in a Celery worker."""
    loop = web_event_loop()
    if loop is None:
        from mathia.assistant.tasks import answer_in_worker

        answer_in_worker.delay(trigger_message_id, asker_id)
        return

    def spawn() -> None:
        registry = _registry()
        task = loop.create_task(run_answer(trigger_message_id=trigger_message_id, asker_id=asker_id))
        registry.tasks.add(task)
        task.add_done_callback(registry.tasks.discard)

    loop.call_soon_threadsafe(spawn)


def _prepare(started: StartedRun, provider: AssistantProvider) -> BuiltPrompt:
    target = AnswerTarget(
        asker=User.objects.get(pk=started.asker_id),
        room=Room.objects.get(pk=started.room_id),
        trigger=Message.objects.select_related("author").get(pk=started.trigger_id),
    )
    name, model = provider.primary
    return ContextManager().build(target, provider=name, model=model)


async def run_answer(
    *, trigger_message_id: int, asker_id: int, provider: AssistantProvider | None = None
) -> int | None:
    """Answer ``trigger_message_id`` for ``asker_id``; returns the run id (None if not started)."""
    started = await _db(assistant_answer_start)(trigger_message_id=trigger_message_id, asker_id=asker_id)
    if started is None:
        return None
    registry = _registry()
    writer = AnswerWriter(started, flush_seconds=settings.ASSISTANT_FLUSH_MS / 1000)
    registry.add(writer)
    began = time.monotonic()
    state, note, error_code, prompt_chars = RunState.DONE, "", "", 0
    try:
        chosen = provider or build_assistant_provider()
        prompt = await _db(_prepare)(started, chosen)
        prompt_chars = prompt.prompt_chars
        writer.task = asyncio.ensure_future(writer.consume(chosen.stream(prompt.request)))
        try:
            await writer.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if writer.stop_by is None or (current is not None and current.cancelling()):
                raise
            state, note, error_code = RunState.STOPPED, f"Stopped by {writer.stop_by}.", "stopped"
        if state == RunState.DONE and writer.finish == "max_tokens":
            note = "The answer reached its length limit."
    except LLMError as error:
        state, note, error_code = RunState.FAILED, _failure_note(error, bool(writer.parts)), error.kind
        log.warning("assistant_provider_failed", run_id=started.run_id, provider=error.provider, kind=error.kind)
    except asyncio.CancelledError:
        state, note, error_code = (
            RunState.FAILED,
            "The answer was interrupted (the server is restarting).",
            "interrupted",
        )
        raise
    except Exception:
        log.exception("assistant_run_crashed", run_id=started.run_id)
        state, note, error_code = RunState.FAILED, "Something went wrong on our side; ask again.", "internal"
    finally:
        await writer.close()
        usage = writer.usage
        outcome = RunOutcome(
            state=state,
            text=writer.text,
            note=note,
            error_code=error_code,
            provider=writer.provider,
            model=writer.model,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            prompt_chars=prompt_chars,
            first_token_ms=round((writer.first_token_at - began) * 1000) if writer.first_token_at else None,
            total_ms=round((time.monotonic() - began) * 1000),
        )
        registry.writers.pop(started.run_id, None)
        try:
            await _db(assistant_answer_finish)(run_id=started.run_id, outcome=outcome)
        finally:
            await _db(slot_release)(started.slot)
    return started.run_id


def _failure_note(error: LLMError, partial: bool) -> str:
    if partial:
        return f"The answer was cut off: {error.message}"
    return f"I couldn't answer: {error.message}"
