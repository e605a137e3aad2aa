"""What the HTTP providers share: turning failures into :class:`LLMError`, and reading SDK values.

The SDKs put the response body in their exceptions' messages, and a provider's error
body may repeat the key it was sent. So no SDK message is ever copied: the messages
here are built from the status, headers and a few vetted fields only.

Both SDKs talk HTTP through their aiohttp transport (``DefaultAioHttpClient``): it reads a
stream for about half the CPU of httpx2's own transport. It still presents itself as an
httpx2 client, so the SDKs wrap its failures as they wrap httpx2's; ``transport_error``
reads the chain of causes to tell a timeout from a broken connection.

The SDKs send each request and raise its HTTP errors, but the providers read the streamed
body themselves (:func:`sse_events`, then ``json.loads``): the SDKs' event models cost more
than half the CPU of each streamed event (docs/performance.md). Any field of an event may
be missing or of the wrong type, so the providers read every value through ``as_str`` and
``as_int``, which raise :class:`Malformed` instead of passing a wrong value on.
"""

from __future__ import annotations

import codecs
import email.utils
import json
import math
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from typing import Any, NamedTuple

import aiohttp
import anyio
import httpx2

from .base import ErrorKind, LLMError

#: Connections one provider's client may hold open at once. A streaming answer holds one for its
#: whole length, so this must stay above the answers a process may stream at once (the limit
#: that should bind is ``ASSISTANT_MAX_TOTAL``, 400 by default); aiohttp's own default is 100.
MAX_CONNECTIONS = 1000
CONNECTION_LIMITS = httpx2.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)

#: Transport failures, raised by aiohttp or httpx2 (wrapped or not by the SDK) while connecting or
#: reading. ``TimeoutError`` covers aiohttp's timeouts (``ServerTimeoutError`` and its subclasses).
TRANSPORT_TIMEOUTS: tuple[type[BaseException], ...] = (httpx2.TimeoutException, TimeoutError)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    httpx2.RequestError,
    OSError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
)

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def kind_for_status(status: int) -> ErrorKind:
    if status in (401, 402, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "upstream"
    return "bad_request"


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)
    except (TypeError, ValueError, OverflowError):
        return None


def safe_token(value: object) -> str | None:
    """``value`` if it is a short identifier (an error type or a request id), else None."""
    if isinstance(value, str) and _SAFE_TOKEN.fullmatch(value):
        return value
    return None


def status_error(
    *,
    provider: str,
    label: str,
    status: int,
    headers: Mapping[str, str] | None,
    key_setting: str,
) -> LLMError:
    """The error for an HTTP error status answered before the stream started."""
    kind = kind_for_status(status)
    retry_after = retry_after_seconds(headers) if kind in ("rate_limited", "upstream") else None
    if kind == "auth":
        message = (
            f"{label} refused the request for billing reasons (HTTP 402); check the account behind {key_setting}."
            if status == 402
            else f"{label} rejected the API key (HTTP {status}); check {key_setting}."
        )
    elif kind == "rate_limited":
        wait = f"; retry in {math.ceil(retry_after)} s" if retry_after else ""
        message = f"{label} is rate limiting requests (HTTP 429){wait}."
    elif kind == "timeout":
        message = f"{label} timed out (HTTP {status})."
    elif kind == "upstream":
        message = f"{label} is overloaded (HTTP {status})." if status == 529 else f"{label} failed (HTTP {status})."
    elif status == 404:
        message = f"{label} does not know this model or endpoint (HTTP 404); check the model name and base URL."
    else:
        message = f"{label} refused the request as invalid (HTTP {status})."
    return LLMError(kind, message, provider=provider, status=status, retry_after=retry_after)


def stream_error(*, provider: str, label: str, error_type: object) -> LLMError:
    """The error for an error event inside a stream that had started."""
    kind: ErrorKind = "rate_limited" if "rate_limit" in str(error_type) else "upstream"
    detail = safe_token(error_type)
    suffix = f" ({detail})" if detail else ""
    return LLMError(kind, f"{label} reported an error mid-answer{suffix}.", provider=provider)


def timeout_config(seconds: float) -> httpx2.Timeout:
    """``seconds`` for each read (the longest silence tolerated in a stream) and for a free
    connection from the pool, at most 10 s to connect. The aiohttp transport passes them on as
    ``sock_read``, ``connect`` and ``sock_connect``; it has no write timeout."""
    return httpx2.Timeout(seconds, connect=min(seconds, 10.0))


def transport_error(
    *,
    provider: str,
    label: str,
    exc: BaseException,
    started: bool,
    sdk_timeouts: tuple[type[BaseException], ...] = (),
    sdk_errors: tuple[type[BaseException], ...] = (),
) -> LLMError | None:
    """The error for a transport failure, or None if ``exc`` is not one.

    ``sdk_timeouts`` and ``sdk_errors`` are the SDK's own wrappers (``APITimeoutError``,
    ``APIConnectionError``). Whether the failure was a timeout is decided by the innermost
    known exception in the chain of causes, not by the outer type: the transport maps
    aiohttp's exceptions to httpx2's, and the copy the ``openai`` SDK vendors maps every
    ``aiohttp.ClientConnectionError`` (a refused connection, a server that hung up) to
    ``httpx2.ConnectTimeout``, which the SDK raises as ``APITimeoutError``.
    """
    timeouts = (*TRANSPORT_TIMEOUTS, *sdk_timeouts)
    errors = (*TRANSPORT_ERRORS, *sdk_errors)
    if not isinstance(exc, timeouts + errors):
        return None
    # Innermost first; exc itself is one of them, so there is always one.
    innermost = next(cause for cause in reversed(list(_causes(exc))) if isinstance(cause, timeouts + errors))
    if isinstance(innermost, timeouts):
        return LLMError("timeout", f"{label} did not answer in time.", provider=provider)
    message = f"The connection to {label} broke mid-answer." if started else f"Could not connect to {label}."
    return LLMError("connection", message, provider=provider)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its explicit causes (``raise ... from``), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def malformed_error(*, provider: str, label: str) -> LLMError:
    return LLMError("malformed", f"{label} sent a response that could not be read.", provider=provider)


def ended_early_error(*, provider: str, label: str) -> LLMError:
    return LLMError("connection", f"The answer from {label} ended before it was complete.", provider=provider)


class Malformed(Exception):
    """A stream event does not have the shape its type promises."""


def as_str(value: object) -> str:
    if not isinstance(value, str):
        raise Malformed(f"expected a string, got {type(value).__name__}")
    return value


def as_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"expected an integer, got {type(value).__name__}")
    return value


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's streamed JSON arguments; none at all means ``{}``."""
    if not text.strip():
        return {}
    try:
        arguments = json.loads(text)
    except ValueError:
        raise Malformed("tool arguments are not JSON") from None
    if not isinstance(arguments, dict):
        raise Malformed("tool arguments are not a JSON object")
    return arguments


class SseEvent(NamedTuple):
    event: str | None  # the ``event:`` field; None when the event has none
    data: str  # the ``data:`` lines, joined by newlines


_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: The most characters one line, or one event's data, may hold. The providers' events are a few
#: hundred characters; a stream sending more is broken or hostile, and holding it would grow
#: memory without bound.
SSE_EVENT_MAX_CHARS = 1 << 20


async def sse_events(
    chunks: AsyncIterable[bytes], *, max_event_chars: int = SSE_EVENT_MAX_CHARS
) -> AsyncIterator[SseEvent]:
    """The server-sent events in a byte stream, as the HTML standard's event-stream parser reads them.

    Lines end with CRLF, LF or CR (a CR and an LF split across two chunks are one line end);
    a blank line dispatches the event; ``:`` lines are comments; ``id`` and ``retry`` are
    not needed here and skipped; an event not closed by a blank line when the stream ends
    is dropped. A leading byte-order mark is skipped, an empty ``event:`` means none, and
    undecodable UTF-8 becomes U+FFFD, as the standard says.

    A line longer than ``max_event_chars`` (its field name included), or an event whose data
    (its ``data`` values joined by newlines) is longer, raises :class:`Malformed`, however the
    stream is cut into chunks; the events before it are yielded first. A line arriving in many
    chunks is joined once, when it ends, so reading stays linear in its size.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending: list[str] = []  # the unfinished line, in pieces (the last may end with a CR)
    pending_chars = 0
    event: str | None = None
    data: list[str] = []
    data_chars = 0

    def too_long(what: str) -> Malformed:
        return Malformed(f"{what} of more than {max_event_chars} characters")

    def line(text: str) -> SseEvent | None:
        nonlocal event, data, data_chars
        if not text:
            produced = SseEvent(event, "\n".join(data)) if data else None
            event, data, data_chars = None, [], 0
            return produced
        if len(text) > max_event_chars:
            raise too_long("a line")
        name, colon, value = text.partition(":")
        if not name:
            return None  # a comment
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data_chars += len(value) + (1 if data else 0)
            if data_chars > max_event_chars:
                raise too_long("an event")
            data.append(value)
        elif name == "event":
            event = value or None
        return None

    async for chunk in chunks:
        piece = decoder.decode(chunk)
        if not piece:
            continue
        cr_held = bool(pending) and pending[-1].endswith("\r")  # a line ended; is this piece's first byte its LF?
        if not cr_held and "\n" not in piece and "\r" not in piece:  # the line goes on: no rescan
            pending_chars += len(piece)
            if pending_chars > max_event_chars:
                raise too_long("a line")
            pending.append(piece)
            continue
        text = "".join(pending) + piece if pending else piece
        ends_with_cr = text.endswith("\r")  # its LF may open the next chunk
        lines = _LINE_BREAK.split(text[:-1] if ends_with_cr else text)
        rest = lines.pop()
        for text_line in lines:
            if (produced := line(text_line)) is not None:
                yield produced
        if ends_with_cr:  # a complete line, held only to see whether an LF follows
            pending, pending_chars = [rest + "\r"], len(rest)
        else:
            pending, pending_chars = ([rest], len(rest)) if rest else ([], 0)
        if pending_chars > max_event_chars:
            raise too_long("a line")
    # The stream's end: complete lines still held (one ended by a CR, maybe then bytes that were
    # not UTF-8) count; the unfinished last one does not.
    lines = _LINE_BREAK.split("".join(pending) + decoder.decode(b"", final=True))
    for text_line in lines[:-1]:
        if (produced := line(text_line)) is not None:
            yield produced
