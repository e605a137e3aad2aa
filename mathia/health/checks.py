"""Readiness checks for the services Mathia needs: each answers in about a second at most."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from mathia.core.logging import _URL_CREDENTIALS, REDACTED
from mathia.core.redis import get_redis

CHECK_TIMEOUT_SECONDS = 1.5
WORKER_PING_SECONDS = 1.0


@dataclass
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    return _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", f"{type(exc).__name__}: {exc}")[:300]


async def _timed(check: Callable[[], Awaitable[dict[str, Any] | None]]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        return CheckResult(ok=False, latency_ms=_ms_since(started), error=_describe(exc))
    return CheckResult(ok=True, latency_ms=_ms_since(started), detail=detail)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


async def check_database() -> dict[str, Any]:
    return await sync_to_async(_database, thread_sensitive=True)()


async def check_redis() -> None:
    await sync_to_async(get_redis().ping, thread_sensitive=False)()


async def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("the channel layer returned a different message")


def _ping_workers() -> dict[str, Any]:
    from mathia.celery import app

    replies = app.control.ping(timeout=WORKER_PING_SECONDS, limit=1)
    if not replies:
        raise RuntimeError(f"no Celery worker answered a ping within {WORKER_PING_SECONDS:g}s")
    return {"workers": sorted(name for reply in replies for name in reply)}


async def check_celery_worker() -> dict[str, Any]:
    return await sync_to_async(_ping_workers, thread_sensitive=False)()


async def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run every check; the worker is pinged through Redis, so only when Redis answers."""
    database, redis_result, channel_layer = await asyncio.gather(
        _timed(check_database), _timed(check_redis), _timed(check_channel_layer)
    )
    if redis_result.ok:
        worker = await _timed(check_celery_worker)
    else:
        worker = CheckResult(ok=False, latency_ms=0.0, error="not checked: the broker (Redis) is unreachable")
    results = {"database": database, "redis": redis_result, "channel_layer": channel_layer, "celery_worker": worker}
    return all(result.ok for result in results.values()), {name: result.as_dict() for name, result in results.items()}
