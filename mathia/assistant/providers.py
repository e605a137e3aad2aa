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
from mathia.assistant.llm.base import LLMError, LLMProvider, LLMRequest, StreamEvent, TextDelta, ToolCall
from mathia.assistant.llm.chain import ProviderChain


def configured_provider_names() -> list[str]:
    """The network providers in ``LLM_PROVIDERS`` that have what they need, in order.

    From settings alone: it imports no SDK (each costs a second or two) and builds no client.
    """
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
    names = configured_provider_names()
    if names:
        return names[0], models[names[0]]
    return BuiltinAssistant.name, BuiltinAssistant.model


def configured_models() -> list[LLMProvider]:
    """The real (network) providers that have what they need, in fallback order."""
    # Each provider module is imported when used: an SDK costs a second or two to import, and
    # a deployment uses one or none.
    timeout = settings.LLM_FIRST_TOKEN_TIMEOUT
    providers: list[LLMProvider] = []
    for name in configured_provider_names():
        if name == "anthropic":
            from mathia.assistant.llm.anthropic_provider import AnthropicProvider

            providers.append(
                AnthropicProvider(
                    api_key=settings.ANTHROPIC_API_KEY,
                    model=settings.ANTHROPIC_MODEL,
                    base_url=settings.ANTHROPIC_BASE_URL,
                    timeout=timeout,
                )
            )
        elif name == "openai":
            from mathia.assistant.llm.openai_provider import OpenAICompatibleProvider

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
    if cached is not None:
        await _close_clients(cached[1])


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
    if cached is not None:  # the settings changed: close the old clients once their answers end
        task = loop.create_task(_close_when_idle(cached[1]))
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    return provider


_closing: set[asyncio.Task[None]] = set()
CLOSE_REPLACED_AFTER_SECONDS = 120.0  # longer than an answer streams


async def _close_when_idle(provider: AssistantProvider) -> None:
    """Close a replaced provider's SDK clients (an aiohttp session left open logs an error)."""
    await asyncio.sleep(CLOSE_REPLACED_AFTER_SECONDS)
    await _close_clients(provider)


async def _close_clients(provider: AssistantProvider) -> None:
    if provider.chain is None:
        return
    for model in provider.chain.providers:
        close = getattr(model, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
