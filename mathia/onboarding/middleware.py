"""The app is reachable only after the wizard's required steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from mathia.rooms.invite_session import pending_invite_remember

# Reachable before onboarding ends: signing in and out, the wizard itself, admin, probes, assets.
OPEN_PREFIXES = ("/accounts/", "/welcome/", "/admin/", "/static/", "/media/", "/healthz", "/readyz", "/avatars/")


class OnboardingRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or getattr(user, "onboarded_at", None) is not None:
            return None
        if getattr(user, "is_assistant", False) or request.path.startswith(OPEN_PREFIXES):
            return None
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": {"code": "onboarding_required", "message": "Finish setting up your account first."}},
                status=403,
            )
        match = request.resolver_match
        if match is not None and match.url_name == "invite" and "token" in kwargs:
            # Opened an invitation mid-way: keep it, so the wizard ends in that room.
            pending_invite_remember(request, str(kwargs["token"]))
        return redirect("onboarding")
