"""Mathia's own Redis access: one pooled client per URL, and keys under the app prefix."""

from __future__ import annotations

import asyncio
import threading
import weakref
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)


_shared_pools: dict[tuple[str, str], redis.ConnectionPool] = {}
_shared_pools_lock = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    """One connection pool per process and URL for Django's Redis cache.

    Django keeps cache objects per asyncio context (``caches`` is a context-local), and its
    ``RedisCache`` builds a new pool for every cache object. Under ASGI every request and
    every WebSocket task is its own context, so each open socket held its own Redis
    connection (measured: 300 sockets, 309 Redis clients). With this pool class
    (``CACHES[...]["OPTIONS"]["pool_class"]``) all of them share one pool per process.
    """

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        key = (url, repr(sorted(kwargs.items())))
        with _shared_pools_lock:
            pool = _shared_pools.get(key)
            if pool is None:
                pool = _shared_pools[key] = redis.ConnectionPool.from_url(url, **kwargs)
            return pool


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
