"""Helpers that let tests read like the feature."""

from __future__ import annotations

import itertools
import json
from typing import Any

from mathia.accounts.models import User

_counter = itertools.count(1)


def make_user(
    *, email: str | None = None, password: str = "a-long-passphrase-42", onboarded: bool = True, **fields: Any
) -> User:
    """A registered, active user with a verified email and a default workspace.

    ``onboarded`` (the default) means they finished the onboarding wizard, so the app is open
    to them; ``onboarded=False`` is someone who just signed up.
    """
    from allauth.account.models import EmailAddress
    from django.utils import timezone

    n = next(_counter)
    email = email or f"user{n}@example.com"
    fields.setdefault("display_name", f"User {n}")
    if onboarded:
        fields.setdefault("onboarded_at", timezone.now())
        fields.setdefault("onboarding_step", "done")
    user = User.objects.create_user(email=email, password=password, **fields)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def assert_error(response: Any, *, status: int, code: str) -> dict[str, Any]:
    """Assert the response is Mathia's error shape (JSON or page) with ``code``."""
    assert response.status_code == status, response.content[:500]
    if response["Content-Type"].startswith("application/json"):
        body = json.loads(response.content)
        assert body["error"]["code"] == code, body
        assert body["error"]["message"]
        return dict(body["error"])
    assert f'data-error-code="{code}"'.encode() in response.content, response.content[:500]
    return {"code": code}
