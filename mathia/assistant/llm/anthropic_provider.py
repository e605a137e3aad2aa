"""Claude, through the official ``anthropic`` SDK's streaming Messages API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
import structlog
from anthropic.types import (
    AssistantMessageParam,
    MessageParam,
    ToolParam,
    UserMessageParam,
)

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
        """Stream one answer.

        The SDK sends the request and raises its HTTP errors; the body's server-sent events
        are read by :func:`._http.sse_events` and their JSON by :class:`_Message`, without the
        SDK's event models, which cost more than half of the CPU of each streamed event
        (docs/performance.md).
        """
        opened = self._client.messages.with_streaming_response.create(
            model=self.model,
            max_tokens=request.max_tokens,
            messages=_messages(request),
            system=request.system or anthropic.omit,
            tools=_tools(request) or anthropic.omit,
            stream=True,
        )
        try:
            response = await opened.__aenter__()
        except Exception as exc:
            raise self._error(exc, started=False) from None
        try:
            yield ProviderInfo(self.name, self.model)
            message = _Message()
            iterator = aiter(_http.sse_events(response.http_response.aiter_bytes()))
            # Read to the end of the body, past message_stop, so the connection can be reused.
            while True:
                try:
                    sse = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Malformed:  # an event past the reader's size limit
                    log.info("llm_malformed_event", provider=self.name, event_type="oversized")
                    raise _http.malformed_error(provider=self.name, label=_LABEL) from None
                except Exception as exc:
                    raise self._error(exc, started=True) from None
                if sse.event == "error":
                    raise self._stream_error(sse.data, request_id=response.http_response.headers.get("request-id"))
                if sse.event in (None, "ping") or not sse.data:
                    continue
                try:
                    produced = message.feed(sse.data)
                except Malformed:
                    log.info("llm_malformed_event", provider=self.name, event_type=_http.safe_token(sse.event))
                    raise _http.malformed_error(provider=self.name, label=_LABEL) from None
                for produced_event in produced:
                    yield produced_event
            if not message.stopped:
                raise _http.ended_early_error(provider=self.name, label=_LABEL)
        finally:
            await opened.__aexit__(None, None, None)

    def _stream_error(self, data: str, *, request_id: object) -> LLMError:
        """An ``event: error`` inside the (200) stream: ``{"type": "error", "error": {"type": ...}}``."""
        error_type: object = None
        with contextlib.suppress(ValueError, AttributeError):
            error_type = json.loads(data).get("error", {}).get("type")
        log.info(
            "llm_provider_error",
            provider=self.name,
            kind="stream",
            error_type=_http.safe_token(error_type),
            request_id=_http.safe_token(request_id),
        )
        return _http.stream_error(provider=self.name, label=_LABEL, error_type=error_type)

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
        return _http.status_error(
            provider=provider,
            label=_LABEL,
            status=exc.status_code,
            headers=exc.response.headers,
            key_setting=KEY_SETTING,
        )
    if isinstance(exc, anthropic.APIResponseValidationError):
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

    Each event is the JSON of one server-sent event, read as plain dicts: any field may be
    missing or hold a value of the wrong type, so every value used is checked (``as_str``,
    ``as_int``), and a wrong one raises :class:`Malformed`. Unknown event and block types
    are skipped, as Anthropic asks of clients, since it adds new ones over time.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    stopped: bool = False
    tools: dict[int, _PendingTool] = field(default_factory=dict)

    def feed(self, data: str) -> list[StreamEvent]:
        try:
            event = json.loads(data)
            return self._feed(event)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            raise Malformed(str(type(exc).__name__)) from None

    def _feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        kind = as_str(event["type"])
        if self.stopped:
            return []  # nothing belongs after message_stop
        if kind == "content_block_delta":  # first: nearly every event is one
            delta = event["delta"]
            delta_type = as_str(delta["type"])  # a delta of an unknown type is skipped, one with no type is malformed
            if delta_type == "text_delta":
                text = as_str(delta["text"])
                return [TextDelta(text)] if text else []
            if delta_type == "input_json_delta":
                self.tools[as_int(event["index"])].json_parts.append(as_str(delta["partial_json"]))
        elif kind == "message_start":
            usage = event["message"]["usage"]
            self.input_tokens = _input_tokens(usage)
            self.output_tokens = as_int(usage["output_tokens"])
            # Known now: an answer stopped or cut later is still billed for its prompt.
            return [Usage(self.input_tokens, self.output_tokens)]
        elif kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "tool_use":
                self.tools[as_int(event["index"])] = _PendingTool(id=as_str(block["id"]), name=as_str(block["name"]))
        elif kind == "content_block_stop":
            tool = self.tools.pop(as_int(event["index"]), None)
            if tool is not None:
                return [ToolCall(tool.id, tool.name, parse_arguments("".join(tool.json_parts)))]
        elif kind == "message_delta":
            reason = event["delta"].get("stop_reason")
            self.stop_reason = reason if isinstance(reason, str) else None
            usage = event["usage"]
            self.output_tokens = as_int(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                # Newer API versions repeat the (cumulative) input count here.
                self.input_tokens = _input_tokens(usage)
        elif kind == "message_stop":
            self.stopped = True
            finish = _FINISH_REASONS.get(self.stop_reason or "", "other")
            return [Usage(self.input_tokens, self.output_tokens), Finish(finish)]
        else:
            log.debug("llm_unknown_event_skipped", provider="anthropic", event_type=_http.safe_token(kind))
        return []


def _input_tokens(usage: dict[str, Any]) -> int:
    """All the input tokens: Anthropic counts those read from or written to the prompt cache apart."""
    return (
        as_int(usage["input_tokens"])
        + as_int(usage.get("cache_creation_input_tokens") or 0)
        + as_int(usage.get("cache_read_input_tokens") or 0)
    )
