"""WebSocket authentication from the Django session cookie, once, at connect.

Channels' ``AuthMiddlewareStack`` keeps a lazy session on every socket and wraps every
``send`` to save it; a Mathia socket never writes to the session, and its sends are the hot
path of fan-out. This middleware reads the session once, resolves the user with Django's
own ``get_user`` (backend and session-hash checks included), and keeps only the user.
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie


def _cookie_header(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return str(value.decode("latin1"))
    return ""


def _user_for(scope: dict[str, Any]) -> Any:
    session_key = parse_cookie(_cookie_header(scope)).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return AnonymousUser()
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]
    if getattr(user, "onboarded_at", True) is None:  # the app opens once onboarding is done (onboarding/)
        return AnonymousUser()
    return user


class SessionAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = await database_sync_to_async(_user_for)(scope)
        return await self.inner({**scope, "user": user}, receive, send)
