"""What the HTTP providers share: turning failures into :class:`LLMError`, and reading SDK values.

The SDKs put the response body in their exceptions' messages, and a provider's error
body may repeat the key it was sent. So no SDK message is ever copied: the messages
here are built from the status, headers and a few vetted fields only.

The SDKs also build their stream-event models without validating them (any field may be
None or of the wrong type), so the providers read every value through ``as_str`` and
``as_int``, which raise :class:`Malformed` instead of passing a wrong value on.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2

from .base import ErrorKind, LLMError

#: Transport failures, raised by httpx2 (wrapped or not by the SDK) while connecting or reading.
TRANSPORT_TIMEOUTS: tuple[type[BaseException], ...] = (httpx2.TimeoutException,)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
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


def transport_error(*, provider: str, label: str, exc: BaseException, started: bool) -> LLMError | None:
    """The error for a transport failure, or None if ``exc`` is not one."""
    if isinstance(exc, TRANSPORT_TIMEOUTS):
        return LLMError("timeout", f"{label} did not answer in time.", provider=provider)
    if isinstance(exc, TRANSPORT_ERRORS):
        message = f"The connection to {label} broke mid-answer." if started else f"Could not connect to {label}."
        return LLMError("connection", message, provider=provider)
    return None


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
