"""The offline parser: slash commands and natural requests to tool calls, with no model and no network.

:func:`parse_slash` reads ``/name rest`` for a registered :class:`SlashCommand`.
:func:`parse_intent` reads a request to @mathia ("what's the weather in Nairobi", "convert
100 usd to kes") with the :class:`IntentRule` s connectors registered. It is deterministic:
the same text always gives the same answer. A *sure* match (a pattern matched the whole
normalized request and the arguments fit the tool's schema) runs the tool without a model;
an *unsure* one (only a hint matched: "is it going to rain", "what's the exchange rate") goes
to the model, or, offline, gets a suggestion; anything else is not for a tool at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mathia.tools.registry import (
    IntentRule,
    SlashCommand,
    SlashUsageError,
    ToolInputError,
    ToolSpec,
    registry,
)

_MENTION = re.compile(r"(?<![\w@])@mathia\b[,:]?\s*", re.IGNORECASE)
_SLASH = re.compile(r"^/(?P<name>[a-zA-Z][a-zA-Z0-9_-]{0,31})(?:\s+(?P<rest>.*))?$", re.DOTALL)
# Politeness and address around a request: taken off before matching, so rules stay simple.
_LEADING = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|yo|so|um+|uh+|oh)\b[\s,!.]*)?"
    r"(?:mathia\b[\s,:!.]*)?"
    r"(?:(?:please|pls|plz|kindly)\b[\s,]*)?"
    r"(?:(?:can|could|would|will) you(?: please)?\s+|(?:i'd like you to|i want you to)\s+)?"
    r"(?:(?:please|pls|plz|kindly)\b[\s,]*)?",
    re.IGNORECASE,
)
_TRAILING = re.compile(
    r"(?:[\s,?!.]+(?:please|pls|plz|thanks|thank you|thx|mathia|for me|right now|now))*[\s?!.,;:]*$", re.IGNORECASE
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class SlashMatch:
    """``/name rest`` for a registered command: the tool and its arguments, or why they don't fit."""

    command: SlashCommand
    tool: str
    arguments: dict[str, Any] | None
    problem: str = ""  # set when the line does not fit: say it, with the usage

    @property
    def usage(self) -> str:
        return self.command.usage or f"/{self.command.name}"


@dataclass(frozen=True)
class IntentMatch:
    family: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    sure: bool = True
    rule: IntentRule | None = None

    @property
    def suggestion(self) -> str:
        return self.rule.suggestion if self.rule is not None else ""


def normalize(text: str) -> str:
    """The request without the mention, greetings, "please" and closing punctuation."""
    text = _MENTION.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    for _ in range(2):  # "hey mathia, could you please ..."
        text = _LEADING.sub("", text, count=1).strip()
    return _TRAILING.sub("", text).strip()


def parse_slash(text: str) -> SlashMatch | None:
    """A registered slash command at the start of ``text`` (after an optional @mathia), else None."""
    line = _MENTION.sub("", text.strip(), count=1).strip() if text.lstrip().lower().startswith("@mathia") else text
    match = _SLASH.match(line.strip())
    if match is None:
        return None
    command = registry.slash(match["name"])
    if command is None:
        return None
    rest = _SPACES.sub(" ", match["rest"] or "").strip()
    spec = registry.get(command.tool)
    try:
        arguments = command.parse(rest) if command.parse is not None else _default_arguments(spec, rest)
    except SlashUsageError as error:
        return SlashMatch(command, command.tool, None, problem=str(error))
    return SlashMatch(command, command.tool, arguments)


def _default_arguments(spec: ToolSpec | None, rest: str) -> dict[str, Any]:
    if not rest:
        return {}
    model = spec.input_model if spec is not None else None
    if model is None:
        raise SlashUsageError("This command takes no text.")
    fields = _string_fields(model)
    if len(fields) != 1:
        raise SlashUsageError("This command needs its own parser.")
    return {fields[0]: rest}


def _string_fields(model: type[BaseModel]) -> list[str]:
    required = [name for name, info in model.model_fields.items() if info.is_required() and info.annotation is str]
    if required:
        return required
    return [name for name, info in model.model_fields.items() if info.annotation in (str, str | None)]


class _Tables:
    """The registry's intent rules, re-read when the registry changes."""

    version = -1
    rules: list[IntentRule]

    def current(self) -> list[IntentRule]:
        if self.version != registry.version:
            self.rules = registry.intent_rules()
            for rule in self.rules:  # compile now, not on the first request
                _ = rule.compiled, rule.compiled_hints
            self.version = registry.version
        return self.rules


_tables = _Tables()


def parse_intent(text: str) -> IntentMatch | None:
    """The tool call ``text`` asks for: sure, unsure (a hint only), or None (not for a tool)."""
    request = normalize(text)
    if not request or len(request) > 300:
        return None
    rules = _tables.current()
    for rule in rules:
        for pattern in rule.compiled:
            match = pattern.fullmatch(request)
            if match is None:
                continue
            groups = {k: v.strip() for k, v in match.groupdict().items() if v is not None and v.strip()}
            arguments = rule.build(groups) if rule.build is not None else groups
            if arguments is None:
                continue
            spec = registry.get(rule.tool)
            if spec is not None:
                try:
                    spec.validate(arguments)
                except ToolInputError:
                    continue
            return IntentMatch(rule.family, rule.tool, arguments, sure=True, rule=rule)
    for rule in rules:
        if any(hint.search(request) for hint in rule.compiled_hints):
            return IntentMatch(rule.family, rule.tool, {}, sure=False, rule=rule)
    return None
