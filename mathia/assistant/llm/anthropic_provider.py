"""Claude, through the official ``anthropic`` SDK's streaming Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
import structlog
from anthropic.types import (
    AssistantMessageParam,
    MessageDeltaUsage,
    MessageParam,
    RawMessageStreamEvent,
    ToolParam,
    UserMessageParam,
)
from anthropic.types import Usage as AnthropicUsage

from . import _http
from ._http import Malformed, as_int, as_str, parse_arguments
from .base import (
    Finish,
    FinishReason,
    LLMError,
    LLMRequest,
    ProviderInfo,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
KEY_SETTING = "ANTHROPIC_API_KEY"
_LABEL = "Anthropic"
_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "end",
    "stop_sequence": "end",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
}


class AnthropicProvider:
    """Streams answers from Claude.

    The SDK's own retries are off (``max_retries=0``): retrying, with backoff and
    fallback to another provider, is :class:`~mathia.assistant.llm.chain.ProviderChain`'s
    job. ``timeout`` bounds connecting and each read, so it is also the longest silence
    tolerated inside a stream. HTTP goes through the SDK's aiohttp transport (see
    :mod:`._http`), whose connection pool (an aiohttp session) is bound to the event loop
    that first uses it: make one provider per loop, and close it with :meth:`aclose`.
    """

    name = "anthropic"

    def __init__(self, api_key: str, model: str, *, base_url: str | None = None, timeout: float = 60.0) -> None:
        self.model = model
        timeouts = _http.timeout_config(timeout)
        # An explicit base URL and key keep the SDK from reading ANTHROPIC_* variables or profiles itself.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeouts,
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(timeout=timeouts, limits=_http.CONNECTION_LIMITS),
        )

    async def aclose(self) -> None:
        """Close the connection pool: the SDK closes the aiohttp client it was given."""
        await self._client.close()

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        try:
            events = await self._client.messages.create(
                model=self.model,
                max_tokens=request.max_tokens,
                messages=_messages(request),
                system=request.system or anthropic.omit,
                tools=_tools(request) or anthropic.omit,
                stream=True,
            )
        except Exception as exc:
            raise self._error(exc, started=False) from None
        async with events:
            yield ProviderInfo(self.name, self.model)
            message = _Message()
            iterator = aiter(events)
            # Read to the end of the body, past message_stop, so the connection can be reused.
            while True:
                try:
                    event = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._error(exc, started=True) from None
                try:
                    produced = message.feed(event)
                except Malformed:
                    log.info("llm_malformed_event", provider=self.name, event_type=_http.safe_token(event.type))
                    raise _http.malformed_error(provider=self.name, label=_LABEL) from None
                for produced_event in produced:
                    yield produced_event
            if not message.stopped:
                raise _http.ended_early_error(provider=self.name, label=_LABEL)

    def _error(self, exc: Exception, *, started: bool) -> LLMError:
        """Translate an exception from the SDK or the transport; re-raise anything else."""
        error = _translate(exc, provider=self.name, started=started)
        if error is None:
            raise exc
        request_id = None
        if isinstance(exc, anthropic.APIStatusError):
            request_id = _http.safe_token(exc.request_id)
        log.info(
            "llm_provider_error",
            provider=self.name,
            kind=error.kind,
            status=error.status,
            error=type(exc).__name__,
            request_id=request_id,
        )
        return error


def _translate(exc: Exception, *, provider: str, started: bool) -> LLMError | None:
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code == 200:
            # The SDK raises an `event: error` frame as a status error on the (200) stream response.
            return _http.stream_error(provider=provider, label=_LABEL, error_type=exc.type)
        return _http.status_error(
            provider=provider,
            label=_LABEL,
            status=exc.status_code,
            headers=exc.response.headers,
            key_setting=KEY_SETTING,
        )
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        # ValueError: the SDK parses each event with json.loads, unguarded.
        return _http.malformed_error(provider=provider, label=_LABEL)
    if isinstance(exc, anthropic.CredentialsError):
        return LLMError("auth", f"{_LABEL} has no usable key; check {KEY_SETTING}.", provider=provider)
    # The SDK wraps a failure to send the request (APITimeoutError, APIConnectionError); one
    # while reading the stream comes through as the transport raised it.
    transport = _http.transport_error(
        provider=provider,
        label=_LABEL,
        exc=exc,
        started=started,
        sdk_timeouts=(anthropic.APITimeoutError,),
        sdk_errors=(anthropic.APIConnectionError,),
    )
    if transport is not None:
        return transport
    if isinstance(exc, anthropic.AnthropicError):
        return LLMError("upstream", f"{_LABEL} failed.", provider=provider)
    return None


def _messages(request: LLMRequest) -> list[MessageParam]:
    messages: list[MessageParam] = []
    for turn in request.messages:
        if turn.role == "user":
            if not turn.tool_results:
                messages.append(UserMessageParam(role="user", content=turn.content))
                continue
            # Tool results come first in the user turn that follows the tool_use blocks.
            blocks: list[Any] = [
                {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
                for r in turn.tool_results
            ]
            if turn.content:
                blocks.append({"type": "text", "text": turn.content})
            messages.append(UserMessageParam(role="user", content=blocks))
        elif turn.tool_calls:
            parts: list[Any] = [{"type": "text", "text": turn.content}] if turn.content.strip() else []
            parts += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in turn.tool_calls]
            messages.append(AssistantMessageParam(role="assistant", content=parts))
        else:
            messages.append(AssistantMessageParam(role="assistant", content=turn.content))
    return messages


def _tools(request: LLMRequest) -> list[ToolParam]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": cast(Any, tool.input_schema)}
        for tool in request.tools
    ]


@dataclass
class _PendingTool:
    id: str
    name: str
    json_parts: list[str] = field(default_factory=list)


@dataclass
class _Message:
    """The state of one streamed message: open tool-use blocks, usage, and the stop reason.

    The SDK builds its event models without validating them, so any field may hold None
    or a value of the wrong type; every value used is checked (``as_str``, ``as_int``),
    and a wrong one raises :class:`Malformed`. Unknown event and block types are skipped,
    as Anthropic asks of clients, since it adds new ones over time.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    stopped: bool = False
    tools: dict[int, _PendingTool] = field(default_factory=dict)

    def feed(self, event: RawMessageStreamEvent) -> list[StreamEvent]:
        try:
            return self._feed(event)
        except (AttributeError, TypeError, KeyError) as exc:
            raise Malformed(str(type(exc).__name__)) from None

    def _feed(self, event: RawMessageStreamEvent) -> list[StreamEvent]:
        kind = as_str(event.type)
        if self.stopped:
            return []  # nothing belongs after message_stop
        if event.type == "message_start":
            usage = event.message.usage
            self.input_tokens = _input_tokens(usage)
            self.output_tokens = as_int(usage.output_tokens)
            # Known now: an answer stopped or cut later is still billed for its prompt.
            return [Usage(self.input_tokens, self.output_tokens)]
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                self.tools[as_int(event.index)] = _PendingTool(id=as_str(block.id), name=as_str(block.name))
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                text = as_str(delta.text)
                return [TextDelta(text)] if text else []
            if delta.type == "input_json_delta":
                self.tools[as_int(event.index)].json_parts.append(as_str(delta.partial_json))
            else:
                as_str(delta.type)  # a delta of an unknown type is skipped, one with no type is malformed
        elif event.type == "content_block_stop":
            tool = self.tools.pop(as_int(event.index), None)
            if tool is not None:
                return [ToolCall(tool.id, tool.name, parse_arguments("".join(tool.json_parts)))]
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason
            self.output_tokens = as_int(event.usage.output_tokens)
            if event.usage.input_tokens is not None:
                # Newer API versions repeat the (cumulative) input count here.
                self.input_tokens = _input_tokens(event.usage)
        elif event.type == "message_stop":
            self.stopped = True
            reason = _FINISH_REASONS.get(self.stop_reason or "", "other")
            return [Usage(self.input_tokens, self.output_tokens), Finish(reason)]
        else:
            log.debug("llm_unknown_event_skipped", provider="anthropic", event_type=_http.safe_token(kind))
        return []


def _input_tokens(usage: AnthropicUsage | MessageDeltaUsage) -> int:
    """All the input tokens: Anthropic counts those read from or written to the prompt cache apart."""
    return (
        as_int(usage.input_tokens)
        + as_int(usage.cache_creation_input_tokens or 0)
        + as_int(usage.cache_read_input_tokens or 0)
    )
