"""Taking one JSON object out of what a language model wrote.

The examples show each shape of reply the extractor accepts and each mistake it refuses to
guess at; the properties check that no JSON a dict can be written as (strings full of braces,
quotes, commas and backticks included) is lost among prose, fences and trailing commas, and
that any text at all ends in an object or a JSONExtractionError, never another exception.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mathia.assistant.jsonextract import JSONExtractionError, extract_json, extract_json_or_none

# --- shapes of reply that work -----------------------------------------------------------


def test_a_bare_object() -> None:
    assert extract_json('{"city": "Oslo", "days": 3}') == {"city": "Oslo", "days": 3}


def test_prose_before_and_after() -> None:
    reply = 'Sure! Here is the forecast request:\n{"city": "Oslo", "days": 3}\nLet me know if you need more.'
    assert extract_json(reply) == {"city": "Oslo", "days": 3}


@pytest.mark.parametrize("tag", ["json", "JSON", ""])
def test_a_code_fence_with_prose_around_it(tag: str) -> None:
    reply = f'Here you go:\n\n```{tag}\n{{\n  "city": "Oslo",\n  "days": 3\n}}\n```\n\nAnything else?'
    assert extract_json(reply) == {"city": "Oslo", "days": 3}


def test_the_first_fence_that_holds_an_object_wins() -> None:
    reply = (
        "First attempt:\n```json\n{\"city\": 'Oslo'}\n```\n"
        "A list:\n```json\n[1, 2]\n```\n"
        'Fixed:\n```json\n{"city": "Oslo"}\n```\n'
        'And another:\n```json\n{"city": "Bergen"}\n```\n'
    )
    assert extract_json(reply) == {"city": "Oslo"}


def test_a_json_fence_beats_an_example_object_in_the_prose() -> None:
    reply = 'You asked for the shape {"city": "..."}; here it is:\n```json\n{"city": "Oslo"}\n```'
    assert extract_json(reply) == {"city": "Oslo"}


def test_a_json_fence_beats_a_fence_in_another_language() -> None:
    reply = '```python\n{"city": "Bergen"}\n```\n```json\n{"city": "Oslo"}\n```'
    assert extract_json(reply) == {"city": "Oslo"}


def test_a_fence_left_open_by_a_truncated_reply() -> None:
    assert extract_json('```json\n{"city": "Oslo"}\n') == {"city": "Oslo"}


def test_a_fence_on_one_line_is_read_as_prose() -> None:
    assert extract_json('Here: ```json {"city": "Oslo"}``` done') == {"city": "Oslo"}


def test_backtick_fences_inside_a_json_string_are_not_fences() -> None:
    value = {"code": "```python\nprint({})\n```", "lang": "python"}
    reply = f"```json\n{json.dumps(value)}\n```"
    assert extract_json(reply) == value


def test_braces_inside_strings_do_not_end_the_object() -> None:
    reply = 'Answer: {"note": "a } b { c", "pattern": "}}{{", "n": [1, "]"]} (done}'
    assert extract_json(reply) == {"note": "a } b { c", "pattern": "}}{{", "n": [1, "]"]}


def test_escaped_quotes_inside_strings() -> None:
    reply = r'{"said": "she wrote \"}\" and left\\", "ok": true}'
    assert extract_json(reply) == {"said": 'she wrote "}" and left\\', "ok": True}


def test_a_byte_order_mark_and_whitespace() -> None:
    assert extract_json('\ufeff \n\t{"a": 1}\r\n') == {"a": 1}
    assert extract_json('\ufeff```json\n{"a": 1}\n```') == {"a": 1}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"a": 1,}', {"a": 1}),
        ('{"a": [1, 2, 3,]}', {"a": [1, 2, 3]}),
        ('{"a": {"b": [1, {"c": 2,},],},}', {"a": {"b": [1, {"c": 2}]}}),
        ('{\n  "a": 1,\n  "b": [\n    2,\n  ],\n}', {"a": 1, "b": [2]}),
        ('{"a": 1 ,\t}', {"a": 1}),
    ],
)
def test_trailing_commas_are_dropped(reply: str, expected: dict[str, Any]) -> None:
    assert extract_json(reply) == expected


def test_commas_and_brackets_inside_strings_survive_the_repair() -> None:
    reply = '{"a": "x,}", "b": "[1,]", "c": ",", "d": [1, 2,],}'
    assert extract_json(reply) == {"a": "x,}", "b": "[1,]", "c": ",", "d": [1, 2]}


def test_python_literals_outside_strings() -> None:
    reply = '{"ok": True, "value": None, "flags": [False, True], "text": "True, None and False"}'
    assert extract_json(reply) == {"ok": True, "value": None, "flags": [False, True], "text": "True, None and False"}


def test_an_object_inside_a_list_is_found() -> None:
    assert extract_json('[{"a": 1}, {"b": 2}]') == {"a": 1}


def test_a_broken_object_does_not_give_up_one_nested_inside_it() -> None:
    with pytest.raises(JSONExtractionError, match="at position 0 but it does not parse"):
        extract_json('{"result": {"x": 1}, "extra": oops}')


def test_a_broken_object_does_not_hide_a_later_good_one() -> None:
    assert extract_json('Use {placeholders} like {this}, then: {"a": 1}') == {"a": 1}


def test_stray_braces_do_not_hide_the_answer() -> None:
    assert extract_json("{" * 5_000 + ' {"a": 1}') == {"a": 1}
    assert extract_json("{x}" * 5_000 + '{"a": 1}') == {"a": 1}
    assert extract_json('"{' * 5_000 + '\n{"a": 1}') == {"a": 1}


def test_or_none() -> None:
    assert extract_json_or_none('ok {"a": 1}') == {"a": 1}
    assert extract_json_or_none("nothing here") is None
    assert extract_json_or_none("[1, 2]") is None


# --- what it refuses, and what it says ---------------------------------------------------


def test_the_error_is_a_value_error() -> None:
    assert issubclass(JSONExtractionError, ValueError)


@pytest.mark.parametrize("reply", ["", "   \n", "\ufeff"])
def test_empty_text(reply: str) -> None:
    with pytest.raises(JSONExtractionError, match="no JSON object found: the text is empty"):
        extract_json(reply)


def test_prose_without_json() -> None:
    with pytest.raises(JSONExtractionError, match="no JSON object found in 27 characters"):
        extract_json("I could not find that city.")


def test_says_where_the_json_that_does_not_parse_is() -> None:
    with pytest.raises(JSONExtractionError) as caught:
        extract_json('Sure: {"a": }')
    assert str(caught.value) == (
        "found something that looks like JSON at position 6 but it does not parse: "
        "Expecting value (at position 12, near '}')"
    )


def test_error_positions_count_the_commas_the_repair_dropped() -> None:
    reply = '{"a": [1, 2,], "b": [3,], "c": }'
    with pytest.raises(JSONExtractionError) as caught:
        extract_json(reply)
    assert f"Expecting value (at position {len(reply) - 1}, near '}}')" in str(caught.value)


def test_a_list_is_not_an_object() -> None:
    with pytest.raises(JSONExtractionError, match="the JSON at position 9 is a list, not an object"):
        extract_json("Results: [1, 2, 3]")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("{'a': 1}", "Expecting property name enclosed in double quotes"),
        ('{"a": 1 // the count\n}', "Expecting ',' delimiter"),
        ("{a: 1}", "Expecting property name enclosed in double quotes"),
        ("{\u201ca\u201d: 1}", "Expecting property name enclosed in double quotes"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": -Infinity}', "-Infinity is not valid JSON"),
        ('{"a": 1,,}', "Expecting property name enclosed in double quotes"),
        ("{,}", "Expecting property name enclosed in double quotes"),
        ('{"a": Nonesuch}', "Expecting value"),
        ('{"a": 1', "the text ends before this '{' is closed"),
        ('{"a": "unterminated}', "a string is never closed"),
        ('{"a": [1}', "'}' does not close '['"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, "it is nested too deeply"),
    ],
)
def test_refuses_to_guess(reply: str, reason: str) -> None:
    with pytest.raises(JSONExtractionError, match="does not parse") as caught:
        extract_json(reply)
    assert reason in str(caught.value)


def test_the_message_quotes_only_a_short_excerpt() -> None:
    reply = "x" * 5_000 + '{"a": ' + "y" * 5_000
    with pytest.raises(JSONExtractionError) as caught:
        extract_json(reply)
    message = str(caught.value)
    assert len(message) < 200
    assert "x" * 31 not in message
    assert "y" * 31 not in message


# --- properties ----------------------------------------------------------------------------

# Text that is hard on a scanner: every JSON delimiter, backticks, escapes, and any unicode.
_TRICKY_TEXT = st.text(st.sampled_from('{}[],:"\\`\n\t ') | st.characters(), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TRICKY_TEXT
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TRICKY_TEXT, children, max_size=4),
    max_leaves=12,
)
_OBJECTS = st.dictionaries(_TRICKY_TEXT, _VALUES, max_size=5)
# Prose may hold anything but "{": brackets, quotes, backticks and fence lines included.
_PROSE = st.text(st.sampled_from('[]",:`\n ') | st.characters(exclude_characters="{"), max_size=40)
_DUMPS_OPTIONS = st.sampled_from(
    [{}, {"indent": 2}, {"ensure_ascii": False}, {"separators": (",", ":"), "ensure_ascii": False}]
)
_TRAILING = st.sampled_from([",", ", ", " ,", ",\n  ", ""])

_PROPERTY = settings(max_examples=100, deadline=None)


@_PROPERTY
@given(obj=_OBJECTS, before=_PROSE, after=_PROSE, options=_DUMPS_OPTIONS)
def test_any_object_survives_surrounding_prose(
    obj: dict[str, Any], before: str, after: str, options: dict[str, Any]
) -> None:
    assert extract_json(before + json.dumps(obj, **options) + after) == obj


@_PROPERTY
@given(
    obj=_OBJECTS,
    before=_PROSE,
    after=_PROSE,
    options=_DUMPS_OPTIONS,
    tag=st.sampled_from(["json", "", "JSON"]),
    decoy=st.booleans(),
)
def test_any_object_survives_a_code_fence(
    obj: dict[str, Any], before: str, after: str, options: dict[str, Any], tag: str, decoy: bool
) -> None:
    example = ' like {"decoy": true} ' if decoy else ""
    reply = f"{before}{example}\n```{tag}\n{json.dumps(obj, **options)}\n```\n{after}"
    assert extract_json(reply) == obj


def _sloppy_dumps(value: Any, data: st.DataObject) -> str:
    """Write ``value`` as a model might: trailing commas and Python's True/False/None.

    Written independently of the extractor's scanner, from the value's structure, so the
    commas land exactly where a sloppy writer would put them and never inside strings.
    """
    if isinstance(value, dict):
        items = [f"{json.dumps(key)}: {_sloppy_dumps(item, data)}" for key, item in value.items()]
        return "{" + ", ".join(items) + (data.draw(_TRAILING) if items else "") + "}"
    if isinstance(value, list):
        items = [_sloppy_dumps(item, data) for item in value]
        return "[" + ", ".join(items) + (data.draw(_TRAILING) if items else "") + "]"
    if (value is True or value is False or value is None) and data.draw(st.booleans()):
        return repr(value)
    return json.dumps(value)


@_PROPERTY
@given(obj=_OBJECTS, before=_PROSE, after=_PROSE, data=st.data())
def test_trailing_commas_and_python_literals_still_round_trip(
    obj: dict[str, Any], before: str, after: str, data: st.DataObject
) -> None:
    assert extract_json(before + _sloppy_dumps(obj, data) + after) == obj


@_PROPERTY
@given(prose=_PROSE)
def test_prose_without_braces_is_an_error(prose: str) -> None:
    with pytest.raises(JSONExtractionError, match=r"^(no JSON object found|the JSON at position \d+ is a list)"):
        extract_json(prose)


def _check_any_text(text: str) -> None:
    """An object, or JSONExtractionError with a short message; any other exception fails."""
    found = extract_json_or_none(text)  # lets every exception but JSONExtractionError through
    if found is not None:
        assert isinstance(found, dict)
        assert extract_json(text) == found
    else:
        with pytest.raises(JSONExtractionError) as caught:
            extract_json(text)
        assert len(str(caught.value)) < 500


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_any_text_gives_an_object_or_the_one_error(text: str) -> None:
    _check_any_text(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from('{}[]",:\\`\n 01.-eTrueFalsNn'), max_size=60))
def test_any_jsonish_text_gives_an_object_or_the_one_error(text: str) -> None:
    _check_any_text(text)
