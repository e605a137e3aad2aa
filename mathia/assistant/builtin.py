"""The built-in offline assistant: no network, no model, never makes anything up.

The runner sends it only what neither a slash command nor the tool router's offline parser
(``mathia.tools.parser``) could turn into a tool call: it answers greetings and help, suggests
the command for a request the parser was unsure of ("is it going to rain?" -> ``/weather``),
and for open questions says plainly that no language model is configured and how to enable
one. It streams through the same path as the real providers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from mathia.assistant.llm.base import Finish, LLMRequest, ProviderInfo, StreamEvent, TextDelta

NAME = "builtin"
MODEL = "offline"

_PREFIX = re.compile(r"^[^:\n]{1,80}:\s*")  # "Ada: " before each person's message
_HELP = re.compile(r"^\s*/?(help|what can you do|commands|how do i use (you|this))\b", re.IGNORECASE)
_GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|thanks|thank you)\b[\s!.]*$", re.IGNORECASE)

ENABLE_MODEL = (
    "To let me answer open questions, an admin sets `ANTHROPIC_API_KEY` (Anthropic), or `OPENAI_API_KEY` "
    "(OpenAI), or `OPENAI_BASE_URL` for a model you run yourself (Ollama, vLLM, llama.cpp, LM Studio), "
    "and restarts Mathia."
)


def _last_request(request: LLMRequest) -> str:
    for turn in reversed(request.messages):
        if turn.role == "user":
            last_line = turn.content.rsplit("\n", 1)[-1]
            return _PREFIX.sub("", last_line, count=1).strip()
    return ""


def model_status_line() -> str:
    """How help ends: whether open questions can be answered, and how to enable a model."""
    from django.conf import settings

    configured = ("anthropic" in settings.LLM_PROVIDERS and settings.ANTHROPIC_API_KEY) or (
        "openai" in settings.LLM_PROVIDERS and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
    )
    if configured:
        return "Anything else, ask me in plain words: a language model answers."
    return "No language model is configured, so for now I answer only the requests above. " + ENABLE_MODEL


def _suggestion(text: str) -> str | None:
    """For a request the parser recognised without being sure of it: the command to use instead."""
    from mathia.tools.parser import parse_intent
    from mathia.tools.registry import registry

    match = parse_intent(text)
    if match is None:
        return None
    commands = [c for c in registry.slash_commands() if c.tool == match.tool]
    if not commands:
        return None
    usage = commands[0].usage or f"/{commands[0].name}"
    example = f" (or ask me “{match.suggestion}”)" if match.suggestion else ""
    return f"I'm not sure what you're asking for. Try `{usage}`{example}."


def builtin_reply(text: str, *, reason: str | None = None) -> str:
    """The offline answer to ``text``; ``reason`` says why no model is answering, if one is configured."""
    if _HELP.match(text):
        from mathia.tools.connectors.help import help_text

        status = model_status_line() if reason is None else f"The language model is unavailable: {reason}"
        return help_text() + "\n\n" + status
    if _GREETING.match(text):
        return "Hello! Ask me for `help` to see what I can do."
    suggestion = _suggestion(text)
    if suggestion is not None:
        return suggestion if reason is None else f"{suggestion} (The language model is unavailable: {reason})"
    if reason is not None:
        return f"I can't answer that right now: {reason} Try again in a moment, or ask me for `help`."
    return (
        "No language model is configured, so I can't answer open questions, and I won't guess. "
        + ENABLE_MODEL
        + " Meanwhile, ask me for `help` to see what I can do offline."
    )


class BuiltinAssistant:
    """A provider like the others, answering from rules alone."""

    name = NAME
    model = MODEL

    def __init__(self, *, reason: str | None = None) -> None:
        self.reason = reason

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        yield ProviderInfo(provider=NAME, model=MODEL)
        reply = builtin_reply(_last_request(request), reason=self.reason)
        for word in re.findall(r"\S+\s*", reply):
            yield TextDelta(word)
            await asyncio.sleep(0)  # let other work run between words, as a network stream would
        yield Finish("end")
