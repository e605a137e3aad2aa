"""The built-in offline assistant: no network, no model, never makes anything up.

It understands the structured requests the product supports (for now: help and greetings;
the tool router's deterministic parser adds weather, currency, reminders and the rest) and,
for open questions, says plainly that no language model is configured and how to enable
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

HELP_TEXT = (
    "I'm **Mathia**, this team's assistant. Mention `@mathia` in any room, or write to me here.\n\n"
    "- Ask me a question; with a language model configured I answer in the room, live. "
    "Press **Stop** to cut an answer short.\n"
    "- `@mathia help` shows this.\n\n"
)


def _last_request(request: LLMRequest) -> str:
    for turn in reversed(request.messages):
        if turn.role == "user":
            last_line = turn.content.rsplit("\n", 1)[-1]
            return _PREFIX.sub("", last_line, count=1).strip()
    return ""


def builtin_reply(text: str, *, reason: str | None = None) -> str:
    """The offline answer to ``text``; ``reason`` says why no model is answering, if one is configured."""
    if _HELP.match(text):
        return HELP_TEXT + (ENABLE_MODEL if reason is None else f"The language model is unavailable: {reason}")
    if _GREETING.match(text):
        return "Hello! Ask me for `help` to see what I can do."
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
