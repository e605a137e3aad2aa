"""The text of answers being written, in Redis, for members who arrive mid-answer.

Every flush of streamed text appends to the buffer and bumps its chunk counter in one
transaction, before the chunk is broadcast. A client that loads the message mid-answer gets
the text so far with its chunk number and applies only later chunks: no gap, no repeat.
The database gets the whole text once, when the answer ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from mathia.core.redis import get_async_redis, get_redis, redis_key

BUFFER_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Snapshot:
    text: str
    chunk: int  # chunks applied so far; the next broadcast chunk is chunk + 1


def _keys(message_id: int) -> tuple[str, str]:
    return redis_key("stream", message_id, "text"), redis_key("stream", message_id, "chunks")


async def buffer_append(message_id: int, text: str) -> int:
    """Append ``text``; returns its chunk number (1, 2, ...)."""
    text_key, count_key = _keys(message_id)
    pipe = get_async_redis().pipeline(transaction=True)
    pipe.append(text_key, text.encode())
    pipe.incr(count_key)
    pipe.expire(text_key, BUFFER_TTL_SECONDS)
    pipe.expire(count_key, BUFFER_TTL_SECONDS)
    _, chunk, _, _ = await pipe.execute()
    return int(chunk)


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
