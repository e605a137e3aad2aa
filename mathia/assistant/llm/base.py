"""The one interface every language-model provider implements.

A provider turns an :class:`LLMRequest` into an async stream of events: text deltas,
tool-call requests, token usage and a finish reason. ``generate`` is the same call, collected.
Providers raise :class:`LLMError` (never an SDK exception) with a kind that says whether a
retry can help and a message safe to show people: it never contains a key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class ChatTurn:
    """One turn of the conversation.

    An assistant turn may carry the ``tool_calls`` the model made in it; the user turn after it
    then carries their ``tool_results``, which is how results are fed back to the model.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolOutput, ...] = ()


@dataclass(frozen=True)
class ToolOutput:
    """The result of one tool call, as fed back to the model (``content`` is text, usually JSON)."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``input_schema`` is a JSON schema (an object)."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class LLMRequest:
    system: str
    messages: list[ChatTurn]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 1024


# --- stream events -----------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderInfo:
    """First event of a stream: which provider and model are answering."""

    provider: str
    model: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


FinishReason = Literal["end", "max_tokens", "tool_use", "other"]


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


StreamEvent = ProviderInfo | TextDelta | ToolCall | Usage | Finish


ErrorKind = Literal["auth", "rate_limited", "upstream", "timeout", "connection", "malformed", "bad_request"]
RETRYABLE: frozenset[str] = frozenset({"rate_limited", "upstream", "timeout", "connection"})


class LLMError(Exception):
    """A provider failed. ``message`` is for people and never holds a key or a response body."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class LLMProvider(Protocol):
    name: str
    model: str

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Yield ``ProviderInfo`` first, then deltas, tool calls, ``Usage`` and ``Finish``."""
        ...


@dataclass
class Completion:
    provider: str = ""
    model: str = ""
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish: FinishReason | None = None


async def generate(provider: LLMProvider, request: LLMRequest) -> Completion:
    """``stream``, collected into one :class:`Completion`."""
    result = Completion()
    parts: list[str] = []
    async for event in provider.stream(request):
        if isinstance(event, ProviderInfo):
            result.provider, result.model = event.provider, event.model
        elif isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, ToolCall):
            result.tool_calls.append(event)
        elif isinstance(event, Usage):
            result.usage = event
        elif isinstance(event, Finish):
            result.finish = event.reason
    result.text = "".join(parts)
    return result
