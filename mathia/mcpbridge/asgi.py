"""Path routing in front of Django: ``/mcp`` goes to the MCP endpoint, the rest to Django."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mathia.mcpbridge.server import MCP_PATH, McpEndpoint


def with_mcp_endpoint(django_app: Any) -> ASGIApp:
    endpoint = McpEndpoint()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == MCP_PATH or path == MCP_PATH + "/"):
            await endpoint(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app
