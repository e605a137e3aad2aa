"""How many answers run at once: per person, per workspace and in all, across processes.

Each limit is a Redis sorted set of run ids scored by lease expiry. Acquiring all three is
one Lua script (atomic, so two processes cannot both take the last slot); a run that dies
without releasing stops counting when its lease expires. A running answer renews its
lease with its heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from mathia.core.clock import Clock, system_clock
from mathia.core.redis import get_redis, redis_key

LEASE_SECONDS = 60.0

# KEYS: the sets; ARGV: now, expiry, member, then one limit per key.
# Returns 0 when acquired, else the 1-based index of the first full set.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  if redis.call('ZSCORE', key, ARGV[3]) == false and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[2]) - tonumber(ARGV[1])) + 60)
end
return 0
"""

SCOPES = ("user", "workspace", "total")


@dataclass(frozen=True)
class Slot:
    run_key: str
    keys: tuple[str, ...]


class Busy(Exception):
    """No slot: ``scope`` says which limit was full (user, workspace or total)."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(scope)
        self.scope = scope
        self.limit = limit


def _keys(user_id: int, workspace_id: int) -> tuple[str, ...]:
    return (
        redis_key("assistant", "running", "user", user_id),
        redis_key("assistant", "running", "workspace", workspace_id),
        redis_key("assistant", "running", "total"),
    )


def _limits() -> tuple[int, int, int]:
    return (settings.ASSISTANT_MAX_PER_USER, settings.ASSISTANT_MAX_PER_WORKSPACE, settings.ASSISTANT_MAX_TOTAL)


def slot_acquire(*, run_key: str, user_id: int, workspace_id: int, clock: Clock = system_clock) -> Slot:
    """Take a slot in all three limits or raise :class:`Busy`."""
    keys = _keys(user_id, workspace_id)
    now = clock.now().timestamp()
    limits = _limits()
    args = [str(now), str(now + LEASE_SECONDS), run_key, *(str(limit) for limit in limits)]
    full = int(get_redis().eval(_ACQUIRE, len(keys), *keys, *args))  # type: ignore[arg-type]
    if full:
        raise Busy(SCOPES[full - 1], limits[full - 1])
    return Slot(run_key=run_key, keys=keys)


def slot_of(*, run_key: str, user_id: int, workspace_id: int) -> Slot:
    """The slot taken for ``run_key`` (by another process), to renew and release it here."""
    return Slot(run_key=run_key, keys=_keys(user_id, workspace_id))


def slot_renew(slots: list[Slot], *, clock: Clock = system_clock) -> None:
    if not slots:
        return
    expiry = clock.now().timestamp() + LEASE_SECONDS
    pipe = get_redis().pipeline(transaction=False)
    for slot in slots:
        for key in slot.keys:
            pipe.zadd(key, {slot.run_key: expiry}, xx=True)
    pipe.execute()


def slot_release(slot: Slot) -> None:
    pipe = get_redis().pipeline(transaction=False)
    for key in slot.keys:
        pipe.zrem(key, slot.run_key)
    pipe.execute()
