"""The router: the one way any tool runs. See the package docstring for the steps.

Hot-path costs: a cached call is one Redis round trip (one Lua script takes the rate limit,
reads the cache and, on a hit, appends the audit entry), an uncached one two (the script, then
the cache write and the audit entry in one pipeline), and neither queries the database when
the caller passes the access check it already made (``ToolContext.room_access``). Audit
entries go to a Redis Stream and a consumer group moves them to the database
(``mathia.tools.audit``): a database commit on every call would cost more than the whole
2 ms budget on a busy disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from channels.db import database_sync_to_async
from redis.exceptions import NoScriptError

from mathia.core.ratelimit import Rate
from mathia.core.redis import get_async_redis, redis_key
from mathia.tools import audit
from mathia.tools.registry import (
    Permission,
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    ToolStatus,
    registry,
)

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

# KEYS[1] the rate key, KEYS[2] the cache key (or "" for none), KEYS[3] the audit stream.
# ARGV: now (ms), emission interval (ms), burst tolerance (ms), the audit entry of a cache hit,
# the stream's length cap.
# GCRA: allows `limit` calls at once, then one per interval; atomic, so concurrent calls
# from any number of processes cannot overshoot. A cache hit is audited by the script itself
# (the entry, plus the cached value its message comes from), so a hit costs one round trip.
# Returns {allowed, retry_after_ms[, cached]}.
_RATE_AND_CACHE = """
local now = tonumber(ARGV[1])
if KEYS[1] ~= '' then
  local interval = tonumber(ARGV[2])
  local tolerance = tonumber(ARGV[3])
  local tat = tonumber(redis.call('GET', KEYS[1]) or now)
  if tat < now then tat = now end
  if tat - now > tolerance then
    return {0, tat - tolerance - now}
  end
  redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now) + 1000)
end
if KEYS[2] ~= '' then
  local cached = redis.call('GET', KEYS[2])
  if cached then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'j', ARGV[4], 'c', cached)
    return {1, 0, cached}
  end
end
return {1, 0}
"""
_script_sha: str | None = None

PERMISSION_MESSAGES = {
    Permission.WORKSPACE_MEMBER: "You are not a member of this workspace.",
    Permission.WORKSPACE_ADMIN: "Only the workspace's owner and admins can do that.",
    Permission.ROOM_READ: "That needs a room you can see.",
    Permission.ROOM_WRITE: "That needs a room you can post in.",
    Permission.ROOM_MODERATE: "Only the room's owner and moderators can do that.",
}


@dataclass(frozen=True)
class Lookup:
    """What ``name`` stands for in a workspace: its tool, or none."""

    name: str
    spec: ToolSpec | None
    #: Not found while a source that might offer it could not be read: "try again", not "no such tool".
    unavailable: bool = False


async def resolve(name: str, *, workspace_id: int) -> Lookup:
    """The tool called ``name`` in ``workspace_id``: a static one, else one from a source."""
    spec = registry.get(name)
    if spec is not None or not registry.sources():
        return Lookup(name, spec)
    found, failed = await database_sync_to_async(_read_sources, thread_sensitive=False)(workspace_id)
    spec = next((candidate for candidate in found if candidate.name == name), None)
    return Lookup(name, spec, unavailable=spec is None and failed)


def source_tools(workspace_id: int) -> list[ToolSpec]:
    """The tools the sources offer in ``workspace_id`` (synchronous: they read the database)."""
    return _read_sources(workspace_id)[0]


def _read_sources(workspace_id: int) -> tuple[list[ToolSpec], bool]:
    """The sources' tools in ``workspace_id``, and whether any source failed (each is logged)."""
    specs: list[ToolSpec] = []
    failed = False
    for source in registry.sources():
        try:
            specs.extend(source.tools(workspace_id))
        except Exception:  # a source that is down hides its tools; it does not break the others
            log.warning("tool_source_failed", source=source.name, exc_info=True)
            failed = True
    return specs, failed


async def list_tools(
    ctx: ToolContext, *, for_model: bool = True, from_sources: list[ToolSpec] | None = None
) -> list[ToolSpec]:
    """The tools ``ctx.user`` may call in ``ctx.workspace_id`` (static, then from sources).

    ``for_model`` keeps the ones offered to models and MCP clients (``model_visible``). Tools
    whose permission the person lacks in this context are left out. ``from_sources``: what
    :func:`source_tools` returned for this workspace, when the caller already read it.
    """
    if from_sources is None:
        from_sources = (
            await database_sync_to_async(source_tools, thread_sensitive=False)(ctx.workspace_id)
            if registry.sources()
            else []
        )
    specs = [spec for spec in [*registry.tools(), *from_sources] if spec.model_visible or not for_model]
    allowed = []
    for spec in specs:
        if await _permission_problem(spec, ctx) is None:
            allowed.append(spec)
    return allowed


@dataclass
class _Call:
    """One call on its way through the router."""

    name: str
    arguments: object
    ctx: ToolContext
    began: float
    spec: ToolSpec | None = None
    handler_ms: float = 0.0
    cache_write: tuple[str, str, int] | None = None  # key, value, seconds: sent with the audit entry
    audited: bool = False  # a cache hit is audited by the Redis script

    @property
    def secret_fields(self) -> frozenset[str]:
        return self.spec.secret_fields if self.spec is not None else frozenset()


async def invoke(name: str, arguments: object, *, ctx: ToolContext, found: Lookup | None = None) -> ToolResult:
    """Run tool ``name`` with ``arguments`` for ``ctx.user``; always returns a :class:`ToolResult`.

    ``found``: what :func:`resolve` gave the caller for ``name`` in ``ctx.workspace_id`` (a
    source's tools cost a query to list, and the caller checked that tool), so it is not
    looked up again.
    """
    call = _Call(name=name, arguments=arguments, ctx=ctx, began=time.perf_counter())
    if found is None or found.name != name:
        found = await resolve(name, workspace_id=ctx.workspace_id)
    call.spec = found.spec
    if found.unavailable:
        result = ToolResult.error(
            f"`{name}` is not available right now: a connected tool server could not be reached. "
            "Try again in a moment.",
            code="tool_unavailable",
        )
    elif call.spec is None:
        result = ToolResult.error(f"There is no tool called `{name}`.", code="unknown_tool")
    else:
        result = await _run(call.spec, call)
    if not call.audited:
        await _audit_and_cache(call, result)
    return result


def invoke_sync(name: str, arguments: object, *, ctx: ToolContext) -> ToolResult:
    """:func:`invoke` from sync code with no event loop running in this thread (a Celery task, a view).

    It runs on an event loop of its own, and closes what that loop opened (Redis and HTTP clients).
    """

    async def call() -> ToolResult:
        from mathia.core.redis import close_async_redis
        from mathia.tools.http import close_http_client

        try:
            return await invoke(name, arguments, ctx=ctx)
        finally:
            audit.cancel_scheduled_flush()  # Beat's periodic flush moves the entry
            await close_http_client()
            await close_async_redis()

    return asyncio.run(call())


# --- the steps ------------------------------------------------------------------------------
async def _run(spec: ToolSpec, call: _Call) -> ToolResult:
    ctx = call.ctx
    try:
        args = spec.validate(call.arguments)
    except ToolInputError as error:
        return _invalid(spec, error)
    if ctx.via == "model" and not spec.model_visible:
        return ToolResult.error(f"`{spec.name}` cannot be called by a model.", code="not_callable")
    if ctx.via == "model" and spec.needs_own_words and ctx.untrusted_context:
        what = "changes things" if spec.side_effects else "reads your own data"
        return ToolResult.needs_auth(
            f"`{spec.name}` {what}, so I only run it when you ask me yourself (a slash command, or a direct "
            "request to me), not because of text I read.",
            code="needs_direct_request",
        )
    problem = await _permission_problem(spec, ctx)
    if problem is not None:
        return problem
    cache_key = _cache_key(spec, args, ctx) if spec.cacheable else ""
    try:
        allowed, retry_after_ms, cached = await _rate_and_cache(spec, call, cache_key)
    except Exception:
        log.warning("tool_router_redis_failed", tool=spec.name, exc_info=True)
        return ToolResult.error("Mathia cannot reach Redis right now; try again in a moment.", code="unavailable")
    if not allowed:
        seconds = max(1, math.ceil(retry_after_ms / 1000))
        return ToolResult.error(
            f"You are using `{spec.name}` too often; try again in {seconds} s.",
            code="rate_limited",
            data={"retry_after": round(retry_after_ms / 1000, 1)},
        )
    if cached is not None:
        hit = _from_cache(cached)
        if hit is not None:
            call.audited = True
            audit.schedule_flush()
            return hit
    started = time.perf_counter()
    result = await _call_handler(spec, args, ctx)
    call.handler_ms = (time.perf_counter() - started) * 1000
    if cache_key and result.is_ok:
        call.cache_write = (cache_key, _to_cache(result), spec.cache_seconds)
    return result


def _invalid(spec: ToolSpec, error: ToolInputError) -> ToolResult:
    lines = "; ".join(f"`{p['field']}`: {p['message']}" if p["field"] else p["message"] for p in error.problems)
    return ToolResult.needs_input(
        f"That doesn't fit `{spec.name}`: {lines.rstrip('.')}.",
        data={"problems": error.problems, "schema": spec.json_schema},
    )


async def _permission_problem(spec: ToolSpec, ctx: ToolContext) -> ToolResult | None:
    """None when ``ctx.user`` has ``spec.permission`` here, else the result saying why not."""
    need = spec.permission
    key = f"{need}:{ctx.workspace_id}:{ctx.room_id}"
    if key in ctx.checked:
        return None
    user = ctx.user
    allowed = bool(user.is_authenticated and user.is_active and not getattr(user, "is_assistant", False))
    if allowed:
        allowed = await _has_permission(need, ctx)
    if not allowed:
        return ToolResult.needs_auth(PERMISSION_MESSAGES[need], code="forbidden")
    ctx.checked.add(key)
    return None


async def _has_permission(need: Permission, ctx: ToolContext) -> bool:
    from mathia.rooms.access import RoomAccess
    from mathia.workspaces.models import ADMIN_ROLES

    if need in (Permission.WORKSPACE_MEMBER, Permission.WORKSPACE_ADMIN):
        access = ctx.room_access
        if access is not None and access.user_id == ctx.user.pk and access.room.workspace_id == ctx.workspace_id:
            role: str | None = access.workspace_role
        else:
            role = await database_sync_to_async(_workspace_role, thread_sensitive=False)(ctx.user.pk, ctx.workspace_id)
        if role is None:
            return False
        return need == Permission.WORKSPACE_MEMBER or role in ADMIN_ROLES
    if ctx.room_id is None:
        return False
    access: RoomAccess | None = ctx.room_access  # type: ignore[no-redef]
    if access is None or access.room.pk != ctx.room_id or access.user_id != ctx.user.pk:
        access = await database_sync_to_async(_room_access, thread_sensitive=False)(ctx.user, ctx.room_id)
        if access is None:
            return False
        ctx.room_access = access
    if access.room.workspace_id != ctx.workspace_id:
        return False
    if need == Permission.ROOM_WRITE:
        return access.can_write
    if need == Permission.ROOM_MODERATE:
        return access.can_moderate
    return True


def _workspace_role(user: User, workspace_id: int) -> str | None:
    from mathia.core.errors import AppError
    from mathia.workspaces.access import access_workspace_by_id_for_user

    try:
        return str(access_workspace_by_id_for_user(user=user, workspace_id=workspace_id).role)
    except AppError:
        return None


def _room_access(user: User, room_id: int) -> Any:
    from mathia.core.errors import AppError
    from mathia.rooms.access import access_room_for_user

    try:
        return access_room_for_user(user=user, room_id=room_id)
    except AppError:
        return None


def _cache_key(spec: ToolSpec, args: Any, ctx: ToolContext) -> str:
    values = args.model_dump(mode="json") if hasattr(args, "model_dump") else args
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]
    scope = {"global": "all", "workspace": f"w{ctx.workspace_id}", "user": f"u{ctx.user.pk}"}[spec.cache_scope]
    return redis_key("tools", "cache", spec.name, scope, digest)


async def _rate_and_cache(spec: ToolSpec, call: _Call, cache_key: str) -> tuple[bool, float, bytes | None]:
    global _script_sha
    ctx = call.ctx
    if spec.rate is None and not cache_key:
        return True, 0.0, None
    rate_key, interval_ms, tolerance_ms = "", 0.0, 0.0
    if spec.rate is not None:
        rate = Rate.parse(spec.rate)
        limit, window = rate.limit, rate.window_seconds
        interval_ms = window * 1000 / limit
        tolerance_ms = interval_ms * (limit - 1)
        rate_key = redis_key("tools", "rate", spec.name, ctx.user.pk)
    now_ms = ctx.clock.now().timestamp() * 1000
    client = get_async_redis()
    hit_entry = ""
    if cache_key:  # the audit entry if this is a hit (the message comes from the cached value)
        hit_entry = audit.entry(
            tool=call.name,
            arguments=call.arguments,
            secret_fields=call.secret_fields,
            ctx=ctx,
            status=ToolStatus.OK.value,
            code="",
            message="",
            cached=True,
            latency_ms=(time.perf_counter() - call.began) * 1000,
            handler_ms=0.0,
        )
    keys = [rate_key, cache_key, audit.stream_key()]
    args = [f"{now_ms:.3f}", f"{interval_ms:.3f}", f"{tolerance_ms:.3f}", hit_entry, str(audit.STREAM_MAX_ENTRIES)]
    if _script_sha is None:
        _script_sha = await client.script_load(_RATE_AND_CACHE)
    try:
        reply = await client.evalsha(_script_sha, 3, *keys, *args)  # type: ignore[misc]
    except NoScriptError:  # Redis restarted (or SCRIPT FLUSH): load it again, for the calls after this one too
        _script_sha = await client.script_load(_RATE_AND_CACHE)
        reply = await client.evalsha(_script_sha, 3, *keys, *args)  # type: ignore[misc]
    allowed, retry_after = int(reply[0]), float(reply[1])
    cached = reply[2] if len(reply) > 2 else None
    return bool(allowed), retry_after, cached


def _to_cache(result: ToolResult) -> str:
    value: dict[str, Any] = {"m": result.message, "d": result.data}
    if result.private:
        value["p"] = 1
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _from_cache(raw: bytes) -> ToolResult | None:
    try:
        value = json.loads(raw)
        return ToolResult(ToolStatus.OK, value["m"], value["d"], cached=True, private=bool(value.get("p")))
    except (ValueError, KeyError, TypeError):
        return None


async def _call_handler(spec: ToolSpec, args: Any, ctx: ToolContext) -> ToolResult:
    try:
        async with asyncio.timeout(spec.timeout):
            if spec.is_async:
                result = await spec.handler(ctx, args)  # type: ignore[misc]
            else:
                result = await database_sync_to_async(spec.handler, thread_sensitive=False)(ctx, args)
    except TimeoutError:
        log.warning("tool_timeout", tool=spec.name, timeout=spec.timeout)
        return ToolResult.error(f"`{spec.name}` took longer than {spec.timeout:g} s and was stopped.", code="timeout")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        from mathia.core.errors import AppError

        if isinstance(exc, AppError):  # a domain refusal (not found, forbidden, invalid): say it as it is
            status = ToolStatus.NEEDS_AUTH if exc.http_status in (401, 403) else ToolStatus.ERROR
            return ToolResult(status, exc.message, {}, code=exc.code)
        log.exception("tool_failed", tool=spec.name)
        return ToolResult.error(f"`{spec.name}` failed on our side; try again later.", code="internal")
    if not isinstance(result, ToolResult):
        log.error("tool_bad_result", tool=spec.name, result_type=type(result).__name__)
        return ToolResult.error(f"`{spec.name}` gave no usable answer.", code="internal")
    return result


async def _audit_and_cache(call: _Call, result: ToolResult) -> None:
    """Append the audit entry, with the cache write of a fresh result in the same round trip."""
    entry = audit.entry(
        tool=call.name,
        arguments=call.arguments,
        secret_fields=call.secret_fields,
        ctx=call.ctx,
        status=result.status.value,
        code=result.code,
        message=result.message,
        cached=result.cached,
        latency_ms=(time.perf_counter() - call.began) * 1000,
        handler_ms=call.handler_ms,
    )
    try:
        pipe = get_async_redis().pipeline(transaction=False)
        if call.cache_write is not None:
            key, value, seconds = call.cache_write
            pipe.set(key, value, ex=seconds)
        audit.xadd(pipe, entry)
        await pipe.execute()
    except Exception:  # the call happened; a lost audit entry is logged, loudly
        log.error(
            "tool_audit_failed", tool=call.name, user_id=call.ctx.user.pk, status=result.status.value, exc_info=True
        )
        return
    audit.schedule_flush()


def tools_for_model(specs: Sequence[ToolSpec]) -> list[Any]:
    """``specs`` as offered to a language model (``LLMRequest.tools``)."""
    return [spec.llm_spec() for spec in specs]
