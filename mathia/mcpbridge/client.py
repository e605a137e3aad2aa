"""Mathia as an MCP client: list and call the tools of an external server.

Each operation opens its own connection (and, for stdio, its own process) and closes it,
bounded by one timeout. Nothing is kept open between calls, so any web process or worker can
make any call, a server that went down and came back needs no reconnect logic, and a hung
server costs one request its timeout, not a stuck pool. The price is a connection (or a
process start) per call; docs/architecture.md says why that is the right trade here.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp_types as types
from django.conf import settings
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mathia.core.errors import AppError
from mathia.mcpbridge.crypto import decrypt_secret
from mathia.mcpbridge.models import ExternalServer, Transport
from mathia.mcpbridge.network import PinnedTransport

CLIENT_INFO = types.Implementation(name="mathia", version="1")


class McpServerDown(AppError):
    """The external server could not be reached, or did not answer in time."""

    code = "mcp_server_down"
    http_status = 502


@dataclass(frozen=True)
class Endpoint:
    """What it takes to reach one external server (secrets decrypted, in memory only)."""

    server_id: int
    name: str
    transport: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    command_line: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False


@dataclass(frozen=True)
class RemoteResult:
    is_error: bool
    text: str
    structured: dict[str, Any] | None


def endpoint_for(server: ExternalServer) -> Endpoint:
    """The endpoint of ``server`` (reads the database and decrypts: call it outside the event loop)."""
    headers = {}
    if server.has_auth_header:
        headers[server.auth_header_name] = decrypt_secret(server.auth_header_value_encrypted)
    return Endpoint(
        server_id=server.pk,
        name=server.name,
        transport=server.transport,
        url=server.url,
        headers=headers,
        command_line=_stdio_command_line(server) if server.transport == Transport.STDIO else (),
    )


def _stdio_command_line(server: ExternalServer) -> tuple[str, ...]:
    argv = settings.MCP_STDIO_SERVERS.get(server.command)
    if not argv:
        raise McpServerDown(
            f"The local server {server.command} is no longer offered by the operator (MCP_STDIO_SERVERS).",
            server=server.name,
        )
    return tuple(argv)


async def list_tools(endpoint: Endpoint, *, timeout: float | None = None) -> list[ListedTool]:
    async def run(client: Client) -> list[ListedTool]:
        listed: list[ListedTool] = []
        cursor: str | None = None
        for _ in range(20):  # a paginator that never ends cannot hang us
            page = await client.list_tools(cursor=cursor)
            listed.extend(
                ListedTool(
                    name=tool.name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema),
                    read_only=bool(tool.annotations and tool.annotations.read_only_hint),
                )
                for tool in page.tools
            )
            cursor = page.next_cursor
            if not cursor:
                break
        return listed

    return await _with_client(endpoint, run, timeout=timeout)


async def call_tool(
    endpoint: Endpoint, name: str, arguments: dict[str, Any], *, timeout: float | None = None
) -> RemoteResult:
    async def run(client: Client) -> RemoteResult:
        result = await client.call_tool(name, arguments)
        text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
        structured = result.structured_content if isinstance(result.structured_content, dict) else None
        return RemoteResult(is_error=bool(result.is_error), text=text, structured=structured)

    return await _with_client(endpoint, run, timeout=timeout)


async def _with_client(endpoint: Endpoint, run: Any, *, timeout: float | None) -> Any:
    limit = timeout if timeout is not None else settings.MCP_CLIENT_TIMEOUT
    statuses: list[int] = []
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(limit):
                async with _connect(endpoint, errlog, statuses) as client:
                    return await run(client)
        except Exception as exc:
            raise _failure(endpoint, _innermost(exc), limit=limit, statuses=statuses, errlog=errlog) from None


def _failure(endpoint: Endpoint, exc: BaseException, *, limit: float, statuses: list[int], errlog: Any) -> AppError:
    if isinstance(exc, AppError):
        return exc
    name = endpoint.name
    if isinstance(exc, TimeoutError):
        return McpServerDown(f"The MCP server {name} did not answer within {limit:g} s.", server=name)
    failed = [status for status in statuses if status >= 400]
    if failed:
        hint = " (check its auth header)" if failed[-1] in (401, 403) else ""
        return McpServerDown(f"The MCP server {name} answered HTTP {failed[-1]}{hint}.", server=name)
    said = _stderr_tail(errlog)
    if said:  # a local command that failed: what it wrote says more than "connection closed"
        return McpServerDown(f"The MCP server {name} stopped; the process said: {said}", server=name)
    if isinstance(exc, MCPError):
        return McpServerDown(f"The MCP server {name} refused the request: {_short(exc.message)}", server=name)
    return McpServerDown(f"The MCP server {name} is not reachable: {describe_failure(exc)}", server=name)


def _stderr_tail(errlog: Any) -> str:
    if errlog is None:
        return ""
    with contextlib.suppress(OSError, ValueError):
        errlog.seek(0)
        lines = [line for line in errlog.read().splitlines() if line.strip()]
        return _short(lines[-1]) if lines else ""
    return ""


def _innermost(exc: BaseException) -> BaseException:
    """The first leaf of the exception groups the SDK's task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@contextlib.asynccontextmanager
async def _connect(endpoint: Endpoint, errlog: Any, statuses: list[int]) -> AsyncIterator[Client]:
    if endpoint.transport == Transport.STDIO:
        # The child gets the SDK's short list of safe variables (PATH, HOME, ...), never
        # Mathia's own environment with its database URL and keys.
        params = StdioServerParameters(command=endpoint.command_line[0], args=list(endpoint.command_line[1:]))
        async with Client(stdio_client(params, errlog=errlog), client_info=CLIENT_INFO, cache=None) as client:
            yield client
        return

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    # As the SDK's create_mcp_http_client, plus a hook that keeps each status, so a refusal is
    # reported as "HTTP 401" rather than the transport's generic "error response".
    http = httpx2.AsyncClient(
        headers=dict(endpoint.headers),
        timeout=httpx2.Timeout(settings.MCP_CLIENT_TIMEOUT),
        event_hooks={"response": [record]},
        transport=PinnedTransport(),
    )
    transport = streamable_http_client(endpoint.url, http_client=http)
    async with http, Client(transport, client_info=CLIENT_INFO, cache=None) as client:
        yield client


def describe_failure(exc: BaseException) -> str:
    """A short, secret-free reason: the kind of error (never a URL's credentials: none are allowed)."""
    exc = _innermost(exc)
    if isinstance(exc, httpx2.ConnectError):
        return "connection refused or host not found."
    if isinstance(exc, FileNotFoundError):
        return "the command was not found."
    return _short(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__ + "."


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
