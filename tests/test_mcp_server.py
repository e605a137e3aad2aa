"""Mathia's MCP server, met as an MCP client meets it: the SDK's own Client against a real server process."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx2
import mcp_types as types
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from mathia.chat.actions import message_send
from mathia.chat.models import Message
from mathia.mcpbridge.actions import token_create, token_revoke, workspace_mcp_set_enabled
from mathia.mcpbridge.models import AccessToken
from mathia.tools.models import ToolCall
from mathia.workspaces.models import Membership
from tests.chat_helpers import make_chat_team
from tests.processes import running_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


@asynccontextmanager
async def mcp_client(base: str, token: str | None, *, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(15))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode, cache=None) as client:
        yield client


async def refusal(base: str, token: str) -> MCPError:
    """The error the SDK client raises when Mathia refuses ``token`` (out of its task groups)."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 (the SDK wraps it in exception groups)
        async with mcp_client(base, token) as client:
            await client.list_tools()
    exc: BaseException = raised.value
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), exc
    return exc


def _team_with_mcp() -> dict[str, Any]:
    team = make_chat_team()
    owner = Membership.objects.get(workspace=team["workspace"], user=team["ada"])
    workspace_mcp_set_enabled(actor=owner, enabled=True)
    slug = team["workspace"].slug
    team["bob_token"] = token_create(user=team["bob"], workspace_slug=slug, name="Claude", lifetime_days=30).token
    team["cy_token"] = token_create(user=team["cy"], workspace_slug=slug, name="agent", lifetime_days=None).token
    message_send(user=team["ada"], room_id=team["general"].pk, body="the deploy is at noon", client_id="t-1")
    message_send(user=team["ada"], room_id=team["secret"].pk, body="the secret plan", client_id="t-2")
    return team


async def _calls(user_id: int, count: int) -> list[dict[str, Any]]:
    """The audit rows of ``user_id``'s calls, once ``count`` have reached the database."""
    deadline = time.monotonic() + 10
    while True:
        rows = await database_sync_to_async(
            lambda: list(ToolCall.objects.filter(user_id=user_id).order_by("created_at").values())
        )()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def test_an_mcp_client_lists_and_calls_tools_as_the_token_owner() -> None:
    team = await database_sync_to_async(_team_with_mcp)()
    general, secret = team["general"], team["secret"]
    with running_server() as base:
        async with mcp_client(base, team["bob_token"]) as client:
            listing = await client.list_tools()
            tools = {tool.name: tool for tool in listing.tools}
            assert {"rooms_list", "room_messages", "message_send"} <= set(tools)
            assert "help" not in tools  # not model-visible, so not offered to agents either
            schema = tools["room_messages"].input_schema
            assert schema["required"] == ["room_id"]
            assert schema["properties"]["room_id"]["type"] == "integer"
            assert schema["properties"]["limit"] == {
                "default": 20,
                "description": "How many of the newest messages (1 to 50).",
                "maximum": 50,
                "minimum": 1,
                "title": "Limit",
                "type": "integer",
            }
            assert tools["message_send"].input_schema["required"] == ["room_id", "body"]
            assert tools["message_send"].annotations.read_only_hint is False
            assert tools["rooms_list"].annotations.read_only_hint is True

            rooms = await client.call_tool("rooms_list", {})
            assert rooms.is_error is False
            assert {r["name"] for r in rooms.structured_content["data"]["rooms"]} == {"general", "secret"}

            read = await client.call_tool("room_messages", {"room_id": general.pk, "limit": 5})
            assert read.is_error is False
            assert "Ada: the deploy is at noon" in read.content[0].text
            assert read.structured_content["status"] == "ok"

            sent = await client.call_tool("message_send", {"room_id": general.pk, "body": "sent from my agent"})
            assert sent.is_error is False, sent.content
            message_id = sent.structured_content["data"]["message_id"]
            stored = await database_sync_to_async(Message.objects.select_related("author").get)(pk=message_id)
            assert (stored.author_id, stored.room_id, stored.body) == (team["bob"].pk, general.pk, "sent from my agent")

            bad = await client.call_tool("room_messages", {"room_id": general.pk, "limit": 500})
            assert bad.is_error is True
            assert bad.structured_content["status"] == "needs_input"
            assert "`limit`" in bad.content[0].text
            assert bad.structured_content["data"]["problems"][0]["field"] == "limit"

            no_room = await client.call_tool("room_messages", {})
            assert no_room.is_error is True
            assert "room_id" in no_room.content[0].text

            with pytest.raises(MCPError) as unknown:
                await client.call_tool("launch_rockets", {})
            assert unknown.value.code == types.INVALID_PARAMS
            assert "Unknown tool: launch_rockets" in unknown.value.message
            with pytest.raises(MCPError, match="Unknown tool: help"):  # registered, but not offered to agents
                await client.call_tool("help", {})

        # Cy is in the workspace but not in the private #secret: refused, and told nothing about it.
        async with mcp_client(base, team["cy_token"]) as client:
            refused = await client.call_tool("room_messages", {"room_id": secret.pk})
            assert refused.is_error is True
            assert refused.structured_content["code"] == "forbidden"
            assert "secret plan" not in json.dumps(refused.structured_content)
            missing = await client.call_tool("room_messages", {"room_id": 999_999})
            assert missing.content[0].text == refused.content[0].text
            posted = await client.call_tool("message_send", {"room_id": secret.pk, "body": "let me in"})
            assert posted.is_error is True
        assert not await database_sync_to_async(Message.objects.filter(body="let me in").exists)()

        # A client of the earlier, handshake revision (Claude Desktop's today) works the same.
        async with mcp_client(base, team["bob_token"], mode="legacy") as client:
            assert client.protocol_version < "2026"
            legacy = await client.call_tool("rooms_list", {})
            assert legacy.is_error is False

        # Every call went through the router, as Bob, and is in the audit log (the server
        # moves its audit stream to the database a second after the calls).
        calls = await _calls(team["bob"].pk, 6)
        by_tool = [(c["tool"], c["via"], c["status"]) for c in calls]
        assert ("message_send", "mcp", "ok") in by_tool
        assert ("room_messages", "mcp", "needs_input") in by_tool
        assert ("launch_rockets", "mcp", "error") in by_tool
        send = next(c for c in calls if c["tool"] == "message_send")
        assert send["room_id"] == general.pk
        assert send["workspace_id"] == team["workspace"].pk
        cy_calls = await _calls(team["cy"].pk, 3)
        assert {(c["tool"], c["status"]) for c in cy_calls} >= {("room_messages", "needs_auth")}
        # Each token records when it was last used.
        bob_token = await database_sync_to_async(AccessToken.objects.get)(user=team["bob"])
        assert bob_token.last_used_at is not None


def _post(
    base: str, token: str | None, message: dict[str, Any] | None = None, **extra_headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    message = message or {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    body = json.dumps(message).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **extra_headers}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base}/mcp", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), {k.lower(): v for k, v in error.headers.items()}


async def test_refused_tokens_and_a_workspace_with_mcp_off_get_clear_errors() -> None:
    team = await database_sync_to_async(_team_with_mcp)()
    with running_server() as base:
        status, body, headers = await asyncio.to_thread(_post, base, None)
        assert status == 401
        assert body["error"]["data"]["code"] == "unauthenticated"
        assert "Authorization: Bearer" in body["error"]["message"]
        assert headers["www-authenticate"].startswith("Bearer")

        status, body, _ = await asyncio.to_thread(_post, base, team["cy_token"], None, Host="mathia.evil.example")
        assert (status, body["error"]["data"]["code"]) == (400, "bad_host")  # ALLOWED_HOSTS, as Django checks

        status, body, _ = await asyncio.to_thread(_post, base, "mathia_pat_" + "x" * 43)
        assert (status, body["error"]["data"]["code"]) == (401, "unauthenticated")

        # Revoked: the SDK client is refused with Mathia's message.
        bob_row = await database_sync_to_async(AccessToken.objects.get)(user=team["bob"])
        await database_sync_to_async(token_revoke)(user=team["bob"], token_id=bob_row.pk)
        error = await refusal(base, team["bob_token"])
        assert error.message == "This access token was revoked."
        assert error.data["code"] == "token_revoked"
        status, body, _ = await asyncio.to_thread(_post, base, team["bob_token"])
        assert (status, body["error"]["data"]["code"]) == (401, "token_revoked")

        # Expired.
        await database_sync_to_async(AccessToken.objects.filter(user=team["cy"]).update)(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
        status, body, _ = await asyncio.to_thread(_post, base, team["cy_token"])
        assert (status, body["error"]["data"]["code"]) == (401, "token_expired")

        # MCP turned off by an admin: a valid token is refused until it is on again.
        def fresh_token_with_mcp_off() -> str:
            owner = Membership.objects.get(workspace=team["workspace"], user=team["ada"])
            workspace_mcp_set_enabled(actor=owner, enabled=False)
            return token_create(
                user=team["ada"], workspace_slug=team["workspace"].slug, name="x", lifetime_days=7
            ).token

        ada_token = await database_sync_to_async(fresh_token_with_mcp_off)()
        error = await refusal(base, ada_token)
        assert "MCP is turned off for the workspace Acme" in error.message
        status, body, _ = await asyncio.to_thread(_post, base, ada_token)
        assert (status, body["error"]["data"]["code"]) == (403, "mcp_disabled")


async def test_any_web_process_answers_any_request_and_each_token_has_a_request_rate() -> None:
    """Stateless: a client that initialized with one process is served by another, without a session."""
    team = await database_sync_to_async(_team_with_mcp)()
    token = team["bob_token"]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "rooms_list", "arguments": {}}}
    env = {"MCP_REQUEST_RATE_LIMIT": "3/h"}  # an hour: no window boundary mid-test
    with running_server(env=env) as first, running_server(env=env) as second:
        status, body, headers = await asyncio.to_thread(_post, first, token, initialize)
        assert status == 200, body
        assert body["result"]["serverInfo"]["name"] == "mathia"
        assert "mcp-session-id" not in headers  # nothing to stick to one process
        status, body, _ = await asyncio.to_thread(_post, second, token, call, **{"MCP-Protocol-Version": "2025-06-18"})
        assert status == 200, body
        assert {r["name"] for r in body["result"]["structuredContent"]["data"]["rooms"]} == {"general", "secret"}
        # The rate is per token, across processes (Redis): the third request passes, the fourth waits.
        status, _, _ = await asyncio.to_thread(_post, first, token)
        assert status == 200
        status, body, headers = await asyncio.to_thread(_post, second, token)
        assert status == 429
        assert body["error"]["data"]["code"] == "rate_limited"
        assert "too fast" in body["error"]["message"]
        assert int(headers["retry-after"]) >= 1
        # Another token is not held back.
        status, _, _ = await asyncio.to_thread(_post, second, team["cy_token"])
        assert status == 200
