"""Mathia's own Redis access: one pooled client per URL, and keys under the app prefix."""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)


def get_redis() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def redis_key(*parts: object) -> str:
    """``redis_key("rate", 42)`` -> ``"mathia:rate:42"`` (the prefix differs per test)."""
    return settings.REDIS_KEY_PREFIX + ":".join(str(part) for part in parts)


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


async def close_async_redis() -> None:
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def get_async_redis() -> aioredis.Redis:
    """An asyncio client for the running event loop (asyncio clients cannot cross loops)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
        )
        _async_clients[loop] = client
    return client
