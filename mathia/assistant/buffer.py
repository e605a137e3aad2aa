"""The text of answers being written, in Redis, for members who arrive mid-answer.

Every flush of streamed text appends to the buffer and records its chunk number in one
script, which also broadcasts the chunk (see ``writer.py``). A client that loads the
message mid-answer gets the text so far with its chunk number and applies only later
chunks: no gap, no repeat. The database gets the whole text once, when the answer ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from mathia.core.redis import get_async_redis, get_redis, redis_key

BUFFER_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Snapshot:
    text: str
    chunk: int  # chunks applied so far; the next broadcast chunk is chunk + 1


def _keys(message_id: int) -> tuple[str, str]:
    return redis_key("stream", message_id, "text"), redis_key("stream", message_id, "chunks")


@dataclass(frozen=True)
class StreamChunk:
    """One flush of an answer: its text, its number, and the frame announcing it to ``group``."""

    message_id: int
    text: str
    chunk: int
    group: str
    message: dict[str, str]  # the channel-layer message carrying the frame


# KEYS: text, chunk counter; ARGV: the text, its chunk number, the TTL, the channel to publish
# the frame on ('' for none) and the frame. The buffer holds the text before anyone hears of it.
_APPEND = """
redis.call('APPEND', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
"""
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


async def buffer_append_many(
    chunks: list[StreamChunk], *, channels: list[str | None], payloads: list[bytes | None]
) -> list[bool]:
    """Append each chunk's text and record its number, in one round trip; whether each was stored.

    With a ``channels`` entry, the same script publishes its ``payloads`` entry there (the
    channel layer's own encoding of ``chunk.message``), so the frame and the text are one step.
    Each answer's chunks are numbered by its one writer, so the number needs no reply first.
    """
    client = get_async_redis()
    calls = []
    for chunk, channel, payload in zip(chunks, channels, payloads, strict=True):
        text_key, count_key = _keys(chunk.message_id)
        publish = (channel, payload) if channel is not None and payload is not None else ("", b"")
        calls.append((text_key, count_key, chunk.text.encode(), chunk.chunk, BUFFER_TTL_SECONDS, *publish))
    results = await _run_scripts(client, calls)
    missing = [index for index, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:  # the first flush on this server (or after a restart / SCRIPT FLUSH): those did not run
        await client.script_load(_APPEND)
        for index, result in zip(missing, await _run_scripts(client, [calls[i] for i in missing]), strict=True):
            results[index] = result
    return [not isinstance(result, Exception) for result in results]


async def _run_scripts(client: aioredis.Redis, calls: Sequence[tuple[object, ...]]) -> list[object]:
    pipe = client.pipeline(transaction=False)
    for args in calls:
        pipe.evalsha(_APPEND_SHA, 2, *args)  # type: ignore[arg-type]
    return list(await pipe.execute(raise_on_error=False))


def buffer_snapshots(message_ids: list[int]) -> dict[int, Snapshot]:
    """The text so far of each answer (empty for one not started or already finished)."""
    if not message_ids:
        return {}
    pipe = get_redis().pipeline(transaction=True)
    for message_id in message_ids:
        text_key, count_key = _keys(message_id)
        pipe.get(text_key)
        pipe.get(count_key)
    values = pipe.execute()
    result = {}
    for index, message_id in enumerate(message_ids):
        text, chunk = values[2 * index], values[2 * index + 1]
        result[message_id] = Snapshot(text=(text or b"").decode(errors="replace"), chunk=int(chunk or 0))
    return result


def buffer_text(message_id: int) -> str:
    return buffer_snapshots([message_id])[message_id].text


def buffer_clear(message_id: int) -> None:
    get_redis().delete(*_keys(message_id))
