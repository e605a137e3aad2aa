"""The provider chain from settings: configured providers in ``LLM_PROVIDERS`` order.

A provider without its key (or, for OpenAI-compatible servers, a base URL) is skipped.
When ``builtin`` is in the list it answers if every model before it failed before its
first token, saying why, or when no model is configured at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

from mathia.assistant.builtin import BuiltinAssistant
from mathia.assistant.llm.anthropic_provider import AnthropicProvider
from mathia.assistant.llm.base import LLMError, LLMProvider, LLMRequest, StreamEvent, TextDelta, ToolCall
from mathia.assistant.llm.chain import ProviderChain


def _configured_names() -> list[str]:
    """The network providers in ``LLM_PROVIDERS`` that have what they need, in order."""
    names: list[str] = []
    for name in settings.LLM_PROVIDERS:
        if (name == "anthropic" and settings.ANTHROPIC_API_KEY) or (
            name == "openai" and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
        ):
            names.append(name)
    return names


def primary_model() -> tuple[str, str]:
    """The provider and model a prompt is budgeted for (the first configured), from settings alone."""
    models = {"anthropic": settings.ANTHROPIC_MODEL, "openai": settings.OPENAI_MODEL}
    names = _configured_names()
    if names:
        return names[0], models[names[0]]
    return BuiltinAssistant.name, BuiltinAssistant.model


def configured_models() -> list[LLMProvider]:
    """The real (network) providers that have what they need, in fallback order."""
    from mathia.assistant.llm.openai_provider import OpenAICompatibleProvider

    timeout = settings.LLM_FIRST_TOKEN_TIMEOUT
    providers: list[LLMProvider] = []
    for name in _configured_names():
        if name == "anthropic":
            providers.append(
                AnthropicProvider(
                    api_key=settings.ANTHROPIC_API_KEY,
                    model=settings.ANTHROPIC_MODEL,
                    base_url=settings.ANTHROPIC_BASE_URL,
                    timeout=timeout,
                )
            )
        elif name == "openai":
            providers.append(
                OpenAICompatibleProvider(
                    api_key=settings.OPENAI_API_KEY,  # empty for a local server: the provider fills in a placeholder
                    model=settings.OPENAI_MODEL,
                    base_url=settings.OPENAI_BASE_URL,
                    timeout=timeout,
                )
            )
    return providers


class AssistantProvider:
    """The configured models through a :class:`ProviderChain`, then the built-in assistant."""

    name = "assistant"
    model = ""

    def __init__(self, models: list[LLMProvider], *, builtin: bool) -> None:
        self.chain = (
            ProviderChain(
                models,
                max_retries=settings.LLM_MAX_RETRIES,
                first_event_timeout=settings.LLM_FIRST_TOKEN_TIMEOUT,
                idle_timeout=settings.LLM_IDLE_TIMEOUT,
            )
            if models
            else None
        )
        self.builtin = builtin

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        if self.chain is None:
            async for event in BuiltinAssistant().stream(request):
                yield event
            return
        started = False
        try:
            # aclosing: a consumer that stops early (Stop) closes the upstream request now, not at GC.
            async with contextlib.aclosing(self.chain.stream(request)) as events:  # type: ignore[type-var]
                async for event in events:
                    if isinstance(event, TextDelta | ToolCall):
                        started = True
                    yield event
        except LLMError as error:
            if started or not self.builtin:
                raise
            async for event in BuiltinAssistant(reason=error.message).stream(request):
                yield event


_SETTINGS = (
    "LLM_PROVIDERS",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "LLM_FIRST_TOKEN_TIMEOUT",
    "LLM_IDLE_TIMEOUT",
    "LLM_MAX_RETRIES",
)
_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[tuple[Any, ...], AssistantProvider]] = (
    weakref.WeakKeyDictionary()
)


async def close_providers() -> None:
    """Close the SDK clients cached for the running loop."""
    cached = _cache.pop(asyncio.get_running_loop(), None)
    if cached is not None and cached[1].chain is not None:
        for provider in cached[1].chain.providers:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()


def build_assistant_provider() -> AssistantProvider:
    """The provider for this event loop, reused so connections to the provider stay open.

    SDK clients hold an HTTP connection pool bound to the loop that made it.
    """
    loop = asyncio.get_running_loop()
    key = tuple(repr(getattr(settings, name)) for name in _SETTINGS)
    cached = _cache.get(loop)
    if cached is not None and cached[0] == key:
        return cached[1]
    provider = AssistantProvider(configured_models(), builtin="builtin" in settings.LLM_PROVIDERS)
    _cache[loop] = (key, provider)
    return provider
