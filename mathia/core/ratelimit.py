"""Fixed-window rate limits kept in Redis, so they hold across web processes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mathia.core.clock import Clock, system_clock
from mathia.core.config import RATE_PATTERN
from mathia.core.errors import RateLimited
from mathia.core.redis import get_redis, redis_key

_RATE = re.compile(RATE_PATTERN)
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"30/10s"``, ``"5/m"``, ``"100/h"``; anything else is a :class:`ValueError` that says so.

        The one reading of a rate: settings' limits and each tool's ``rate`` alike.
        """
        match = _RATE.fullmatch(text)
        if match is None:
            raise ValueError(f"a rate looks like 30/m or 5/10s, not {text!r}")
        count, number, unit = match.groups()
        return cls(limit=int(count), window_seconds=int(number or 1) * _UNITS[unit])


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
