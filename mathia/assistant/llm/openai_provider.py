"""OpenAI and OpenAI-compatible servers, through the official ``openai`` SDK's Chat Completions API.

Compatible servers (Ollama, vLLM, llama.cpp, LM Studio, the Hugging Face router) speak
the same streaming format; they differ in small ways this provider tolerates: no usage
chunk, tool calls without ids or split into one piece, ``stop`` instead of ``tool_calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import structlog
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
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

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Sent when no key is configured: local servers ignore it, and the SDK refuses an empty one.
PLACEHOLDER_KEY = "not-needed"
#: How errors name a provider.
_LABELS = {
    "openai": "OpenAI",
    "ollama": "Ollama",
    "vllm": "vLLM",
    "llamacpp": "llama.cpp",
    "lmstudio": "LM Studio",
    "huggingface": "Hugging Face",
}
_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "end",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


class OpenAICompatibleProvider:
    """Streams answers from OpenAI, or from any server that speaks its Chat Completions API.

    ``base_url`` is the API root the SDK appends ``/chat/completions`` to (for OpenAI
    ``https://api.openai.com/v1``, for Ollama ``http://localhost:11434/v1``). ``name`` is
    what :class:`ProviderInfo` and errors report. Against OpenAI itself the length limit
    is sent as ``max_completion_tokens`` (its newer models refuse ``max_tokens``); other
    servers get ``max_tokens``, which they all understand. SDK retries are off, as for
    :class:`~mathia.assistant.llm.anthropic_provider.AnthropicProvider`.
    """

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        name: str = "openai",
        key_setting: str = "OPENAI_API_KEY",
    ) -> None:
        self.name = name
        self.model = model
        self._label = _LABELS.get(name, name)
        self._key_setting = key_setting
        self._official = base_url is None or base_url.rstrip("/") == DEFAULT_BASE_URL
        timeouts = _http.timeout_config(timeout)
        # An explicit base URL keeps the SDK from reading OPENAI_BASE_URL itself.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_KEY,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeouts,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=timeouts, limits=_http.CONNECTION_LIMITS),
        )

    async def aclose(self) -> None:
        """Close the connection pool: the SDK closes the aiohttp client it was given."""
        await self._client.close()

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Stream one answer: the SDK sends the request and raises its HTTP errors; the chunks
        are read by :func:`._http.sse_events` and :class:`_Completion` (see ``_http``)."""
        tools = _tools(request)
        opened = self._client.chat.completions.with_streaming_response.create(
            model=self.model,
            messages=_messages(request),
            tools=tools or openai.omit,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=request.max_tokens if self._official else openai.omit,
            max_tokens=openai.omit if self._official else request.max_tokens,
        )
        try:
            response = await opened.__aenter__()
        except Exception as exc:
            raise self._error(exc, started=False) from None
        try:
            yield ProviderInfo(self.name, self.model)
            completion = _Completion()
            iterator = aiter(_http.sse_events(response.http_response.aiter_bytes()))
            while not completion.done:  # until [DONE]
                try:
                    sse = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Malformed:  # an event past the reader's size limit
                    log.info("llm_malformed_event", provider=self.name, event_type="oversized")
                    raise _http.malformed_error(provider=self.name, label=self._label) from None
                except Exception as exc:
                    raise self._error(exc, started=True) from None
                if not sse.data:
                    continue
                try:
                    produced = completion.feed(sse.data)
                except _StreamError as error:
                    log.info("llm_provider_error", provider=self.name, kind="stream", error_type=error.error_type)
                    raise _http.stream_error(
                        provider=self.name, label=self._label, error_type=error.error_type
                    ) from None
                except Malformed:
                    log.info("llm_malformed_event", provider=self.name)
                    raise _http.malformed_error(provider=self.name, label=self._label) from None
                for produced_event in produced:
                    yield produced_event
            if completion.done:
                await _drain(iterator)
            try:
                final = completion.finish()
            except Malformed:
                raise _http.malformed_error(provider=self.name, label=self._label) from None
            if final is None:
                raise _http.ended_early_error(provider=self.name, label=self._label)
            for produced_event in final:
                yield produced_event
        finally:
            await opened.__aexit__(None, None, None)

    def _error(self, exc: Exception, *, started: bool) -> LLMError:
        """Translate an exception from the SDK or the transport; re-raise anything else."""
        error = self._translate(exc, started=started)
        if error is None:
            raise exc
        request_id = None
        if isinstance(exc, openai.APIStatusError):
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

    def _translate(self, exc: Exception, *, started: bool) -> LLMError | None:
        provider, label = self.name, self._label
        if isinstance(exc, openai.APIStatusError):
            return _http.status_error(
                provider=provider,
                label=label,
                status=exc.status_code,
                headers=exc.response.headers,
                key_setting=self._key_setting,
            )
        # The SDK wraps transport failures, mid-stream too, as APITimeoutError or APIConnectionError;
        # its aiohttp transport reports a refused or dropped connection as a timeout, so the
        # cause decides (see _http.transport_error).
        transport = _http.transport_error(
            provider=provider,
            label=label,
            exc=exc,
            started=started,
            sdk_timeouts=(openai.APITimeoutError,),
            sdk_errors=(openai.APIConnectionError,),
        )
        if transport is not None:
            return transport
        if isinstance(exc, openai.APIResponseValidationError):
            return _http.malformed_error(provider=provider, label=label)
        if isinstance(exc, openai.OpenAIError):
            return LLMError("upstream", f"{label} failed.", provider=provider)
        return None


def _messages(request: LLMRequest) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for turn in request.messages:
        if turn.role == "user":
            for result in turn.tool_results:  # one "tool" message per call, right after the assistant's calls
                messages.append({"role": "tool", "tool_call_id": result.call_id, "content": result.content})
            if turn.content or not turn.tool_results:
                messages.append({"role": "user", "content": turn.content})
        elif turn.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    "content": turn.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                        }
                        for call in turn.tool_calls
                    ],
                }
            )
        else:
            messages.append({"role": "assistant", "content": turn.content})
    return messages


def _tools(request: LLMRequest) -> list[ChatCompletionFunctionToolParam]:
    return [
        {
            "type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema},
        }
        for tool in request.tools
    ]


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


DRAIN_SECONDS = 0.1


async def _drain(events: AsyncIterator[_http.SseEvent]) -> None:
    """After [DONE]: read what is left of the body for a moment, so the connection can be reused.

    Best effort, as the SDK does: the answer is complete, so a server that keeps the body open
    or drops the connection now must not fail it.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in events:
                pass


class _StreamError(Exception):
    """A ``{"error": {...}}`` chunk inside the stream."""

    def __init__(self, error_type: str | None) -> None:
        super().__init__(error_type)
        self.error_type = error_type


@dataclass
class _Completion:
    """The state of one streamed completion: tool-call fragments, usage and the finish reason.

    Each chunk is the JSON of one server-sent event, read as plain dicts, so values are
    checked as they are read. Tool-call fragments are keyed by their ``index``; ``id``,
    ``function.name`` and ``function.arguments`` pieces are concatenated as they come.
    """

    finish_reason: str | None = None
    usage: Usage | None = None
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    done: bool = False  # ``data: [DONE]`` came: nothing after it is read

    def feed(self, data: str) -> list[StreamEvent]:
        if data.startswith("[DONE]"):
            self.done = True
            return []
        try:
            chunk = json.loads(data)
            error = chunk.get("error")
            if error:
                code = error.get("code") or error.get("type") if isinstance(error, dict) else None
                raise _StreamError(_http.safe_token(code))
            return self._feed(chunk)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            raise Malformed(type(exc).__name__) from None

    def _feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        usage = chunk.get("usage")
        if usage is not None:
            self.usage = Usage(as_int(usage["prompt_tokens"]), as_int(usage["completion_tokens"]))
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise Malformed("no choices")
        produced: list[StreamEvent] = []
        for choice in choices:
            if choice.get("index") not in (0, None):
                continue  # only one choice is asked for
            delta = choice.get("delta")
            finish_reason = choice.get("finish_reason")
            if delta is None and finish_reason is None:
                raise Malformed("a choice with neither delta nor finish reason")
            if delta is not None:
                content = delta.get("content")
                if content is not None and as_str(content):
                    produced.append(TextDelta(content))
                for fragment in delta.get("tool_calls") or ():
                    self._add_fragment(fragment)
            if finish_reason is not None:
                self.finish_reason = as_str(finish_reason)
        return produced

    def _add_fragment(self, fragment: dict[str, Any]) -> None:
        # Some servers send each call whole, without an index: each is then a call of its own.
        index = fragment.get("index")
        index = as_int(index) if index is not None else len(self.calls)
        call = self.calls.setdefault(index, _PendingCall())
        if fragment.get("id"):
            call.id = as_str(fragment["id"])
        function = fragment.get("function")
        if function is not None:
            if function.get("name"):
                call.name += as_str(function["name"])
            if function.get("arguments"):
                call.arguments += as_str(function["arguments"])

    def finish(self) -> list[StreamEvent] | None:
        """The closing events, or None if the stream ended before a finish reason."""
        if self.finish_reason is None:
            return None
        produced: list[StreamEvent] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call.name:
                raise Malformed("a tool call without a name")
            produced.append(ToolCall(call.id or f"call_{index}", call.name, parse_arguments(call.arguments)))
        if self.usage is not None:
            produced.append(self.usage)
        reason = _FINISH_REASONS.get(self.finish_reason, "other")
        if reason == "end" and self.calls:
            reason = "tool_use"  # some servers say "stop" after tool calls
        produced.append(Finish(reason))
        return produced
