"""Presence (online / away / offline per workspace) and typing, kept in Redis with expiries.

A user's connections live in one hash, ``presence:u:<id>``: connection -> "status|expires".
The user is online if any live connection is online, away if all live ones are away, and
offline when none is live. Connections that vanish without a goodbye expire on their own.
Typing is a sorted set per room scored by expiry time.
"""

from __future__ import annotations

from collections.abc import Iterable

from mathia.core.clock import Clock, system_clock
from mathia.core.redis import get_redis, redis_key

CONNECTION_TTL_SECONDS = 75  # clients ping every 25 s
TYPING_TTL_SECONDS = 6
TYPING_THROTTLE_SECONDS = 2


def _user_key(user_id: int) -> str:
    return redis_key("presence", "u", user_id)


def _status_of(entries: dict[bytes, bytes], now: float) -> str:
    statuses = set()
    for value in entries.values():
        status, _, expires = value.decode().partition("|")
        if float(expires or 0) > now:
            statuses.add(status)
    if "online" in statuses:
        return "online"
    return "away" if statuses else "offline"


def user_status(user_id: int, *, clock: Clock = system_clock) -> str:
    return _status_of(get_redis().hgetall(_user_key(user_id)), clock.now().timestamp())  # type: ignore[arg-type]


def set_connection_status(
    *, user_id: int, connection: str, status: str | None, clock: Clock = system_clock
) -> tuple[str, str]:
    """Record (or, with ``None``, remove) one connection; returns (status before, after)."""
    client = get_redis()
    key = _user_key(user_id)
    now = clock.now().timestamp()
    before = _status_of(client.hgetall(key), now)  # type: ignore[arg-type]
    pipe = client.pipeline(transaction=True)
    if status is None:
        pipe.hdel(key, connection)
    else:
        pipe.hset(key, connection, f"{status}|{now + CONNECTION_TTL_SECONDS}")
        pipe.expire(key, CONNECTION_TTL_SECONDS * 2)
    pipe.hgetall(key)
    after = _status_of(pipe.execute()[-1], now)
    return before, after


def statuses(user_ids: Iterable[int], *, clock: Clock = system_clock) -> dict[int, str]:
    ids = list(user_ids)
    pipe = get_redis().pipeline(transaction=False)
    for uid in ids:
        pipe.hgetall(_user_key(uid))
    now = clock.now().timestamp()
    return {uid: _status_of(entries, now) for uid, entries in zip(ids, pipe.execute(), strict=True)}


def typing_start(*, room_id: int, user_id: int, clock: Clock = system_clock) -> bool:
    """Mark ``user_id`` typing in ``room_id``; False when throttled (no broadcast needed)."""
    client = get_redis()
    if not client.set(redis_key("typing-throttle", room_id, user_id), 1, nx=True, ex=TYPING_THROTTLE_SECONDS):
        return False
    key = redis_key("typing", room_id)
    now = clock.now().timestamp()
    pipe = client.pipeline(transaction=True)
    pipe.zadd(key, {str(user_id): now + TYPING_TTL_SECONDS})
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.expire(key, TYPING_TTL_SECONDS * 2)
    pipe.execute()
    return True


def typing_stop(*, room_id: int, user_id: int) -> None:
    client = get_redis()
    client.zrem(redis_key("typing", room_id), str(user_id))
    client.delete(redis_key("typing-throttle", room_id, user_id))


def typing_now(*, room_id: int, clock: Clock = system_clock) -> list[int]:
    now = clock.now().timestamp()
    return [int(uid) for uid in get_redis().zrangebyscore(redis_key("typing", room_id), now, "+inf")]  # type: ignore[union-attr]
