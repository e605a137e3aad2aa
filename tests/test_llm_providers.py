"""The real Anthropic and OpenAI SDKs, talking HTTP to the fake servers, behind one interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import anthropic
import pytest

from mathia.assistant.llm.anthropic_provider import AnthropicProvider
from mathia.assistant.llm.base import (
    ChatTurn,
    Finish,
    LLMError,
    LLMProvider,
    LLMRequest,
    ProviderInfo,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    generate,
)
from mathia.assistant.llm.chain import AllProvidersFailed, ProviderChain
from mathia.assistant.llm.openai_provider import OpenAICompatibleProvider
from mathia.testing.fake_llm import FakeLLMServer, FakeToolCall, Reply, split_tokens
from tests.processes import PROJECT_ROOT

SECRET_KEY = "sk-test-NEVER-SHOW-3f9a27c1e8"
ApiName = Literal["anthropic", "openai"]
KEY_SETTINGS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather forecast for a city.",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
REQUEST = LLMRequest(
    system="You are Mathia, a helpful assistant.",
    messages=[
        ChatTurn("user", "Hello"),
        ChatTurn("assistant", "Hi! How can I help?"),
        ChatTurn("user", "What is the weather in Paris?"),
    ],
    max_tokens=256,
)


# --- fixtures and helpers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(fake_llm: FakeLLMServer) -> FakeLLMServer:
    fake_llm.reset()
    return fake_llm


def make_provider(
    api: ApiName, server: FakeLLMServer, *, timeout: float = 5.0
) -> AnthropicProvider | OpenAICompatibleProvider:
    if api == "anthropic":
        return AnthropicProvider(SECRET_KEY, "claude-test", base_url=server.anthropic_url, timeout=timeout)
    return OpenAICompatibleProvider(SECRET_KEY, "gpt-test", base_url=server.openai_url, timeout=timeout)


@pytest.fixture(params=["anthropic", "openai"])
async def provider(request: pytest.FixtureRequest, server: FakeLLMServer) -> AsyncIterator[Any]:
    made = make_provider(request.param, server)
    yield made
    await made.aclose()


@pytest.fixture
async def anthropic_provider(server: FakeLLMServer) -> AsyncIterator[AnthropicProvider]:
    made = AnthropicProvider(SECRET_KEY, "claude-test", base_url=server.anthropic_url, timeout=5)
    yield made
    await made.aclose()


@pytest.fixture
async def openai_provider(server: FakeLLMServer) -> AsyncIterator[OpenAICompatibleProvider]:
    made = OpenAICompatibleProvider(SECRET_KEY, "gpt-test", base_url=server.openai_url, timeout=5)
    yield made
    await made.aclose()


class Tracked:
    """Wraps a provider and keeps its streams, so that only an explicit close can end them.

    Without these references a dropped stream would be closed by the garbage collector
    sooner or later, and a test of the chain's closing could pass by luck.
    """

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.name: str = provider.name
        self.model: str = provider.model
        self.streams: list[Any] = []

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        events = self.provider.stream(request)
        self.streams.append(events)
        return events

    def all_closed(self) -> bool:
        return all(events.ag_frame is None for events in self.streams)


class Sleeps:
    """An injected ``sleep`` that records the delays and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def collect(provider: LLMProvider, request: LLMRequest = REQUEST) -> tuple[list[StreamEvent], LLMError | None]:
    """Every event until the stream ends or fails, and the failure."""
    events: list[StreamEvent] = []
    try:
        async for event in provider.stream(request):
            events.append(event)
    except LLMError as error:
        return events, error
    return events, None


def text_of(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def api_of(provider: LLMProvider) -> ApiName:
    return "anthropic" if isinstance(provider, AnthropicProvider) else "openai"


# --- streaming answers ----------------------------------------------------------------------
async def test_text_streams_as_deltas_then_usage_and_finish(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="Paris is sunny today.", input_tokens=42, output_tokens=7))

    events, error = await collect(provider)

    assert error is None
    assert events[0] == ProviderInfo(provider.name, provider.model)
    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert (
        [delta.text for delta in deltas]
        == split_tokens("Paris is sunny today.")
        == ["Paris", " is", " sunny", " today."]
    )
    assert events[-2:] == [Usage(input_tokens=42, output_tokens=7), Finish("end")]
    # Anthropic reports the prompt's count at message_start too (a stopped answer still knows it).
    early = 1 if provider.name == "anthropic" else 0
    if early:
        assert events[1] == Usage(input_tokens=42, output_tokens=1)
    assert len(events) == 1 + early + len(deltas) + 2


async def test_anthropic_request_carries_system_prompt_turns_and_key(
    anthropic_provider: AnthropicProvider, server: FakeLLMServer
) -> None:
    await generate(anthropic_provider, REQUEST)

    (sent,) = server.requests
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "claude-test"
    assert sent.body["system"] == "You are Mathia, a helpful assistant."
    assert sent.body["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    assert sent.body["max_tokens"] == 256
    assert sent.body["stream"] is True
    assert "tools" not in sent.body
    assert sent.api_key == SECRET_KEY
    assert sent.headers["x-stainless-retry-count"] == "0"


async def test_openai_request_puts_the_system_prompt_first_and_asks_for_usage(
    openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    await generate(openai_provider, REQUEST)

    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are Mathia, a helpful assistant."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    # A compatible server (a base URL other than OpenAI's) gets the classic field.
    assert sent.body["max_tokens"] == 256
    assert "max_completion_tokens" not in sent.body
    assert sent.api_key == SECRET_KEY


async def test_a_local_openai_compatible_server_needs_no_key(server: FakeLLMServer) -> None:
    local = OpenAICompatibleProvider("", "llama3", base_url=server.openai_url, timeout=5, name="ollama")
    try:
        result = await generate(local, REQUEST)
    finally:
        await local.aclose()

    assert (result.provider, result.model, result.finish) == ("ollama", "llama3", "end")
    assert server.requests[0].api_key == "not-needed"


async def test_tool_calls_are_assembled_from_streamed_json(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(
        Reply(
            text="Let me check.",
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris", "days": 2, "units": {"temp": "C"}}, id="call-1"),
                FakeToolCall("get_weather", {"city": "Lyon"}, id="call-2"),
            ),
        )
    )
    request = LLMRequest(system="", messages=[ChatTurn("user", "Weather?")], tools=[WEATHER])

    result = await generate(provider, request)

    assert result.text == "Let me check."
    assert result.tool_calls == [
        ToolCall("call-1", "get_weather", {"city": "Paris", "days": 2, "units": {"temp": "C"}}),
        ToolCall("call-2", "get_weather", {"city": "Lyon"}),
    ]
    assert result.finish == "tool_use"
    sent = server.requests[0].body
    if api_of(provider) == "anthropic":
        assert sent["tools"] == [
            {"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.input_schema}
        ]
        assert "system" not in sent
    else:
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": WEATHER.description,
                    "parameters": WEATHER.input_schema,
                },
            }
        ]
        assert sent["messages"][0]["role"] == "user"


async def test_a_tool_call_without_text_or_arguments(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="", tool_calls=(FakeToolCall("list_rooms", {}),)))

    result = await generate(provider, REQUEST)

    assert result.text == ""
    assert [(call.name, call.arguments) for call in result.tool_calls] == [("list_rooms", {})]
    assert result.tool_calls[0].id
    assert result.finish == "tool_use"


@pytest.mark.parametrize(("finish", "expected"), [("end", "end"), ("max_tokens", "max_tokens")])
async def test_finish_reasons_are_mapped(provider: Any, server: FakeLLMServer, finish: Any, expected: str) -> None:
    server.enqueue(Reply(text="Cut short", finish=finish))

    result = await generate(provider, REQUEST)

    assert result.finish == expected


async def test_no_usage_event_when_the_server_sends_no_usage(
    openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(text="No usage here", send_usage=False))

    events, error = await collect(openai_provider)

    assert error is None
    assert not [event for event in events if isinstance(event, Usage)]
    assert events[-1] == Finish("end")
    assert text_of(events) == "No usage here"


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth"), (403, "auth"), (400, "bad_request"), (404, "bad_request"), (500, "upstream"), (529, "upstream")],
)
async def test_http_errors_are_raised_before_any_event(
    provider: Any, server: FakeLLMServer, status: int, kind: str
) -> None:
    server.enqueue(Reply(status=status))

    events, error = await collect(provider)

    assert events == []
    assert error is not None
    assert (error.kind, error.status, error.provider) == (kind, status, provider.name)
    assert error.retryable == (kind == "upstream")
    if kind == "auth":
        assert f"check {KEY_SETTINGS[api_of(provider)]}" in error.message
    if status == 529:
        assert "overloaded" in error.message
    assert SECRET_KEY not in error.message
    assert "{" not in error.message  # no response body


async def test_rate_limit_carries_retry_after(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(status=429, retry_after=2))

    events, error = await collect(provider)

    assert events == []
    assert error is not None
    assert (error.kind, error.status, error.retry_after) == ("rate_limited", 429, 2.0)
    assert "retry in 2 s" in error.message


async def test_a_connection_cut_mid_stream_fails_after_the_partial_text(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="one two three four five", cut_after=3))

    events, error = await collect(provider)

    assert events[0] == ProviderInfo(provider.name, provider.model)
    assert text_of(events) == "one two three"
    assert not [event for event in events if isinstance(event, Finish)]
    assert all(event.output_tokens <= 1 for event in events if isinstance(event, Usage))  # no final count
    assert error is not None
    assert (error.kind, error.retryable) == ("connection", True)
    assert "mid-answer" in error.message


async def test_events_of_unknown_types_are_skipped(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="one two three", unknown_event_after=1))

    events, error = await collect(provider)

    assert error is None
    assert text_of(events) == "one two three"
    assert events[-1] == Finish("end")


@pytest.mark.parametrize("malformed", ["json", "shape", "endless"])
async def test_a_malformed_event_fails_as_malformed(
    provider: Any, server: FakeLLMServer, malformed: Literal["json", "shape", "endless"]
) -> None:
    """``endless``: a line that never ends fails once it passes the reader's limit, not at a timeout."""
    server.enqueue(Reply(text="one two three", malformed_after=1, malformed=malformed))

    events, error = await collect(provider)

    assert text_of(events) == "one"
    assert error is not None
    assert (error.kind, error.retryable) == ("malformed", False)


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [("overloaded_error", "upstream"), ("api_error", "upstream"), ("rate_limit_error", "rate_limited")],
)
async def test_an_anthropic_error_event_mid_stream(
    anthropic_provider: AnthropicProvider, server: FakeLLMServer, error_type: str, kind: str
) -> None:
    server.enqueue(Reply(text="one two three", error_event_after=2, error_type=error_type))

    events, error = await collect(anthropic_provider)

    assert text_of(events) == "one two"
    assert error is not None
    assert (error.kind, error.status) == (kind, None)
    assert error_type in error.message


async def test_an_openai_error_chunk_mid_stream(
    openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(text="one two three", error_event_after=2, error_type="server_error"))

    events, error = await collect(openai_provider)

    assert text_of(events) == "one two"
    assert error is not None
    assert error.kind == "upstream"


async def test_an_openai_stream_is_complete_at_done_even_if_the_body_stays_open(
    openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    """Some servers and proxies keep the body open after ``[DONE]``: the answer ends there, not at the read timeout."""
    server.enqueue(Reply(text="one two", hold_open_after_done=True))

    started = time.monotonic()
    events, error = await collect(openai_provider)

    assert error is None
    assert text_of(events) == "one two"
    assert events[-1] == Finish("end")
    assert time.monotonic() - started < 2  # the provider's read timeout is 5 s


async def test_a_stream_that_ends_without_its_closing_events_is_a_connection_error(
    provider: Any, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(text="one two three", end_after=2))

    events, error = await collect(provider)

    assert text_of(events) == "one two"
    assert error is not None
    assert error.kind == "connection"
    assert "ended before it was complete" in error.message
    assert not [event for event in events if isinstance(event, Finish)]
    assert all(event.output_tokens <= 1 for event in events if isinstance(event, Usage))  # no final count


async def test_the_transport_timeout_is_a_timeout(provider: Any, server: FakeLLMServer) -> None:
    slow = make_provider(api_of(provider), server, timeout=0.2)
    server.enqueue(Reply(hang=True))
    started = time.monotonic()
    try:
        events, error = await collect(slow)
    finally:
        await slow.aclose()

    assert events == []
    assert error is not None
    assert error.kind == "timeout"
    assert time.monotonic() - started < 1


async def test_an_unreachable_server_is_a_connection_error(provider: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if api_of(provider) == "anthropic":
        unreachable: Any = AnthropicProvider(SECRET_KEY, "claude-test", base_url=f"http://127.0.0.1:{port}", timeout=2)
    else:
        unreachable = OpenAICompatibleProvider(
            SECRET_KEY, "gpt-test", base_url=f"http://127.0.0.1:{port}/v1", timeout=2
        )
    try:
        events, error = await collect(unreachable)
    finally:
        await unreachable.aclose()

    assert events == []
    assert error is not None
    assert error.kind == "connection"
    assert error.message.startswith("Could not connect to")


async def test_a_stall_mid_answer_longer_than_the_timeout_is_a_timeout(provider: Any, server: FakeLLMServer) -> None:
    # The provider's timeout bounds each read, so it is also the longest silence tolerated in a stream.
    slow = make_provider(api_of(provider), server, timeout=0.3)
    server.enqueue(Reply(text="one two three four", stall_after=2))
    try:
        events, error = await collect(slow)
    finally:
        await slow.aclose()

    assert text_of(events) == "one two"
    assert error is not None
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.message.endswith("did not answer in time.")
    stalled = server.requests[0]
    assert await server.wait_for(lambda: stalled.disconnected)


@contextlib.asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that reads a request's head, writes ``answer`` and hangs up; yields its URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    finally:
        listening.close()
        await listening.wait_closed()


@pytest.mark.parametrize("answer", [b"", b"HELLO THERE\r\n\r\n"], ids=["hangs-up", "not-http"])
async def test_a_server_that_hangs_up_or_does_not_speak_http_is_a_connection_error(
    provider: Any, answer: bytes
) -> None:
    # aiohttp raises ServerDisconnectedError, which the openai SDK's transport reports as a
    # connect timeout, and ClientResponseError, which that SDK lets through unwrapped.
    async with raw_server(answer) as url:
        if api_of(provider) == "anthropic":
            broken: Any = AnthropicProvider(SECRET_KEY, "claude-test", base_url=url, timeout=2)
        else:
            broken = OpenAICompatibleProvider(SECRET_KEY, "gpt-test", base_url=f"{url}/v1", timeout=2)
        try:
            events, error = await collect(broken)
        finally:
            await broken.aclose()

    assert events == []
    assert error is not None
    assert (error.kind, error.retryable) == ("connection", True)
    assert error.message.startswith("Could not connect to")


# --- the chain: retries, fallback, timeouts -----------------------------------------------------
async def test_chain_retries_a_rate_limit_after_retry_after(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(status=429, retry_after=2), Reply(text="Second time lucky"))
    sleeps = Sleeps()
    chain = ProviderChain([provider], sleep=sleeps)

    events, error = await collect(chain)

    assert error is None
    assert sleeps.delays == [2.0]  # Retry-After beats the 0.5 s backoff
    assert [event for event in events if isinstance(event, ProviderInfo)] == [
        ProviderInfo(provider.name, provider.model)
    ]
    assert events[0] == ProviderInfo(provider.name, provider.model)
    assert text_of(events) == "Second time lucky"
    assert len(server.requests) == 2


async def test_chain_retries_an_error_before_the_first_token_and_shows_one_provider_info(
    provider: Any, server: FakeLLMServer
) -> None:
    # The failed attempt had started streaming: its ProviderInfo must not reach the consumer.
    server.enqueue(Reply(text="lost", error_event_after=0), Reply(text="kept"))
    sleeps = Sleeps()
    chain = ProviderChain([provider], sleep=sleeps)

    events, error = await collect(chain)

    assert error is None
    assert sleeps.delays == [0.5]
    assert [event for event in events if isinstance(event, ProviderInfo)] == [events[0]]
    assert text_of(events) == "kept"


async def test_chain_backs_off_exponentially_then_gives_up(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(status=500), Reply(status=503), Reply(status=529), Reply(text="too late"))
    sleeps = Sleeps()
    chain = ProviderChain([provider], max_retries=2, backoff_base=0.5, sleep=sleeps)

    events, error = await collect(chain)

    assert events == []
    assert error is not None
    assert (error.kind, error.status, error.provider) == ("upstream", 529, provider.name)
    assert sleeps.delays == [0.5, 1.0]
    assert len(server.requests) == 3
    assert server.pending == 1


async def test_chain_backoff_is_capped(anthropic_provider: AnthropicProvider, server: FakeLLMServer) -> None:
    server.enqueue(*[Reply(status=500)] * 4, Reply(text="finally"))
    sleeps = Sleeps()
    chain = ProviderChain([anthropic_provider], max_retries=4, backoff_base=1.0, backoff_max=3.0, sleep=sleeps)

    result = await generate(chain, REQUEST)

    assert result.text == "finally"
    assert sleeps.delays == [1.0, 2.0, 3.0, 3.0]


async def test_chain_falls_back_at_once_on_a_non_retryable_error(
    anthropic_provider: AnthropicProvider, openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(status=401), api="anthropic")
    server.enqueue(Reply(text="OpenAI here"), api="openai")
    sleeps = Sleeps()
    chain = ProviderChain([anthropic_provider, openai_provider], sleep=sleeps)

    events, error = await collect(chain)

    assert error is None
    assert sleeps.delays == []
    assert events[0] == ProviderInfo("openai", "gpt-test")
    assert [event for event in events if isinstance(event, ProviderInfo)] == [events[0]]
    assert text_of(events) == "OpenAI here"
    assert [r.api for r in server.requests] == ["anthropic", "openai"]


async def test_chain_moves_on_when_retry_after_is_too_long(
    anthropic_provider: AnthropicProvider, openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(status=429, retry_after=60), api="anthropic")
    sleeps = Sleeps()
    chain = ProviderChain([anthropic_provider, openai_provider], backoff_max=8, sleep=sleeps)

    result = await generate(chain, REQUEST)

    assert result.provider == "openai"
    assert sleeps.delays == []


async def test_chain_reports_every_provider_when_all_fail(
    anthropic_provider: AnthropicProvider, openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(status=401), api="anthropic")
    server.enqueue(Reply(status=500), Reply(status=500), api="openai")
    sleeps = Sleeps()
    chain = ProviderChain([anthropic_provider, openai_provider], max_retries=1, sleep=sleeps)

    events, error = await collect(chain)

    assert events == []
    assert isinstance(error, AllProvidersFailed)
    assert [(e.provider, e.kind) for e in error.failures] == [("anthropic", "auth"), ("openai", "upstream")]
    assert error.kind == "upstream"
    assert "anthropic: Anthropic rejected the API key" in error.message
    assert "openai: OpenAI failed (HTTP 500)" in error.message
    assert sleeps.delays == [0.5]


async def test_chain_does_not_retry_after_the_first_token(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="one two three four", cut_after=2))
    sleeps = Sleeps()
    chain = ProviderChain([provider], sleep=sleeps)

    events, error = await collect(chain)

    assert text_of(events) == "one two"
    assert error is not None
    assert error.kind == "connection"
    assert sleeps.delays == []
    assert len(server.requests) == 1


async def test_chain_retries_a_malformed_start_on_the_next_provider_only(
    anthropic_provider: AnthropicProvider, openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(text="one two", malformed_after=0), api="anthropic")
    sleeps = Sleeps()
    chain = ProviderChain([anthropic_provider, openai_provider], sleep=sleeps)

    result = await generate(chain, REQUEST)

    assert result.provider == "openai"
    assert result.text == "This is the fake model answering."
    assert sleeps.delays == []


async def test_chain_first_event_timeout_retries_then_answers(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(hang=True), Reply(text="awake now"))
    sleeps = Sleeps()
    tracked = Tracked(provider)
    chain = ProviderChain([tracked], first_event_timeout=0.2, sleep=sleeps)
    started = time.monotonic()

    result = await generate(chain, REQUEST)

    assert result.text == "awake now"
    assert sleeps.delays == [0.5]
    assert 0.2 <= time.monotonic() - started < 1
    assert len(tracked.streams) == 2
    assert tracked.all_closed()
    hung = server.requests[0]
    assert await server.wait_for(lambda: hung.disconnected)


async def test_chain_first_event_timeout_covers_a_stream_that_starts_but_sends_no_text(
    provider: Any, server: FakeLLMServer
) -> None:
    server.enqueue(Reply(stall_after=0))
    tracked = Tracked(provider)
    chain = ProviderChain([tracked], max_retries=0, first_event_timeout=0.2)

    events, error = await collect(chain)

    assert events == []  # not even ProviderInfo: it is held until the first text
    assert error is not None
    assert (error.kind, error.provider) == ("timeout", provider.name)
    assert "did not start answering within 0.2 s" in error.message
    assert tracked.all_closed()
    stalled = server.requests[0]
    assert await server.wait_for(lambda: stalled.disconnected)


async def test_chain_idle_timeout_mid_answer(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="one two three four", stall_after=2))
    sleeps = Sleeps()
    tracked = Tracked(provider)
    chain = ProviderChain([tracked], idle_timeout=0.2, sleep=sleeps)

    events, error = await collect(chain)

    assert text_of(events) == "one two"
    assert error is not None
    assert error.kind == "timeout"
    assert "mid-answer" in error.message
    assert sleeps.delays == []
    assert tracked.all_closed()
    stalled = server.requests[0]
    assert await server.wait_for(lambda: stalled.disconnected)


async def test_chain_idle_timeout_counts_only_the_wait_for_the_provider(provider: Any, server: FakeLLMServer) -> None:
    """A consumer slower than the timeout between events is not a silent provider."""
    server.enqueue(Reply(text="one two three four five", tokens_per_second=100))
    chain = ProviderChain([provider], idle_timeout=0.2)
    texts = []
    async with contextlib.aclosing(chain.stream(LLMRequest(system="", messages=[ChatTurn("user", "Hi")]))) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                texts.append(event.text)
                await asyncio.sleep(0.3)  # longer than idle_timeout, between two reads
    assert "".join(texts).split() == ["one", "two", "three", "four", "five"]


async def test_stopping_the_consumer_is_not_reported_as_a_timeout(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="word " * 50, tokens_per_second=50))
    chain = ProviderChain([provider], idle_timeout=5.0)

    async def consume() -> None:
        async for _ in chain.stream(LLMRequest(system="", messages=[ChatTurn("user", "Hi")])):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- closing and cancelling ---------------------------------------------------------------------
async def test_cancelling_the_consumer_closes_the_upstream_request(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="word " * 100, tokens_per_second=50))
    tracked = Tracked(provider)
    chain = ProviderChain([tracked])
    received: list[str] = []
    two_tokens = asyncio.Event()

    async def consume() -> None:
        async for event in chain.stream(REQUEST):
            if isinstance(event, TextDelta):
                received.append(event.text)
                if len(received) == 2:
                    two_tokens.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_tokens.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert tracked.all_closed()
    streamed = server.requests[0]
    assert await server.wait_for(lambda: streamed.disconnected)
    assert not streamed.completed
    assert len(received) < 10


async def test_closing_the_stream_early_closes_the_upstream_request(provider: Any, server: FakeLLMServer) -> None:
    server.enqueue(Reply(text="word " * 100, tokens_per_second=50))
    tracked = Tracked(provider)
    chain = ProviderChain([tracked])

    async with contextlib.aclosing(chain.stream(REQUEST)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break

    assert tracked.all_closed()
    streamed = server.requests[0]
    assert await server.wait_for(lambda: streamed.disconnected)
    assert not streamed.completed


async def test_the_fake_server_streams_concurrently(
    openai_provider: OpenAICompatibleProvider, server: FakeLLMServer
) -> None:
    # 30 streams of at least 0.15 s each would take 4.5 s one after the other.
    server.reset(default=Reply(text="a b c d", tokens_per_second=20))
    started = time.monotonic()

    results = await asyncio.gather(*(generate(openai_provider, REQUEST) for _ in range(30)))

    assert {result.text for result in results} == {"a b c d"}
    assert len(server.requests) == 30
    assert time.monotonic() - started < 1.5


async def test_one_provider_streams_hundreds_of_answers_at_once(provider: Any, server: FakeLLMServer) -> None:
    # Each streaming answer holds a connection for its whole length: with aiohttp's default
    # pool of 100 connections, the 101st answer would wait for one of the first to end.
    answers = 150
    server.reset(default=Reply(text="one two", stall_after=1))
    started: list[str] = []
    all_started = asyncio.Event()

    async def hold_one_answer() -> None:
        async with contextlib.aclosing(provider.stream(REQUEST)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    started.append(event.text)
                    if len(started) == answers:
                        all_started.set()
                    await asyncio.Event().wait()  # keep the stream open until cancelled

    tasks = [asyncio.create_task(hold_one_answer()) for _ in range(answers)]
    try:
        await asyncio.wait_for(all_started.wait(), 10)
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert started == ["one"] * answers
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert len(server.requests) == answers
    assert await server.wait_for(lambda: all(request.disconnected for request in server.requests), timeout=5)


# --- secrets --------------------------------------------------------------------------------------
async def test_the_key_never_reaches_errors_or_logs(
    anthropic_provider: AnthropicProvider,
    openai_provider: OpenAICompatibleProvider,
    server: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The fake's 401 body repeats the key it was sent (real APIs repeat part of it), so the
    # SDK's own exception carries it: copying that message anywhere would leak the key.
    raw_client = anthropic.AsyncAnthropic(api_key=SECRET_KEY, base_url=server.anthropic_url, max_retries=0)
    server.enqueue(Reply(status=401))
    with pytest.raises(anthropic.AuthenticationError) as raw:
        await raw_client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    await raw_client.close()
    assert SECRET_KEY in str(raw.value)

    errors: list[LLMError] = []
    for reply in (Reply(status=401), Reply(status=429, retry_after=1), Reply(text="a b", error_event_after=1)):
        for provider in (anthropic_provider, openai_provider):
            server.enqueue(reply)
            _, error = await collect(provider)
            assert error is not None
            errors.append(error)
    server.enqueue(Reply(status=401), Reply(status=403))
    _, chain_error = await collect(ProviderChain([anthropic_provider, openai_provider], sleep=Sleeps()))
    assert isinstance(chain_error, AllProvidersFailed)
    errors.append(chain_error)

    for error in errors:
        rendered = "".join(traceback.format_exception(error))
        assert SECRET_KEY not in rendered, rendered
        assert SECRET_KEY not in repr(error)
    # The failures were logged, the SDKs' debug lines too, and none holds the key.
    assert "llm_provider_error" in caplog.text
    assert "llm_attempt_failed" in caplog.text
    assert "Request options" in caplog.text
    assert SECRET_KEY not in caplog.text


# --- start-up --------------------------------------------------------------------------------------
#: Run in a fresh process: load the ASGI application as a web process does, then (given the
#: argument "answer") answer once through every configured provider; print the SDKs loaded at
#: start, the providers that answered and the SDKs the answers imported.
_START_THEN_ANSWER = """
import asyncio, json, sys
import mathia.asgi
from mathia.assistant.llm.base import ChatTurn, LLMRequest, generate

SDKS = ("anthropic", "openai", "aiohttp")
at_start = sorted(name for name in SDKS if name in sys.modules)
before = set(sys.modules)

async def answer():
    from mathia.assistant.providers import configured_models
    answered = []
    for provider in configured_models():
        result = await generate(provider, LLMRequest(system="", messages=[ChatTurn("user", "Hi")]))
        answered.append(result.provider)
        await provider.aclose()
    return answered

answered = asyncio.run(answer()) if sys.argv[1:] == ["answer"] else []
by_answer = sorted({name.split(".")[0] for name in set(sys.modules) - before} & set(SDKS))
print(json.dumps({"at_start": at_start, "answered": answered, "imported_by_answer": by_answer}))
"""


def test_a_web_process_loads_the_provider_sdks_at_start_not_on_the_first_answer(
    server: FakeLLMServer, tmp_path: Path
) -> None:
    report = _start_then_answer(
        {
            "LLM_PROVIDERS": "anthropic,openai,builtin",
            "ANTHROPIC_API_KEY": SECRET_KEY,
            "ANTHROPIC_BASE_URL": server.anthropic_url,
            "OPENAI_BASE_URL": server.openai_url,  # a local server: a base URL and no key
        },
        tmp_path,
    )

    assert report["answered"] == ["anthropic", "openai"]
    assert report["at_start"] == ["aiohttp", "anthropic", "openai"]
    assert report["imported_by_answer"] == []


def test_a_web_process_without_a_model_does_not_load_the_sdks(tmp_path: Path) -> None:
    # No key and no base URL: only the built-in assistant can answer.
    report = _start_then_answer({"LLM_PROVIDERS": "anthropic,openai,builtin"}, tmp_path, answer=False)

    assert report["at_start"] == []


def test_a_web_process_loads_only_the_sdk_of_the_provider_it_uses(server: FakeLLMServer, tmp_path: Path) -> None:
    report = _start_then_answer({"LLM_PROVIDERS": "openai,builtin", "OPENAI_BASE_URL": server.openai_url}, tmp_path)

    assert report["answered"] == ["openai"]
    assert report["at_start"] == ["aiohttp", "openai"]  # no anthropic: it is not configured
    assert report["imported_by_answer"] == []


def _start_then_answer(environ: dict[str, str], tmp_path: Path, *, answer: bool = True) -> dict[str, Any]:
    base = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _START_THEN_ANSWER, *(["answer"] if answer else [])],
        cwd=PROJECT_ROOT,
        env={**base, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


async def test_a_provider_replaced_by_new_settings_closes_its_clients(
    server: FakeLLMServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mathia.assistant import providers

    monkeypatch.setattr(providers, "CLOSE_REPLACED_AFTER_SECONDS", 0.0)
    settings.LLM_PROVIDERS = ["anthropic"]
    settings.ANTHROPIC_API_KEY = SECRET_KEY
    settings.ANTHROPIC_BASE_URL = server.anthropic_url
    old = providers.build_assistant_provider()
    assert providers.build_assistant_provider() is old  # cached while the settings stay
    settings.ANTHROPIC_MODEL = "claude-other"
    new = providers.build_assistant_provider()
    assert new is not old
    assert old.chain is not None
    old_client = old.chain.providers[0]._client  # type: ignore[attr-defined]
    for _ in range(50):
        if old_client.is_closed():
            break
        await asyncio.sleep(0.02)
    assert old_client.is_closed()
    await providers.close_providers()
