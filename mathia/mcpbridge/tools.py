"""External MCP servers' tools in the tool router, per workspace.

:class:`ExternalMcpTools` is a :class:`~mathia.tools.registry.ToolSource`: for a workspace it
lists the enabled tools of its enabled servers, from the database (never the network), as
``mcp_<server>_<tool>`` specs. Calling one goes through the router like any tool (permission,
rate limit, timeout, audit); the handler opens a connection to the server, calls the tool,
and turns the answer, or the server being down, into a :class:`ToolResult`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import structlog
from django.conf import settings
from django.db import connection

from mathia.core.errors import AppError
from mathia.mcpbridge import client
from mathia.mcpbridge.actions import server_record_failure, server_record_up
from mathia.mcpbridge.models import ExternalServer, ExternalTool
from mathia.tools.registry import (
    TOOL_NAME,
    Permission,
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    register_source,
)

log = structlog.get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def router_tool_name(server_name: str, tool_name: str) -> str | None:
    """``mcp_<server>_<tool>``, or None when that is not a valid router name.

    Server names have no underscores, so the name splits back unambiguously.
    """
    name = f"mcp_{server_name}_{_UNSAFE.sub('_', tool_name)}"
    return name if TOOL_NAME.match(name) else None


class ExternalMcpTools:
    name = "mcp"

    def tools(self, workspace_id: int) -> Sequence[ToolSpec]:
        rows = _enabled_tools(workspace_id)
        specs = []
        seen: set[str] = set()
        for tool in rows:
            spec = _spec(tool)
            if spec is not None and spec.name not in seen:
                seen.add(spec.name)
                specs.append(spec)
        return specs


@dataclass(frozen=True)
class _EnabledTool:
    server_id: int
    server_name: str
    name: str
    description: str
    input_schema: object
    read_only: bool


_TOOL = ExternalTool._meta
_SERVER = ExternalServer._meta
# Read for every answer a model writes, so written out: the ORM's compilation of the same
# query cost about a sixth of an answer's CPU before the provider was asked (docs/performance.md).
_ENABLED_TOOLS_SQL = (
    f"SELECT s.id, s.name, t.name, t.description, t.input_schema, t.read_only "  # noqa: S608 (model tables, no input)
    f"FROM {_TOOL.db_table} t JOIN {_SERVER.db_table} s ON s.id = t.server_id "
    "WHERE s.workspace_id = %s AND s.enabled AND t.enabled AND t.available "
    "ORDER BY s.name, t.name"
)


def _enabled_tools(workspace_id: int) -> list[_EnabledTool]:
    """The enabled, still listed tools of the workspace's enabled servers, by server then name."""
    with connection.cursor() as cursor:
        cursor.execute(_ENABLED_TOOLS_SQL, [workspace_id])
        rows = cursor.fetchall()
    return [
        _EnabledTool(
            server_id=server_id,
            server_name=server_name,
            name=name,
            description=description,
            # Django reads JSON columns as text on both backends; decode as its JSONField would.
            input_schema=json.loads(schema) if isinstance(schema, str) else schema,
            read_only=bool(read_only),
        )
        for server_id, server_name, name, description, schema, read_only in rows
    ]


def _spec(tool: _EnabledTool) -> ToolSpec | None:
    name = router_tool_name(tool.server_name, tool.name)
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    if name is None or schema.get("type", "object") != "object":
        return None
    remote_name = tool.name
    server_id = tool.server_id
    server_name = tool.server_name

    async def handler(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await _call(ctx, server_id=server_id, remote_name=remote_name, arguments=args)

    return ToolSpec(
        name=name,
        title=f"{server_name}: {tool.name}",
        description=(tool.description or f"{tool.name} from the MCP server {server_name}.")[:1000],
        input_schema={**schema, "type": "object"},
        validator=_validator(schema),
        handler=handler,
        permission=Permission.WORKSPACE_MEMBER,
        rate="30/m",
        # Past our own connect-and-answer limit, so our clearer "did not answer" wins.
        timeout=settings.MCP_CLIENT_TIMEOUT + 2,
        # Unless an admin marked it read-only (the server's own hint is not trusted), a tool may
        # change things: it needs the asker's own words, not a model's reading of a room.
        sensitive=not tool.read_only,
        side_effects=not tool.read_only,
        progress=f"Asking {server_name}…",
        source=f"mcp:{server_name}",
    )


def _validator(schema: dict[str, Any]) -> Any:
    try:
        checker = jsonschema.validators.validator_for(schema)(schema)
    except jsonschema.SchemaError:
        checker = None

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        if checker is None:
            return arguments
        problems = [
            {"field": ".".join(str(p) for p in error.absolute_path), "message": error.message}
            for error in sorted(checker.iter_errors(arguments), key=lambda e: list(e.absolute_path))[:10]
        ]
        if problems:
            raise ToolInputError(problems)
        return arguments

    return validate


async def _call(ctx: ToolContext, *, server_id: int, remote_name: str, arguments: dict[str, Any]) -> ToolResult:
    server = await ctx.run_sync(_server_in_workspace, server_id, ctx.workspace_id)
    if server is None:
        return ToolResult.error("That MCP server is no longer registered.", code="not_found")
    try:
        endpoint = await ctx.run_sync(client.endpoint_for, server)
        result = await client.call_tool(endpoint, remote_name, arguments)
    except client.McpServerDown as down:
        await ctx.run_sync(server_record_failure, server_id=server_id, error=down.message, clock=ctx.clock)
        return ToolResult.error(down.message, code="upstream_unavailable", data={"server": server.name})
    except AppError as error:
        return ToolResult.error(error.message, code=error.code, data={"server": server.name})
    if server.state != "ok":
        await ctx.run_sync(server_record_up, server_id=server_id, clock=ctx.clock)
    data: dict[str, Any] = {"server": server.name, "tool": remote_name}
    if result.structured is not None:
        data["structured"] = result.structured
    text = result.text or ("(no text)" if not result.is_error else "The tool failed without saying why.")
    if result.is_error:
        return ToolResult.error(f"{server.name} → {remote_name}: {text}", code="upstream", data=data)
    return ToolResult.ok(text, data=data)


def _server_in_workspace(server_id: int, workspace_id: int) -> ExternalServer | None:
    return ExternalServer.objects.filter(pk=server_id, workspace_id=workspace_id, enabled=True).first()


register_source(ExternalMcpTools())
