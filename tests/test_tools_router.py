"""The tool router: validation, permissions, rate limits, the cache, timeouts, errors and the audit log."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from pydantic import BaseModel, ConfigDict, Field

from mathia.assistant.identity import assistant_user
from mathia.core.clock import FrozenClock
from mathia.core.errors import NotFound
from mathia.core.redis import get_redis, redis_key
from mathia.tools import audit
from mathia.tools.models import ToolCall
from mathia.tools.registry import (
    Permission,
    ToolContext,
    ToolResult,
    ToolSpec,
    ToolStatus,
    register_source,
    registry,
)
from mathia.tools.router import invoke, invoke_sync, list_tools, resolve
from tests.chat_helpers import make_chat_team
from tests.helpers import make_user

pytestmark = [pytest.mark.django_db(transaction=True)]


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20)
    times: int = Field(default=1, ge=1, le=3)
    api_key: str = ""
    pin: str = ""


class Recorder:
    """A handler that records who it ran as."""

    def __init__(self, *, raises: Exception | None = None, sleep: float = 0.0, returns: Any = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.raises, self.sleep, self.returns = raises, sleep, returns

    async def __call__(self, ctx: ToolContext, args: EchoInput) -> Any:
        self.calls.append((ctx.user.pk, args.text))
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if self.raises is not None:
            raise self.raises
        if self.returns is not None:
            return self.returns
        return ToolResult.ok(args.text * args.times, data={"calls": len(self.calls)})


@pytest.fixture
def tool() -> Iterator[Any]:
    """Register test tools; ``tool(name, **spec fields)`` returns the handler."""
    names: list[str] = []

    def make(name: str, handler: Any = None, **fields: Any) -> Any:
        handler = handler or Recorder()
        fields.setdefault("input_model", EchoInput)
        fields.setdefault("rate", None)
        registry.register(ToolSpec(name=name, description=f"test tool {name}", handler=handler, **fields))
        names.append(name)
        return handler

    audit.AUTO_FLUSH = False
    yield make
    audit.AUTO_FLUSH = True
    for name in names:
        registry.unregister(name)


@pytest.fixture
def team() -> dict[str, Any]:
    return make_chat_team()


def ctx_for(team: dict[str, Any], who: str = "ada", *, room: str | None = "general", **extra: Any) -> ToolContext:
    room_id = team[room].pk if room else None
    return ToolContext(user=team[who], workspace_id=team["workspace"].pk, room_id=room_id, **extra)


def flush() -> list[ToolCall]:
    audit.audit_flush()
    return list(ToolCall.objects.order_by("created_at", "id"))


# --- validation -------------------------------------------------------------------------------
async def test_bad_arguments_answer_needs_input_with_each_problem_and_the_handler_never_runs(
    team: dict[str, Any], tool: Any
) -> None:
    handler = tool("echo")
    ctx = ctx_for(team)
    for arguments, field in [
        ({"text": ""}, "text"),
        ({"text": "x" * 21}, "text"),
        ({}, "text"),
        ({"text": "hi", "times": 9}, "times"),
        ({"text": "hi", "times": "many"}, "times"),
        ({"text": "hi", "colour": "red"}, "colour"),
    ]:
        result = await invoke("echo", arguments, ctx=ctx)
        assert result.status == ToolStatus.NEEDS_INPUT, arguments
        assert result.code == "invalid_arguments"
        assert [p["field"] for p in result.data["problems"]] == [field]
        assert f"`{field}`" in result.message
        assert result.data["schema"]["properties"]["text"]["maxLength"] == 20
    not_an_object = await invoke("echo", ["hi"], ctx=ctx)
    assert (not_an_object.status, not_an_object.message) == (
        ToolStatus.NEEDS_INPUT,
        "That doesn't fit `echo`: The arguments must be a JSON object.",
    )
    assert handler.calls == []
    assert (await invoke("echo", {"text": "ok", "times": 2}, ctx=ctx)).message == "okok"


async def test_an_unknown_tool_is_an_error(team: dict[str, Any], tool: Any) -> None:
    result = await invoke("no_such_tool", {}, ctx=ctx_for(team))
    assert (result.status, result.code) == (ToolStatus.ERROR, "unknown_tool")


def test_which_results_are_private() -> None:
    async def handler(ctx: ToolContext, args: Any) -> ToolResult:
        return ToolResult.ok("")

    def spec(**fields: Any) -> ToolSpec:
        return ToolSpec(name="x", description="", handler=handler, input_model=EchoInput, **fields)

    assert spec(sensitive=True).results_private  # reads the asker's data
    assert not spec(sensitive=True, side_effects=True).results_private  # acts: its confirmation is not
    assert not spec().results_private
    assert spec(cache_seconds=60).results_private  # cached per person: depends on who asks
    assert not spec(cache_seconds=60, cache_scope="global").results_private
    assert spec(private=True).results_private
    assert not spec(sensitive=True, private=False).results_private
    assert ToolResult.ok("mine", private=True).as_dict()["private"] is True


def test_tool_specs_refuse_bad_declarations() -> None:
    async def handler(ctx: ToolContext, args: Any) -> ToolResult:
        return ToolResult.ok("")

    with pytest.raises(ValueError, match="must match"):
        ToolSpec(name="bad name", description="", handler=handler, input_model=EchoInput)
    with pytest.raises(ValueError, match="cannot be cached"):
        ToolSpec(name="x", description="", handler=handler, input_model=EchoInput, side_effects=True, cache_seconds=5)
    with pytest.raises(ValueError, match="rate"):
        ToolSpec(name="x", description="", handler=handler, input_model=EchoInput, rate="lots")
    with pytest.raises(ValueError, match="input_model or an input_schema"):
        ToolSpec(name="x", description="", handler=handler)


# --- permissions ------------------------------------------------------------------------------
async def test_each_permission_is_checked_for_the_invoking_person(team: dict[str, Any], tool: Any) -> None:
    member = tool("member_tool", permission=Permission.WORKSPACE_MEMBER)
    admin = tool("admin_tool", permission=Permission.WORKSPACE_ADMIN)
    read = tool("read_tool", permission=Permission.ROOM_READ)
    write = tool("write_tool", permission=Permission.ROOM_WRITE)
    moderate = tool("moderate_tool", permission=Permission.ROOM_MODERATE)
    outsider = await database_sync_to_async(make_user)(display_name="Eve")
    team["eve"] = outsider
    mathia = await database_sync_to_async(assistant_user)()
    team["mathia"] = mathia

    async def status(name: str, who: str, room: str | None = "general") -> str:
        return (await invoke(name, {"text": "x"}, ctx=ctx_for(team, who, room=room))).status.value

    # Eve is in no shared workspace: nothing at all.
    for name in ("member_tool", "admin_tool", "read_tool", "write_tool", "moderate_tool"):
        assert await status(name, "eve") == "needs_auth"
    # Mathia itself never passes a check: it only ever acts for someone.
    assert await status("member_tool", "mathia") == "needs_auth"
    # Cy is in the workspace, not in #general (public: may read, not post) nor #secret (private).
    assert await status("member_tool", "cy") == "ok"
    assert await status("read_tool", "cy") == "ok"
    assert await status("write_tool", "cy") == "needs_auth"
    assert await status("read_tool", "cy", room="secret") == "needs_auth"
    assert await status("write_tool", "cy", room=None) == "needs_auth"  # a room tool needs a room
    # Bob is a member of both rooms, not an admin or moderator; Ada owns everything.
    assert await status("write_tool", "bob", room="secret") == "ok"
    assert await status("admin_tool", "bob") == "needs_auth"
    assert await status("moderate_tool", "bob") == "needs_auth"
    assert await status("admin_tool", "ada") == "ok"
    assert await status("moderate_tool", "ada") == "ok"
    # Only the allowed calls reached a handler, each as the person who invoked it.
    assert member.calls == [(team["cy"].pk, "x")]
    assert read.calls == [(team["cy"].pk, "x")]
    assert write.calls == [(team["bob"].pk, "x")]
    assert admin.calls == [(team["ada"].pk, "x")]
    assert moderate.calls == [(team["ada"].pk, "x")]


async def test_a_room_access_made_for_someone_else_or_another_room_is_not_reused(
    team: dict[str, Any], tool: Any
) -> None:
    from mathia.rooms.access import access_room_for_user

    write = tool("write_tool", permission=Permission.ROOM_WRITE)
    adas = await database_sync_to_async(access_room_for_user)(user=team["ada"], room_id=team["general"].pk)
    # Cy's context carrying Ada's access check: the router checks Cy again, and refuses.
    ctx = ctx_for(team, "cy", room_access=adas)
    assert (await invoke("write_tool", {"text": "x"}, ctx=ctx)).status == ToolStatus.NEEDS_AUTH
    assert write.calls == []


async def test_a_model_that_read_other_peoples_messages_cannot_call_sensitive_tools(
    team: dict[str, Any], tool: Any
) -> None:
    private = tool("private_notes", sensitive=True)
    untrusted = ctx_for(team, via="model", untrusted_context=True)
    refused = await invoke("private_notes", {"text": "all"}, ctx=untrusted)
    assert (refused.status, refused.code) == (ToolStatus.NEEDS_AUTH, "needs_direct_request")
    assert private.calls == []
    # The asker's own request (a slash command), or a model that read only the asker: allowed.
    for ctx in (ctx_for(team, via="slash", untrusted_context=True), ctx_for(team, via="model")):
        assert (await invoke("private_notes", {"text": "all"}, ctx=ctx)).is_ok
    # Tools with side effects too: a model that read text Ada did not write may not act for her.
    acting = tool("acting_tool", side_effects=True)
    refused = await invoke("acting_tool", {"text": "x"}, ctx=untrusted)
    assert (refused.status, refused.code) == (ToolStatus.NEEDS_AUTH, "needs_direct_request")
    assert "changes things" in refused.message
    assert acting.calls == []
    assert (await invoke("acting_tool", {"text": "x"}, ctx=ctx_for(team, via="intent", untrusted_context=True))).is_ok
    assert (await invoke("acting_tool", {"text": "x"}, ctx=ctx_for(team, via="model"))).is_ok
    hidden = tool("hidden_tool", model_visible=False)
    assert (await invoke("hidden_tool", {"text": "x"}, ctx=ctx_for(team, via="model"))).code == "not_callable"
    assert hidden.calls == []


# --- failures are errors, never ok -----------------------------------------------------------
async def test_a_failing_slow_or_confused_connector_is_an_error(team: dict[str, Any], tool: Any) -> None:
    tool("crashes", Recorder(raises=RuntimeError("boom: secret detail")))
    tool("slow", Recorder(sleep=1.0), timeout=0.05)
    tool("confused", Recorder(returns={"status": "ok"}))
    tool("refuses", Recorder(raises=NotFound("That note does not exist.")))
    ctx = ctx_for(team)
    crashed = await invoke("crashes", {"text": "x"}, ctx=ctx)
    assert (crashed.status, crashed.code) == (ToolStatus.ERROR, "internal")
    assert "secret detail" not in crashed.message
    slow = await invoke("slow", {"text": "x"}, ctx=ctx)
    assert (slow.status, slow.code) == (ToolStatus.ERROR, "timeout")
    assert "0.05 s" in slow.message
    confused = await invoke("confused", {"text": "x"}, ctx=ctx)
    assert (confused.status, confused.code) == (ToolStatus.ERROR, "internal")
    refused = await invoke("refuses", {"text": "x"}, ctx=ctx)
    assert (refused.status, refused.code, refused.message) == (
        ToolStatus.ERROR,
        "not_found",
        "That note does not exist.",
    )


async def test_sync_handlers_run_in_a_thread(team: dict[str, Any], tool: Any) -> None:
    def count_rooms(ctx: ToolContext, args: EchoInput) -> ToolResult:
        from mathia.rooms.models import Room

        return ToolResult.ok(f"{Room.objects.filter(workspace_id=ctx.workspace_id).count()} rooms")

    tool("count_rooms", count_rooms)
    assert (await invoke("count_rooms", {"text": "x"}, ctx=ctx_for(team))).message == "2 rooms"


# --- rate limits -----------------------------------------------------------------------------
async def test_the_rate_limit_holds_exactly_under_concurrent_calls(team: dict[str, Any], tool: Any) -> None:
    handler = tool("limited", rate="5/m")
    ctx = ctx_for(team)
    results = await asyncio.gather(*(invoke("limited", {"text": "x"}, ctx=ctx) for _ in range(40)))
    assert sum(r.is_ok for r in results) == 5
    limited = [r for r in results if not r.is_ok]
    assert {r.code for r in limited} == {"rate_limited"}
    assert all(0 < r.data["retry_after"] <= 60 for r in limited)
    assert "too often" in limited[0].message
    assert len(handler.calls) == 5
    # Per person: Bob has his own allowance.
    assert (await invoke("limited", {"text": "x"}, ctx=ctx_for(team, "bob"))).is_ok


def test_the_rate_limit_holds_across_threads_with_their_own_event_loops_and_connections(
    team: dict[str, Any], tool: Any
) -> None:
    tool("limited", rate="7/m")
    ctx = ctx_for(team)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: invoke_sync("limited", {"text": "x"}, ctx=ctx), range(48)))
    assert sum(r.is_ok for r in results) == 7


async def test_the_rate_limit_refills_one_call_per_interval(team: dict[str, Any], tool: Any) -> None:
    tool("limited", rate="3/m")
    clock = FrozenClock()
    ctx = ctx_for(team, clock=clock)
    assert [(await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok for _ in range(4)] == [True, True, True, False]
    clock.advance(seconds=19)
    assert not (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok
    clock.advance(seconds=1.5)  # 3/m: one call every 20 s
    assert (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok
    assert not (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok


async def test_calls_go_on_after_redis_forgot_the_routers_script(team: dict[str, Any], tool: Any) -> None:
    """After a Redis restart (or SCRIPT FLUSH) the router loads its script again."""
    tool("limited", rate="30/m")
    ctx = ctx_for(team)
    assert (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok
    get_redis().script_flush()
    assert (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok
    assert (await invoke("limited", {"text": "x"}, ctx=ctx)).is_ok


# --- the cache -------------------------------------------------------------------------------
async def test_repeated_read_only_calls_are_served_from_redis(team: dict[str, Any], tool: Any) -> None:
    handler = tool("lookup", cache_seconds=300, cache_scope="global")
    first = await invoke("lookup", {"text": "nairobi"}, ctx=ctx_for(team))
    again = await invoke("lookup", {"text": "nairobi"}, ctx=ctx_for(team, "bob"))
    assert (first.cached, again.cached) == (False, True)
    assert (again.message, again.data) == (first.message, first.data)
    assert len(handler.calls) == 1
    # Really in Redis, with its expiry: delete the keys and the handler runs again.
    client = get_redis()
    keys = list(client.scan_iter(match=redis_key("tools", "cache", "lookup", "*")))
    assert len(keys) == 1
    assert 290 < client.ttl(keys[0]) <= 300
    client.delete(*keys)
    assert not (await invoke("lookup", {"text": "nairobi"}, ctx=ctx_for(team))).cached
    assert len(handler.calls) == 2
    # Other arguments are another entry.
    assert not (await invoke("lookup", {"text": "paris"}, ctx=ctx_for(team))).cached


async def test_per_person_caches_are_not_shared_and_errors_are_not_cached(team: dict[str, Any], tool: Any) -> None:
    handler = tool("mine", cache_seconds=300)  # cache_scope defaults to "user"
    assert not (await invoke("mine", {"text": "x"}, ctx=ctx_for(team))).cached
    assert (await invoke("mine", {"text": "x"}, ctx=ctx_for(team))).cached
    assert not (await invoke("mine", {"text": "x"}, ctx=ctx_for(team, "bob"))).cached
    assert len(handler.calls) == 2
    failing = tool("failing", Recorder(raises=RuntimeError("down")), cache_seconds=300)
    for _ in range(2):
        assert (await invoke("failing", {"text": "x"}, ctx=ctx_for(team))).status == ToolStatus.ERROR
    assert len(failing.calls) == 2


async def test_results_with_values_json_lacks_are_cached_as_text(team: dict[str, Any], tool: Any) -> None:
    from decimal import Decimal

    tool("priced", Recorder(returns=ToolResult.ok("1.5 EUR", data={"amount": Decimal("1.5")})), cache_seconds=60)
    assert (await invoke("priced", {"text": "x"}, ctx=ctx_for(team))).data == {"amount": Decimal("1.5")}
    again = await invoke("priced", {"text": "x"}, ctx=ctx_for(team))
    assert (again.cached, again.data) == (True, {"amount": "1.5"})


async def test_a_cached_call_still_counts_against_the_rate_limit(team: dict[str, Any], tool: Any) -> None:
    tool("lookup", cache_seconds=300, rate="2/m")
    ctx = ctx_for(team)
    results = [await invoke("lookup", {"text": "x"}, ctx=ctx) for _ in range(3)]
    assert [r.status.value for r in results] == ["ok", "ok", "error"]
    assert results[1].cached


# --- the audit log ---------------------------------------------------------------------------
async def test_every_call_is_audited_with_secrets_removed(team: dict[str, Any], tool: Any) -> None:
    tool("echo", secret_fields=frozenset({"pin"}))
    tool("crashes", Recorder(raises=RuntimeError("x")))
    ctx = ctx_for(team, via="slash", run_id=77)
    await invoke("echo", {"text": "hello", "api_key": "sk-live-123", "pin": "4321"}, ctx=ctx)
    await invoke("echo", {"text": ""}, ctx=ctx)
    await invoke("crashes", {"text": "x"}, ctx=ctx)
    await invoke("nope", {"url": "https://bob:hunter2@example.com/x"}, ctx=ctx)
    rows = await database_sync_to_async(flush)()
    assert [(r.tool, r.status, r.code) for r in rows] == [
        ("echo", "ok", ""),
        ("echo", "needs_input", "invalid_arguments"),
        ("crashes", "error", "internal"),
        ("nope", "error", "unknown_tool"),
    ]
    first = rows[0]
    assert first.arguments == {"text": "hello", "api_key": "[redacted]", "pin": "[redacted]"}
    assert rows[3].arguments == {"url": "https://[redacted]@example.com/x"}
    assert (first.user_id, first.workspace_id, first.room_id, first.run_id, first.via) == (
        team["ada"].pk,
        team["workspace"].pk,
        team["general"].pk,
        77,
        "slash",
    )
    assert all(r.latency_ms > 0 for r in rows)
    assert first.message == "hello"
    everything = " ".join(str(r.arguments) + r.message for r in rows)
    for secret in ("sk-live-123", "4321", "hunter2"):
        assert secret not in everything


async def test_cache_hits_and_rate_limited_calls_are_audited_too(team: dict[str, Any], tool: Any) -> None:
    tool("lookup", cache_seconds=300, rate="2/m", secret_fields=frozenset({"pin"}))
    ctx = ctx_for(team, via="model")
    for _ in range(3):
        await invoke("lookup", {"text": "hi", "pin": "9876"}, ctx=ctx)
    rows = await database_sync_to_async(flush)()
    assert [(r.status, r.cached, r.message, r.code) for r in rows] == [
        ("ok", False, "hi", ""),
        ("ok", True, "hi", ""),  # written by the router's Redis script, its message from the cache
        ("error", False, "You are using `lookup` too often; try again in 30 s.", "rate_limited"),
    ]
    assert all(r.arguments == {"text": "hi", "pin": "[redacted]"} for r in rows)
    assert all((r.user_id, r.via, r.tool) == (team["ada"].pk, "model", "lookup") for r in rows)


def test_the_audit_flush_writes_each_call_once_even_after_a_crash(team: dict[str, Any], tool: Any) -> None:
    tool("echo")
    ctx = ctx_for(team)
    for text in ("a", "b", "c"):
        invoke_sync("echo", {"text": text}, ctx=ctx)
    # A flusher reads the entries, writes them, and dies before acknowledging them.
    client = get_redis()
    audit._ensure_group(client)
    batch: Any = client.xreadgroup(audit.GROUP, "dead-flusher", {audit.stream_key(): ">"}, count=10)
    entries = batch[0][1]
    from mathia.tools.models import ToolCall as Row

    Row.objects.bulk_create(
        [
            Row(
                entry_id=entry_id.decode(),
                created_at=ctx.clock.now(),
                tool="echo",
                via="api",
                status="ok",
                latency_ms=1.0,
            )
            for entry_id, _ in entries
        ]
    )
    assert audit.audit_flush() == 0  # still pending for the dead one, not new
    original = audit.CLAIM_IDLE_MS
    audit.CLAIM_IDLE_MS = 0
    try:
        assert audit.audit_flush() == 3  # claimed, and written again: the entry ids keep it once
    finally:
        audit.CLAIM_IDLE_MS = original
    assert ToolCall.objects.count() == 3
    assert client.xlen(audit.stream_key()) == 0  # acknowledged and deleted
    assert audit.audit_flush() == 0


async def test_calls_are_flushed_to_the_database_by_themselves(team: dict[str, Any], tool: Any, settings: Any) -> None:
    tool("echo")
    audit.AUTO_FLUSH = True
    original = audit.FLUSH_DELAY_SECONDS
    audit.FLUSH_DELAY_SECONDS = 0.05
    try:
        await invoke("echo", {"text": "x"}, ctx=ctx_for(team))
        for _ in range(100):
            if await database_sync_to_async(ToolCall.objects.count)():
                break
            await asyncio.sleep(0.05)
        assert await database_sync_to_async(ToolCall.objects.count)() == 1
    finally:
        audit.FLUSH_DELAY_SECONDS = original


# --- listing, and tools that arrive at run time -------------------------------------------------
class ExternalSource:
    """Tools an MCP server would bring, per workspace."""

    name = "test-external"

    def __init__(self, workspace_id: int, *, fail: bool = False) -> None:
        self.workspace_id, self.fail = workspace_id, fail
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.listed = 0  # how often its tools were asked for (each costs a query for a real source)

    def tools(self, workspace_id: int) -> list[ToolSpec]:
        self.listed += 1
        if self.fail:
            raise ConnectionError("the server is down")
        if workspace_id != self.workspace_id:
            return []

        async def handler(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
            self.calls.append((ctx.user.pk, args))
            return ToolResult.ok(f"looked up {args['ticket']}")

        return [
            ToolSpec(
                name="ext_ticket_lookup",
                description="Look up a ticket",
                input_schema={"type": "object", "properties": {"ticket": {"type": "string"}}, "required": ["ticket"]},
                handler=handler,
                rate="2/m",
                source="mcp:test",
            )
        ]


async def test_list_tools_gives_json_schemas_of_what_the_person_may_call(team: dict[str, Any], tool: Any) -> None:
    tool("admin_tool", permission=Permission.WORKSPACE_ADMIN)
    names = {spec.name for spec in await list_tools(ctx_for(team, "bob"))}
    assert {"weather", "gif_search", "currency_convert"} <= names
    assert "admin_tool" not in names
    assert "help" not in names  # not offered to models
    assert "admin_tool" in {spec.name for spec in await list_tools(ctx_for(team, "ada"))}
    weather = registry.get("weather")
    assert weather is not None
    assert weather.json_schema["required"] == ["place"]
    assert weather.json_schema["properties"]["place"]["type"] == "string"
    assert weather.llm_spec().input_schema == weather.json_schema


async def test_a_source_adds_tools_per_workspace_through_the_same_router(team: dict[str, Any], tool: Any) -> None:
    source = ExternalSource(team["workspace"].pk)
    register_source(source)
    try:
        ctx = ctx_for(team)
        assert "ext_ticket_lookup" in {s.name for s in await list_tools(ctx)}
        assert (await invoke("ext_ticket_lookup", {}, ctx=ctx)).status == ToolStatus.NEEDS_INPUT
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-1"}, ctx=ctx)).message == "looked up T-1"
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-2"}, ctx=ctx)).is_ok
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-3"}, ctx=ctx)).code == "rate_limited"
        assert source.calls == [(team["ada"].pk, {"ticket": "T-1"}), (team["ada"].pk, {"ticket": "T-2"})]
        # Another workspace does not see them.
        eve = await database_sync_to_async(make_user)(display_name="Eve")
        eves_workspace = await database_sync_to_async(lambda: eve.workspace_memberships.get().workspace_id)()
        other = ToolContext(user=eve, workspace_id=eves_workspace)
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-1"}, ctx=other)).code == "unknown_tool"
        # A source that is down hides its tools and breaks nothing else.
        source.fail = True
        names = {s.name for s in await list_tools(ctx)}
        assert "ext_ticket_lookup" not in names
        assert "weather" in names
        # Calling one of its tools says so, instead of "no such tool".
        listed_before = source.listed
        down = await invoke("ext_ticket_lookup", {"ticket": "T-1"}, ctx=ctx)
        assert (down.status, down.code) == (ToolStatus.ERROR, "tool_unavailable")
        assert "not available right now" in down.message
        assert source.listed == listed_before + 1  # read once for the call, even though it failed
        # What the caller resolved while the source was down stands, even if it comes back.
        failed = await resolve("ext_ticket_lookup", workspace_id=ctx.workspace_id)
        source.fail = False
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-5"}, ctx=ctx, found=failed)).code == "tool_unavailable"
        source.fail = True
        assert (await invoke("weather", {}, ctx=ctx)).code != "tool_unavailable"  # static tools are unaffected
    finally:
        registry.remove_source(source.name)


async def test_a_tool_resolved_once_is_not_looked_up_again(team: dict[str, Any]) -> None:

    source = ExternalSource(team["workspace"].pk)
    register_source(source)
    try:
        ctx = ctx_for(team)
        found = await resolve("ext_ticket_lookup", workspace_id=ctx.workspace_id)
        assert found.spec is not None
        assert source.listed == 1
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-9"}, ctx=ctx, found=found)).is_ok
        assert source.listed == 1  # the runner and the MCP server pass what they resolved
        assert (await invoke("ext_ticket_lookup", {"ticket": "T-9"}, ctx=ctx)).is_ok
        assert source.listed == 2
    finally:
        registry.remove_source(source.name)
