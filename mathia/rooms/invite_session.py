"""The invite a signed-out visitor opened, kept in their session until they can accept it.

Both the invite page (which remembers it) and the home page (which resumes it after sign-up
and sign-in) use this; neither view reaches into the other.
"""

from __future__ import annotations

from django.http import HttpRequest

_KEY = "mathia_pending_invite"


def pending_invite_remember(request: HttpRequest, token: str) -> None:
    request.session[_KEY] = token


def pending_invite_forget(request: HttpRequest) -> None:
    request.session.pop(_KEY, None)


def pending_invite_token(request: HttpRequest) -> str | None:
    token = request.session.get(_KEY)
    return token if isinstance(token, str) and token else None
