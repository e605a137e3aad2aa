"""Pull one JSON object out of what a language model wrote.

Models asked for JSON rarely answer with only JSON: they wrap it in a Markdown code fence,
put a sentence before and after it, or leave a trailing comma the way they would in Python
or JavaScript. :func:`extract_json` finds the object anyway, and when it cannot, raises
:class:`JSONExtractionError` with a message that says what was wrong, so the caller can
log it or hand it back to the model.

How it looks, in order:

1. Inside code fences tagged ``json`` (or untagged), the first fence holding an object wins.
   Fences go first so that an example object in the prose before them ("reply like
   ``{"name": ...}``") is not taken for the answer.
2. Anywhere in the text: the first ``{`` that starts an object. That includes an object
   inside a list (``[{"a": 1}]`` gives ``{"a": 1}``); a list is only an error when no
   object can be found at all.

At each ``{`` a small scanner finds the matching ``}``. It knows where JSON strings begin
and end, so a ``}`` inside a string does not end the object, and as it goes it repairs the
two slips models make most, both of which can never occur in valid JSON, so repairing them
cannot change what a well-formed object means:

- a trailing comma before ``}`` or ``]`` (``"a,}"`` inside a string is left alone);
- the Python literals ``True``, ``False`` and ``None`` as bare words (``"None"`` inside a
  string is left alone).

The span, and only the span, is then decoded with the standard :mod:`json` module. A ``{``
that does not give an object is skipped together with everything up to its matching ``}``,
so the objects nested inside a broken one are never returned in its place. Positions in
error messages are 0-based character offsets into the text.

Deliberately not repaired, because each one needs a guess: single-quoted strings, comments,
unquoted keys, smart quotes, ``NaN``/``Infinity`` (rejected even though :mod:`json` accepts
them, since they are not JSON and ``nan != nan`` breaks comparisons downstream), doubled
commas, and objects cut off before their closing brace (a truncated answer is an error, not
something to close up).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["JSONExtractionError", "extract_json", "extract_json_or_none"]


class JSONExtractionError(ValueError):
    """No JSON object could be taken from the text; the message says why.

    Messages quote at most a short excerpt of the text, so they are safe to log even when
    the model's reply is long or holds something private.
    """


def extract_json(text: str) -> dict[str, Any]:
    """Return the JSON object in ``text``, or raise :class:`JSONExtractionError`."""
    scan = _Scan(text)
    for body_start, body_end in _json_fence_bodies(text):
        found = scan.first_object(body_start, body_end)
        if found is not None:
            return found
    found = scan.first_object(0, len(text))
    if found is not None:
        return found
    raise JSONExtractionError(scan.diagnosis())


def extract_json_or_none(text: str) -> dict[str, Any] | None:
    """Like :func:`extract_json`, but ``None`` when there is no usable object."""
    try:
        return extract_json(text)
    except JSONExtractionError:
        return None


# --- code fences ---------------------------------------------------------------------------

# A fence opens with ``` at the start of a line (after optional indentation) and its info
# string is the rest of that line. Requiring the start of a line is what keeps fences apart
# from JSON: a JSON string cannot hold a raw newline, so a line can never begin inside one.
_FENCE = re.compile(r"^[ \t]*```([^\n`]*)$", re.MULTILINE)
_JSON_FENCE_TAGS = frozenset({"", "json", "jsonc", "json5"})


def _json_fence_bodies(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the bodies of fences tagged as JSON or untagged.

    Fences pair up in order: each opener is closed by the next fence line (or the end of the
    text, as a model that runs out of tokens leaves a fence open).
    """
    bodies: list[tuple[int, int]] = []
    fences = list(_FENCE.finditer(text))
    for opener, closer in zip(fences[::2], [*fences[1::2], None], strict=False):
        if opener.group(1).strip().lower() not in _JSON_FENCE_TAGS:
            continue
        end = closer.start() if closer is not None else len(text)
        bodies.append((opener.end(), end))
    return bodies


# --- trying one candidate -----------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)

# Each candidate costs a scan from its bracket to the matching one, or to the end of the text
# when there is none. Brackets that never close are remembered from the first scan that
# meets them and skipped without a scan of their own, which keeps text full of stray braces
# cheap; this budget, in characters scanned per character of text, bounds whatever
# pathological input is left (once it is spent, no more candidates are tried).
_SCAN_BUDGET_PER_CHAR = 4
_SCAN_BUDGET_FLOOR = 4096
_EXCERPT_CHARS = 30


@dataclass(frozen=True, slots=True)
class _Failure:
    """The candidate at ``start`` gave no value: ``reason``, found at position ``at``.

    ``end`` is where its brackets balance, or ``None`` if they never do.
    """

    start: int
    end: int | None
    reason: str
    at: int


class _Scan:
    """The candidates tried on one text, remembered by position.

    The fence pass and the whole-text pass look at some of the same braces; remembering the
    outcomes keeps the second pass cheap and gives :meth:`diagnosis` the first failure.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._outcomes: dict[int, Any] = {}  # a decoded value or a _Failure
        self._unclosed: dict[int, _Unclosed] = {}  # openers known never to close, and why
        self._budget = _SCAN_BUDGET_PER_CHAR * len(text) + _SCAN_BUDGET_FLOOR

    def first_object(self, start: int, end: int) -> dict[str, Any] | None:
        """The first object that starts at a ``{`` in ``text[start:end]``.

        A candidate that fails but whose brackets balance is skipped as a whole, so a broken
        object never yields one of the objects nested inside it.
        """
        i = self.text.find("{", start, end)
        while i != -1 and self._budget > 0:
            outcome = self._value_at(i)
            if not isinstance(outcome, _Failure):  # a "{" that parses is an object
                return outcome
            i = self.text.find("{", outcome.end if outcome.end is not None else i + 1, end)
        return None

    def diagnosis(self) -> str:
        """Say why there is no object: the first thing that looked like JSON, or nothing."""
        failures = [o for o in self._outcomes.values() if isinstance(o, _Failure)]
        first_failure = min(failures, key=lambda f: f.start, default=None)
        list_at = self._first_list(before=first_failure.start if first_failure else len(self.text))
        if list_at is not None:
            return f"the JSON at position {list_at} is a list, not an object"
        if first_failure is not None:
            excerpt = self.text[first_failure.at : first_failure.at + _EXCERPT_CHARS]
            return (
                f"found something that looks like JSON at position {first_failure.start} but it does not parse: "
                f"{first_failure.reason} (at position {first_failure.at}, near {excerpt!r})"
            )
        if not self.text.strip(_JSON_WHITESPACE + "\ufeff"):
            return "no JSON object found: the text is empty"
        return f"no JSON object found in {len(self.text)} characters of text"

    def _first_list(self, *, before: int) -> int | None:
        """Where the first list that parses starts, looking only before ``before``."""
        i = self.text.find("[", 0, before)
        while i != -1 and self._budget > 0:
            outcome = self._value_at(i)
            if not isinstance(outcome, _Failure):  # a "[" that parses is a list
                return i
            i = self.text.find("[", outcome.end if outcome.end is not None else i + 1, before)
        return None

    def _value_at(self, start: int) -> Any:
        """Decode the bracketed value at ``start`` (repaired), or say why it does not decode.

        The span is found before anything is decoded, and only the span is decoded: a
        :class:`json.JSONDecodeError` counts the lines before its position, so decoding
        from every stray brace of a long text would take quadratic time.
        """
        if start in self._outcomes:
            return self._outcomes[start]
        span = self._unclosed.get(start) or _repaired_span(self.text, start)
        outcome: Any
        if isinstance(span, _Unclosed):
            if start not in self._unclosed:
                self._budget -= span.stopped_at - start
                self._unclosed.update(dict.fromkeys(span.openers, span))
            outcome = _Failure(start, None, span.reason, span.at)
        else:
            self._budget -= span.end - start
            outcome = _decode(span)
        self._outcomes[start] = outcome
        return outcome


def _decode(span: _Span) -> Any:
    """The value of a balanced span, or a :class:`_Failure` with the error placed in the text."""
    try:
        return _DECODER.decode(span.repaired)
    except json.JSONDecodeError as error:
        at = span.original_position(error.pos)
        return _Failure(span.start, span.end, error.msg, at)
    except ValueError as error:  # NaN or Infinity, from _reject_constant
        return _Failure(span.start, span.end, str(error), span.start)
    except RecursionError:
        return _Failure(span.start, span.end, "it is nested too deeply", span.start)


# --- the string-aware repairer -------------------------------------------------------------

# Outside strings: anything that opens a string, nests, separates, or might be a Python word.
_OUTSIDE = re.compile(r'["{}\[\],]|[A-Za-z_][A-Za-z0-9_]*')
# Inside a string, only a backslash or a quote matters.
_INSIDE = re.compile(r'["\\]')
_JSON_WHITESPACE = " \t\r\n"
_OPENERS = {"}": "{", "]": "["}  # each closer and the opener it closes
# The same length as what they replace, so a repaired position maps back by commas alone.
_PYTHON_WORDS = {"True": "true", "False": "false", "None": "null"}


@dataclass(frozen=True, slots=True)
class _Span:
    """A balanced value at ``text[start:end]``, as ``repaired`` text.

    ``dropped_commas`` are the positions in the text of the trailing commas left out, which
    is all it takes to map a position in ``repaired`` back to the text.
    """

    start: int
    end: int
    repaired: str
    dropped_commas: tuple[int, ...]

    def original_position(self, repaired_position: int) -> int:
        position = self.start + repaired_position
        for comma in self.dropped_commas:
            if comma > position:
                break
            position += 1
        return position


@dataclass(frozen=True, slots=True)
class _Unclosed:
    """The brackets from a start never balance: ``reason``, found at position ``at``.

    ``openers`` are all the brackets left open. A scan from any of them would meet exactly
    the same tokens (each was reached outside a string), so none of them can close either,
    and none needs a scan of its own. ``stopped_at`` is where the scan gave up.
    """

    openers: tuple[int, ...]
    stopped_at: int
    reason: str
    at: int


def _repaired_span(text: str, start: int) -> _Span | _Unclosed:
    """Find where the bracket at ``text[start]`` is closed, repairing what lies between.

    One pass, jumping over the insides of JSON strings; only tokens outside strings are
    rewritten. The brackets do not balance when a string is left open, a closer does not
    match its opener, or the text ends first.
    """
    pieces: list[str] = []
    copied_to = start  # text[start:copied_to] is already in pieces
    dropped: list[int] = []
    open_brackets: list[int] = []  # positions
    i = start
    while (match := _OUTSIDE.search(text, i)) is not None:
        lexeme = match.group()
        i = match.end()
        if lexeme == '"':
            string_end = _string_end(text, i)
            if string_end is None:
                return _Unclosed(tuple(open_brackets), len(text), "a string is never closed", match.start())
            i = string_end
        elif lexeme in ("{", "["):
            open_brackets.append(match.start())
        elif lexeme in _OPENERS:
            if text[open_brackets[-1]] != _OPENERS[lexeme]:
                reason = f"{lexeme!r} does not close {text[open_brackets[-1]]!r}"
                return _Unclosed(tuple(open_brackets), i, reason, match.start())
            open_brackets.pop()
            if not open_brackets:
                pieces.append(text[copied_to:i])
                return _Span(start, i, "".join(pieces), tuple(dropped))
        elif lexeme == ",":
            if _is_trailing_comma(text, match.start(), start):
                pieces.append(text[copied_to : match.start()])
                copied_to = i
                dropped.append(match.start())
        elif lexeme in _PYTHON_WORDS:
            pieces.append(text[copied_to : match.start()])
            pieces.append(_PYTHON_WORDS[lexeme])
            copied_to = i
    reason = f"the text ends before this {text[open_brackets[-1]]!r} is closed"
    return _Unclosed(tuple(open_brackets), len(text), reason, open_brackets[-1])


def _string_end(text: str, i: int) -> int | None:
    """The index just past the closing quote of the string whose body starts at ``i``."""
    while (match := _INSIDE.search(text, i)) is not None:
        if match.group() == '"':
            return match.end()
        i = match.end() + 1  # a backslash escapes the next character, whatever it is
    return None


def _is_trailing_comma(text: str, comma: int, floor: int) -> bool:
    """A comma that ends a non-empty container: ``[1,]`` yes; ``[,]`` and ``[1,,]`` no.

    Dropping a comma that follows nothing would invent a repair (``{,}`` -> ``{}``) for text
    that is more likely garbage than a slip.
    """
    after = comma + 1
    while after < len(text) and text[after] in _JSON_WHITESPACE:
        after += 1
    if after >= len(text) or text[after] not in _OPENERS:
        return False
    before = comma - 1
    while before > floor and text[before] in _JSON_WHITESPACE:
        before -= 1
    return text[before] not in "{[,:"
