"""Mathia as an MCP client: a small SDK MCPServer started by the test, over Streamable HTTP and stdio,
its tools registered by an admin and called through the tool router."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from mathia.embedded.redis import free_port
from mathia.mcpbridge.actions import server_refresh, server_register, tool_set_enabled, tool_set_read_only
from mathia.mcpbridge.client import McpServerDown
from mathia.mcpbridge.models import ExternalServer, ExternalTool, ServerState
from mathia.tools import audit
from mathia.tools.models import ToolCall
from mathia.tools.registry import ToolContext, ToolResult
from mathia.tools.router import invoke_sync, list_tools
from mathia.workspaces.models import Membership
from tests.chat_helpers import make_team
from tests.helpers import assert_error, make_user
from tests.processes import PROJECT_ROOT, stop_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


@pytest.fixture(autouse=True)
def _servers_on_this_machine(settings: Any) -> None:
    """The test MCP servers listen on 127.0.0.1, which production refuses by default."""
    settings.MCP_CLIENT_PRIVATE_NETWORKS = True


TEST_SERVER = str(PROJECT_ROOT / "tests" / "mcp_test_server.py")
SECRET = "s3cret-key-for-the-test-server"


@pytest.fixture
def http_server() -> Iterator[str]:
    """The test MCP server over Streamable HTTP, refusing requests without X-Api-Key: SECRET."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, TEST_SERVER, "http", str(port), f"X-Api-Key={SECRET}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            break  # it answers (404 or 401): up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(process.stdout.read().decode() if process.stdout else "no output") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


def _admin_and_member() -> tuple[Membership, Any]:
    workspace, (ada, bob) = make_team(2)
    return Membership.objects.get(workspace=workspace, user=ada), bob


def _call(name: str, arguments: dict[str, Any], *, user: Any, workspace_id: int, via: str = "slash") -> ToolResult:
    return invoke_sync(name, arguments, ctx=ToolContext(user=user, workspace_id=workspace_id, via=via))  # type: ignore[arg-type]


def test_an_http_servers_tools_run_through_the_router_with_its_auth_header(http_server: str) -> None:
    admin, bob = _admin_and_member()
    workspace_id = admin.workspace_id
    server = server_register(
        actor=admin,
        name="calc",
        transport="http",
        url=http_server,
        auth_header_name="X-Api-Key",
        auth_header_value=SECRET,
    )
    stored = ExternalServer.objects.get(pk=server.pk)
    assert SECRET not in stored.auth_header_value_encrypted  # encrypted at rest
    assert server_refresh(server=stored) is None
    stored.refresh_from_db()
    assert stored.state == ServerState.OK
    tools = {tool.name: tool for tool in stored.tools.all()}
    assert set(tools) == {"add", "echo", "explode", "slow"}
    assert all(tool.enabled for tool in tools.values())  # the admin's first listing: all on
    assert tools["add"].input_schema["required"] == ["a", "b"]

    tool_set_enabled(actor=admin, server=stored, tool_id=tools["echo"].pk, enabled=False)
    listed = {spec.name: spec for spec in _list(bob, workspace_id)}
    assert {"mcp_calc_add", "mcp_calc_explode", "mcp_calc_slow"} <= set(listed)
    assert "mcp_calc_echo" not in listed
    assert listed["mcp_calc_add"].json_schema["properties"]["a"]["type"] == "integer"

    result = _call("mcp_calc_add", {"a": 2, "b": 40}, user=bob, workspace_id=workspace_id)
    assert result.is_ok, result
    assert result.message == "42"
    assert result.data["structured"] == {"result": 42}

    bad = _call("mcp_calc_add", {"a": "two"}, user=bob, workspace_id=workspace_id)
    assert bad.status == "needs_input"
    assert {p["field"] for p in bad.data["problems"]} == {"", "a"}  # b is missing, a is no integer

    failed = _call("mcp_calc_explode", {}, user=bob, workspace_id=workspace_id)
    assert (failed.status, failed.code) == ("error", "upstream")
    assert "explode" in failed.message

    disabled = _call("mcp_calc_echo", {"text": "hi"}, user=bob, workspace_id=workspace_id)
    assert disabled.code == "unknown_tool"

    stranger = make_user()
    refused = _call("mcp_calc_add", {"a": 1, "b": 1}, user=stranger, workspace_id=workspace_id)
    assert (refused.status, refused.code) == ("needs_auth", "forbidden")

    audit.audit_flush()
    rows = list(ToolCall.objects.filter(tool="mcp_calc_add").order_by("created_at"))
    assert [(r.user_id, r.status) for r in rows] == [
        (bob.pk, "ok"),
        (bob.pk, "needs_input"),
        (stranger.pk, "needs_auth"),
    ]
    assert rows[0].arguments == {"a": 2, "b": 40}
    assert rows[0].workspace_id == workspace_id


def _spec(user: Any, workspace_id: int, name: str) -> Any:
    return next(spec for spec in _list(user, workspace_id) if spec.name == name)


def _list(user: Any, workspace_id: int) -> list[Any]:
    from asgiref.sync import async_to_sync

    return async_to_sync(list_tools)(ToolContext(user=user, workspace_id=workspace_id, via="model"))


def test_a_wrong_auth_header_is_reported_as_the_servers_refusal(http_server: str) -> None:
    admin, _ = _admin_and_member()
    server = server_register(
        actor=admin, name="calc", transport="http", url=http_server, auth_header_name="X-Api-Key", auth_header_value="x"
    )
    down = server_refresh(server=server)
    assert isinstance(down, McpServerDown)
    assert down.message == "The MCP server calc answered HTTP 401 (check its auth header)."
    server.refresh_from_db()
    assert (server.state, server.last_error) == (ServerState.DOWN, down.message)


def test_a_server_that_goes_down_is_reported_and_the_rest_keeps_working(http_server: str, settings: Any) -> None:
    admin, bob = _admin_and_member()
    workspace_id = admin.workspace_id
    server = server_register(
        actor=admin,
        name="calc",
        transport="http",
        url=http_server,
        auth_header_name="X-Api-Key",
        auth_header_value=SECRET,
    )
    assert server_refresh(server=server) is None

    settings.MCP_CLIENT_TIMEOUT = 1
    slow = _call("mcp_calc_slow", {"seconds": 5}, user=bob, workspace_id=workspace_id)
    assert (slow.status, slow.code) == ("error", "upstream_unavailable")
    assert slow.message == "The MCP server calc did not answer within 1 s."

    # Nothing listens there any more.
    ExternalServer.objects.filter(pk=server.pk).update(url=f"http://127.0.0.1:{free_port()}/mcp")
    down = _call("mcp_calc_add", {"a": 1, "b": 2}, user=bob, workspace_id=workspace_id)
    assert (down.status, down.code) == ("error", "upstream_unavailable")
    assert down.message == "The MCP server calc is not reachable: connection refused or host not found."
    server.refresh_from_db()
    assert server.state == ServerState.DOWN
    assert server.last_error == down.message
    # Its tools are still listed (the admin enabled them), and the rest of Mathia answers.
    assert _call("rooms_list", {}, user=bob, workspace_id=workspace_id).is_ok


def test_a_stdio_server_is_one_the_operator_set_up_and_admins_cannot_run_anything_else(
    settings: Any, client: Any
) -> None:
    admin, bob = _admin_and_member()
    settings.MCP_STDIO_SERVERS = {}
    with pytest.raises(Exception) as refused:  # noqa: PT011
        server_register(actor=admin, name="local", transport="stdio", command="local")
    assert getattr(refused.value, "code", None) == "stdio_disabled"

    settings.MCP_STDIO_SERVERS = {
        "tools": [sys.executable, TEST_SERVER, "stdio"],
        "broken": [sys.executable, "-c", "raise SystemExit('no config')"],
    }
    # An admin names one of the operator's servers; a command, or arguments, are refused or ignored.
    for command in (sys.executable, "/bin/sh", "tools -c 'import os'", ""):
        with pytest.raises(Exception) as not_allowed:  # noqa: PT011
            server_register(actor=admin, name="local", transport="stdio", command=command)
        assert getattr(not_allowed.value, "code", None) == "invalid"
    client.force_login(admin.user)
    page = client.post(
        f"/settings/mcp/{admin.workspace.slug}/servers",
        {"name": "sneaky", "transport": "stdio", "command": "tools", "args": "-c 'import os; os.system(\"id\")'"},
    )
    assert page.status_code == 302
    sneaky = ExternalServer.objects.get(name="sneaky")
    assert sneaky.command == "tools"  # the arguments field is not read at all
    ExternalServer.objects.filter(pk=sneaky.pk).delete()

    server = server_register(actor=admin, name="local", transport="stdio", command="tools")
    assert server_refresh(server=server) is None
    assert set(ExternalTool.objects.filter(server=server).values_list("name", flat=True)) == {
        "add",
        "echo",
        "explode",
        "slow",
    }
    result = _call("mcp_local_echo", {"text": "over stdio"}, user=bob, workspace_id=admin.workspace_id)
    assert result.is_ok, result
    assert result.message == "echo: over stdio"
    audit.audit_flush()
    assert ToolCall.objects.filter(tool="mcp_local_echo", user=bob, status="ok").count() == 1

    # A command that dies at start is "down", with what it said.
    broken = server_register(actor=admin, name="broken", transport="stdio", command="broken")
    down = server_refresh(server=broken)
    assert isinstance(down, McpServerDown)
    assert "no config" in down.message

    # The operator withdrawing a server stops it, even though an admin registered it.
    settings.MCP_STDIO_SERVERS = {"broken": settings.MCP_STDIO_SERVERS["broken"]}
    gone = _call("mcp_local_echo", {"text": "again"}, user=bob, workspace_id=admin.workspace_id)
    assert (gone.status, gone.code) == ("error", "upstream_unavailable")
    assert "no longer offered by the operator" in gone.message


def test_only_workspace_admins_register_servers(client: Any) -> None:
    admin, bob = _admin_and_member()
    member = Membership.objects.get(workspace_id=admin.workspace_id, user=bob)
    with pytest.raises(Exception) as refused:  # noqa: PT011
        server_register(actor=member, name="calc", transport="http", url="http://127.0.0.1:1/mcp")
    assert getattr(refused.value, "code", None) == "forbidden"
    assert not ExternalServer.objects.exists()
    client.force_login(bob)
    slug = admin.workspace.slug
    response = client.post(f"/settings/mcp/{slug}/servers", {"name": "calc", "transport": "http", "url": "http://x/"})
    assert_error(response, status=403, code="forbidden")


def test_an_admin_adds_a_server_on_the_page_and_turns_a_tool_off(client: Any, http_server: str) -> None:
    admin, bob = _admin_and_member()
    slug = admin.workspace.slug
    client.force_login(admin.user)
    added = client.post(
        f"/settings/mcp/{slug}/servers",
        {"name": "calc", "transport": "http", "url": http_server, "auth_name": "X-Api-Key", "auth_value": SECRET},
        follow=True,
    )
    content = added.content.decode()
    assert "calc: 4 tools found." in content
    assert SECRET not in content
    assert '<tr data-tool="add">' in content
    server = ExternalServer.objects.get(workspace_id=admin.workspace_id)
    assert server.state == ServerState.OK
    add = server.tools.get(name="add")
    assert (add.hinted_read_only, add.read_only) == (True, False)  # the server's word is not taken
    assert "the server says it only reads" in content
    assert _spec(bob, admin.workspace_id, "mcp_calc_add").sensitive is True
    client.post(f"/settings/mcp/{slug}/servers/{server.pk}/tools/{add.pk}/read-only", {"read_only": "on"})
    add.refresh_from_db()
    assert add.read_only is True
    assert _spec(bob, admin.workspace_id, "mcp_calc_add").sensitive is False
    assert _spec(bob, admin.workspace_id, "mcp_calc_echo").side_effects is True

    client.post(f"/settings/mcp/{slug}/servers/{server.pk}/tools/{add.pk}/enabled", {"enabled": "off"})
    add.refresh_from_db()
    assert add.enabled is False
    assert "mcp_calc_add" not in {spec.name for spec in _list(bob, admin.workspace_id)}
    assert _call("mcp_calc_add", {"a": 1, "b": 2}, user=bob, workspace_id=admin.workspace_id).code == "unknown_tool"

    # Disabling the whole server hides all of its tools.
    client.post(f"/settings/mcp/{slug}/servers/{server.pk}/enabled", {"enabled": "off"})
    assert not [spec for spec in _list(bob, admin.workspace_id) if spec.name.startswith("mcp_calc_")]
    refreshed = client.post(f"/settings/mcp/{slug}/servers/{server.pk}/refresh", follow=True)
    assert "calc: 4 tools found." in refreshed.content.decode()


def test_the_periodic_check_marks_servers_up_and_down(http_server: str) -> None:
    from mathia.mcpbridge.tasks import check_servers

    admin, _ = _admin_and_member()
    up = server_register(
        actor=admin,
        name="calc",
        transport="http",
        url=http_server,
        auth_header_name="X-Api-Key",
        auth_header_value=SECRET,
    )
    gone = server_register(actor=admin, name="gone", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp")
    off = server_register(actor=admin, name="off", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp")
    ExternalServer.objects.filter(pk=off.pk).update(enabled=False)
    assert check_servers() == 1
    states = dict(ExternalServer.objects.values_list("name", "state"))
    assert states == {"calc": ServerState.OK, "gone": ServerState.DOWN, "off": ServerState.UNKNOWN}
    assert ExternalTool.objects.filter(server=up).count() == 4
    assert not ExternalTool.objects.filter(server=gone).exists()


@pytest.fixture
def llm(settings: Any) -> Iterator[Any]:
    from mathia.testing.fake_llm import FakeLLMServer

    with FakeLLMServer() as server:
        settings.LLM_PROVIDERS = ["anthropic"]
        settings.ANTHROPIC_API_KEY = "sk-ant-test"
        settings.ANTHROPIC_BASE_URL = server.anthropic_url
        settings.ANTHROPIC_MODEL = "claude-test"
        settings.LLM_MAX_RETRIES = 0
        yield server


async def test_mathia_calls_an_external_tool_for_the_asker(http_server: str, llm: Any) -> None:
    """@mathia's model is offered the enabled external tools and its call runs through the router as the asker."""
    import json

    from channels.db import database_sync_to_async

    from mathia.testing.fake_llm import FakeToolCall, Reply, tool_results
    from tests.chat_helpers import make_room
    from tests.test_assistant import subscribed

    def setup() -> tuple[Any, Any]:
        admin, bob = _admin_and_member()
        server = server_register(
            actor=admin, name="calc", transport="http", url=http_server, auth_header_name="X-Api-Key",
            auth_header_value=SECRET,
        )  # fmt: skip
        assert server_refresh(server=server) is None
        add = server.tools.get(name="add")
        tool_set_read_only(actor=admin, server=server, tool_id=add.pk, read_only=True)  # the admin's call
        return make_room(admin.user, admin.workspace, "numbers", members=[bob]), bob

    room, bob = await database_sync_to_async(setup)()

    def answer(body: dict[str, Any]) -> Reply:
        [result] = tool_results(body)
        return Reply(text=f"That makes {json.loads(result['content'])['message']}.")

    llm.enqueue(
        Reply(text="", tool_calls=(FakeToolCall("mcp_calc_add", {"a": 2, "b": 40}, id="toolu_1"),)),
        Reply(respond=answer),
    )
    socket = await subscribed(bob, room)
    # The first answer in a process is slow to start on a busy machine: a longer wait than ask()'s.
    ack = await socket.request(
        {"type": "send", "room_id": room.pk, "client_id": "q1", "body": "@mathia what is 2 plus 40?"}, "ack", timeout=20
    )
    assert ack["type"] == "ack", ack
    while True:
        frame = await socket.recv(timeout=20)
        message = frame.get("message") or {}
        if frame["type"] == "message.updated" and message["author"]["assistant"] and message["status"] == "done":
            break
    assert frame["message"]["body"] == "That makes 42."
    first = llm.requests_for("anthropic")[0]
    offered = {tool["name"]: tool for tool in first.body["tools"]}
    assert offered["mcp_calc_add"]["input_schema"]["required"] == ["a", "b"]
    await socket.close()

    def audited() -> list[tuple[Any, ...]]:
        audit.audit_flush()
        return list(ToolCall.objects.filter(tool="mcp_calc_add").values_list("via", "user_id", "status"))

    assert await database_sync_to_async(audited)() == [("model", bob.pk, "ok")]


def test_a_tool_the_server_changes_after_review_is_turned_off_until_an_admin_looks(
    http_server: str, client: Any
) -> None:
    admin, bob = _admin_and_member()
    server = server_register(
        actor=admin, name="calc", transport="http", url=http_server, auth_header_name="X-Api-Key",
        auth_header_value=SECRET,
    )  # fmt: skip
    assert server_refresh(server=server) is None
    add = server.tools.get(name="add")
    tool_set_read_only(actor=admin, server=server, tool_id=add.pk, read_only=True)
    # As if the server had listed "add" differently when the admin reviewed it: its listing
    # now differs from what was reviewed.
    ExternalTool.objects.filter(pk=add.pk).update(description="Adds two numbers, nothing else.")
    ExternalTool.objects.filter(server=server, name="echo").update(hinted_read_only=True)
    assert server_refresh(server=server) is None
    add.refresh_from_db()
    assert (add.enabled, add.read_only) == (False, False)
    assert add.description == "Add two whole numbers."
    assert "changed its description" in add.review_note
    echo = server.tools.get(name="echo")
    assert (echo.enabled, "read-only hint" in echo.review_note) == (False, True)
    assert server.tools.get(name="slow").enabled is True  # unchanged tools keep the admin's choice
    names = {spec.name for spec in _list(bob, admin.workspace_id)}
    assert "mcp_calc_add" not in names
    assert "mcp_calc_slow" in names

    client.force_login(admin.user)
    page = client.get(f"/settings/mcp/{admin.workspace.slug}").content.decode()
    assert "Turned off: the server changed its description since it was reviewed." in page
    tool_set_enabled(actor=admin, server=server, tool_id=add.pk, enabled=True)
    add.refresh_from_db()
    assert (add.enabled, add.review_note) == (True, "")


def test_mathia_connects_to_the_address_it_checked_not_to_a_second_lookup(
    http_server: str, settings: Any, monkeypatch: Any
) -> None:
    """DNS rebinding: the name is resolved once per request, checked, and that address is dialled."""
    from asgiref.sync import async_to_sync

    from mathia.mcpbridge import network
    from mathia.mcpbridge.client import Endpoint, list_tools

    lookups: list[str] = []

    async def test_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return {"calc.mathia-test.invalid": ["127.0.0.1"], "rebind.mathia-test.invalid": ["10.0.0.5"]}[host]

    monkeypatch.setattr(network, "resolve", test_resolver)
    port = http_server.rsplit(":", 1)[1].split("/")[0]
    # .invalid never resolves in real DNS: the call can only work through the checked address.
    endpoint = Endpoint(
        server_id=1,
        name="calc",
        transport="http",
        url=f"http://calc.mathia-test.invalid:{port}/mcp",
        headers={"X-Api-Key": SECRET},
    )
    tools = async_to_sync(list_tools)(endpoint)
    assert {tool.name for tool in tools} == {"add", "echo", "explode", "slow"}
    assert set(lookups) == {"calc.mathia-test.invalid"}

    # A name with any private address is refused before a connection is made.
    settings.MCP_CLIENT_PRIVATE_NETWORKS = False
    rebinding = Endpoint(server_id=2, name="rebind", transport="http", url="http://rebind.mathia-test.invalid/mcp")
    with pytest.raises(Exception) as refused:  # noqa: PT011
        async_to_sync(list_tools)(rebinding)
    assert getattr(refused.value, "code", None) == "mcp_private_address"
    assert "rebind.mathia-test.invalid is on a private, loopback or link-local address" in str(refused.value)
