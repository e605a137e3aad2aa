"""Maps :class:`AppError` to a response, in one place, for every HTTP view."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from mathia.core.errors import AppError, as_app_error

log = structlog.get_logger(__name__)


def error_response(request: HttpRequest, error: AppError) -> HttpResponse:
    """JSON ``{"error": {"code", "message", ...}}`` for API callers, an HTML page otherwise."""
    wants_json = request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")
    if wants_json:
        return JsonResponse({"error": error.as_dict()}, status=error.http_status)
    return render(request, "error.html", {"error": error}, status=error.http_status)


class AppErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        error = as_app_error(exception)
        if error is None:
            return None
        if error is not exception:
            log.error("service_unavailable", path=request.path, exc_info=exception)
        else:
            log.info("app_error", code=error.code, status=error.http_status, path=request.path)
        return error_response(request, error)
