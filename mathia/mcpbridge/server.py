"""Mathia's MCP server: the tool router over Streamable HTTP at ``/mcp``.

:class:`McpEndpoint` is an ASGI app mounted beside Django (``mathia/asgi.py``). Each request
is authenticated afresh with a personal access token (``Authorization: Bearer ...``), counted
against the token's request rate, and handed to the SDK's session manager in **stateless**
mode: no MCP session lives in one process, so any web process can answer any request (the
production image runs several). The SDK's low-level server then lists and calls tools through
:mod:`mathia.tools.router` as the token's owner, in the token's workspace, with ``via="mcp"``:
the same access checks, rate limits, timeouts and audit as a person's slash command.

Room-scoped tools (``Permission.ROOM_*``) act on ``ToolContext.room_id``; over MCP there is
no current room, so their schema gains a required ``room_id`` argument that becomes it.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import mcp_types as types
import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from mathia.core.errors import AppError, RateLimited, as_app_error
from mathia.core.ratelimit import Rate, check_rate
from mathia.mcpbridge.access import McpPrincipal, authenticate_token
from mathia.tools.registry import Permission, ToolContext, ToolResult, ToolSpec, registry
from mathia.tools.router import invoke, list_tools, resolve, source_tools

log = structlog.get_logger(__name__)

MCP_PATH = "/mcp"
_SCOPE_KEY = "mathia.mcp_principal"
_ROOM_PERMISSIONS = frozenset({Permission.ROOM_READ, Permission.ROOM_WRITE, Permission.ROOM_MODERATE})
ROOM_ID_SCHEMA = {
    "type": "integer",
    "minimum": 1,
    "description": "The id of the Mathia room to act in (rooms_list gives them).",
}
# JSON-RPC error codes for refusals before any MCP method runs (server-defined range).
UNAUTHENTICATED = -32001
FORBIDDEN = -32003
TOO_MANY_REQUESTS = -32029


# --- the MCP handlers -----------------------------------------------------------------------
def _principal(ctx: ServerRequestContext[Any, Any]) -> McpPrincipal:
    request = ctx.request
    principal = request.scope.get(_SCOPE_KEY) if request is not None else None
    if not isinstance(principal, McpPrincipal):  # only reachable if the endpoint were bypassed
        raise MCPError(UNAUTHENTICATED, "Not authenticated.")
    return principal


def _context(principal: McpPrincipal, *, room_id: int | None = None) -> ToolContext:
    return ToolContext(user=principal.user, workspace_id=principal.workspace_id, room_id=room_id, via="mcp")


def _is_room_tool(spec: ToolSpec) -> bool:
    return spec.permission in _ROOM_PERMISSIONS


def _mcp_schema(spec: ToolSpec) -> dict[str, Any]:
    schema = dict(spec.json_schema)
    if _is_room_tool(spec):
        properties = dict(schema.get("properties") or {})
        properties.setdefault("room_id", ROOM_ID_SCHEMA)
        required = [name for name in schema.get("required") or [] if name != "room_id"]
        schema.update(type="object", properties=properties, required=["room_id", *required])
    return schema


async def mcp_tool_specs(principal: McpPrincipal) -> list[ToolSpec]:
    """What the token's owner may call here: the router's list, plus the room tools.

    The router leaves out room tools when the context has no room (it cannot check a room
    that is not named); over MCP the room comes with each call, so they are listed and the
    room is checked then, by the router, for that room.
    """
    ctx = _context(principal)
    from_sources = await database_sync_to_async(source_tools, thread_sensitive=False)(principal.workspace_id)
    specs = {spec.name: spec for spec in await list_tools(ctx, from_sources=from_sources)}
    room_tools = [s for s in [*registry.tools(), *from_sources] if s.model_visible and _is_room_tool(s)]
    for spec in room_tools:
        specs.setdefault(spec.name, spec)
    return sorted(specs.values(), key=lambda spec: spec.name)


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    specs = await mcp_tool_specs(_principal(ctx))
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name=spec.name,
                title=spec.title or None,
                description=spec.description,
                input_schema=_mcp_schema(spec),
                annotations=types.ToolAnnotations(read_only_hint=not spec.side_effects),
            )
            for spec in specs
        ]
    )


async def _call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    principal = _principal(ctx)
    arguments: dict[str, Any] = dict(params.arguments or {})
    found = await resolve(params.name, workspace_id=principal.workspace_id)
    spec = found.spec
    if spec is not None and not spec.model_visible:  # not listed, so not callable either
        raise MCPError(types.INVALID_PARAMS, _unknown(params.name))
    room_id = None
    if spec is not None and _is_room_tool(spec):
        room_id = arguments.pop("room_id", None)
        if not isinstance(room_id, int) or isinstance(room_id, bool) or room_id < 1:
            return _result(
                ToolResult.needs_input(
                    f"`{params.name}` acts in a room: give `room_id`, the id of a room you can see "
                    "(rooms_list gives them).",
                    data={"problems": [{"field": "room_id", "message": "a positive integer is required"}]},
                )
            )
    result = await invoke(params.name, arguments, ctx=_context(principal, room_id=room_id), found=found)
    if result.code == "unknown_tool":
        # The protocol's answer to an unknown tool is an error, not a tool result.
        raise MCPError(types.INVALID_PARAMS, _unknown(params.name))
    return _result(result)


def _unknown(name: str) -> str:
    return f"Unknown tool: {name}. tools/list shows the tools you can call."


def _result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.message)],
        structured_content=result.as_dict(),
        is_error=not result.is_ok,
    )


def build_server() -> Server[Any]:
    return Server(
        "mathia",
        version="1",
        title="Mathia",
        instructions="Mathia's tools, as the owner of the access token, in the token's workspace.",
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        # No tool declares Mcp-Param headers; without this the SDK would run tools/list
        # before every call to look for declarations.
        get_tool_input_schema=lambda _name: None,
    )


# --- the HTTP endpoint ----------------------------------------------------------------------
class McpEndpoint:
    """ASGI app for ``/mcp``: authenticate, rate-limit, then the SDK's stateless manager.

    The manager needs a running task group; uvicorn runs with ``--lifespan off``, so each event
    loop starts its own manager on its first request and keeps it for the loop's life.
    """

    def __init__(self) -> None:
        self._managers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Running] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if not _allowed_host(headers.get("host", "")):
            # What Django does for every other path (this one does not pass through Django).
            await _refuse(scope, receive, send, AppError("Invalid Host header.", code="bad_host", http_status=400))
            return
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await _refuse(
                scope,
                receive,
                send,
                AppError(
                    "Send a Mathia access token as 'Authorization: Bearer <token>' (Settings → Access tokens).",
                    code="unauthenticated",
                    http_status=401,
                ),
            )
            return
        try:
            principal = await database_sync_to_async(authenticate_token, thread_sensitive=False)(token=token.strip())
            await database_sync_to_async(_check_request_rate, thread_sensitive=False)(principal.token_id)
        except Exception as exc:
            error = as_app_error(exc)
            if error is None:
                raise
            await _refuse(scope, receive, send, error)
            return
        manager = await self._manager()
        await manager.handle_request({**scope, _SCOPE_KEY: principal}, receive, send)

    async def _manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        running = self._managers.get(loop)
        if running is None:
            running = _Running()
            self._managers[loop] = running
        await running.started()
        return running.manager


class _Running:
    """One session manager running in a background task of one event loop."""

    def __init__(self) -> None:
        self.manager = StreamableHTTPSessionManager(app=build_server(), stateless=True, json_response=True)
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mcp-session-manager")

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await asyncio.Event().wait()  # until the process (its event loop) ends

    async def started(self) -> None:
        if not self._ready.is_set():
            waiter = asyncio.ensure_future(self._ready.wait())
            done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                self._task.result()  # the manager failed to start: raise its error


def _allowed_host(host: str) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _check_request_rate(token_id: int) -> None:
    check_rate(
        scope="mcp-token",
        subject=token_id,
        rate=Rate.parse(settings.MCP_REQUEST_RATE_LIMIT),
        what="MCP requests",
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, error: AppError) -> None:
    """The refusal as HTTP status plus a JSON-RPC error body (which the SDK client surfaces)."""
    code = {401: UNAUTHENTICATED, 403: FORBIDDEN, 429: TOO_MANY_REQUESTS}.get(error.http_status, types.INTERNAL_ERROR)
    headers = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="mathia", error="invalid_token"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    response = JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": error.message, "data": error.as_dict()}},
        status_code=error.http_status,
        headers=headers,
    )
    await response(scope, receive, send)
