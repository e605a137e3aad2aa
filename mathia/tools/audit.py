"""The audit log of tool calls: one Redis Stream entry per call, moved to the database in batches.

The router appends an entry on every call (``XADD``, about a tenth of a millisecond); a
database commit per call would cost more than the router's whole latency budget. A consumer
group moves entries into :class:`~mathia.tools.models.ToolCall` rows: the web process flushes
a second after its calls, and Celery Beat runs ``tools.flush_audit`` every 10 s for the rest.
An entry is acknowledged (and deleted) only after its row is committed, and rows are keyed by
the entry id, so a flusher that dies mid-batch loses nothing and a retried batch writes nothing
twice; entries a dead consumer held are claimed after a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
import structlog
from channels.db import database_sync_to_async
from django.db import transaction

from mathia.core.logging import REDACTED
from mathia.core.redis import get_async_redis, get_redis, redis_key

if TYPE_CHECKING:
    from mathia.tools.registry import ToolContext

log = structlog.get_logger(__name__)

GROUP = "audit"
STREAM_MAX_ENTRIES = 1_000_000  # a memory guard for a flusher that is down for days
BATCH = 500
CLAIM_IDLE_MS = 60_000
FLUSH_DELAY_SECONDS = 1.0
MAX_STRING = 500

_SECRET_NAMES = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|session|credential|private[_-]?key", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]*:[^/@\s]*@", re.IGNORECASE)


def stream_key() -> str:
    return redis_key("tools", "audit")


def redact(value: Any, secret_fields: frozenset[str] = frozenset(), *, depth: int = 0) -> Any:
    """``value`` with secrets removed: fields named secret-like or listed, URL credentials, long text."""
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        out = {}
        for key, item in list(value.items())[:50]:
            name = str(key)
            if name in secret_fields or _SECRET_NAMES.search(name):
                out[name] = REDACTED
            else:
                out[name] = redact(item, secret_fields, depth=depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, secret_fields, depth=depth + 1) for item in list(value)[:50]]
    if isinstance(value, str):
        text = _URL_CREDENTIALS.sub(rf"\g<scheme>{REDACTED}@", value)
        return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value), secret_fields, depth=depth + 1)


def entry(
    *,
    tool: str,
    arguments: object,
    secret_fields: frozenset[str],
    ctx: ToolContext,
    status: str,
    code: str,
    message: str,
    cached: bool,
    latency_ms: float,
    handler_ms: float,
) -> str:
    """One call's audit entry, as the stream holds it (JSON; arguments with secrets removed)."""
    return json.dumps(
        {
            "t": ctx.clock.now().timestamp(),
            "u": ctx.user.pk,
            "w": ctx.workspace_id,
            "r": ctx.room_id,
            "run": ctx.run_id,
            "tool": tool[:64],
            "via": ctx.via,
            "args": redact(arguments, secret_fields),
            "s": status,
            "c": code[:40],
            "m": message[:MAX_STRING],
            "hit": cached,
            "ms": round(latency_ms, 3),
            "hms": round(handler_ms, 3),
        },
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def xadd(pipe: Any, entry_json: str) -> None:
    """Queue the entry on ``pipe`` (a Redis pipeline, sync or async)."""
    pipe.xadd(stream_key(), {"j": entry_json}, maxlen=STREAM_MAX_ENTRIES, approximate=True)


async def audit_append(entry_json: str) -> None:
    """Append one entry to the stream on its own, and have it flushed to the database soon."""
    await get_async_redis().xadd(stream_key(), {"j": entry_json}, maxlen=STREAM_MAX_ENTRIES, approximate=True)
    schedule_flush()


# --- moving entries to the database ---------------------------------------------------------
_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()
#: Off in tests that count audit rows themselves, and in the benchmark.
AUTO_FLUSH = True


def schedule_flush() -> None:
    """Flush to the database in a second or so, from this loop (one flush at a time)."""
    if not AUTO_FLUSH:
        return
    loop = asyncio.get_running_loop()
    task = _flushers.get(loop)
    if task is None or task.done():
        _flushers[loop] = loop.create_task(_flush_later())


def cancel_scheduled_flush() -> None:
    """Drop this loop's pending flush (the loop is ending; Beat's flush picks the entries up)."""
    task = _flushers.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()


async def _flush_later() -> None:
    await asyncio.sleep(FLUSH_DELAY_SECONDS)
    try:
        await database_sync_to_async(audit_flush, thread_sensitive=False)()
    except Exception:
        log.warning("tool_audit_flush_failed", exc_info=True)


def _consumer() -> str:
    import os

    return f"{socket.gethostname()}-{os.getpid()}"


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(stream_key(), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def audit_flush(*, limit: int = 100_000) -> int:
    """Move audit entries from Redis to the database; returns how many rows were written."""
    client = get_redis()
    _ensure_group(client)
    consumer = _consumer()
    key = stream_key()
    written = 0
    # Entries a dead flusher read but never acknowledged.
    with contextlib.suppress(redis.ResponseError):
        claimed: Any = client.xautoclaim(key, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS, start_id="0-0", count=BATCH)
        if claimed and claimed[1]:
            written += _store(client, claimed[1])
    while written < limit:
        batch: Any = client.xreadgroup(GROUP, consumer, {key: ">"}, count=BATCH)
        entries = batch[0][1] if batch else []
        if not entries:
            break
        written += _store(client, entries)
    return written


def _store(client: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    from mathia.accounts.models import User
    from mathia.tools.models import ToolCall
    from mathia.workspaces.models import Workspace

    rows: list[ToolCall] = []
    ids = []
    parsed = []
    for raw_id, fields in entries:
        ids.append(raw_id)
        try:
            values = json.loads(fields[b"j"])
            if b"c" in fields:  # a cache hit, audited by the router's script: the message is the cached one
                values["m"] = str(json.loads(fields[b"c"]).get("m", ""))[:MAX_STRING]
            parsed.append((raw_id.decode(), values))
        except (KeyError, ValueError, AttributeError):
            log.error("tool_audit_entry_unreadable", entry_id=raw_id.decode())
    users = set(User.objects.filter(pk__in={p["u"] for _, p in parsed}).values_list("pk", flat=True))
    workspaces = set(Workspace.objects.filter(pk__in={p["w"] for _, p in parsed}).values_list("pk", flat=True))
    for entry_id, p in parsed:
        rows.append(
            ToolCall(
                entry_id=entry_id,
                created_at=datetime.fromtimestamp(p["t"], UTC),
                user_id=p["u"] if p["u"] in users else None,
                workspace_id=p["w"] if p["w"] in workspaces else None,
                room_id=p.get("r"),
                run_id=p.get("run"),
                tool=p["tool"],
                via=p["via"],
                arguments=p["args"] if isinstance(p["args"], dict) else {"value": p["args"]},
                status=p["s"],
                code=p.get("c", ""),
                message=p.get("m", ""),
                cached=bool(p.get("hit")),
                latency_ms=p["ms"],
                handler_ms=p.get("hms", 0.0),
            )
        )
    with transaction.atomic():
        ToolCall.objects.bulk_create(rows, ignore_conflicts=True)
    if ids:
        pipe = client.pipeline(transaction=False)
        pipe.xack(stream_key(), GROUP, *ids)
        pipe.xdel(stream_key(), *ids)
        pipe.execute()
    return len(rows)
