"""The assistant app, and loading the provider SDKs when a web process starts."""

from __future__ import annotations

import importlib

from django.apps import AppConfig
from django.conf import settings

#: What the first answer through a network provider imports: the runner, ``providers`` (which
#: imports both provider modules whichever are configured), the SDKs and aiohttp through them,
#: and the part of the ``openai`` SDK its client loads on its first request.
_ANSWER_MODULES = (
    "mathia.assistant.runner",
    "mathia.assistant.llm.anthropic_provider",
    "mathia.assistant.llm.openai_provider",
    "openai.resources.chat.chat",
    "openai.resources.chat.completions.completions",
)


class AssistantConfig(AppConfig):
    name = "mathia.assistant"
    label = "assistant"


def network_provider_configured() -> bool:
    """Whether a provider in ``LLM_PROVIDERS`` has its key (or, for OpenAI-compatible servers, a
    base URL): the test ``providers.configured_models`` applies, without building the clients,
    which belong to the event loop that first uses them."""
    return any(
        (name == "anthropic" and settings.ANTHROPIC_API_KEY)
        or (name == "openai" and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL))
        for name in settings.LLM_PROVIDERS
    )


def preload_provider_sdks() -> bool:
    """Import the provider SDKs now if a network provider is configured; returns whether it did.

    Importing ``anthropic`` and ``openai`` takes 2-3 s of CPU on the shared 2-core machine.
    Done lazily, that time went to the first answer of every web process; called when the
    process loads its ASGI application (``mathia/asgi.py``), it goes to start-up instead.
    Processes that never answer (management commands, Beat) do not pay for it, nor does a
    web process with only the built-in assistant.
    """
    if not network_provider_configured():
        return False
    for module in _ANSWER_MODULES:
        importlib.import_module(module)
    return True
