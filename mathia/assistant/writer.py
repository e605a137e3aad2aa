"""An answer's text on its way to the room: coalesced per answer, sent for all answers at once.

Each answer has an :class:`AnswerWriter` that collects its deltas. One :class:`StreamFlusher`
per event loop sends them: the first delta of an answer at once (the time to first token is
what people feel), then every answer's pending text together every ``ASSISTANT_FLUSH_MS``,
each as one ``message.stream`` frame. A tick is one Redis round trip for every answer of
the process: per answer, one script appends the text to the buffer members read when they
arrive mid-answer (``buffer.py``), records the chunk number and publishes the frame on the
room's channel. Before, each answer woke its own task for each token and made two round
trips per flush; at 50 streams that was a fifth of the server's CPU (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator

import structlog
from channels.layers import get_channel_layer

from mathia.assistant.actions import StartedRun
from mathia.assistant.buffer import StreamChunk, buffer_append_many
from mathia.assistant.llm.base import Finish, ProviderInfo, StreamEvent, TextDelta, ToolCall, Usage
from mathia.realtime.events import deliver, publish_now, published_so_far, pubsub_channel, room_group

log = structlog.get_logger(__name__)

FLUSH_SIZE_CHARS = 2000  # flush at once past this much pending text
ANNOUNCE_WAIT_SECONDS = 5.0  # at most, for the answer's message.new before its last text


class AnswerWriter:
    """One answer's text and what the model reported, as it streams."""

    def __init__(self, started: StartedRun, *, flush_seconds: float) -> None:
        self.started = started
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.pending_chars = 0
        self.chunks = 0  # chunks sent so far; the next is chunks + 1
        self.flushed = False  # the first delta goes out at once; later ones wait for a tick
        self.flush_failed = False
        self.closing = False
        self.inflight: object | None = None  # the send holding this answer's text, while it runs
        self.sent: asyncio.Future[None] | None = None  # resolved when that send is done (close() waits)
        self.provider = ""
        self.model = ""
        self.usage: Usage | None = None  # of the current round with the model
        self.finish: str | None = None
        # The tool-calling loop: tokens of the rounds already finished, this round's calls and text.
        self.rounds_input_tokens = 0
        self.rounds_output_tokens = 0
        self.rounds = 0
        self.round_calls: list[ToolCall] = []
        self.round_start = 0  # index in parts where this round's text starts
        self.separate = False  # put a paragraph break before this round's first text
        self.note = ""  # why the loop ended early, shown under the answer
        self.tool_error = ""  # the code of a failed tool call answered directly
        self.refused = ""  # why no model was called (the wallet cannot pay)
        self.first_token_at: float | None = None
        self.stop_by: str | None = None
        self.task: asyncio.Task[None] | None = None
        # The answer's message.new went to the outbox at commit; nothing of it may overtake that.
        self.announced = published_so_far()
        self.flusher = stream_flusher(flush_seconds)
        self.announced.add_done_callback(lambda _: self.flusher.wake.set())

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def round_text(self) -> str:
        return "".join(self.parts[self.round_start :])

    def add_text(self, text: str) -> None:
        if not text:
            return
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        # A lone surrogate (a split \\ud83d escape) cannot be stored or sent.
        text = text.encode("utf-8", "replace").decode("utf-8")
        if self.separate:
            self.separate = False
            if self.parts and not self.text.endswith("\n\n"):
                text = "\n\n" + text.lstrip()
        self.parts.append(text)
        self.pending.append(text)
        self.pending_chars += len(text)
        self.flusher.add(self, urgent=not self.flushed or self.pending_chars >= FLUSH_SIZE_CHARS)

    def put_back(self, text: str) -> None:
        """Text whose send failed goes first in the next one."""
        self.pending.insert(0, text)
        self.pending_chars += len(text)

    def take_pending(self) -> str:
        text = "".join(self.pending)
        self.pending.clear()
        self.pending_chars = 0
        self.flushed = True
        return text

    def begin_round(self) -> None:
        """Before each request to the model: the last round's usage is final, its calls are done."""
        if self.usage is not None:
            self.rounds_input_tokens += self.usage.input_tokens
            self.rounds_output_tokens += self.usage.output_tokens
        self.usage, self.finish = None, None
        self.round_calls = []
        self.round_start = len(self.parts)
        self.separate = bool(self.parts)
        self.rounds += 1

    @property
    def tokens_so_far(self) -> int:
        current = (self.usage.input_tokens + self.usage.output_tokens) if self.usage else 0
        return self.rounds_input_tokens + self.rounds_output_tokens + current

    async def consume(self, events: AsyncIterator[StreamEvent]) -> None:
        async with contextlib.aclosing(events) as stream:  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, TextDelta):
                    self.add_text(event.text)
                elif isinstance(event, ProviderInfo):
                    self.provider, self.model = event.provider, event.model
                elif isinstance(event, Usage):
                    self.usage = event
                elif isinstance(event, Finish):
                    self.finish = event.reason
                elif isinstance(event, ToolCall):
                    self.round_calls.append(event)

    async def status(self, *, tool: str, text: str, state: str) -> None:
        """A live status line under the answer ("Checking the weather in Nairobi…"): not stored."""
        frame = {
            "type": "assistant.status",
            "room_id": self.started.room_id,
            "message_id": self.started.message_id,
            "tool": tool,
            "state": state,
            "text": text,
        }
        try:
            await self.wait_announced()
            await publish_now(room_group(self.started.room_id), frame)
        except Exception:  # best effort, like the text frames
            log.warning("assistant_status_failed", run_id=self.started.run_id, exc_info=True)

    def stop(self, by: str) -> None:
        """Cancel the provider stream; before it started, keep the request for when it would."""
        if self.stop_by is None:
            self.stop_by = by
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def close(self) -> None:
        """Send what is pending, and wait until it is out (the final text is written next)."""
        self.closing = True  # from now on a failed send is not tried again
        await self.wait_announced()
        await self.flusher.drain(self)

    async def wait_announced(self) -> None:
        """Until the answer's message.new is out, or at most ``ANNOUNCE_WAIT_SECONDS``.

        A stuck outbox must not hold a tool's status line, nor keep the answer from being written.
        """
        if self.announced.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANNOUNCE_WAIT_SECONDS):
                await asyncio.shield(self.announced)
        if not self.announced.done():
            self.announced.set_result(None)


class StreamFlusher:
    """Sends the pending text of every answer on one event loop (see the module's docstring)."""

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[AnswerWriter, None] = {}  # an ordered set
        self.urgent: dict[AnswerWriter, None] = {}
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.next_tick = 0.0  # loop time of the next tick (kept while no text is pending)
        self.redis_down = False  # the last flush could not reach Redis: say so once, not every tick

    def add(self, writer: AnswerWriter, *, urgent: bool) -> None:
        """``writer`` has text to send: at the next tick, or at once."""
        self.pending[writer] = None
        if urgent:
            self.urgent[writer] = None
            self.wake.set()
        elif len(self.pending) == 1:
            self.wake.set()  # the first pending answer starts the ticking
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    async def drain(self, writer: AnswerWriter) -> None:
        """Send ``writer``'s pending text now and wait until every send holding its text is done."""
        while writer in self.pending or writer.inflight is not None:
            if writer in self.pending:
                self.add(writer, urgent=True)
            if writer.sent is None:
                writer.sent = asyncio.get_running_loop().create_future()
            await asyncio.shield(writer.sent)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            self.wake.clear()
            now = loop.time()
            if now >= self.next_tick:  # first: a stream of new answers must not hold back the tick
                batch = [writer for writer in self.pending if writer.announced.done()]
                self.next_tick = now + self.flush_seconds
            elif any(writer.announced.done() for writer in self.urgent):
                batch = [writer for writer in self.urgent if writer.announced.done()]
            else:
                batch = []
            if not batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(self.next_tick - now, 0.001) if self.next_tick > now else None):
                        await self.wake.wait()
                continue
            for writer in batch:
                self.pending.pop(writer, None)
                self.urgent.pop(writer, None)
            await self._send(batch)

    async def _send(self, writers: list[AnswerWriter]) -> None:
        done = object()
        chunks = []
        for writer in writers:
            writer.inflight = done
            started = writer.started
            text = writer.take_pending()
            chunk = writer.chunks + 1
            group = room_group(started.room_id)
            frame = {
                "type": "message.stream",
                "room_id": started.room_id,
                "message_id": started.message_id,
                "chunk": chunk,
                "delta": text,
            }
            chunks.append(
                StreamChunk(message_id=started.message_id, text=text, chunk=chunk, group=group, message=deliver(frame))
            )
        try:
            try:
                stored = await _publish(chunks)
            except Exception:  # Redis unreachable: nothing was stored, nothing numbered
                if not self.redis_down:
                    log.warning("assistant_flush_failed", answers=len(writers), exc_info=True)
                self.redis_down = True
                stored = [False] * len(writers)
            else:
                if self.redis_down:
                    log.info("assistant_flush_recovered", answers=len(writers))
                self.redis_down = False
            for writer, sent_chunk, ok in zip(writers, chunks, stored, strict=True):
                if ok:  # the buffer holds it: its number is used, heard or not (a gap makes clients resync)
                    writer.chunks = sent_chunk.chunk
                    continue
                if not writer.flush_failed:  # once per answer, not once per delta
                    writer.flush_failed = True
                    log.warning("assistant_flush_failed", run_id=writer.started.run_id)
                if not writer.closing:  # try again at the next tick; the final text has it anyway
                    writer.put_back(sent_chunk.text)
                    self.add(writer, urgent=False)
        finally:
            for writer in writers:
                if writer.inflight is done:
                    writer.inflight = None
                if writer.sent is not None:
                    writer.sent.set_result(None)
                    writer.sent = None


async def _publish(chunks: list[StreamChunk]) -> list[bool]:
    """Buffer and broadcast ``chunks`` (in the buffer's round trip when the layer allows it).

    Returns which chunks the buffer stored: those are numbered, even if their broadcast failed.
    """
    layer = get_channel_layer()
    direct = [pubsub_channel(chunk.group) for chunk in chunks] if layer is not None else [None] * len(chunks)
    payloads = [
        layer.serialize(chunk.message) if layer is not None and channel is not None else None
        for chunk, channel in zip(chunks, direct, strict=True)
    ]
    stored = await buffer_append_many(chunks, channels=direct, payloads=payloads)
    if layer is not None:
        for chunk, channel, ok in zip(chunks, direct, stored, strict=True):
            if ok and channel is None:  # another layer: its own publish, after the buffer holds the text
                try:
                    await layer.group_send(chunk.group, chunk.message)
                except Exception:  # this frame is lost; the next one shows the gap and clients resync
                    log.warning("assistant_frame_not_sent", group=chunk.group, exc_info=True)
    return stored


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamFlusher] = weakref.WeakKeyDictionary()


def stream_flusher(flush_seconds: float) -> StreamFlusher:
    """The running loop's flusher."""
    loop = asyncio.get_running_loop()
    flusher = _flushers.get(loop)
    if flusher is None:
        flusher = _flushers[loop] = StreamFlusher(flush_seconds)
    flusher.flush_seconds = flush_seconds
    return flusher
