"""The assistant app, and loading the provider SDKs when a web process starts."""

from __future__ import annotations

import importlib

from django.apps import AppConfig

#: What the first answer through each network provider imports: its provider module (and the
#: SDK and aiohttp through it), and for ``openai`` the part of the SDK its client loads on its
#: first request.
_ANSWER_MODULES = {
    "anthropic": ("mathia.assistant.llm.anthropic_provider",),
    "openai": (
        "mathia.assistant.llm.openai_provider",
        "openai.resources.chat.chat",
        "openai.resources.chat.completions.completions",
    ),
}


class AssistantConfig(AppConfig):
    name = "mathia.assistant"
    label = "assistant"


def preload_provider_sdks() -> bool:
    """Import the provider SDKs now if a network provider is configured; returns whether it did.

    Importing ``anthropic`` and ``openai`` takes 2-3 s of CPU on the shared 2-core machine.
    Done lazily, that time went to the first answer of every web process; called when the
    process loads its ASGI application (``mathia/asgi.py``), it goes to start-up instead.
    Processes that never answer (management commands, Beat) do not pay for it, nor does a
    web process with only the built-in assistant.
    """
    from mathia.assistant.providers import configured_provider_names

    names = configured_provider_names()
    if not names:
        return False
    importlib.import_module("mathia.assistant.runner")
    for name in names:
        for module in _ANSWER_MODULES[name]:
            importlib.import_module(module)
    return True
