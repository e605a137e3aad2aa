"""The one application error: a stable code and a message a person can read.

Views map it to the JSON error shape (``{"error": {"code", "message"}}``) in one place,
:func:`mathia.core.http.error_response`; WebSocket consumers map it to the ``error`` frame.
"""

from __future__ import annotations

from typing import Any

import redis
from django.db import InterfaceError, OperationalError


class AppError(Exception):
    code = "error"
    http_status = 400

    def __init__(
        self, message: str, *, code: str | None = None, http_status: int | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class NotFound(AppError):
    """Also the answer for things that exist but the caller may not see."""

    code = "not_found"
    http_status = 404


class PermissionDenied(AppError):
    code = "forbidden"
    http_status = 403


class InvalidInput(AppError):
    code = "invalid"
    http_status = 400


class RateLimited(AppError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after=round(retry_after, 1))
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    code = "unavailable"
    http_status = 503


UNAVAILABLE_MESSAGE = "Mathia cannot reach its database or Redis right now. Nothing was lost; try again in a moment."


def as_app_error(exc: BaseException) -> AppError | None:
    """The application error for ``exc``: itself, or ``unavailable`` when a backing service is down.

    Both adapters (HTTP and WebSocket) use this, so a dead Redis or database gives people the
    same clear answer everywhere instead of a 500 page or a socket closed with 1011.
    """
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, redis.RedisError | OperationalError | InterfaceError):
        return ServiceUnavailable(UNAVAILABLE_MESSAGE)
    return None
