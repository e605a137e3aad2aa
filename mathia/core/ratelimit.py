"""Fixed-window rate limits kept in Redis, so they hold across web processes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import RateLimited
from mathia.core.redis import get_redis, redis_key


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"30/10s"``, ``"5/m"``, ``"100/h"``."""
        count, _, period = text.partition("/")
        units = {"s": 1, "m": 60, "h": 3600}
        number = period[:-1] or "1"
        return cls(limit=int(count), window_seconds=int(number) * units[period[-1]])


def check_rate(*, scope: str, subject: object, rate: Rate, clock: Clock = system_clock, what: str = "requests") -> None:
    """Count one hit for ``subject`` in ``scope``; raise :class:`RateLimited` past the limit."""
    now = clock.now().timestamp()
    window = math.floor(now / rate.window_seconds)
    key = redis_key("rate", scope, subject, window)
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, rate.window_seconds + 1)
    count, _ = pipe.execute()
    if int(count) > rate.limit:
        retry_after = (window + 1) * rate.window_seconds - now
        raise RateLimited(
            f"You are sending {what} too fast; try again in {math.ceil(retry_after)} s.", retry_after=retry_after
        )
