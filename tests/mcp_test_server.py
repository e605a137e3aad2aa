"""A small external MCP server for the tests, built with the SDK's own MCPServer.

    python tests/mcp_test_server.py stdio
    python tests/mcp_test_server.py http PORT [REQUIRED_HEADER=VALUE]

Over HTTP it serves Streamable HTTP at /mcp and, given REQUIRED_HEADER=VALUE, answers 401 to
requests without that header (to prove Mathia sends a registered auth header).
"""

from __future__ import annotations

import asyncio
import sys

import mcp_types
from mcp.server import MCPServer

ToolAnnotations = mcp_types.ToolAnnotations

server = MCPServer("test-tools", version="1.0")


@server.tool(description="Add two whole numbers.", annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Repeat some text.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Always fails.")
def explode() -> str:
    raise ValueError("the tool exploded on purpose")


@server.tool(description="Sleep, then answer.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def main() -> None:
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    import uvicorn
    from starlette.responses import JSONResponse

    port = int(sys.argv[2])
    required = sys.argv[3].split("=", 1) if len(sys.argv) > 3 else None
    from mcp.server.transport_security import TransportSecuritySettings

    # Reached under test host names too (Mathia pins the address it resolved and keeps the name).
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    inner = server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and required is not None:
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if headers.get(required[0].lower()) != required[1]:
                await JSONResponse({"error": "missing key"}, status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
