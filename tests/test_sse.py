"""The server-sent events reader both providers stream through (``llm._http.sse_events``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mathia.assistant.llm._http import Malformed, SseEvent, sse_events


async def _chunks(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def read(pieces: list[bytes]) -> list[SseEvent]:
    async def collect() -> list[SseEvent]:
        return [event async for event in sse_events(_chunks(pieces))]

    return asyncio.run(collect())


# Field values: any text but line ends (a value may start with spaces; only the first one is dropped).
_values = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_events = st.lists(
    st.tuples(
        st.none() | st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12),
        st.lists(_values, min_size=1, max_size=3),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(events=_events, data=st.data())
def test_any_stream_split_anywhere_reads_back_the_same_events(
    events: list[tuple[str | None, list[str]]], data: st.DataObject
) -> None:
    line_end = st.sampled_from(["\n", "\r\n", "\r"])
    text = ""
    for name, lines in events:
        if data.draw(st.booleans()):
            text += ": a comment" + data.draw(line_end)
        if name is not None:
            text += f"event: {name}" + data.draw(line_end)
        for value in lines:
            text += f"data: {value}" + data.draw(line_end)
        text += "id: 7" + data.draw(line_end)  # a field the reader skips
        blank = data.draw(line_end)
        text += "\r" if text.endswith("\r") and blank == "\n" else blank  # (CR then LF would be one line end)
    raw = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    assert read(pieces) == [SseEvent(name, "\n".join(lines)) for name, lines in events]


def test_a_field_without_a_space_or_a_value() -> None:
    assert read([b"event:delta\ndata\ndata:x\n\n"]) == [SseEvent("delta", "\nx")]


def test_an_event_the_stream_does_not_close_is_dropped() -> None:
    assert read([b"data: one\n\n", b"data: two\n"]) == [SseEvent(None, "one")]


def test_a_blank_line_with_no_data_dispatches_nothing() -> None:
    assert read([b"event: ping\n\n\n", b"data: x\r\r"]) == [SseEvent(None, "x")]


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    assert read([b"data: caf\xc3", b"\xa9 \xff\n\n"]) == [SseEvent(None, "café \ufffd")]


def test_a_byte_order_mark_and_an_empty_event_name_mean_nothing() -> None:
    assert read([b"\xef\xbb", b"\xbfevent:\ndata: x\n\n"]) == [SseEvent(None, "x")]


def test_the_last_line_ended_by_a_cr_counts_even_before_broken_utf8() -> None:
    assert read([b"data: x\n\r\xe2"]) == [SseEvent(None, "x")]


def test_a_long_line_in_many_small_chunks_reads_back_whole() -> None:
    line = "x" * 50_000
    raw = f"data: {line}\r".encode()
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)] + [b"\r"]  # its end: CR, then a blank line

    assert read(pieces) == [SseEvent(None, line)]


def test_a_cr_ending_a_chunk_ends_its_line_even_when_no_lf_follows() -> None:
    assert read([b"data: a\r", b"data: b\r", b"\r"]) == [SseEvent(None, "a\nb")]


def read_capped(pieces: list[bytes], limit: int) -> list[SseEvent] | str:
    """The events, or the error's text once the reader refused a line or an event."""

    async def collect() -> list[SseEvent]:
        return [event async for event in sse_events(_chunks(pieces), max_event_chars=limit)]

    try:
        return asyncio.run(collect())
    except Malformed as error:
        return str(error)


@pytest.mark.parametrize(
    ("pieces", "refused"),
    [
        ([b"data: " + b"x" * 600, b"y" * 600], "a line"),  # one line that does not end
        ([b"data: " + b"x" * 600 + b"\n", b"data: " + b"y" * 600 + b"\n"], "an event"),  # lines of one event
        ([b"data: " + b"x" * 1300 + b"\n"], "a line"),  # a line in one chunk
        ([b": " + b"x" * 1300 + b"\n"], "a line"),  # a comment counts too
    ],
    ids=["unended-line", "long-event", "long-line", "long-comment"],
)
def test_a_line_or_an_event_past_the_size_limit_is_malformed(pieces: list[bytes], refused: str) -> None:
    assert read_capped(pieces, 1000) == f"{refused} of more than 1000 characters"


def test_the_limit_is_exact() -> None:
    assert read_capped([b"data: " + b"x" * 994 + b"\n\n"], 1000) == [SseEvent(None, "x" * 994)]  # a line of 1000
    assert read_capped([b"data: " + b"x" * 995 + b"\n\n"], 1000) == "a line of more than 1000 characters"
    exactly = [b"data: " + b"x" * 499 + b"\n", b"data:" + b"y" * 500 + b"\n\n"]  # 499 + newline + 500
    assert read_capped(exactly, 1000) == [SseEvent(None, "x" * 499 + "\n" + "y" * 500)]


def test_the_events_before_a_refused_line_are_read_first() -> None:
    assert read_capped([b"data: ok\n\n" + b"y" * 2000], 1000) == "a line of more than 1000 characters"
    events: list[SseEvent] = []

    async def collect() -> None:
        async for event in sse_events(_chunks([b"data: ok\n\n" + b"y" * 2000]), max_event_chars=1000):
            events.append(event)

    with pytest.raises(Malformed):
        asyncio.run(collect())
    assert events == [SseEvent(None, "ok")]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(["data: ", "data:", ": ", "event: "]).flatmap(
            lambda head: st.integers(0, 30).map(lambda n: head + "x" * n)
        )
        | st.just(""),
        max_size=8,
    ),
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    data=st.data(),
)
def test_whether_the_limit_refuses_does_not_depend_on_the_chunks(
    lines: list[str], line_end: str, data: st.DataObject
) -> None:
    raw = "".join(text + line_end for text in lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    assert read_capped(pieces, 24) == read_capped([raw], 24)
